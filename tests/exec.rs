//! `boxr exec`: a process inside a running container — its PID, mount, UTS, IPC and network
//! namespaces, its root, environment and working directory — with exit codes, stdin (`-i`) and
//! only fds 0, 1, 2.

use boxr_tests::containers::{Containers, SLEEPER, assert_fails};
use boxr_tests::{Config, Marker, TEST_PATH};
use std::fs;

/// A running container "box" (hostname "exec-box", `FOO` and cwd `/tmp` from its config) whose
/// workload wrote `/written` and then became `sleep MARKER`.
fn running_box(marker: &Marker) -> Containers {
    let mut c = Containers::new("exec");
    let config = Config::new()
        .set("hostname", "\"exec-box\"")
        .env(&[TEST_PATH, "FOO=from-config"])
        .process("cwd", "\"/tmp\"");
    c.set_config(&config);
    c.start_sh("box", &format!("echo from-workload > /written; {SLEEPER}"), marker);
    c
}

#[test]
fn exec_runs_in_the_containers_namespaces_and_root() {
    let marker = Marker::new();
    let c = running_box(&marker);
    let out = c.exec_sh(&[], "box", "cat /proc/1/comm; hostname; cat /written; ps");
    let lines = out.lines();
    assert_eq!(lines[..3], ["boxr-init", "exec-box", "from-workload"], "\n{out}");
    let sleeping = format!("sleep {marker}");
    assert!(lines.iter().any(|l| l.ends_with(&sleeping)), "ps does not show the workload\n{out}");

    let init = c.inspect("box")["init"]["pid"].as_i64();
    let kinds = ["pid", "mnt", "uts", "ipc", "net"];
    let script = format!("for n in {}; do readlink /proc/$$/ns/$n; done", kinds.join(" "));
    let inside = c.exec_sh(&[], "box", &script);
    for (kind, seen) in kinds.iter().zip(inside.lines()) {
        let init_ns = fs::read_link(format!("/proc/{init}/ns/{kind}")).expect("init's ns");
        assert_eq!(seen, init_ns.to_str().unwrap(), "{kind} namespace\n{inside}");
    }
    assert_eq!(inside.lines().len(), kinds.len(), "\n{inside}");
}

#[test]
fn exec_takes_the_containers_env_and_cwd_unless_overridden() {
    let marker = Marker::new();
    let c = running_box(&marker);
    let script = "echo \"$FOO|$NEW|$PATH\"; pwd";
    let default = c.exec_sh(&[], "box", script);
    assert_eq!(default.ok(), format!("from-config||{}\n/tmp\n", &TEST_PATH[5..]));
    let flags = ["-e", "FOO=from-flag", "-e", "NEW=1", "-w", "/etc"];
    let set = c.exec_sh(&flags, "box", script);
    assert_eq!(set.ok(), format!("from-flag|1|{}\n/etc\n", &TEST_PATH[5..]));
}

#[test]
fn exec_exits_with_the_commands_status() {
    let marker = Marker::new();
    let c = running_box(&marker);
    c.exec_sh(&[], "box", "exit 7").expect_code(7);
    c.exec_sh(&[], "box", "kill -9 $$").expect_code(137);
    let missing = c.boxr().args(["exec", "box", "--", "no-such-command"]).output();
    assert_fails(&missing, 127, &["no-such-command"]);
    assert_eq!(c.status("box"), "running", "an exec ended the container");
}

#[test]
fn exec_i_passes_stdin_and_otherwise_stdin_is_dev_null() {
    let marker = Marker::new();
    let c = running_box(&marker);
    let exec = |flags: &[&str]| {
        c.boxr().arg("exec").args(flags).args(["box", "--", "cat"]).stdin("one\ntwo\n").output()
    };
    assert_eq!(exec(&["-i"]).ok(), "one\ntwo\n");
    assert_eq!(exec(&[]).ok(), "", "without -i the command reads /dev/null");
}

#[test]
fn exec_gives_the_command_only_stdio() {
    let marker = Marker::new();
    let c = running_box(&marker);
    // A shell opens fds 3-9 without close-on-exec, then execs boxr with them; the exec'd
    // shell lists its own fds (`; true` keeps it from exec-ing ls).
    let wrapper = "exec 3</dev/null 4>/dev/null 5</dev/zero 7<&0 9>&2; exec \"$0\" \"$@\"";
    let out = c
        .boxr()
        .args(["exec", "box", "--", "/bin/sh", "-c", "ls /proc/$$/fd; true"])
        .via(&["/bin/sh", "-c", wrapper])
        .output();
    assert_eq!(out.lines(), ["0", "1", "2"], "\n{out}");
}

#[test]
fn exec_into_an_exited_container_fails_naming_its_state() {
    let c = Containers::new("exec-exited");
    c.start("gone", &["sh", "-c", "exit 2"]);
    c.wait_exited("gone");
    assert_fails(&c.exec_sh(&[], "gone", "true"), 125, &["gone", "exited (2)"]);
}

#[test]
fn exec_w_with_a_missing_directory_names_the_directory() {
    let marker = Marker::new();
    let c = running_box(&marker);
    let out = c.exec_sh(&["-w", "/no/such/dir"], "box", "true");
    assert_ne!(out.code(), 0, "\n{out}");
    assert!(out.stderr.contains("/no/such/dir"), "the message does not name the directory\n{out}");
}
