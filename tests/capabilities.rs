//! The workload's capabilities: docker's default set, `cap_add` / `cap_drop`, "ALL", and what
//! a dropped capability no longer allows. Read from `/proc/self/status`, as the workload sees
//! them.

use boxr_tests::{Config, toml_array};

/// docker's default set: CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, SETGID, SETUID, SETPCAP,
/// NET_BIND_SERVICE, NET_RAW, SYS_CHROOT, MKNOD, AUDIT_WRITE, SETFCAP.
const DEFAULT_SET: u64 = 0xa804_25fb;
const CAP_NET_BIND_SERVICE: u64 = 1 << 10;

/// The workload's capability sets: (CapInh, CapPrm, CapEff, CapBnd, CapAmb).
fn capability_sets(config: &Config) -> [u64; 5] {
    let out = config.sh("grep ^Cap /proc/self/status");
    let text = out.ok();
    let field = |name: &str| {
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:\t")))
            .unwrap_or_else(|| panic!("no {name} in\n{text}"));
        u64::from_str_radix(line, 16).unwrap_or_else(|e| panic!("{name} {line:?}: {e}"))
    };
    ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"].map(field)
}

fn with_caps(add: &[&str], drop: &[&str]) -> Config {
    Config::new().process("cap_add", &toml_array(add)).process("cap_drop", &toml_array(drop))
}

/// The capabilities the host's kernel knows and boxr's bounding set holds.
fn host_bounding_set() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let bnd = status.lines().find_map(|l| l.strip_prefix("CapBnd:\t")).expect("CapBnd");
    u64::from_str_radix(bnd, 16).expect("hex CapBnd")
}

#[test]
fn the_default_set_is_dockers_with_nothing_inheritable_or_ambient() {
    let [inh, prm, eff, bnd, amb] = capability_sets(&Config::new());
    assert_eq!((prm, eff, bnd), (DEFAULT_SET, DEFAULT_SET, DEFAULT_SET));
    assert_eq!((inh, amb), (0, 0), "the inheritable and ambient sets stay empty");
}

#[test]
fn drop_all_then_add_one_leaves_exactly_that_one() {
    let config = with_caps(&["net_bind_service"], &["ALL"]);
    let [inh, prm, eff, bnd, amb] = capability_sets(&config);
    let one = CAP_NET_BIND_SERVICE;
    assert_eq!((prm, eff, bnd), (one, one, one));
    assert_eq!((inh, amb), (0, 0));
}

#[test]
fn add_all_gives_every_capability_boxr_has() {
    let config = with_caps(&["ALL"], &[]);
    let all = host_bounding_set();
    let [inh, prm, eff, bnd, amb] = capability_sets(&config);
    assert_eq!((prm, eff, bnd), (all, all, all));
    assert_eq!((inh, amb), (0, 0));
    config.sh("mount -t tmpfs none /tmp && grep -q ' /tmp tmpfs' /proc/mounts").ok();
}

#[test]
fn dropped_capabilities_stay_dropped() {
    let config = with_caps(&["CAP_SYS_ADMIN"], &["cap_chown"]);
    let [_, prm, eff, bnd, _] = capability_sets(&config);
    let expected = (DEFAULT_SET | 1 << 21) & !1;
    assert_eq!((prm, eff, bnd), (expected, expected, expected));
    let out = config.sh("chown 65534 /tmp");
    assert_ne!(out.code(), 0, "chown without CAP_CHOWN succeeded\n{out}");
}

#[test]
fn capabilities_outside_the_default_set_are_refused() {
    let config = Config::new();
    for (what, script) in [
        ("CAP_SYS_ADMIN: mount", "mount -t tmpfs none /tmp"),
        ("CAP_SYS_TIME: date -s", "date -s 2001-01-01"),
        ("CAP_NET_ADMIN: ip link", "ip link set lo down"),
        ("CAP_SYS_MODULE: the bounding set", "setpriv --inh-caps +sys_module true"),
    ] {
        // busybox's date exits 0 even when it cannot set the clock: its message tells.
        let out = config.sh(&format!("{script} 2>&1"));
        let text = out.stdout.as_str();
        let refused = text.contains("ermission denied") || text.contains("not permitted");
        assert!(refused, "{what} failed otherwise\n{text}");
    }
}

/// The workload's `NoNewPrivs` from /proc/self/status.
fn no_new_privs(config: &Config) -> String {
    let out = config.sh("grep ^NoNewPrivs: /proc/self/status");
    out.ok().trim().to_string()
}

#[test]
fn no_new_privileges_is_on_by_default_and_can_be_relaxed() {
    assert_eq!(no_new_privs(&Config::new()), "NoNewPrivs:\t1");
    let relaxed = Config::new().process("no_new_privileges", "false");
    assert_eq!(no_new_privs(&relaxed), "NoNewPrivs:\t0");
}

/// What `boxr exec` checks against the workload: ids, groups, capability sets, no_new_privs,
/// open-files limits and OOM score.
const CONTEXT_SCRIPT: &str = "id -u; id -G; grep -E '^(Cap|NoNewPrivs)' /proc/self/status; \
                              ulimit -n; ulimit -Hn; cat /proc/self/oom_score_adj";

#[test]
fn exec_gives_its_process_the_workloads_context() {
    let marker = boxr_tests::Marker::new();
    let c = boxr_tests::containers::Containers::new("exec-context");
    let config = Config::new()
        .process("user", "\"nobody\"")
        .process("additional_gids", "[5]")
        .process("cap_add", &toml_array(&["NET_BIND_SERVICE"]))
        .process("oom_score_adj", "300");
    let limits = "\n[process.rlimits]\nnofile = { soft = 256, hard = 512 }\n";
    let path = c.scratch().write("context.toml", &format!("{}{limits}", config.render()));
    let script =
        format!("{{ {CONTEXT_SCRIPT}; }} > /tmp/workload; {}", boxr_tests::containers::SLEEPER);
    let out = c
        .boxr()
        .args(["run", "-d", "--name", "box", "--config"])
        .arg(&path)
        .command(&["/bin/sh", "-c", &script, marker.as_str()])
        .output();
    boxr_tests::containers::printed_id(&out);
    c.wait_for_log_line("box", "ready");
    let exec = c.exec_sh(&[], "box", CONTEXT_SCRIPT);
    let workload = c.exec_sh(&[], "box", "cat /tmp/workload");
    assert_eq!(exec.ok(), workload.ok());
    let text = exec.ok();
    assert!(text.starts_with("65534\n65534 5\n"), "{text}");
    assert!(text.contains("CapEff:\t0000000000000400\n"), "{text}");
    assert!(text.contains("CapBnd:\t00000000a80425fb\n"), "{text}");
    assert!(text.contains("NoNewPrivs:\t1\n"), "{text}");
    assert!(text.ends_with("256\n512\n300\n"), "{text}");
}

#[test]
fn exec_in_a_root_container_gets_the_default_set() {
    let marker = boxr_tests::Marker::new();
    let c = boxr_tests::containers::Containers::new("exec-root");
    c.start_sh("box", boxr_tests::containers::SLEEPER, &marker);
    let out = c.exec_sh(
        &[],
        "box",
        "grep -E '^(CapEff|CapBnd|CapInh|NoNewPrivs)' /proc/self/status; id -u",
    );
    assert_eq!(
        out.ok(),
        "CapInh:\t0000000000000000\nCapEff:\t00000000a80425fb\nCapBnd:\t00000000a80425fb\nNoNewPrivs:\t1\n0\n"
    );
}
