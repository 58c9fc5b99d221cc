//! When the process watching a container dies, the container is shown as exited, never as
//! running; many containers start in parallel; `rm -f` of everything leaves nothing behind:
//! no state, no storage, no process, no mount on the host.

use boxr_tests::containers::{Containers, SLEEPER, eventually, pids_named};
use boxr_tests::{Marker, ProcStat, host_mounts, is_dead, send_signal};
use std::thread;

/// Asserts that container `name`, whose processes are all dead, is shown as exited (by `ps -a`
/// and `inspect`) and not listed by `ps`.
#[track_caller]
fn assert_shown_exited(c: &Containers, name: &str) {
    let row = c.ps_row(name).expect("ps -a still lists it");
    let process = row.pid.parse().ok().and_then(ProcStat::of);
    assert!(
        row.status.starts_with("exited"),
        "ps -a shows a dead container as {row:?}; its process on the host: {process:?}"
    );
    assert_eq!(row.pid, "-");
    assert!(c.ps(&[]).iter().all(|r| r.name != name), "ps lists the dead {name}");
    assert_eq!(c.status(name), "exited");
}

#[test]
fn a_killed_monitor_leaves_the_container_shown_as_exited() {
    let (c, marker) = (Containers::new("monitor-killed"), Marker::new());
    c.start_sh("watched", SLEEPER, &marker);
    let state = c.inspect("watched");
    let monitor = state["monitor"]["pid"].as_pid();
    let init = state["init"]["pid"].as_pid();
    assert_eq!(
        ProcStat::of(init).map(|s| s.ppid),
        Some(monitor),
        "the monitor is the init's parent"
    );
    send_signal(monitor, "KILL");
    eventually(10, "the monitor's death ends the container", || {
        is_dead(monitor) && is_dead(init) && marker.pids().is_empty()
    });
    // Everything is dead (zombies awaiting their reaper included): never "running" from now on.
    assert_shown_exited(&c, "watched");
}

#[test]
fn a_killed_foreground_boxr_leaves_the_container_shown_as_exited() {
    let (c, marker) = (Containers::new("fg-killed"), Marker::new());
    let mut fg = c.run(&["--name", "fg"], &["/bin/sh", "-c", SLEEPER, marker.as_str()]).spawn();
    fg.wait_for_line("ready");
    assert_eq!(c.status("fg"), "running");
    let init = c.inspect("fg")["init"]["pid"].as_pid();
    fg.signal("KILL");
    assert_eq!(fg.wait().signal(), Some(9));
    eventually(10, "boxr's death ends the container", || is_dead(init) && marker.pids().is_empty());
    assert_shown_exited(&c, "fg");
}

#[test]
fn twenty_parallel_runs_then_rm_f_leave_nothing_behind() {
    let mounts_before = host_mounts();
    let (c, marker) = (Containers::new("parallel"), Marker::new());
    let mut names: Vec<String> = (0..20).map(|i| format!("par-{i:02}")).collect();
    let mut ids: Vec<String> = thread::scope(|s| {
        let runs: Vec<_> = names
            .iter()
            .map(|name| s.spawn(|| c.start(name, &["sleep", marker.as_str()])))
            .collect();
        runs.into_iter().map(|run| run.join().expect("a run -d failed")).collect()
    });
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 20, "ids are not distinct");

    let mut listed: Vec<String> = c.ps(&[]).into_iter().map(|r| r.name).collect();
    listed.sort();
    assert_eq!(listed, names, "ps does not list all 20");
    eventually(10, "20 workloads run", || pids_named(&marker, "sleep").len() == 20);

    let mut rm = vec!["rm", "-f"];
    rm.extend(names.iter().map(String::as_str));
    let removed = c.cmd(&rm);
    names.iter_mut().for_each(|n| n.push('\n'));
    assert_eq!(removed.ok(), names.concat());
    c.assert_nothing_left();
    assert!(c.ps(&["-a"]).is_empty());
    eventually(10, "no process is left", || marker.pids().is_empty());
    assert_eq!(host_mounts(), mounts_before, "the host's mount table changed");
}
