//! Acting on containers: `ps`, `inspect`, `stop`, `kill`, `rm`, and their errors for unknown
//! names and containers in the wrong state.

use boxr_tests::containers::{Containers, Json, assert_fails, eventually};
use boxr_tests::{Marker, unique};
use std::time::{Duration, Instant};

/// A workload that loops until signalled, after setting `traps` (shell `trap` commands).
fn looping(traps: &str) -> String {
    format!("{traps}; echo ready; while :; do sleep 0.05; done")
}

/// Asserts that `name` exited with `code` (per `inspect`) and that `ps` no longer lists it.
#[track_caller]
fn assert_exited(c: &Containers, name: &str, code: i64) -> Json {
    let state = c.wait_exited(name);
    assert_eq!(state["exit_code"].as_i64(), code, "{state:?}");
    assert!(c.ps(&[]).iter().all(|r| r.name != name), "ps lists the exited {name}");
    state
}

#[test]
fn ps_lists_running_containers_and_all_with_a() {
    let (c, marker) = (Containers::new("ps"), Marker::new());
    let up = c.start("up", &["sleep", marker.as_str()]);
    let down = c.start("down", &["sh", "-c", "exit 3"]);
    c.wait_recorded_exit(&down);
    let init = c.inspect("up")["init"]["pid"].as_i64().to_string();

    let running = c.ps(&[]);
    assert_eq!(running.len(), 1, "{running:?}");
    let row = &running[0];
    assert_eq!(
        [&*row.id, &row.name, &row.pid, &row.status, &row.command],
        [&up[..12], "up", &init, "running", &format!("sleep {marker}")]
    );
    assert!(row.created.ends_with(" ago"), "CREATED: {:?}", row.created);

    let all = c.ps(&["-a"]);
    let names: Vec<&str> = all.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["up", "down"], "in creation order");
    assert_eq!(
        [&*all[1].id, &all[1].pid, &all[1].status, &all[1].command],
        [&down[..12], "-", "exited (3)", "sh -c exit 3"]
    );

    for (flags, expected) in
        [(&["--format", "json"][..], &["up"][..]), (&["-a", "--format", "json"], &["up", "down"])]
    {
        let out = c.boxr().arg("ps").args(flags).output();
        let list = Json::parse(out.ok()).unwrap_or_else(|e| panic!("{e}\n{out}"));
        let names: Vec<&str> = list.as_array().iter().map(|s| s["name"].as_str()).collect();
        assert_eq!(names, expected, "ps {flags:?}");
    }
}

#[test]
fn inspect_finds_containers_by_name_id_and_id_prefix() {
    let c = Containers::new("inspect");
    let id = c.start("named", &["true"]);
    for key in [&id[..], &id[..12], "named"] {
        assert_eq!(c.inspect(key)["id"].as_str(), id, "inspect {key}");
    }
    let out = c.cmd(&["inspect", "named", &id]);
    let both = Json::parse(out.ok()).expect("JSON");
    assert_eq!(both.as_array().len(), 2, "one state per name\n{out}");
}

#[test]
fn stop_sends_sigterm_first() {
    let (c, marker) = (Containers::new("stop-term"), Marker::new());
    c.start_sh("trapper", &looping("trap 'exit 42' TERM"), &marker);
    let started = Instant::now();
    assert_eq!(c.cmd(&["stop", "trapper"]).ok(), "trapper\n");
    let took = started.elapsed();
    // The default grace period is 10 s: a quicker stop means SIGTERM did it.
    assert!(took < Duration::from_secs(8), "stop took {took:?}");
    assert_exited(&c, "trapper", 42);
}

#[test]
fn stop_sends_sigkill_after_the_timeout() {
    let (c, marker) = (Containers::new("stop-kill"), Marker::new());
    c.start_sh("stubborn", &looping("trap '' TERM"), &marker);
    let started = Instant::now();
    assert_eq!(c.cmd(&["stop", "-t", "1", "stubborn"]).ok(), "stubborn\n");
    let took = started.elapsed();
    assert!(took >= Duration::from_secs(1), "SIGKILL before the timeout: {took:?}");
    assert!(took < Duration::from_secs(10), "stop -t 1 took {took:?}");
    assert_exited(&c, "stubborn", 137);
    eventually(10, "the workload is gone", || marker.pids().is_empty());
}

