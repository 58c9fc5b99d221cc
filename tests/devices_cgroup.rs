//! Device access control (docker's default rules), on cgroup v1 by the devices controller and on
//! v2 by a BPF program: with `CAP_MKNOD` the workload may make character device nodes but no
//! block device, and may open only the devices boxr puts in its /dev.

use boxr_tests::Config;
use boxr_tests::containers::{Containers, SLEEPER};

fn refused(out: &boxr_tests::Output, what: &str) {
    assert_ne!(out.code(), 0, "{what} succeeded\n{out}");
    assert!(out.stderr.contains("Operation not permitted"), "{what}: not EPERM\n{out}");
}

#[test]
fn block_devices_cannot_be_made() {
    // 254:0 is a virtio disk, 8:0 a SCSI one, 7:0 a loop device.
    for (major, minor) in [(254, 0), (8, 0), (7, 0)] {
        let out = Config::new().sh(&format!(
            "mknod /tmp/b b {major} {minor}; status=$?; test ! -e /tmp/b && exit $status"
        ));
        refused(&out, &format!("mknod b {major} {minor}"));
    }
}

#[test]
fn char_devices_can_be_made_and_an_allowed_one_used() {
    let out = Config::new().sh("mknod /tmp/c c 1 3 && echo discarded > /tmp/c && wc -c < /tmp/c");
    assert_eq!(out.ok().trim(), "0", "a node of 1:3 is /dev/null");
}

#[test]
fn a_char_device_not_allowed_cannot_be_opened() {
    // 1:1 is /dev/mem, 1:2 /dev/kmem, 10:200 /dev/net/tun.
    for (name, major, minor) in [("mem", 1, 1), ("kmem", 1, 2), ("tun", 10, 200)] {
        let out = Config::new().sh(&format!(
            "mknod /tmp/{name} c {major} {minor} && echo made && head -c 1 /tmp/{name}"
        ));
        assert_eq!(out.lines(), ["made"], "{name}: the mknod of a char device is allowed\n{out}");
        refused(&out, &format!("opening {name}"));
    }
}

#[test]
fn the_containers_devices_still_work() {
    let out = Config::new().sh("cat /dev/null && echo null-ok
         head -c 1 /dev/urandom | wc -c
         head -c 1 /dev/random | wc -c
         head -c 2 /dev/zero | wc -c
         echo x > /dev/full || echo full-refused
         exec 3<>/dev/ptmx && echo ptmx-ok");
    let lines: Vec<&str> = out.lines().iter().map(|l| l.trim()).collect();
    assert_eq!(lines, ["null-ok", "1", "1", "2", "full-refused", "ptmx-ok"], "\n{out}");
}

#[test]
fn a_terminal_of_the_containers_devpts_works() {
    let scratch = boxr_tests::Scratch::new("devices-tty");
    let config = scratch.config(&Config::new());
    let out = boxr_tests::Boxr::run(&config)
        .arg("-t")
        .command(&["/bin/sh", "-c", "tty && echo to-the-terminal > $(tty) && echo written"])
        .output();
    assert!(out.lines().contains(&"/dev/pts/0"), "\n{out}");
    assert!(out.lines().contains(&"written"), "\n{out}");
    out.expect_code(0);
}

#[test]
fn in_a_user_namespace_the_bound_devices_work() {
    let out = Config::new()
        .namespaces(&["pid", "mount", "user"])
        .sh("echo x > /dev/null && echo null-ok; head -c 3 /dev/urandom | wc -c");
    let lines: Vec<&str> = out.lines().iter().map(|l| l.trim()).collect();
    assert_eq!(lines, ["null-ok", "3"], "\n{out}");
}

#[test]
fn exec_is_under_the_same_rules() {
    let marker = boxr_tests::Marker::new();
    let c = Containers::new("devices-exec");
    c.start_sh("box", SLEEPER, &marker);
    refused(&c.exec_sh(&[], "box", "mknod /tmp/b b 254 0"), "exec: mknod b 254 0");
    let out = c.exec_sh(&[], "box", "mknod /tmp/mem c 1 1 && head -c 1 /tmp/mem");
    refused(&out, "exec: opening /dev/mem");
    assert_eq!(c.exec_sh(&[], "box", "head -c 4 /dev/zero | wc -c").ok().trim(), "4");
}
