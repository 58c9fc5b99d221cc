//! `boxr run` in the foreground: start the container, forward signals to it, relay the init's
//! reports as one-line messages, and return the workload's exit status.

use crate::errno::{describe, describe_errno};
use crate::plan::Plan;
use crate::spawn::{self, Container, InitBinary};
use anyhow::{Result, anyhow};
use boxr_plan::{REPORT_LEN, Report};
use rustix::event::{PollFd, PollFlags};
use rustix::fd::{AsFd, FromRawFd, OwnedFd};
use rustix::net::RecvFlags;
use rustix::process::Signal;

/// The signals `boxr` passes on to the workload, as docker's sig-proxy does.
const FORWARDED: [libc::c_int; 6] =
    [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT, libc::SIGUSR1, libc::SIGUSR2];

/// The exit status boxr uses for its own failures (as docker and podman do).
pub const EXIT_BOXR_ERROR: i32 = 125;

/// Runs the planned container to completion and returns the exit status for `boxr`.
pub fn run_foreground(init: &InitBinary, plan: &Plan) -> Result<i32> {
    let signals = block_forwarded_signals()?;
    let mut container = spawn::spawn(init, plan)?;
    let reports = supervise(&container, &signals)?;
    let status = container.wait()?;
    let code = match (status.exit_status(), status.terminating_signal()) {
        (Some(code), _) => code,
        (None, Some(signal)) => 128 + signal,
        (None, None) => EXIT_BOXR_ERROR,
    };
    for report in &reports {
        eprintln!("boxr: {}", describe_report(report, plan, init));
    }
    Ok(code)
}

/// Blocks the forwarded signals (so none is lost while the container starts; the init inherits
/// the mask) and returns a signalfd that receives them.
fn block_forwarded_signals() -> Result<OwnedFd> {
    // SAFETY: sigset_t is plain data, initialised by sigemptyset before use; sigprocmask and
    // signalfd only read it. The process is single-threaded.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in FORWARDED {
            libc::sigaddset(&mut set, sig);
        }
        if libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
            return Err(anyhow!(
                "cannot block signals: {}",
                describe(&std::io::Error::last_os_error())
            ));
        }
        let fd = libc::signalfd(-1, &set, libc::SFD_CLOEXEC);
        if fd < 0 {
            return Err(anyhow!(
                "cannot create a signalfd: {}",
                describe(&std::io::Error::last_os_error())
            ));
        }
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

/// Waits until the init exits, forwarding signals and collecting its reports.
fn supervise(container: &Container, signals: &OwnedFd) -> Result<Vec<Report>> {
    let mut reports = Vec::new();
    let mut channel_open = true;
    loop {
        let mut fds =
            vec![PollFd::new(&container.pidfd, PollFlags::IN), PollFd::new(signals, PollFlags::IN)];
        if channel_open {
            fds.push(PollFd::new(&container.channel, PollFlags::IN));
        }
        match rustix::event::poll(&mut fds, None) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(anyhow!("cannot poll the container: {}", describe(&e.into()))),
        }
        let ready: Vec<bool> = fds.iter().map(|fd| !fd.revents().is_empty()).collect();
        drop(fds);
        if ready.get(2) == Some(&true) {
            channel_open = receive_reports(container, &mut reports);
        }
        if ready[1] {
            forward_signal(container, signals)?;
        }
        if ready[0] {
            // The init has exited: collect what it said last.
            if channel_open {
                receive_reports(container, &mut reports);
            }
            return Ok(reports);
        }
    }
}

/// Reads the reports waiting on the channel; false once the init has closed it.
fn receive_reports(container: &Container, reports: &mut Vec<Report>) -> bool {
    let mut buf = [0u8; REPORT_LEN];
    loop {
        match rustix::net::recv(&container.channel, &mut buf, RecvFlags::DONTWAIT) {
            Ok((0, _)) => return false,
            Ok((n, _)) => {
                if let Ok(report) = Report::decode(&buf[..n]) {
                    reports.push(report);
                }
            }
            Err(rustix::io::Errno::INTR) => {}
            Err(rustix::io::Errno::AGAIN) => return true,
            Err(_) => return false,
        }
    }
}

/// Passes a signal sent to boxr on to the container. Signals the terminal generated for the
/// whole foreground process group (`si_code` `SI_KERNEL`) are not forwarded: the init and the
/// workload are in that group and received them already.
fn forward_signal(container: &Container, signals: &OwnedFd) -> Result<()> {
    let mut info = [0u8; size_of::<libc::signalfd_siginfo>()];
    match rustix::io::read(signals.as_fd(), &mut info) {
        Ok(n) if n == info.len() => {}
        Ok(_) | Err(rustix::io::Errno::INTR | rustix::io::Errno::AGAIN) => return Ok(()),
        Err(e) => return Err(anyhow!("cannot read the signalfd: {}", describe(&e.into()))),
    }
    let signo = i32::from_ne_bytes(info[0..4].try_into().expect("4 bytes"));
    let code = i32::from_ne_bytes(info[8..12].try_into().expect("4 bytes"));
    if code == libc::SI_KERNEL {
        return Ok(());
    }
    match Signal::from_named_raw(signo) {
        Some(signal) => container.signal(signal),
        None => Ok(()),
    }
}

/// One line for a report, naming the step, the path and the error.
fn describe_report(report: &Report, plan: &Plan, init: &InitBinary) -> String {
    let errno = |e: u32| describe_errno(e as i32);
    match *report {
        Report::StepFailed { step, errno: e } => match plan.steps.get(usize::from(step)) {
            Some(s) => format!("container setup failed: {s}: {}", errno(e)),
            None => format!("container setup failed at step {step}: {}", errno(e)),
        },
        Report::ExecFailed { errno: e } => {
            let cmd = plan.args[0].to_string_lossy();
            if e == libc::ENOENT as u32 && !cmd.contains('/') {
                format!("cannot run {cmd:?}: executable file not found in $PATH")
            } else {
                format!("cannot run {cmd:?}: {}", errno(e))
            }
        }
        Report::BadPlan { errno: e } => {
            format!(
                "boxr-init at {} rejected the plan: {} (are boxr and boxr-init from the same build?)",
                init.path.display(),
                errno(e)
            )
        }
        Report::ForkFailed { errno: e } => {
            format!("boxr-init cannot fork the workload: {}", errno(e))
        }
        Report::StartFailed { errno: e } => {
            format!("cannot execute boxr-init at {}: {}", init.path.display(), errno(e))
        }
    }
}
