//! The workload's seccomp filter: docker's default profile unless `seccomp = false`, installed
//! whatever `no_new_privileges` and the user, opened up by capabilities as docker's is, and
//! given to `boxr exec`'s processes too.

use boxr_tests::Config;
use boxr_tests::containers::{Containers, SLEEPER};

/// Reports the filter mode and whether a new user namespace can be made (`unshare -U`, which
/// the kernel allows anyone but docker's profile refuses without `CAP_SYS_ADMIN`).
const PROBE: &str = "grep ^Seccomp: /proc/self/status; unshare -U true 2>&1; echo \"unshare $?\"";

const FILTERED: &str =
    "Seccomp:\t2\nunshare: unshare(0x10000000): Operation not permitted\nunshare 1\n";
const UNCONFINED: &str = "Seccomp:\t0\nunshare 0\n";

#[test]
fn the_default_profile_is_installed() {
    assert_eq!(Config::new().sh(PROBE).ok(), FILTERED);
}

#[test]
fn seccomp_false_leaves_the_workload_unconfined() {
    assert_eq!(Config::new().process("seccomp", "false").sh(PROBE).ok(), UNCONFINED);
}

#[test]
fn the_filter_is_installed_without_no_new_privs_and_for_other_users() {
    let config = Config::new().process("no_new_privileges", "false");
    assert_eq!(config.sh(PROBE).ok(), FILTERED);
    let config = config.process("user", "\"nobody\"");
    assert_eq!(config.sh(PROBE).ok(), FILTERED);
    let config = Config::new().process("user", "\"nobody\"");
    assert_eq!(config.sh(PROBE).ok(), FILTERED);
}

#[test]
fn capabilities_open_the_syscalls_that_need_them() {
    let config = Config::new().process("cap_add", "[\"SYS_ADMIN\"]");
    assert_eq!(config.sh(PROBE).ok(), "Seccomp:\t2\nunshare 0\n");
}

#[test]
fn exec_gets_the_filter_too() {
    let marker = boxr_tests::Marker::new();
    let c = Containers::new("exec-seccomp");
    c.start_sh("box", SLEEPER, &marker);
    assert_eq!(c.exec_sh(&[], "box", PROBE).ok(), FILTERED);
}
