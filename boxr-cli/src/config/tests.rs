use super::*;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A scratch directory holding a minimal rootfs and a place for config files.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("boxr-config-test-{}-{n}", std::process::id()));
        for sub in ["rootfs/proc", "rootfs/sys", "rootfs/dev", "data"] {
            fs::create_dir_all(dir.join(sub)).unwrap();
        }
        fs::write(dir.join("data/file.txt"), "x").unwrap();
        Scratch(dir)
    }
    fn parse(&self, text: &str) -> Result<Config, ConfigError> {
        self.parse_with(text, &Overrides::default())
    }
    fn parse_with(&self, text: &str, o: &Overrides) -> Result<Config, ConfigError> {
        parse(&self.0.join("c.toml"), text, o)
    }
    fn err(&self, text: &str) -> String {
        let e = self.parse(text).unwrap_err();
        let prefix = format!("{}:", self.0.join("c.toml").display());
        e.to_string().strip_prefix(&prefix).expect("error names the config file").to_string()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

const MINIMAL: &str = "rootfs = \"rootfs\"\n[process]\nargs = [\"/bin/true\"]\n";

#[test]
fn minimal_config_gets_defaults() {
    let s = Scratch::new();
    let c = s.parse(MINIMAL).unwrap();
    assert_eq!(c.rootfs, fs::canonicalize(s.0.join("rootfs")).unwrap());
    assert_eq!(c.namespaces, DEFAULT_NAMESPACES);
    assert_eq!(c.process.args, ["/bin/true"]);
    assert_eq!(c.process.cwd, "/");
    assert_eq!(c.process.env, [DEFAULT_PATH, "HOME=/root"]);
    assert!(!c.readonly_rootfs);
    assert!(c.copy_on_write);
    assert!(c.mounts.is_empty());
    assert_eq!(c.hostname, None);
}

#[test]
fn full_config_parses() {
    let s = Scratch::new();
    let c = s
        .parse(
            r#"
rootfs = "rootfs"
hostname = "web-1"
namespaces = ["pid", "mount", "uts"]
readonly_rootfs = true
copy_on_write = false
[process]
args = ["/bin/sh", "-c", "env"]
env = ["PATH=/bin", "A=1", "A=2"]
cwd = "/tmp//x/."
[[mounts]]
type = "bind"
source = "data"
destination = "/srv/data/"
readonly = true
[[mounts]]
type = "bind"
source = "data/file.txt"
destination = "/etc/file"
[[mounts]]
type = "tmpfs"
destination = "/scratch"
size = "16m"
"#,
        )
        .unwrap();
    assert_eq!(c.hostname.as_deref(), Some("web-1"));
    assert_eq!(c.namespaces, [Namespace::Pid, Namespace::Mount, Namespace::Uts]);
    assert!(c.readonly_rootfs);
    assert!(!c.copy_on_write);
    assert_eq!(c.process.env, ["PATH=/bin", "A=2", "HOME=/root", "HOSTNAME=web-1"]);
    assert_eq!(c.process.cwd, "/tmp/x");
    let data = fs::canonicalize(s.0.join("data")).unwrap();
    assert_eq!(
        c.mounts,
        [
            Mount {
                destination: "/srv/data".into(),
                target: "/srv/data".into(),
                kind: MountKind::Bind { source: data.clone(), file: false },
                readonly: true
            },
            Mount {
                destination: "/etc/file".into(),
                target: "/etc/file".into(),
                kind: MountKind::Bind { source: data.join("file.txt"), file: true },
                readonly: false
            },
            Mount {
                destination: "/scratch".into(),
                target: "/scratch".into(),
                kind: MountKind::Tmpfs { size: Some(16 << 20) },
                readonly: false
            },
        ]
    );
}

#[test]
fn unknown_key_is_reported_with_position() {
    let s = Scratch::new();
    let e = s.err("rootfs = \"rootfs\"\nbogus = 1\n[process]\nargs = [\"/bin/true\"]\n");
    assert!(e.starts_with("2:1: unknown field `bogus`"), "{e}");
    let e = s.err("rootfs = \"rootfs\"\n[process]\nargs = [\"/bin/true\"]\nusr = \"x\"\n");
    assert!(e.starts_with("4:1: unknown field `usr`"), "{e}");
}

#[test]
fn wrong_type_is_reported_with_position() {
    let s = Scratch::new();
    let e = s
        .err("rootfs = \"rootfs\"\nreadonly_rootfs = \"yes\"\n[process]\nargs = [\"/bin/true\"]\n");
    assert!(e.starts_with("2:19: invalid type: string \"yes\", expected a boolean"), "{e}");
}

#[test]
fn syntax_error_is_reported_with_position() {
    let s = Scratch::new();
    let e = s.err("rootfs = \"rootfs\"\n[process\n");
    assert!(e.starts_with("2:"), "{e}");
}

#[test]
fn missing_rootfs_is_reported_with_position_and_hint() {
    let s = Scratch::new();
    let e = s.err("\n  rootfs = \"nope\"\n[process]\nargs = [\"/bin/true\"]\n");
    assert!(e.starts_with("2:12: rootfs "), "{e}");
    assert!(e.contains("nope: no such file or directory"), "{e}");
    assert!(e.contains("cargo xtask build-rootfs"), "{e}");
    let e = s.err("[process]\nargs = [\"/bin/true\"]\n");
    assert!(e.contains("missing field `rootfs`"), "{e}");
}

#[test]
fn rootfs_with_symlinked_proc_is_refused() {
    let s = Scratch::new();
    fs::remove_dir(s.0.join("rootfs/proc")).unwrap();
    std::os::unix::fs::symlink("/proc", s.0.join("rootfs/proc")).unwrap();
    let e = s.err(MINIMAL);
    assert!(e.starts_with("1:10: ") && e.contains("proc must be a real directory"), "{e}");
}

#[test]
fn bad_destinations_are_refused() {
    let s = Scratch::new();
    let mount =
        |dest: &str| format!("{MINIMAL}[[mounts]]\ntype = \"tmpfs\"\ndestination = \"{dest}\"\n");
    let e = s.err(&mount("relative/dir"));
    assert!(
        e.starts_with("6:15: mount destination \"relative/dir\": must be an absolute path"),
        "{e}"
    );
    let e = s.err(&mount("/a/../etc"));
    assert!(e.contains("must not contain '..'"), "{e}");
    let e = s.err(&mount("/proc/sys"));
    assert!(e.contains("not allowed"), "{e}");
    let e = s.err(&mount("/"));
    assert!(e.contains("boxr mounts this itself"), "{e}");
    let dup = format!("{}[[mounts]]\ntype = \"tmpfs\"\ndestination = \"/x/\"\n", mount("/x"));
    let e = s.err(&dup);
    assert!(e.starts_with("9:15: duplicate mount destination /x"), "{e}");
    std::os::unix::fs::symlink("/proc/sys", s.0.join("rootfs/sneaky")).unwrap();
    let e = s.err(&mount("/sneaky/kernel"));
    assert!(
        e.contains("it resolves to /proc/sys/kernel in the rootfs, and mounts on or under /proc"),
        "{e}"
    );
    std::os::unix::fs::symlink("x", s.0.join("rootfs/alias")).unwrap();
    let dup = format!("{}[[mounts]]\ntype = \"tmpfs\"\ndestination = \"/alias\"\n", mount("/x"));
    let e = s.err(&dup);
    assert!(e.starts_with("9:15: duplicate mount destination /alias (in the rootfs: /x)"), "{e}");
}

#[test]
fn mount_fields_are_checked_per_type() {
    let s = Scratch::new();
    let e = s.err(&format!("{MINIMAL}[[mounts]]\ntype = \"bind\"\ndestination = \"/x\"\n"));
    assert!(e.starts_with("5:8: a bind mount needs a source"), "{e}");
    let e = s.err(&format!(
        "{MINIMAL}[[mounts]]\ntype = \"bind\"\nsource = \"missing\"\ndestination = \"/x\"\n"
    ));
    assert!(
        e.starts_with("6:10: bind source ") && e.contains("missing: no such file or directory"),
        "{e}"
    );
    let e = s.err(&format!(
        "{MINIMAL}[[mounts]]\ntype = \"tmpfs\"\nsource = \"data\"\ndestination = \"/x\"\n"
    ));
    assert!(e.starts_with("6:10: a tmpfs mount takes no source"), "{e}");
    let e = s.err(&format!(
        "{MINIMAL}[[mounts]]\ntype = \"tmpfs\"\ndestination = \"/x\"\nsize = \"12q\"\n"
    ));
    assert!(e.starts_with("7:8: invalid size \"12q\""), "{e}");
    let e = s.err(&format!("{MINIMAL}[[mounts]]\ntype = \"nfs\"\ndestination = \"/x\"\n"));
    assert!(e.starts_with("5:8: unknown variant `nfs`"), "{e}");
}

#[test]
fn namespaces_are_checked() {
    let s = Scratch::new();
    let e = s.err(
        "rootfs = \"rootfs\"\nnamespaces = [\"pid\", \"mnt\"]\n[process]\nargs = [\"/bin/true\"]\n",
    );
    assert!(e.starts_with("2:22: unknown variant `mnt`"), "{e}");
    let e =
        s.err("rootfs = \"rootfs\"\nnamespaces = [\"pid\"]\n[process]\nargs = [\"/bin/true\"]\n");
    assert!(e.starts_with("2:14: namespaces must include \"mount\""), "{e}");
    let e = s.err("rootfs = \"rootfs\"\nnamespaces = [\"mount\", \"mount\"]\n[process]\nargs = [\"/bin/true\"]\n");
    assert!(e.starts_with("2:24: namespace \"mount\" is listed twice"), "{e}");
    let e = s.err("rootfs = \"rootfs\"\nnamespaces = [\"mount\", \"user\"]\n[process]\nargs = [\"/bin/true\"]\n");
    assert!(e.contains("must include \"pid\""), "{e}");
}

#[test]
fn hostname_is_checked() {
    let s = Scratch::new();
    let e = s.err("rootfs = \"rootfs\"\nhostname = \"a\"\nnamespaces = [\"mount\"]\n[process]\nargs = [\"/bin/true\"]\n");
    assert!(e.starts_with("2:12: setting the hostname needs the \"uts\" namespace"), "{e}");
    let e =
        s.err("rootfs = \"rootfs\"\nhostname = \"bad_name\"\n[process]\nargs = [\"/bin/true\"]\n");
    assert!(e.starts_with("2:12: invalid hostname \"bad_name\""), "{e}");
    let o = Overrides { hostname: Some("-x".into()), ..Overrides::default() };
    let e = s.parse_with(MINIMAL, &o).unwrap_err();
    assert_eq!(e.at, "--hostname");
}

#[test]
fn process_is_checked() {
    let s = Scratch::new();
    let e = s.err("rootfs = \"rootfs\"\n[process]\nargs = []\n");
    assert!(e.starts_with("2:1: process.args is missing or empty"), "{e}");
    let e = s.err("rootfs = \"rootfs\"\n");
    assert!(e.starts_with("1:1: process.args is missing or empty"), "{e}");
    let e = s.err("rootfs = \"rootfs\"\n[process]\nargs = [\"/bin/true\"]\nenv = [\"NOEQUALS\"]\n");
    assert!(e.starts_with("4:8: process.env: \"NOEQUALS\" is not of the form KEY=VALUE"), "{e}");
    let e = s.err("rootfs = \"rootfs\"\n[process]\nargs = [\"/bin/true\"]\ncwd = \"tmp\"\n");
    assert!(e.starts_with("4:7: process.cwd \"tmp\": must be an absolute path"), "{e}");
    let e = s.err("rootfs = \"rootfs\"\n[process]\nargs = [\"/bin/\\u0000\"]\n");
    assert!(e.starts_with("3:9: process.args holds a NUL character"), "{e}");
}

#[test]
fn overrides_replace_args_and_env() {
    let s = Scratch::new();
    let o = Overrides {
        args: vec!["/bin/sh".into(), "-c".into(), "true".into()],
        env: vec!["PATH=/x".into(), "NEW=1".into(), "BOXR_SURELY_UNSET_VAR".into()],
        hostname: Some("h".into()),
        ..Overrides::default()
    };
    let c = s.parse_with("rootfs = \"rootfs\"\n[process]\nenv = [\"PATH=/bin\"]\n", &o).unwrap();
    assert_eq!(c.process.args, ["/bin/sh", "-c", "true"]);
    assert_eq!(c.process.env, ["PATH=/x", "NEW=1", "HOME=/root", "HOSTNAME=h"]);
    assert_eq!(c.hostname.as_deref(), Some("h"));
    let bad = Overrides { env: vec!["=x".into()], ..Overrides::default() };
    assert_eq!(s.parse_with(MINIMAL, &bad).unwrap_err().at, "-e =x");
}

#[test]
fn resources_are_read_and_checked_with_positions() {
    let s = Scratch::new();
    let c = s
        .parse(&format!(
            "cgroup_parent = \"/test/boxr/\"\n{MINIMAL}[resources]\nmemory = \"16m\"\ncpus = 0.5\npids_limit = 20\ncpu_weight = 50\n"
        ))
        .unwrap();
    assert_eq!(c.cgroup_parent, "/test/boxr");
    assert_eq!(c.resources.memory, Some(16 << 20));
    assert_eq!(c.resources.cpu_quota_us, Some(50_000));
    assert_eq!(c.resources.pids_limit, Some(20));
    assert_eq!(s.parse(MINIMAL).unwrap().cgroup_parent, "/boxr");
    assert!(s.parse(MINIMAL).unwrap().resources.is_empty());
    let e = s.err(&format!("{MINIMAL}[resources]\nmemory = \"1k\"\n"));
    assert!(e.starts_with("5:10: resources.memory: 1024 bytes is below the minimum"), "{e}");
    let e = s.err(&format!("{MINIMAL}[resources]\npids_limit = 0\n"));
    assert!(e.starts_with("5:14: resources.pids_limit: 0: give at least 1"), "{e}");
    let e = s.err(&format!("{MINIMAL}[resources]\nswap = 1\n"));
    assert!(e.starts_with("5:1: unknown field `swap`"), "{e}");
    let e = s.err(&format!("cgroup_parent = \"../x\"\n{MINIMAL}"));
    assert!(e.starts_with("1:17: cgroup_parent \"../x\""), "{e}");
}

#[test]
fn resource_flags_override_the_config() {
    let s = Scratch::new();
    let flags = |f: ResourceFlags| Overrides { resources: f, ..Overrides::default() };
    let text = format!("{MINIMAL}[resources]\nmemory = \"64m\"\npids_limit = 5\n");
    let c = s
        .parse_with(
            &text,
            &flags(ResourceFlags {
                memory: Some("32m".into()),
                cpus: Some("1.5".into()),
                ..ResourceFlags::default()
            }),
        )
        .unwrap();
    assert_eq!(c.resources.memory, Some(32 << 20));
    assert_eq!(c.resources.cpu_quota_us, Some(150_000));
    assert_eq!(c.resources.pids_limit, Some(5));
    let e = s
        .parse_with(
            MINIMAL,
            &flags(ResourceFlags { cpus: Some("lots".into()), ..ResourceFlags::default() }),
        )
        .unwrap_err();
    assert_eq!(
        (e.at.as_str(), e.message.as_str()),
        ("--cpus", "\"lots\" is not a number of CPUs such as 0.5")
    );
    let e = s
        .parse_with(
            MINIMAL,
            &flags(ResourceFlags { pids_limit: Some("-3".into()), ..ResourceFlags::default() }),
        )
        .unwrap_err();
    assert_eq!(e.at, "--pids-limit");
    let e = s
        .parse_with(
            MINIMAL,
            &flags(ResourceFlags { memory_swap: Some("-1".into()), ..ResourceFlags::default() }),
        )
        .unwrap();
    assert_eq!(e.resources.memory_swap, Some(crate::resources::Swap::Unlimited));
}

#[test]
fn sizes_parse() {
    assert_eq!(parse_size_text("512"), Ok(512));
    assert_eq!(parse_size_text("4k"), Ok(4096));
    assert_eq!(parse_size_text("16M"), Ok(16 << 20));
    assert_eq!(parse_size_text("1gb"), Ok(1 << 30));
    assert!(parse_size_text("").is_err());
    assert!(parse_size_text("m").is_err());
    assert!(parse_size_text("-1k").is_err());
    assert!(parse_size_text("1.5g").is_err());
    assert!(parse_size_text("99999999999999999999g").is_err());
    assert_eq!(
        parse_size(&RawSize::Bytes(0)),
        Err("size must be more than 0 (leave it out for the kernel's default)".into())
    );
    assert!(parse_size(&RawSize::Bytes(-3)).is_err());
}

#[test]
fn line_column_counts_characters() {
    assert_eq!(line_column("ab\ncé d", 7), (2, 4));
    assert_eq!(line_column("x", 0), (1, 1));
}

#[test]
fn network_mode_follows_the_namespaces_without_a_network_table() {
    let s = Scratch::new();
    let c = s.parse(MINIMAL).unwrap();
    assert_eq!(c.network.mode, Mode::None);
    assert_eq!(c.network.bridge, "boxr0");
    let c = s.parse(&format!("namespaces = [\"mount\", \"pid\"]\n{MINIMAL}")).unwrap();
    assert_eq!(c.network.mode, Mode::Host);
    assert_eq!(c.namespaces, [Namespace::Mount, Namespace::Pid]);
}

#[test]
fn a_network_table_means_bridge_mode_and_the_mode_sets_the_net_namespace() {
    let s = Scratch::new();
    let c = s.parse(&format!("{MINIMAL}[network]\n")).unwrap();
    assert_eq!(
        c.network,
        network::Settings {
            mode: Mode::Bridge,
            bridge: "boxr0".into(),
            subnet: None,
            ports: vec![]
        }
    );
    assert!(c.has(Namespace::Net));
    let c = s.parse(&format!("{MINIMAL}[network]\nmode = \"host\"\n")).unwrap();
    assert_eq!(c.network.mode, Mode::Host);
    assert!(!c.has(Namespace::Net), "host mode keeps the default's \"net\"");
    // A config's own namespaces contradicting its own mode are an error.
    let no_net = "namespaces = [\"mount\", \"pid\"]\n";
    let e = s.err(&format!("{no_net}{MINIMAL}[network]\nbridge = \"b0\"\n"));
    assert!(e.starts_with("5:1: network mode \"bridge\" needs the \"net\" namespace"), "{e}");
    let e = s.err(&format!("{no_net}{MINIMAL}[network]\nmode = \"none\"\n"));
    assert!(e.starts_with("6:8: network mode \"none\" needs the \"net\" namespace"), "{e}");
    let with_net = "namespaces = [\"mount\", \"net\"]\n";
    let e = s.err(&format!("{with_net}{MINIMAL}[network]\nmode = \"host\"\n"));
    assert!(e.starts_with("6:8: network mode \"host\" shares the host's network"), "{e}");
    let e = s.err(&format!("{MINIMAL}[network]\nmode = \"nat\"\n"));
    assert!(e.starts_with("5:8: unknown variant `nat`"), "{e}");
    let e = s.err(&format!("{MINIMAL}[network]\nports = \"8080:80\"\n"));
    assert!(e.starts_with("5:9: invalid type"), "{e}");
    let e = s.err(&format!("{MINIMAL}[network]\ndns = []\n"));
    assert!(e.starts_with("5:1: unknown field `dns`"), "{e}");
}

#[test]
fn the_network_flag_overrides_the_mode_and_the_net_namespace() {
    let s = Scratch::new();
    let flag = |mode: &str| Overrides { network: Some(mode.into()), ..Overrides::default() };
    let no_net = format!("namespaces = [\"mount\", \"pid\"]\n{MINIMAL}");
    let c = s.parse_with(&no_net, &flag("bridge")).unwrap();
    assert_eq!(
        (c.network.mode, c.namespaces.as_slice()),
        (Mode::Bridge, &[Namespace::Mount, Namespace::Pid, Namespace::Net][..])
    );
    let with_ports = format!("{MINIMAL}[network]\nports = [\"8080:80\"]\n");
    let c = s.parse_with(&with_ports, &flag("host")).unwrap();
    assert_eq!(c.network.mode, Mode::Host);
    assert!(!c.has(Namespace::Net) && c.network.ports.is_empty());
    let e = s.parse_with(MINIMAL, &flag("nat")).unwrap_err();
    assert_eq!(e.at, "--network");
    assert!(e.message.contains("unknown network mode \"nat\": use none, host or bridge"), "{e}");
}

#[test]
fn bridge_settings_are_checked_with_positions() {
    let s = Scratch::new();
    let c = s
        .parse(&format!(
            "{MINIMAL}[network]\nbridge = \"br-test\"\nsubnet = \"10.254.254.0/24\"\nports = [\"8080:80\", \"127.0.0.1:53:53/udp\"]\n"
        ))
        .unwrap();
    assert_eq!(c.network.bridge, "br-test");
    assert_eq!(c.network.subnet.map(|s| s.to_string()).as_deref(), Some("10.254.254.0/24"));
    let ports: Vec<String> = c.network.ports.iter().map(ToString::to_string).collect();
    assert_eq!(ports, ["8080:80/tcp", "127.0.0.1:53:53/udp"]);
    for (line, at, message) in [
        (
            "bridge = \"a-very-long-bridge\"",
            "5:10",
            "network.bridge: bridge name \"a-very-long-bridge\"",
        ),
        (
            "subnet = \"10.254.254.1/24\"",
            "5:10",
            "network.subnet: subnet \"10.254.254.1/24\" has host bits set",
        ),
        (
            "subnet = \"10.0.0.0/31\"",
            "5:10",
            "network.subnet: subnet \"10.0.0.0/31\": the prefix length",
        ),
        ("ports = [\"80:80\", \"x\"]", "5:19", "network.ports: port mapping \"x\""),
        (
            "ports = [\"80:80\", \"80:81\"]",
            "5:19",
            "port mapping \"80:81/tcp\" publishes host port 80/tcp again",
        ),
    ] {
        let e = s.err(&format!("{MINIMAL}[network]\n{line}\n"));
        assert!(e.starts_with(&format!("{at}: {message}")), "{line}: {e}");
    }
    let e = s.err(&format!("{MINIMAL}[network]\nmode = \"none\"\nports = [\"8080:80\"]\n"));
    assert!(
        e.starts_with("6:9: network.ports applies to bridge mode only, and mode is \"none\""),
        "{e}"
    );
}

#[test]
fn publish_flags_add_ports_in_bridge_mode_only() {
    let s = Scratch::new();
    let publish = |ports: &[&str]| Overrides {
        publish: ports.iter().map(|p| p.to_string()).collect(),
        ..Overrides::default()
    };
    let bridge = format!("{MINIMAL}[network]\nports = [\"8080:80\"]\n");
    let c = s.parse_with(&bridge, &publish(&["127.0.0.1:8081:80"])).unwrap();
    let ports: Vec<String> = c.network.ports.iter().map(ToString::to_string).collect();
    assert_eq!(ports, ["8080:80/tcp", "127.0.0.1:8081:80/tcp"]);
    let e = s.parse_with(&bridge, &publish(&["8080:81"])).unwrap_err();
    assert_eq!(e.at, "-p 8080:81");
    assert!(e.message.contains("publishes host port 8080/tcp again"), "{e}");
    let e = s.parse_with(MINIMAL, &publish(&["8080:80"])).unwrap_err();
    assert_eq!(e.at, "-p 8080:80");
    assert!(e.message.contains("needs bridge mode, and the network mode is \"none\""), "{e}");
    let e = s.parse_with(&bridge, &publish(&["8080"])).unwrap_err();
    assert_eq!(e.at, "-p 8080");
}

#[test]
fn web_toml_asks_for_bridge_mode_publishing_8080() {
    // configs/web.toml itself, in a copy of its surroundings: ../target/rootfs and www beside it.
    let s = Scratch::new();
    for dir in ["configs/www", "target/rootfs/proc", "target/rootfs/sys", "target/rootfs/dev"] {
        fs::create_dir_all(s.0.join(dir)).unwrap();
    }
    let text = include_str!("../../../configs/web.toml");
    let c = parse(&s.0.join("configs/web.toml"), text, &Overrides::default()).unwrap();
    assert_eq!(c.network.mode, Mode::Bridge);
    assert_eq!(c.network.bridge, "boxr0");
    let ports: Vec<String> = c.network.ports.iter().map(ToString::to_string).collect();
    assert_eq!(ports, ["8080:80/tcp"]);
    assert!(c.has(Namespace::Net));
    assert_eq!(c.process.args[..3], ["httpd", "-f", "-v"]);
}

#[test]
fn masked_and_readonly_paths_default_to_runcs_and_can_be_replaced() {
    let s = Scratch::new();
    let c = s.parse(MINIMAL).unwrap();
    assert_eq!(c.masked_paths, DEFAULT_MASKED_PATHS);
    assert_eq!(c.readonly_paths, DEFAULT_READONLY_PATHS);
    let c = s
        .parse(&format!(
            "masked_paths = [\"/proc//kcore/\", \"/srv/secret\"]\nreadonly_paths = []\n{MINIMAL}"
        ))
        .unwrap();
    assert_eq!(c.masked_paths, ["/proc/kcore", "/srv/secret"]);
    assert!(c.readonly_paths.is_empty());
}

#[test]
fn masked_and_readonly_paths_are_checked() {
    let s = Scratch::new();
    let e = s.err(&format!("masked_paths = [\"proc/kcore\"]\n{MINIMAL}"));
    assert!(e.starts_with("1:17: masked_paths: \"proc/kcore\" must be an absolute path"), "{e}");
    let e = s.err(&format!("readonly_paths = [\"/proc/../etc\"]\n{MINIMAL}"));
    assert!(e.starts_with("1:19: readonly_paths: \"/proc/../etc\" must not contain '..'"), "{e}");
    let e = s.err(&format!("readonly_paths = [\"/\"]\n{MINIMAL}"));
    assert!(e.contains("must not be / itself"), "{e}");
    let e = s.err(&format!("masked_paths = [\"/proc/keys\", \"/proc/./keys\"]\n{MINIMAL}"));
    assert!(e.starts_with("1:31: masked_paths: /proc/keys is listed twice"), "{e}");
}

#[test]
fn capabilities_start_from_dockers_default_and_bad_names_are_placed() {
    let s = Scratch::new();
    let c = s.parse(MINIMAL).unwrap();
    assert_eq!(c.process.capabilities, 0xa80425fb);
    assert_eq!(c.process.added_capabilities, 0);
    assert!(c.process.no_new_privileges, "no_new_privileges is on by default");
    let c = s.parse(&format!("{MINIMAL}no_new_privileges = false\n")).unwrap();
    assert!(!c.process.no_new_privileges);
    let c = s
        .parse(&format!(
            "{MINIMAL}cap_add = [\"CAP_NET_ADMIN\", \"sys_time\"]\ncap_drop = [\"Chown\"]\n"
        ))
        .unwrap();
    assert_eq!(c.process.capabilities, (0xa80425fb | 1 << 12 | 1 << 25) & !1);
    assert_eq!(c.process.added_capabilities, 1 << 12 | 1 << 25);
    let e = s.err(&format!("{MINIMAL}cap_add = [\"NET_ADMIN\", \"BOGUS\"]\n"));
    assert!(e.starts_with("4:25: process.cap_add: unknown capability \"BOGUS\""), "{e}");
    let e = s.err(&format!("{MINIMAL}cap_drop = [\"CAP_\"]\n"));
    assert!(e.starts_with("4:13: process.cap_drop: unknown capability"), "{e}");
}

#[test]
fn user_is_resolved_in_the_rootfs() {
    let s = Scratch::new();
    fs::create_dir_all(s.0.join("rootfs/etc")).unwrap();
    fs::write(
        s.0.join("rootfs/etc/passwd"),
        "root:x:0:0::/root:/bin/sh\nweb:x:1000:1000::/srv:/bin/sh\n",
    )
    .unwrap();
    fs::write(s.0.join("rootfs/etc/group"), "web:x:1000:\nstaff:x:50:web\n").unwrap();
    let c = s.parse(MINIMAL).unwrap();
    assert_eq!((c.process.user.uid, c.process.user.gid), (0, 0));
    let c = s.parse(&format!("{MINIMAL}user = \"web\"\nadditional_gids = [7]\n")).unwrap();
    assert_eq!(
        c.process.user,
        User { uid: 1000, gid: 1000, groups: vec![50, 7], home: "/srv".into() }
    );
    assert!(c.process.env.contains(&"HOME=/srv".to_string()), "{:?}", c.process.env);
    let c = s.parse(&format!("{MINIMAL}user = \"1000:50\"\nenv = [\"HOME=/h\"]\n")).unwrap();
    assert_eq!((c.process.user.uid, c.process.user.gid), (1000, 50));
    assert!(c.process.env.contains(&"HOME=/h".to_string()));
    let e = s.err(&format!("{MINIMAL}user = \"ghost\"\n"));
    assert!(e.starts_with("4:8: process.user: no user \"ghost\""), "{e}");
    let e = s.err(&format!("{MINIMAL}additional_gids = [-1]\n"));
    assert!(e.starts_with("4:20: "), "{e}");
    let userns = "rootfs = \"rootfs\"\nnamespaces = [\"mount\", \"pid\", \"user\"]\n[process]\nargs = [\"/bin/true\"]\n";
    let e = s.err(&format!("{userns}user = \"web\"\n"));
    assert!(e.starts_with("5:8: process.user: 1000:1000 is not mapped"), "{e}");
    let e = s.err(&format!("{userns}additional_gids = [7]\n"));
    assert!(e.starts_with("5:20: process.additional_gids: group 7 is not mapped"), "{e}");
}

#[test]
fn user_namespace_maps_are_checked_in_place() {
    let s = Scratch::new();
    fs::create_dir_all(s.0.join("rootfs/etc")).unwrap();
    fs::write(s.0.join("rootfs/etc/passwd"), "web:x:1000:1000::/srv:/bin/sh\n").unwrap();
    let head = "rootfs = \"rootfs\"\nnamespaces = [\"mount\", \"pid\", \"user\"]\n";
    let tail = "[process]\nargs = [\"/bin/true\"]\nuser = \"web\"\nadditional_gids = [7]\n";
    let maps = "uid_map = [\"0:100000:65536\"]\ngid_map = [\"0:100000:65536\"]\n";
    let c = s.parse(&format!("{head}{maps}{tail}")).unwrap();
    let ns = c.user_namespace.expect("a user namespace");
    assert!(ns.idmapped_rootfs, "explicit maps idmap the rootfs by default");
    assert_eq!(ns.maps.uid, [crate::userns::IdRange { container: 0, host: 100000, size: 65536 }]);
    assert_eq!((c.process.user.uid, c.process.user.groups.as_slice()), (1000, &[7][..]));
    let c = s.parse(&format!("{head}{maps}idmapped_rootfs = false\n{tail}")).unwrap();
    assert!(!c.user_namespace.unwrap().idmapped_rootfs);
    for (config, expected) in [
        (format!("{head}uid_map = [\"0:1\"]\n{tail}"), "3:12: uid_map: \"0:1\" is not"),
        (format!("{head}uid_map = [\"0:1:1\"]\n{tail}"), "3:11: give both uid_map and gid_map"),
        (
            format!("{head}uid_map = [\"1:1:5\"]\ngid_map = [\"0:1:5\"]\n{tail}"),
            "3:11: uid_map must map the container's root (0)",
        ),
        (
            format!("{head}uid_map = [\"0:1:5\", \"5:3:2\"]\ngid_map = [\"0:1:5\"]\n{tail}"),
            "3:11: uid_map: host ids 3-4 are mapped twice",
        ),
        (
            format!("{head}uid_map = [\"0:1:5\"]\ngid_map = [\"0:1:5\"]\n{tail}"),
            "7:8: process.user: 1000:1000 is not mapped",
        ),
        (
            format!("rootfs = \"rootfs\"\nuid_map = [\"0:1:5\"]\n{tail}"),
            "2:11: uid_map needs the \"user\" namespace",
        ),
    ] {
        let e = s.err(&config);
        assert!(e.starts_with(expected), "{e}\n{config}");
    }
}

#[test]
fn rlimits_oom_score_adj_and_sysctls_are_checked_in_place() {
    let s = Scratch::new();
    let c = s
        .parse(&format!(
            "{MINIMAL}oom_score_adj = 100\n[process.rlimits]\ncore = {{ soft = 0, hard = 20 }}\n[sysctls]\n\"net.core.somaxconn\" = 1024\n"
        ))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.sysctls, [("net.core.somaxconn".to_string(), "1024".to_string())]);
    assert_eq!(c.process.oom_score_adj, Some(100));
    assert_eq!(c.process.rlimits, [boxr_plan::Rlimit { resource: 4, soft: 0, hard: 20 }]);
    let e = s.err(&format!("{MINIMAL}[process.rlimits]\nfiles = {{ soft = 1, hard = 2 }}\n"));
    assert!(e.starts_with("5:1: process.rlimits: unknown resource limit \"files\""), "{e}");
    let e =
        s.err(&format!("{MINIMAL}[process.rlimits]\nnofile = {{ soft = \"lots\", hard = 2 }}\n"));
    assert!(e.starts_with("5:19: process.rlimits.nofile: \"lots\" is not a limit"), "{e}");
    let e = s.err(&format!("{MINIMAL}[sysctls]\n\"kernel.panic\" = 1\n"));
    assert!(e.starts_with("5:1: sysctls: kernel.panic is not namespaced"), "{e}");
    let e = s.err(&format!("{MINIMAL}oom_score_adj = -1001\n"));
    assert!(e.starts_with("4:17: process.oom_score_adj: -1001 is not between"), "{e}");
}

