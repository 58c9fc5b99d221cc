//! `boxr logs`: a detached container's stdout and stderr from the first byte, `--tail N`, and
//! `-f` following new output until the container exits.

use boxr_tests::Marker;
use boxr_tests::containers::Containers;

/// Starts `script` (under `sh -c`) as container `name` and waits for its exit.
fn finished(c: &Containers, name: &str, script: &str) {
    c.start(name, &["/bin/sh", "-c", script]);
    c.wait_exited(name);
}

#[test]
fn logs_hold_stdout_and_stderr_from_the_first_byte() {
    let c = Containers::new("logs");
    finished(&c, "talk", "printf first; echo ' line'; echo to-stderr >&2; echo out; printf end");
    assert_eq!(c.logs("talk"), "first line\nto-stderr\nout\nend");
}

#[test]
fn tail_gives_the_last_lines() {
    let c = Containers::new("logs-tail");
    finished(&c, "count", "for i in 1 2 3 4 5 6 7 8 9 10; do echo line-$i; done");
    let tail = |n: &str| c.cmd(&["logs", "--tail", n, "count"]).ok().to_string();
    assert_eq!(tail("3"), "line-8\nline-9\nline-10\n");
    assert_eq!(tail("1"), "line-10\n");
    assert_eq!(tail("0"), "");
    assert_eq!(tail("100").lines().count(), 10);
}

#[test]
fn follow_prints_new_output_until_the_container_exits() {
    let (c, marker) = (Containers::new("logs-follow"), Marker::new());
    // Waits for /go (created by an exec once `logs -f` runs), then writes more and exits.
    let script = "echo ready; while [ ! -e /go ]; do sleep 0.05; done; \
                  echo after; echo after-err >&2; sleep 0.2; echo last; exit 5";
    c.start_sh("chatty", script, &marker);
    let mut follower = c.boxr().args(["logs", "-f", "chatty"]).spawn();
    follower.wait_for_line("ready");
    c.exec_sh(&[], "chatty", "touch /go").expect_code(0);
    // Fails if `logs -f` stopped before the new output.
    follower.wait_for_line("after-err");
    let out = follower.wait();
    assert_eq!(out.ok(), "ready\nafter\nafter-err\nlast\n");
    assert_eq!(c.inspect("chatty")["status"].as_str(), "exited", "logs -f returned early");
}
