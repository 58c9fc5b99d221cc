//! The workload against its init (CVE-2019-5736 class): boxr-init, PID 1 in the container, runs
//! from a sealed in-memory copy, never from the host's file, is non-dumpable and keeps no
//! capability but `CAP_KILL` once the workload runs, so root in the container can neither
//! inspect it through /proc/1 nor reach, let alone overwrite, the host's boxr-init.

use boxr_tests::{Boxr, Config, Marker, ProcStat, Scratch, target_dir, wait_until};
use std::fs::{self, File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::time::Duration;

/// Each attempt on PID 1, printed as "NAME open" or "NAME denied".
const PROBE_INIT: &str = "probe() { if ( eval \"$2\" ) >/dev/null 2>&1; then echo \"$1 open\"; else echo \"$1 denied\"; fi; }
     probe environ 'cat /proc/1/environ'
     probe mem ': < /proc/1/mem'
     probe exe 'readlink /proc/1/exe'
     probe exe-write ': >> /proc/1/exe'
     probe root 'ls /proc/1/root/'
     grep -E '^Cap(Prm|Eff|Bnd|Inh)' /proc/1/status";

#[test]
fn init_cannot_be_inspected_by_the_workload() {
    let host_init = target_dir().join("boxr-init");
    let before = fs::read(&host_init).unwrap();
    for namespaces in [&["pid", "mount", "uts", "ipc", "net"][..], &["pid", "mount", "user"]] {
        let out = Config::new().namespaces(namespaces).sh(PROBE_INIT);
        let lines: Vec<String> = out.lines().iter().map(|l| l.replace('\t', " ")).collect();
        assert_eq!(
            lines,
            [
                "environ denied",
                "mem denied",
                "exe denied",
                "exe-write denied",
                "root denied",
                // CAP_KILL alone: for forwarding signals to a workload of another user.
                "CapInh: 0000000000000000",
                "CapPrm: 0000000000000020",
                "CapEff: 0000000000000020",
                "CapBnd: 0000000000000020",
            ],
            "{namespaces:?}\n{out}"
        );
    }
    assert!(fs::read(&host_init).unwrap() == before, "the host's boxr-init changed");
}

#[test]
fn even_a_ptrace_capable_workload_reaches_only_the_sealed_copy() {
    let host_init = target_dir().join("boxr-init");
    let before = fs::read(&host_init).unwrap();
    // With CAP_SYS_PTRACE the workload may look at its non-dumpable init: what it finds is the
    // memfd, which it cannot write (it runs, and it is sealed), and not the host's path.
    let out = Config::new().process("cap_add", "[\"SYS_PTRACE\"]").sh("readlink /proc/1/exe
         (echo pwned >> /proc/1/exe) 2>&1 || echo append-failed
         (: > /proc/1/exe) 2>&1 || echo truncate-failed
         [ \"$(cat /proc/1/exe | wc -c)\" = \"$0\" ] && echo same-size");
    let lines = out.lines();
    assert_eq!(lines[0], "/memfd:boxr-init (deleted)", "\n{out}");
    assert!(lines.contains(&"append-failed") && lines.contains(&"truncate-failed"), "\n{out}");
    assert!(fs::read(&host_init).unwrap() == before, "the host's boxr-init changed");
}

#[test]
fn init_runs_from_a_sealed_copy() {
    let host_init = target_dir().join("boxr-init");
    let before = fs::read(&host_init).unwrap();
    let (scratch, marker) = (Scratch::new("sealed-init"), Marker::new());
    let config = scratch.config(&Config::new());
    let mut running = Boxr::run(&config)
        .command(&["/bin/sh", "-c", "echo ready; exec sleep \"$0\"", marker.as_str()])
        .spawn();
    running.wait_for_line("ready");
    let find =
        || -> Vec<u32> { marker.pids().into_iter().filter(|p| *p != running.pid()).collect() };
    // Keep what the wait saw: a second look may land in the workload's exec.
    let mut found = Vec::new();
    let seen = wait_until(Duration::from_secs(5), || {
        found = find();
        found.len() == 1
    });
    assert!(seen, "no workload");
    let init = ProcStat::of(found[0]).expect("the workload's stat").ppid;
    let exe = format!("/proc/{init}/exe");

    let target = fs::read_link(&exe).unwrap();
    assert!(target.to_string_lossy().starts_with("/memfd:boxr-init"), "{target:?}");
    assert_ne!(fs::metadata(&exe).unwrap().ino(), fs::metadata(&host_init).unwrap().ino());
    let copy = File::open(&exe).unwrap();
    // SAFETY: F_GET_SEALS on an fd this test owns.
    let seals = unsafe { libc::fcntl(copy.as_raw_fd(), libc::F_GET_SEALS) };
    let wanted = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    assert_eq!(seals & wanted, wanted, "seals {seals:#x}");
    // Not even the host's root can write it while it runs.
    assert!(OpenOptions::new().append(true).open(&exe).is_err());
    drop(running);
    assert!(fs::read(&host_init).unwrap() == before, "the host's boxr-init changed");
}
