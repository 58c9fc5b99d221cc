//! boxr-init reaps every orphan: the workload's grandchildren, once re-parented to init, leave
//! no zombie behind; and orphans do not outlive the workload.

use boxr_tests::{Boxr, Config, Marker, ProcStat, Scratch, wait_until};
use std::time::{Duration, Instant};

/// Orphans five `sleep 2`s (each started by a subshell that exits at once), reports their parent
/// and that of the workload, waits (at most 10 s more) until they are gone from /proc, then
/// reports any still there (a zombie nobody reaped) and ends with "end".
const ORPHANS: &str = r#"
for i in 1 2 3 4 5; do o="$o $(sleep 2 >/dev/null 2>&1 & echo $!)"; done
for p in $o; do echo "orphan $p $(cut -d' ' -f4 /proc/$p/stat)"; done
echo "workload $$ $PPID $(cat /proc/$PPID/comm)"
sleep 2
n=0
while [ $n -lt 100 ]; do
  busy=; for p in $o; do [ -e /proc/$p ] && busy=1; done
  [ -z "$busy" ] && break
  sleep 0.1; n=$((n + 1))
done
for p in $o; do [ -e /proc/$p ] && echo "left $p $(cut -d' ' -f3 /proc/$p/stat)"; done
echo end
"#;

/// Runs [`ORPHANS`] (plus `extra`) and checks that each orphan was re-parented to init (the
/// workload's parent, `boxr-init`) and then reaped. Returns init's pid as the workload sees it
/// and the output after "end".
fn check_orphans_reaped(config: &Config, extra: &str) -> (String, Vec<String>) {
    let out = config.sh(&format!("{ORPHANS}{extra}"));
    let lines = out.lines();
    let workload =
        lines.iter().find(|l| l.starts_with("workload ")).unwrap_or_else(|| panic!("\n{out}"));
    let fields: Vec<&str> = workload.split(' ').collect();
    let init_pid = fields[2];
    assert_eq!(fields[3..], ["boxr-init"], "the workload's parent must be boxr-init\n{out}");
    let orphans: Vec<&&str> = lines.iter().filter(|l| l.starts_with("orphan ")).collect();
    assert_eq!(orphans.len(), 5, "\n{out}");
    for orphan in orphans {
        let parent = orphan.rsplit(' ').next().unwrap();
        assert_eq!(parent, init_pid, "orphan not re-parented to init: {orphan}\n{out}");
    }
    assert!(!lines.iter().any(|l| l.starts_with("left ")), "orphans were not reaped\n{out}");
    let end = lines.iter().position(|l| *l == "end").unwrap_or_else(|| panic!("no end\n{out}"));
    (init_pid.to_string(), lines[end + 1..].iter().map(|l| l.to_string()).collect())
}

#[test]
fn orphans_are_reaped_by_init_as_pid_1() {
    let (init_pid, after) = check_orphans_reaped(&Config::new(), "cat /proc/[0-9]*/stat");
    assert_eq!(init_pid, "1");
    let procs: Vec<ProcStat> = after.iter().filter_map(|l| ProcStat::parse(l)).collect();
    assert!(procs.iter().any(|p| p.pid == 1), "no process list: {after:?}");
    let zombies: Vec<&ProcStat> = procs.iter().filter(|p| p.state == 'Z').collect();
    assert!(zombies.is_empty(), "zombies left while the workload runs: {zombies:?}");
}

#[test]
fn orphans_are_reaped_without_a_pid_namespace() {
    // Init is not PID 1 here: it must make itself a child subreaper.
    let (init_pid, _) =
        check_orphans_reaped(&Config::new().namespaces(&["mount", "uts", "ipc", "net"]), "");
    assert_ne!(init_pid, "1");
}

#[test]
fn orphans_do_not_outlive_the_workload() {
    let marker = Marker::new();
    let scratch = Scratch::new("orphans-die");
    let script = format!("sleep {marker} >/dev/null 2>&1 & echo started; exit 7");
    let started = Instant::now();
    let out =
        Boxr::run(&scratch.config(&Config::new())).command(&["/bin/sh", "-c", &script]).output();
    out.expect_code(7);
    assert_eq!(out.stdout, "started\n");
    assert!(started.elapsed() < Duration::from_secs(20), "boxr waited for the orphan");
    let gone = wait_until(Duration::from_secs(5), || marker.pids().is_empty());
    assert!(gone, "the orphaned sleep {marker} outlived the container: {:?}", marker.pids());
}
