//! The workload gets only fds 0, 1 and 2, even when boxr itself inherited more.

use boxr_tests::{Boxr, Config, Scratch};

/// Lists the fds of the workload (the shell itself, which holds only what it was given), and
/// where 0-2 lead.
const LIST_FDS: &str = "ls /proc/$$/fd; readlink /proc/$$/fd/1; readlink /proc/$$/fd/2";

fn assert_only_stdio(out: &boxr_tests::Output) {
    let lines = out.lines();
    assert_eq!(lines[..3], ["0", "1", "2"], "\n{out}");
    assert_eq!(lines.len(), 5, "the workload has fds besides 0, 1, 2\n{out}");
    for target in &lines[3..] {
        assert!(target.starts_with("pipe:["), "stdout/stderr are not the caller's pipes\n{out}");
    }
}

#[test]
fn workload_has_only_stdio() {
    assert_only_stdio(&Config::new().sh(LIST_FDS));
}

#[test]
fn fds_inherited_by_boxr_do_not_reach_the_workload() {
    let scratch = Scratch::new("fd-leak");
    let config = scratch.config(&Config::new());
    // A shell opens fds 3-9 without close-on-exec, then execs boxr with them.
    let wrapper = "exec 3</dev/null 4>/dev/null 5</dev/zero 7<&0 9>&2; exec \"$0\" \"$@\"";
    let out = Boxr::run(&config)
        .command(&["/bin/sh", "-c", LIST_FDS])
        .via(&["/bin/sh", "-c", wrapper])
        .output();
    assert_only_stdio(&out);
}

#[test]
fn the_idmapped_rootfs_mount_does_not_reach_the_workload() {
    // The frontend hands the init a detached mount of the rootfs on fd 5.
    let map = "[\"0:100000:65536\"]";
    let config = Config::new()
        .namespaces(&["pid", "mount", "uts", "ipc", "net", "user"])
        .set("uid_map", map)
        .set("gid_map", map);
    assert_only_stdio(&config.sh(LIST_FDS));
}