#[test]
fn seccomp_is_the_default_profile_unconfined_or_a_file_next_to_the_config() {
    let s = Scratch::new();
    let default = s.parse(MINIMAL).unwrap().process.seccomp;
    assert!(!default.is_empty());
    let named = s.parse(&format!("{MINIMAL}seccomp = \"default\"\n")).unwrap();
    assert_eq!(named.process.seccomp, default);
    let c = s.parse(&format!("{MINIMAL}seccomp = \"unconfined\"\n")).unwrap();
    assert_eq!(c.process.seccomp, []);
    // The default profile depends on the capabilities.
    let c = s.parse(&format!("{MINIMAL}cap_add = [\"SYS_ADMIN\"]\n")).unwrap();
    assert_ne!(c.process.seccomp, default);
    fs::write(
        s.0.join("data/p.json"),
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}"#,
    )
    .unwrap();
    let c = s.parse(&format!("{MINIMAL}seccomp = \"data/p.json\"\n")).unwrap();
    assert!(!c.process.seccomp.is_empty() && c.process.seccomp != default);
    let absolute = s.0.join("data/p.json");
    let c = s.parse(&format!("{MINIMAL}seccomp = {:?}\n", absolute.to_str().unwrap())).unwrap();
    assert!(!c.process.seccomp.is_empty());
}

