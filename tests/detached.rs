//! `boxr run -d`: the id printed at once while the container runs on, unique and generated
//! names, the state recorded under the state root (the exit code too, with no boxr command
//! running when the container exits), and `--rm`.

use boxr_tests::containers::{
    Containers, assert_fails, eventually, pids_named, printed_id, proc_start_time,
};
use boxr_tests::{Dirs, Marker, ProcStat, is_dead};
use std::time::{Duration, Instant};

#[test]
fn run_d_prints_the_id_and_returns_while_the_container_runs() {
    let (c, marker) = (Containers::new("detach"), Marker::new());
    let started = Instant::now();
    let id = c.start("sleeper", &["sleep", marker.as_str()]);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(10), "run -d took {took:?}");

    let state = c.inspect("sleeper");
    assert_eq!(state["id"].as_str(), id);
    assert_eq!(state["name"].as_str(), "sleeper");
    assert_eq!(state["status"].as_str(), "running", "{state:?}");
    let (init, monitor) = (state["init"]["pid"].as_pid(), state["monitor"]["pid"].as_pid());
    let init_stat = ProcStat::of(init).expect("the recorded init runs");
    assert_eq!(init_stat.comm, "boxr-init");
    assert_eq!(init_stat.ppid, monitor, "the init is not the monitor's child");
    assert_eq!(proc_start_time(init.into()), Some(state["init"]["start_time"].as_i64() as u64));
    assert_eq!(ProcStat::of(monitor).expect("the monitor runs").comm, "boxr");

    eventually(10, "the workload runs under the init", || {
        let sleeps = pids_named(&marker, "sleep");
        sleeps.len() == 1 && ProcStat::of(sleeps[0]).is_some_and(|s| s.ppid == init)
    });
    let row = c.ps_row("sleeper").expect("ps lists it");
    assert_eq!(
        (row.id.as_str(), row.pid, row.status.as_str()),
        (&id[..12], init.to_string(), "running")
    );
    assert_eq!(row.command, format!("sleep {marker}"));
}

#[test]
fn a_taken_name_is_refused_naming_the_other_container_and_its_state() {
    let (c, marker) = (Containers::new("names"), Marker::new());
    let running = c.start("web", &["sleep", marker.as_str()]);
    let done = c.start("batch", &["sh", "-c", "exit 3"]);
    c.wait_recorded_exit(&done);
    for (name, id, state) in [("web", &running, "running"), ("batch", &done, "exited (3)")] {
        let out = c.run_detached(&["--name", name], &["true"]);
        assert_fails(&out, 125, &[&format!("{name:?}"), &id[..12], state]);
        assert_eq!(out.stdout, "", "no id for a refused container");
    }
    assert_eq!(c.state_dirs().len(), 2, "a refused run left a container behind");
}

#[test]
fn a_name_is_generated_when_none_is_given() {
    let c = Containers::new("gen-names");
    let ids: Vec<String> = (0..2).map(|_| printed_id(&c.run_detached(&[], &["true"]))).collect();
    let names: Vec<String> =
        ids.iter().map(|id| c.inspect(id)["name"].as_str().to_string()).collect();
    assert_ne!(names[0], names[1]);
    for name in &names {
        let valid = name.starts_with(|ch: char| ch.is_ascii_alphanumeric())
            && name.chars().all(|ch| ch.is_ascii_alphanumeric() || "_.-".contains(ch));
        assert!(valid, "generated name {name:?}");
        assert!(c.ps_row(name).is_some(), "ps -a does not list {name}");
    }
    assert_eq!(c.inspect(&names[1])["id"].as_str(), ids[1], "found by its generated name");
}

#[test]
fn a_detached_container_has_stdin_on_dev_null_and_the_usual_devices() {
    let c = Containers::new("detached-stdio");
    let script = "ls /proc/$$/fd; readlink /proc/$$/fd/0; cat; echo \"eof $?\"; \
                  for d in null zero full random urandom tty; do [ -c /dev/$d ] || echo no-$d; done";
    c.start("quiet", &["/bin/sh", "-c", script]);
    c.wait_exited("quiet");
    assert_eq!(c.logs("quiet"), "0\n1\n2\n/dev/null\neof 0\n");
}

#[test]
fn the_exit_code_is_recorded_with_no_boxr_command_running() {
    let c = Containers::new("exit-code");
    let id = c.start("three", &["sh", "-c", "exit 3"]);
    // Only the state file is read while the container exits: no boxr command runs.
    let recorded = c.wait_recorded_exit(&id);
    assert_eq!(recorded["exit_code"].as_i64(), 3, "{recorded:?}");

    let row = c.ps_row("three").expect("ps -a lists it");
    assert_eq!((row.status.as_str(), row.pid.as_str()), ("exited (3)", "-"));
    assert!(c.ps(&[]).is_empty(), "ps without -a lists an exited container");

    let state = c.inspect("three");
    assert_eq!(state, recorded, "inspect shows the state under the root");
    assert_eq!(state["status"].as_str(), "exited");
    assert_eq!(state["command"].strings(), ["sh", "-c", "exit 3"]);
    assert_eq!(state["config"].as_str(), c.config_path().to_str().unwrap());
    let times: Vec<&str> =
        ["created", "started", "finished"].iter().map(|k| state[*k].as_str()).collect();
    for t in &times {
        assert!(t.len() == 30 && t.ends_with('Z') && t.as_bytes()[10] == b'T', "timestamp {t}");
    }
    assert!(times.is_sorted(), "created <= started <= finished: {times:?}");
    assert!(state["init"]["start_time"].as_i64() > 0, "{state:?}");
    let monitor = state["monitor"]["pid"].as_pid();
    eventually(10, "the monitor exits once it recorded the exit", || is_dead(monitor));
}

#[test]
fn root_and_storage_flags_choose_the_directories() {
    let (c, other) = (Containers::new("root-flag"), Dirs::new());
    let (root, storage) = (other.root(), other.storage());
    let flags = ["--root", root.to_str().unwrap(), "--storage", storage.to_str().unwrap()];
    let id =
        printed_id(&c.run_detached(&[&flags[..], &["--name", "elsewhere"]].concat(), &["true"]));
    assert!(root.join(&id).join("state.json").is_file(), "no state under --root");
    assert!(storage.join(&id).is_dir(), "no storage under --storage");
    c.assert_nothing_left();
    let listed = c.boxr().args(flags).args(["ps", "-a"]).output();
    assert!(listed.ok().contains("elsewhere"), "ps --root does not list it\n{listed}");
}

#[test]
fn run_rm_removes_a_foreground_container_when_it_exits() {
    let c = Containers::new("rm-fg");
    let out = c
        .run(&["--rm", "--name", "fg"], &["sh", "-c", "echo x > /in-layer; echo done; exit 4"])
        .output();
    assert_eq!(out.expect_code(4).stdout, "done\n");
    c.assert_nothing_left();
    let gone = c.cmd(&["inspect", "fg"]);
    assert_fails(&gone, 125, &["no such container: fg"]);
}

#[test]
fn run_d_rm_removes_a_detached_container_when_it_exits() {
    let c = Containers::new("rm-detached");
    let script = ["sh", "-c", "echo x > /in-layer; sleep 0.2"];
    let id = printed_id(&c.run_detached(&["--rm", "--name", "bg"], &script));
    eventually(20, "the container is removed when it exits", || {
        c.state_dirs().is_empty() && c.storage_dirs().is_empty()
    });
    assert!(!c.dirs().storage().join(&id).exists());
    assert!(c.ps(&["-a"]).is_empty());
}
