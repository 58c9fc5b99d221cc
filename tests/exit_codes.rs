//! boxr exits with the workload's status: its code, 128+N for signal N, 126/127 when the
//! command cannot be executed.

use boxr_tests::{Boxr, Config, Output, Scratch};
use std::os::unix::fs::PermissionsExt;

fn run_sh(script: &str) -> Output {
    Config::new().sh(script)
}

#[test]
fn exit_code_is_the_workloads() {
    for code in [0, 1, 3, 42, 125, 255] {
        let out = run_sh(&format!("exit {code}"));
        out.expect_code(code);
        assert_eq!(out.stderr, "", "boxr printed something for a plain run\n{out}");
    }
}

#[test]
fn death_by_signal_is_128_plus_the_signal() {
    run_sh("kill -9 $$").expect_code(137);
    run_sh("kill -TERM $$").expect_code(143);
    run_sh("kill -USR1 $$").expect_code(138);
}

/// Runs `cmd` in a private rootfs holding a non-executable script `/root/not-exec.sh`.
fn run_cmd(cmd: &[&str]) -> Output {
    let scratch = Scratch::new("exit-codes");
    let rootfs = scratch.private_rootfs();
    let script = rootfs.join("root/not-exec.sh");
    std::fs::write(&script, "#!/bin/sh\necho ran\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).unwrap();
    Boxr::run(&scratch.config(&Config::new().rootfs(&rootfs))).command(cmd).output()
}

/// Asserts `code`, no stdout, and one stderr line mentioning one of `reasons` (any case).
fn assert_exec_failure(out: &Output, code: i32, reasons: &[&str]) {
    out.expect_code(code);
    assert_eq!(out.stdout, "", "\n{out}");
    let line = out.stderr.strip_suffix('\n').unwrap_or(&out.stderr).to_lowercase();
    assert!(!line.contains('\n'), "expected a one-line message\n{out}");
    assert!(
        reasons.iter().any(|r| line.contains(r)),
        "message should say one of {reasons:?}\n{out}"
    );
}

#[test]
fn missing_command_is_127() {
    let out = run_cmd(&["/bin/no-such-command", "arg"]);
    assert_exec_failure(&out, 127, &["not found", "no such file"]);
}

#[test]
fn non_executable_file_is_126() {
    let out = run_cmd(&["/root/not-exec.sh"]);
    assert_exec_failure(&out, 126, &["permission denied"]);
}

#[test]
fn directory_as_command_is_126() {
    let out = run_cmd(&["/root"]);
    assert_exec_failure(&out, 126, &["permission denied"]);
}

#[test]
fn setup_failure_is_125_with_a_boxr_message() {
    // The destination cannot be created: /etc/passwd is a file.
    let scratch = Scratch::new("setup-failure");
    let rootfs = scratch.private_rootfs();
    let config = Config::new().rootfs(&rootfs).tmpfs("/etc/passwd/sub", None);
    let out =
        Boxr::run(&scratch.config(&config)).command(&["/bin/busybox", "echo", "started"]).output();
    out.expect_boxr_error();
    assert_eq!(out.stdout, "", "the workload ran\n{out}");
}
