//! The workload's seccomp filter: docker's default profile unless `seccomp` says "unconfined" or
//! names a JSON profile of its own, installed whatever `no_new_privileges` and the user, opened
//! up by capabilities as docker's is, and given to `boxr exec`'s processes too.

use boxr_tests::containers::{Containers, SLEEPER};
use boxr_tests::{Boxr, Config, Dirs, Output, Scratch, toml_str};
use std::fs;

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
fn unconfined_leaves_the_workload_unconfined() {
    assert_eq!(Config::new().process("seccomp", "\"unconfined\"").sh(PROBE).ok(), UNCONFINED);
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

/// Runs `/bin/sh -c script` under the JSON `profile`, written next to the config and named by a
/// relative path.
fn with_profile(profile: &str, script: &str) -> (Output, String) {
    let scratch = Scratch::new("seccomp-profile");
    let path = scratch.write("profiles/p.json", profile);
    let config = Config::new().process("seccomp", "\"profiles/p.json\"");
    let out = Boxr::run(&scratch.config(&config)).command(&["/bin/sh", "-c", script]).output();
    (out, path.display().to_string())
}

#[test]
fn a_profile_file_denies_with_its_errno_and_allows_the_rest() {
    let profile = r#"{
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]
    }"#;
    let script = "grep ^Seccomp: /proc/self/status; mkdir /tmp/x 2>&1; touch /tmp/y && echo touched; unshare -U true && echo unshared";
    let (out, _) = with_profile(profile, script);
    assert_eq!(
        out.ok(),
        "Seccomp:\t2\nmkdir: can't create directory '/tmp/x': Permission denied\ntouched\nunshared\n"
    );
}

#[test]
fn unknown_syscall_names_warn_and_are_skipped() {
    let profile = r#"{"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["no_such_syscall", "mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}"#;
    let (out, path) = with_profile(profile, "mkdir /tmp/x 2>&1; echo done");
    assert_eq!(out.ok(), "mkdir: can't create directory '/tmp/x': Permission denied\ndone\n");
    assert_eq!(
        out.stderr,
        format!("boxr: warning: {path}: unknown syscalls skipped: no_such_syscall\n")
    );
}

#[test]
fn an_errno_default_with_an_allow_list() {
    // docker's unconditional allow list without mkdir, plus clone and arch_prctl (in entries of
    // their own there); everything else fails with ENOSYS.
    let default = include_str!("../boxr-cli/src/seccomp/default.json");
    let start = default.find("\"names\": [").expect("names") + "\"names\": [".len();
    let names: Vec<&str> = default[start..][..default[start..].find(']').expect("]")]
        .split(',')
        .map(str::trim)
        .filter(|name| !["\"mkdir\"", "\"mkdirat\""].contains(name))
        .collect();
    assert!(names.len() > 250, "{names:?}");
    let profile = format!(
        r#"{{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
            "syscalls": [{{"names": [{}, "clone", "arch_prctl"], "action": "SCMP_ACT_ALLOW"}}]}}"#,
        names.join(", ")
    );
    let (out, _) = with_profile(&profile, "echo ok; mkdir /tmp/x 2>&1; echo $?");
    assert_eq!(
        out.ok(),
        "ok\nmkdir: can't create directory '/tmp/x': Function not implemented\n1\n"
    );
}

#[test]
fn argument_filters_are_applied() {
    // personality(PER_LINUX32) and socket(AF_INET, …) refused; PER_LINUX and AF_INET6 not.
    let profile = r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
        {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 97, "args": [{"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}]}
    ]}"#;
    let script = "linux32 true 2>&1; echo \"linux32 $?\"; linux64 true; echo \"linux64 $?\"; \
        nc 127.0.0.1 1 </dev/null 2>&1; nc ::1 1 </dev/null 2>&1; true";
    let (out, _) = with_profile(profile, script);
    let text = out.ok();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[..3],
        ["linux32: personality(0x8): Operation not permitted", "linux32 1", "linux64 0"],
        "{out}"
    );
    assert_eq!(lines[3], "nc: socket: Address family not supported by protocol", "{out}");
    assert!(!lines[4].contains("Address family not supported"), "{out}");
}

#[test]
fn bad_profiles_are_refused_before_anything_is_created() {
    let scratch = Scratch::new("seccomp-bad");
    let bad = scratch.write("bad.json", "{\n  \"defaultAction\": \"SCMP_ACT_ALLOW\",\n}\n");
    for (value, expected) in [
        (
            "missing.json",
            format!("{}: no such file or directory", scratch.path().join("missing.json").display()),
        ),
        ("bad.json", format!("{}:3:1: trailing comma", bad.display())),
    ] {
        let config =
            Config::new().args(&["/bin/echo", "started"]).process("seccomp", &toml_str(value));
        let config = scratch.config(&config);
        let dirs = Dirs::new();
        let out = dirs.boxr().args(["run", "--config"]).arg(&config).output();
        let line = out.expect_boxr_error();
        let at = format!("boxr: {}:", config.display());
        assert!(line.starts_with(&at) && line.contains("process.seccomp: "), "{out}");
        assert!(line.contains(&expected), "expected {expected:?}\n{out}");
        assert_eq!(out.stdout, "");
        let left: Vec<_> = fs::read_dir(dirs.root())
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name())
            .collect();
        assert!(left.is_empty(), "left behind: {left:?}");
    }
}
