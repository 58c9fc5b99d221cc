//! Containers, failing ones included, leave the host as it was: same mount table, same
//! hostname, no process left behind.

use boxr_tests::{Boxr, Config, HostHostname, Marker, Scratch, host_mounts, wait_until};
use std::fs;
use std::time::Duration;

#[test]
fn containers_leave_the_host_unchanged() {
    let mounts_before = host_mounts();
    let hostname = HostHostname::save();
    let marker = Marker::new();
    let scratch = Scratch::new("host-unchanged");
    let rootfs = scratch.private_rootfs();
    let data = scratch.write("data/file", "x");
    let full = Config::new()
        .rootfs(&rootfs)
        .set("hostname", "\"inside\"")
        .set("readonly_rootfs", "true")
        .bind(data.parent().unwrap(), "/data", false)
        .tmpfs("/scratch", Some("1m"));
    let config = scratch.config(&full);
    // Each workload carries the marker as `$0`, so that leftovers can be found.
    let run =
        |script: &str| Boxr::run(&config).command(&["/bin/sh", "-c", script, marker.as_str()]);

    run("hostname again; echo x > /data/y; (sleep \"$0\" >/dev/null 2>&1 &); exit 0")
        .output()
        .expect_code(0);
    run("kill -9 $$").output().expect_code(137);
    Boxr::run(&config).command(&["/no/such/command", marker.as_str()]).output().expect_code(127);
    let bad = Config::new().rootfs(&rootfs).set("hostname", "\"x\"").namespaces(&["mount"]);
    let bad = scratch
        .write("bad.toml", &bad.args(&["/bin/sh", "-c", "sleep \"$0\"", marker.as_str()]).render());
    Boxr::run(&bad).output().expect_boxr_error();

    // While a container runs, the host's mount table is unchanged too; then SIGKILL its boxr.
    let mut running = run("echo ready; exec sleep \"$0\"").spawn();
    running.wait_for_line("ready");
    assert_eq!(
        host_mounts(),
        mounts_before,
        "the host's mount table changed while a container runs"
    );
    running.signal("KILL");
    running.wait();

    let gone = wait_until(Duration::from_secs(5), || marker.pids().is_empty());
    assert!(gone, "processes left: {:?}", marker.pids());
    assert_eq!(host_mounts(), mounts_before, "the host's mount table changed");
    hostname.assert_unchanged();
    assert_eq!(fs::read_to_string(scratch.path().join("data/y")).unwrap(), "x\n");
}
