//! `process.user` and `process.additional_gids`: the workload's uid, gid and groups, resolved in
//! the rootfs's own /etc/passwd and /etc/group; what a non-root user can no longer do; its
//! capabilities (none of its own, but those `cap_add` names, as ambient ones).
//!
//! busybox's `id` lists supplementary groups only when there are any; `id -G` prints the gid,
//! then the supplementary groups in the kernel's (sorted) order.

use boxr_tests::{Boxr, Config, Scratch, TEST_PATH};
use std::fs;

fn user(spec: &str) -> Config {
    Config::new().process("user", &format!("{spec:?}"))
}

#[test]
fn root_is_the_default_without_supplementary_groups_the_rootfs_does_not_give() {
    // Not boxr's own groups either: they are replaced.
    assert_eq!(Config::new().sh("id").ok(), "uid=0(root) gid=0(root)\n");
}

#[test]
fn a_name_is_looked_up_in_the_rootfs_with_its_group_and_home() {
    let config = user("nobody").env(&[TEST_PATH]);
    let out = config.sh("id; echo $HOME");
    assert_eq!(out.ok(), "uid=65534(nobody) gid=65534(nogroup)\n/nonexistent\n");
}

#[test]
fn numeric_ids_and_additional_gids_are_taken_as_given() {
    let config = user("1234:5").process("additional_gids", "[65534, 77]");
    let out = config.sh("id -u; id -g; id -G; echo $HOME");
    assert_eq!(out.ok(), "1234\n5\n5 77 65534\n/\n");
}

#[test]
fn group_membership_comes_from_the_rootfs() {
    let scratch = Scratch::new("user-groups");
    let rootfs = scratch.private_rootfs();
    let group = fs::read_to_string(rootfs.join("etc/group")).expect("read etc/group");
    fs::write(rootfs.join("etc/group"), format!("{group}staff:x:50:nobody,other\n"))
        .expect("write etc/group");
    let config = user("nobody").rootfs(&rootfs).process("additional_gids", "[5]");
    let out = Boxr::run(&scratch.config(&config)).command(&["id", "-G"]).output();
    assert_eq!(out.ok(), "65534 5 50\n");
}

#[test]
fn a_non_root_user_cannot_read_roots_home_or_write_etc() {
    let out = user("nobody")
        .sh("ls /root 2>&1; touch /etc/owned 2>&1; cat /etc/hostname >/dev/null; echo read");
    let text = out.ok();
    assert!(text.contains("can't open '/root': Permission denied"), "{text}");
    assert!(text.contains("/etc/owned: Permission denied"), "{text}");
    assert!(text.ends_with("read\n"), "{text}");
}

/// (CapInh, CapPrm, CapEff, CapBnd, CapAmb) of the workload.
fn capability_sets(config: &Config) -> Vec<String> {
    let out = config.sh("grep ^Cap /proc/self/status | cut -f2");
    out.ok().lines().map(String::from).collect()
}

#[test]
fn a_non_root_user_has_no_capabilities_but_those_added_for_it() {
    let none = capability_sets(&user("nobody"));
    let zero = "0000000000000000";
    assert_eq!(none, [zero, zero, zero, "00000000a80425fb", zero]);
    let added = capability_sets(&user("nobody").process("cap_add", "[\"NET_BIND_SERVICE\"]"));
    let bind = "0000000000000400";
    assert_eq!(added, [bind, bind, bind, "00000000a80425fb", bind]);
    // Binding a privileged port works with it, and only with it.
    let script = "nc -l -p 80 & sleep 0.2; netstat -ltn | grep -c ':80 '";
    let config = user("nobody").process("cap_add", "[\"NET_BIND_SERVICE\"]");
    assert_eq!(config.sh(script).ok(), "1\n");
    assert_eq!(user("nobody").sh(script).stdout, "0\n");
}

#[test]
fn unknown_users_and_groups_are_config_errors() {
    let scratch = Scratch::new("user-errors");
    let out = Boxr::run(&scratch.config(&user("ghost"))).output();
    let message = out.expect_boxr_error();
    assert!(
        message.contains("process.user: no user \"ghost\" in the rootfs's /etc/passwd"),
        "{message}"
    );
    let out = Boxr::run(&scratch.config(&user("nobody:ghosts"))).output();
    let message = out.expect_boxr_error();
    assert!(message.contains("no group \"ghosts\""), "{message}");
}