#[test]
fn bad_seccomp_values_and_profiles_are_placed() {
    let s = Scratch::new();
    let e = s.err(&format!("{MINIMAL}seccomp = false\n"));
    assert!(
        e.starts_with("4:11: process.seccomp: false is no longer accepted: use \"unconfined\""),
        "{e}"
    );
    let e = s.err(&format!("{MINIMAL}seccomp = true\n"));
    assert!(e.contains("use \"default\""), "{e}");
    let e = s.err(&format!("{MINIMAL}seccomp = 1\n"));
    assert!(e.starts_with("4:11: process.seccomp: expected a string, found integer"), "{e}");
    let e = s.err(&format!("{MINIMAL}seccomp = \"\"\n"));
    assert!(e.starts_with("4:11: process.seccomp: \"\" is not a profile"), "{e}");
    let missing = s.0.join("nope.json");
    let e = s.err(&format!("{MINIMAL}seccomp = \"nope.json\"\n"));
    assert_eq!(
        e,
        format!(
            "4:11: process.seccomp: cannot read {}: no such file or directory",
            missing.display()
        )
    );
    fs::write(s.0.join("bad.json"), "{\n  \"defaultAction\": \"SCMP_ACT_ALLOW\",\n}").unwrap();
    let e = s.err(&format!("{MINIMAL}seccomp = \"bad.json\"\n"));
    let bad = s.0.join("bad.json");
    assert!(
        e.starts_with(&format!("4:11: process.seccomp: {}:3:1: trailing comma", bad.display())),
        "{e}"
    );
    fs::write(&bad, r#"{"defaultAction": "SCMP_ACT_NOTIFY"}"#).unwrap();
    let e = s.err(&format!("{MINIMAL}seccomp = \"bad.json\"\n"));
    assert!(e.contains("bad.json:1:36: SCMP_ACT_NOTIFY is not supported"), "{e}");
}
