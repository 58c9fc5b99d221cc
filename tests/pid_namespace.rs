//! The workload runs in its own PID namespace under boxr-init (PID 1) with its own /proc.

use boxr_tests::{Config, Mount, ProcStat, assert_new_instance, container_mounts};

#[test]
fn init_is_pid_1_and_the_workload_is_its_child() {
    let out = Config::new().sh("cat /proc/1/comm; echo $$; echo $PPID");
    let lines = out.lines();
    assert_eq!(lines.len(), 3, "\n{out}");
    assert_eq!(lines[0], "boxr-init", "PID 1 is not boxr-init\n{out}");
    assert_ne!(lines[1], "1", "the workload must not be PID 1\n{out}");
    assert_eq!(lines[2], "1", "the workload's parent is not PID 1\n{out}");
}

#[test]
fn only_the_containers_processes_are_visible() {
    // Every process in /proc when the shell expands the glob, as `pid (comm) state ppid ...`:
    // just init and the shell (`exit` keeps the shell from exec-ing `cat`).
    let out = Config::new().sh("cat /proc/[0-9]*/stat; exit 0");
    let procs: Vec<ProcStat> = out.lines().into_iter().filter_map(ProcStat::parse).collect();
    let mut seen: Vec<(u32, &str)> = procs.iter().map(|p| (p.ppid, p.comm.as_str())).collect();
    seen.sort();
    assert_eq!(seen, [(0, "boxr-init"), (1, "sh")], "\n{out}");
}

#[test]
fn proc_is_a_fresh_procfs_with_nosuid_nodev_noexec() {
    let mounts = container_mounts(&Config::new());
    let proc = Mount::at(&mounts, "/proc");
    assert_new_instance(proc, "proc");
    for opt in ["nosuid", "nodev", "noexec"] {
        assert!(proc.has_option(opt), "/proc lacks {opt}: {proc:?}");
    }
}
