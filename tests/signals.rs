//! Signals sent to boxr reach the workload; SIGKILL to boxr takes the whole container down.

use boxr_tests::{Boxr, Config, Marker, ProcStat, Running, Scratch, is_dead, wait_until};
use std::time::Duration;

/// A workload that becomes `sleep MARKER` once it printed "ready".
const SLEEPER: &str = "echo ready; exec sleep \"$0\"";

/// Starts `script` (run by /bin/sh with the marker as `$0`) and waits for it to print "ready".
fn start(scratch: &Scratch, marker: &Marker, script: &str) -> Running {
    let config = scratch.config(&Config::new());
    let mut running =
        Boxr::run(&config).command(&["/bin/sh", "-c", script, marker.as_str()]).spawn();
    running.wait_for_line("ready");
    running
}

/// The host pid of the workload `sh -c SCRIPT MARKER` (which may be exec-ing `sleep MARKER`:
/// its cmdline is briefly unreadable then, hence the retries).
fn workload_pid(running: &Running, marker: &Marker) -> u32 {
    let find =
        || -> Vec<u32> { marker.pids().into_iter().filter(|p| *p != running.pid()).collect() };
    // Keep what the wait saw: a second look may land in the exec.
    let mut pids = Vec::new();
    wait_until(Duration::from_secs(5), || {
        pids = find();
        pids.len() == 1
    });
    assert_eq!(pids.len(), 1, "the workload `sleep {marker}` is not running: {pids:?}");
    pids[0]
}

#[test]
fn sigterm_to_boxr_terminates_the_workload() {
    let (scratch, marker) = (Scratch::new("sigterm"), Marker::new());
    let mut running = start(&scratch, &marker, SLEEPER);
    running.signal("TERM");
    let out = running.wait();
    out.expect_code(143);
    assert!(
        wait_until(Duration::from_secs(5), || marker.pids().is_empty()),
        "{:?} still run",
        marker.pids()
    );
}

#[test]
fn forwarded_signals_reach_the_workloads_traps() {
    let signals = ["INT", "TERM", "HUP", "QUIT", "USR1", "USR2"];
    let traps: String = signals.iter().map(|s| format!("trap 'echo got-{s}' {s}; ")).collect();
    let script = format!(
        "{traps} trap 'echo got-USR2; exit 42' USR2; echo ready; while :; do sleep 0.05; done"
    );
    let (scratch, marker) = (Scratch::new("traps"), Marker::new());
    let mut running = start(&scratch, &marker, &script);
    for sig in signals {
        running.signal(sig);
        running.wait_for_line(&format!("got-{sig}"));
    }
    let out = running.wait();
    out.expect_code(42);
    let got: Vec<&str> = out.lines().into_iter().filter(|l| l.starts_with("got-")).collect();
    assert_eq!(
        got,
        ["got-INT", "got-TERM", "got-HUP", "got-QUIT", "got-USR1", "got-USR2"],
        "\n{out}"
    );
}

#[test]
fn sigkill_to_boxr_kills_init_and_workload() {
    let (scratch, marker) = (Scratch::new("sigkill"), Marker::new());
    let mut running = start(&scratch, &marker, SLEEPER);
    let workload = workload_pid(&running, &marker);
    let workload = ProcStat::of(workload).expect("workload stat");
    let init = ProcStat::of(workload.ppid).expect("init stat");
    assert_eq!(init.comm, "boxr-init", "the workload's parent is {init:?}");
    running.signal("KILL");
    let out = running.wait();
    assert_eq!(out.signal(), Some(9), "\n{out}");
    for (what, pid) in [("workload", workload.pid), ("init", init.pid)] {
        assert!(
            wait_until(Duration::from_secs(5), || is_dead(pid)),
            "{what} {pid} survived boxr's SIGKILL"
        );
    }
}

#[test]
fn workload_killed_from_the_host_gives_128_plus_the_signal() {
    let (scratch, marker) = (Scratch::new("killed-outside"), Marker::new());
    let mut running = start(&scratch, &marker, SLEEPER);
    let workload = workload_pid(&running, &marker);
    boxr_tests::send_signal(workload, "KILL");
    running.wait().expect_code(137);
}