#[test]
fn kill_sends_signals_by_name_or_number_and_sigkill_by_default() {
    let (c, marker) = (Containers::new("kill"), Marker::new());
    let traps: String =
        ["USR1", "USR2", "HUP"].iter().map(|s| format!("trap 'echo got-{s}' {s}; ")).collect();
    c.start_sh("target", &looping(traps.trim_end_matches("; ")), &marker);
    for (signal, trap) in [("USR1", "got-USR1"), ("12", "got-USR2"), ("SIGHUP", "got-HUP")] {
        assert_eq!(c.cmd(&["kill", "-s", signal, "target"]).ok(), "target\n");
        c.wait_for_log_line("target", trap);
    }
    assert_eq!(c.status("target"), "running", "a trapped signal stopped the container");
    assert_eq!(c.cmd(&["kill", "target"]).ok(), "target\n");
    assert_exited(&c, "target", 137);
}

#[test]
fn rm_refuses_a_running_container_and_rm_f_kills_and_removes_it() {
    let (c, marker) = (Containers::new("rm-running"), Marker::new());
    let id = c.start_sh("busy", &looping("true"), &marker);
    let out = c.cmd(&["rm", "busy"]);
    assert_fails(&out, 1, &["busy", "running", "rm -f"]);
    assert_eq!(c.status("busy"), "running");
    assert!(!marker.pids().is_empty(), "a refused rm stopped the container");

    assert_eq!(c.cmd(&["rm", "-f", "busy"]).ok(), "busy\n");
    assert!(!c.state_file(&id).exists(), "rm -f left the state");
    c.assert_nothing_left();
    eventually(10, "rm -f leaves no process", || marker.pids().is_empty());
}

#[test]
fn rm_removes_the_state_the_log_and_the_writable_layer() {
    let c = Containers::new("rm-exited");
    let id = c.start("done", &["sh", "-c", "echo logged; echo data > /in-layer"]);
    c.wait_exited("done");
    let storage = c.dirs().storage().join(&id);
    assert!(storage.join("upper/in-layer").is_file(), "the write is not in the layer");
    assert_eq!(c.logs("done"), "logged\n");
    assert_eq!(c.cmd(&["rm", "done"]).ok(), "done\n");
    assert!(!storage.exists(), "rm left {}", storage.display());
    c.assert_nothing_left();
    assert!(c.ps(&["-a"]).is_empty());
}

#[test]
fn unknown_names_are_errors() {
    let c = Containers::new("unknown");
    let name = format!("nope-{}", unique());
    let message = format!("no such container: {name}");
    // The commands for one container fail as boxr does (125); those taking several report
    // each failure and exit 1.
    let commands: [(&[&str], i32); 8] = [
        (&["logs"], 125),
        (&["logs", "-f"], 125),
        (&["exec", &name, "--", "true"], 125),
        (&["inspect"], 125),
        (&["stop"], 1),
        (&["kill"], 1),
        (&["rm"], 1),
        (&["rm", "-f"], 1),
    ];
    for (args, code) in commands {
        let mut argv = args.to_vec();
        if argv[0] != "exec" {
            argv.push(&name);
        }
        assert_fails(&c.cmd(&argv), code, &[&message]);
    }
}

#[test]
fn commands_for_another_state_are_errors_naming_the_state() {
    let (c, marker) = (Containers::new("wrong-state"), Marker::new());
    c.start("finished", &["true"]);
    c.wait_exited("finished");
    let exited = c.exec_sh(&[], "finished", "true");
    assert_fails(&exited, 125, &["finished", "exited (0)"]);
    assert_fails(&c.cmd(&["kill", "finished"]), 1, &["finished", "exited (0)"]);

    c.start_sh("live", &looping("true"), &marker);
    let bad = c.cmd(&["kill", "-s", "NOPE", "live"]);
    assert_fails(&bad, 125, &["unknown signal \"NOPE\""]);
    assert_eq!(c.status("live"), "running");

    c.run(&["--name", "fg"], &["true"]).output().expect_code(0);
    assert_fails(&c.cmd(&["logs", "fg"]), 125, &["fg", "foreground"]);
}
