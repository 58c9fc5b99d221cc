//! The "user" namespace with `uid_map`/`gid_map`: the container's root is an unprivileged host
//! uid, the maps are what the workload sees, and the rootfs still shows as owned by root inside
//! (idmapped), while what the container writes lands on the host as the mapped ids.

use boxr_tests::{Config, Dirs, Scratch};
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

const NAMESPACES: &[&str] = &["pid", "mount", "uts", "ipc", "net", "user"];
/// Container ids 0..65536 are host ids 100000..165536.
const HOST_BASE: u32 = 100_000;

fn mapped() -> Config {
    let map = format!("[\"0:{HOST_BASE}:65536\"]");
    Config::new().namespaces(NAMESPACES).set("uid_map", &map).set("gid_map", &map)
}

/// The lines of an id map file, whitespace-normalised.
fn map_lines(text: &str) -> Vec<String> {
    text.lines().map(|l| l.split_whitespace().collect::<Vec<_>>().join(" ")).collect()
}

#[test]
fn the_workload_sees_the_configured_maps() {
    let out = mapped()
        .sh("cat /proc/self/uid_map; cat /proc/self/gid_map; id -u; id -g")
        .ok()
        .to_string();
    assert_eq!(map_lines(&out), ["0 100000 65536", "0 100000 65536", "0", "0"], "\n{out}");
}

#[test]
fn several_ranges_and_a_mapped_user() {
    let config = Config::new()
        .namespaces(NAMESPACES)
        .set("uid_map", "[\"0:200000:1000\", \"1000:300000:10\"]")
        .set("gid_map", "[\"0:200000:2000\"]")
        .process("user", "\"1005:1500\"");
    let out = config.sh("cat /proc/self/uid_map; id -u; id -g").ok().to_string();
    assert_eq!(map_lines(&out), ["0 200000 1000", "1000 300000 10", "1005", "1500"], "\n{out}");
}

#[test]
fn the_rootfs_shows_as_owned_by_the_containers_root_and_writes_land_mapped() {
    let dirs = Dirs::new();
    let scratch = Scratch::new("userns-owner");
    let config = scratch.config(&mapped());
    let script = "stat -c '%u:%g' /bin/busybox /etc/passwd /; echo data > /etc/written; \
                  mkdir /made; stat -c '%u:%g' /etc/written /made";
    let out = dirs.boxr().args(["run", "--name", "owner", "--config"]).arg(&config);
    let out = out.command(&["/bin/sh", "-c", script]).output();
    assert_eq!(out.ok(), "0:0\n0:0\n0:0\n0:0\n0:0\n");
    // On the host, the container's writable layer holds them as the mapped root.
    let layers: Vec<_> = fs::read_dir(dirs.storage()).unwrap().flatten().collect();
    assert_eq!(layers.len(), 1, "one container's storage");
    let upper = layers[0].path().join("upper");
    for path in [upper.join("etc/written"), upper.join("made")] {
        let meta = fs::metadata(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!((meta.uid(), meta.gid()), (HOST_BASE, HOST_BASE), "{}", path.display());
    }
    // The rootfs itself is untouched and still root's.
    let busybox = fs::metadata(boxr_tests::rootfs().join("bin/busybox")).unwrap();
    assert_eq!((busybox.uid(), busybox.gid()), (0, 0));
    assert!(!boxr_tests::rootfs().join("etc/written").exists());
    dirs.boxr().args(["rm", "owner"]).output().ok();
    assert!(fs::read_dir(dirs.storage()).unwrap().next().is_none(), "storage left behind");
}

#[test]
fn the_containers_root_is_an_unprivileged_user_on_the_host() {
    let scratch = Scratch::new("userns-secret");
    let secret = scratch.write("host/secret", "host root only\n");
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o600)).unwrap();
    let config = mapped().bind(&scratch.path().join("host"), "/host", false);
    let out = config.sh("cat /host/secret; echo \"cat $?\"; stat -c '%u' /host/secret; \
                         echo pwned > /host/secret; echo \"write $?\"");
    // Host root's file belongs to no one the container knows (the overflow uid), and its root
    // can neither read nor write it.
    assert!(out.stdout.contains("cat 1\n65534\n"), "\n{out}");
    assert!(out.stdout.contains("write 1\n"), "\n{out}");
    assert!(out.stderr.contains("Permission denied"), "\n{out}");
    assert_eq!(fs::read_to_string(&secret).unwrap(), "host root only\n");
}

#[test]
fn a_rootfs_owned_by_the_mapped_ids_runs_without_idmapping() {
    let scratch = Scratch::new("userns-shifted");
    let rootfs = scratch.private_rootfs();
    let owner = format!("{HOST_BASE}:{HOST_BASE}");
    let chown =
        std::process::Command::new("chown").args(["-R", "-h", &owner]).arg(&rootfs).status();
    assert!(chown.unwrap().success());
    let config = mapped().rootfs(&rootfs).set("idmapped_rootfs", "false");
    let out = config.sh("stat -c '%u:%g' /bin/busybox; touch /etc/ok && echo ok").ok().to_string();
    assert_eq!(out, "0:0\nok\n");
}

#[test]
fn exec_joins_the_user_namespace() {
    let marker = boxr_tests::Marker::new();
    let mut c = boxr_tests::containers::Containers::new("userns-exec");
    c.set_config(&mapped());
    c.start_sh("box", boxr_tests::containers::SLEEPER, &marker);
    let out = c.exec_sh(&[], "box", "cat /proc/self/uid_map; id -u").ok().to_string();
    assert_eq!(map_lines(&out), ["0 100000 65536", "0"], "\n{out}");
}
