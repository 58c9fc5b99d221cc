//! PID 1: forking the workload, then forwarding signals to it and reaping every child until it
//! exits, with its exit code.

use crate::credentials;
use crate::exec::exec_workload;
use crate::report::{SETUP_FAILED, errno, fail, send_report};
use crate::runtime::{Fork, How, KERNEL_SIG_DFL, KernelSigSet, KernelSigaction, kernel_fork};
use crate::runtime::{exit_group, kernel_sigaction, kernel_sigprocmask, kernel_sigwaitinfo};
use crate::tty;
use boxr_plan::{PLAN_FD, Plan, Report};
use rustix::fd::OwnedFd;
use rustix::fs::Mode;
use rustix::io::{Errno, close};
use rustix::process::{Pid, Signal, WaitOptions, getpid, getppid, kill_process};
use rustix::process::{set_parent_process_death_signal, umask, wait};

/// Exit codes of the workload's process when its exec fails, as docker has them.
const NOT_FOUND: i32 = 127;
const NOT_EXECUTABLE: i32 = 126;

/// Blocks every signal: the init only ever takes them from `kernel_sigwaitinfo`.
pub fn block_signals() {
    set_signal_mask(&KernelSigSet::all());
}

/// Forks the workload's process and returns its pid; the child never returns. `terminal`, if
/// given, becomes the workload's controlling terminal and standard fds; the init closes it.
pub fn spawn_workload(plan: &Plan<'_>, terminal: Option<OwnedFd>) -> Pid {
    let init = getpid();
    // SAFETY: the init is single-threaded and holds no locks; the child only makes syscalls on
    // its own copy of memory before exec.
    match unsafe { kernel_fork() } {
        Ok(Fork::ParentOf(pid)) => pid,
        Ok(Fork::Child(_)) => become_workload(plan, init, terminal),
        Err(e) => fail(Report::ForkFailed { errno: errno(e) }),
    }
}

/// In the child: the process state a freshly started program expects, then the exec.
fn become_workload(plan: &Plan<'_>, init: Pid, terminal: Option<OwnedFd>) -> ! {
    let default = KernelSigaction { sa_handler_kernel: KERNEL_SIG_DFL, ..Default::default() };
    for raw in 1..=64 {
        // SAFETY: `raw` is a signal number in the kernel's range; restoring the default
        // disposition installs no handler. SIGKILL and SIGSTOP are refused, harmlessly.
        let _ = unsafe { kernel_sigaction(Signal::from_raw_unchecked(raw), Some(default.clone())) };
    }
    umask(Mode::from_raw_mode(0o022));
    // Die with the init; if it is already gone, the container is being torn down.
    if set_parent_process_death_signal(Some(Signal::KILL)).is_err() || getppid() != Some(init) {
        exit_group(SETUP_FAILED);
    }
    if let Some(Err(e)) = terminal.map(tty::attach) {
        // Signals are still blocked: SIGPIPE cannot change the exit code.
        fail(Report::TerminalFailed { errno: errno(e) });
    }
    credentials::apply(&plan.context, &plan.seccomp);
    set_signal_mask(&KernelSigSet::empty());
    let e = exec_workload(plan);
    // Blocked again, SIGPIPE cannot kill us if the frontend is gone: the exit code stays right.
    block_signals();
    send_report(Report::ExecFailed { errno: errno(e) });
    exit_group(if e == Errno::NOENT { NOT_FOUND } else { NOT_EXECUTABLE })
}

/// In the init after the fork: closes the plan socket, so that the frontend sees EOF as soon as
/// the workload has exec'd (or reported), and the standard fds, which only the workload uses.
pub fn close_inherited_fds() {
    for fd in 0..=PLAN_FD {
        // SAFETY: these fds were inherited and nothing borrows them any more.
        unsafe { close(fd) };
    }
}

/// Waits for signals: reaps children on SIGCHLD and exits with the workload's code once it is
/// gone; forwards the others to the workload.
pub fn run_as_pid1(workload: Pid) -> ! {
    loop {
        // SAFETY: there is no libc whose reserved signals this could take.
        let Ok(info) = (unsafe { kernel_sigwaitinfo(&KernelSigSet::all()) }) else { continue };
        // SAFETY: the kernel always fills the common header of the union.
        let (signo, code) = unsafe {
            let header = info.__bindgen_anon_1.__bindgen_anon_1;
            (header.si_signo, header.si_code)
        };
        if signo == Signal::CHILD.as_raw() {
            if let Some(status) = reap_children(workload) {
                exit_group(status);
            }
        } else if code <= 0 {
            // Sent by a process (SI_USER, SI_QUEUE, SI_TKILL, ...). What the kernel sent, e.g. a
            // terminal to its foreground group, already reached the workload: not twice.
            // SAFETY: `signo` is a signal number the kernel just delivered.
            let _ = kill_process(workload, unsafe { Signal::from_raw_unchecked(signo) });
        }
    }
}

/// Reaps every child that has terminated, orphans included; returns the workload's exit code
/// (its status, or 128 + the signal that killed it) if it was among them.
fn reap_children(workload: Pid) -> Option<i32> {
    let mut code = None;
    while let Ok(Some((pid, status))) = wait(WaitOptions::NOHANG) {
        if pid == workload {
            code = status.exit_status().or(status.terminating_signal().map(|sig| 128 + sig));
        }
    }
    code
}

fn set_signal_mask(set: &KernelSigSet) {
    // SAFETY: there is no libc whose reserved signals this could block.
    let _ = unsafe { kernel_sigprocmask(How::SETMASK, Some(set)) };
}
