//! /sys is a read-only sysfs of the container's own network namespace.

use boxr_tests::{Config, assert_new_instance};

#[test]
fn sys_is_a_readonly_sysfs() {
    let out = Config::new().sh("mkdir /sys/boxr-probe; echo mkdir=$?; cat /proc/self/mountinfo");
    assert_eq!(out.lines()[0], "mkdir=1", "\n{out}");
    assert!(
        out.stderr.contains("Read-only file system"),
        "mkdir in /sys must fail with EROFS\n{out}"
    );
    let sys = out.mount("/sys");
    assert!(sys.is_readonly(), "/sys is not mounted read-only: {sys:?}");
    assert_new_instance(&sys, "sysfs");
}

#[test]
fn sysfs_shows_only_the_containers_network_devices() {
    let host: Vec<String> = std::fs::read_dir("/sys/class/net")
        .expect("host /sys/class/net")
        .map(|e| e.expect("dir entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        host.iter().any(|d| d != "lo"),
        "precondition: the host has a device besides lo: {host:?}"
    );
    let out = Config::new().sh("ls /sys/class/net");
    assert_eq!(out.ok(), "lo\n", "a new net namespace has only lo");
}
