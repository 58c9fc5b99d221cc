//! Watching a started container: a poll loop over the init's pidfd, the plan socket (the init's
//! reports, then EOF once the workload has exec'd) and, in the foreground, a signalfd whose
//! signals are forwarded to the container and, with `-t`, the relay of the workload's terminal.

use crate::errno::{describe, describe_errno};
use crate::plan::Plan;
use crate::spawn::{Container, InitBinary};
use crate::tty::PtyRelay;
use anyhow::{Result, anyhow};
use boxr_plan::{REPORT_LEN, Report, Step};
use rustix::event::{PollFd, PollFlags};
use rustix::fd::{AsFd, FromRawFd, OwnedFd};
use rustix::net::RecvFlags;
use rustix::process::Signal;

/// The signals `boxr run` passes on to the workload, as docker's sig-proxy does.
const FORWARDED: [libc::c_int; 6] =
    [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT, libc::SIGUSR1, libc::SIGUSR2];

/// The exit status boxr uses for its own failures (as docker and podman do).
pub const EXIT_BOXR_ERROR: i32 = 125;

/// Blocks the forwarded signals (so none is lost while the container starts; the init inherits
/// the mask) and returns a signalfd that receives them.
pub fn block_forwarded_signals() -> Result<OwnedFd> {
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

/// The supervision of one container.
pub struct Supervision<'a> {
    container: &'a mut Container,
    signals: Option<&'a OwnedFd>,
    /// The relay of the workload's terminal; dropped (restoring the caller's terminal) once the
    /// container has exited and what it left on the terminal is shown.
    terminal: Option<PtyRelay>,
    reports: Vec<Report>,
    channel_open: bool,
    exited: bool,
}

impl<'a> Supervision<'a> {
    /// Supervises `container`, forwarding the signals arriving on `signals` if given.
    pub fn new(container: &'a mut Container, signals: Option<&'a OwnedFd>) -> Self {
        Supervision {
            container,
            signals,
            terminal: None,
            reports: Vec::new(),
            channel_open: true,
            exited: false,
        }
    }

    /// Also relays the workload's terminal (see [`crate::tty::attach`]).
    pub fn with_terminal(mut self, terminal: Option<PtyRelay>) -> Self {
        self.terminal = terminal;
        self
    }

    /// Waits until the workload has been exec'd, or the init has failed to get there. True when
    /// the workload started (it may have exited already): every failure before is reported.
    pub fn until_started(&mut self) -> Result<bool> {
        while self.channel_open && !self.exited {
            self.poll_once()?;
        }
        Ok(self.reports.is_empty())
    }

    /// Waits until the init exits and returns the exit status for boxr: the workload's, or
    /// 128+N if the init was killed by signal N.
    pub fn until_exit(&mut self) -> Result<i32> {
        while !self.exited {
            self.poll_once()?;
        }
        let status = self.container.wait()?;
        Ok(match (status.exit_status(), status.terminating_signal()) {
            (Some(code), _) => code,
            (None, Some(signal)) => 128 + signal,
            (None, None) => EXIT_BOXR_ERROR,
        })
    }

    /// What the init reported, one line each, naming the step, path and error.
    pub fn messages(&self, plan: &Plan, init: &InitBinary) -> Vec<String> {
        self.reports.iter().map(|r| describe_report(r, plan, init)).collect()
    }

    fn poll_once(&mut self) -> Result<()> {
        let mut fds = vec![PollFd::new(&self.container.pidfd, PollFlags::IN)];
        if self.channel_open {
            fds.push(PollFd::new(&self.container.channel, PollFlags::IN));
        }
        if let Some(signals) = self.signals {
            fds.push(PollFd::new(signals, PollFlags::IN));
        }
        let relay_fds = fds.len();
        if let Some(terminal) = &self.terminal {
            terminal.poll_fds(&mut fds);
        }
        match rustix::event::poll(&mut fds, None) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(anyhow!("cannot poll the container: {}", describe(&e.into()))),
        }
        let revents: Vec<PollFlags> = fds.iter().map(PollFd::revents).collect();
        drop(fds);
        let mut ready = revents[..relay_fds].iter().map(|r| !r.is_empty());
        let exited = ready.next() == Some(true);
        if self.channel_open && ready.next() == Some(true) {
            self.receive_reports();
        }
        if self.signals.is_some() && ready.next() == Some(true) {
            self.forward_signal()?;
        }
        if let Some(terminal) = &mut self.terminal {
            terminal.handle(&revents[relay_fds..]);
        }
        if exited {
            // Collect what the init said last.
            if self.channel_open {
                self.receive_reports();
            }
            if let Some(mut terminal) = self.terminal.take() {
                terminal.finish();
            }
            self.exited = true;
        }
        Ok(())
    }

    /// Reads the reports waiting on the channel; notes EOF (the workload exec'd or failed to).
    fn receive_reports(&mut self) {
        let mut buf = [0u8; REPORT_LEN];
        loop {
            match rustix::net::recv(&self.container.channel, &mut buf, RecvFlags::DONTWAIT) {
                Ok((0, _)) => {
                    self.channel_open = false;
                    return;
                }
                Ok((n, _)) => {
                    if let Ok(report) = Report::decode(&buf[..n]) {
                        self.reports.push(report);
                    }
                }
                // The init closed its end with our FRONTEND_READY unread (it failed first): the
                // kernel reports that once, ahead of the reports still queued.
                Err(rustix::io::Errno::INTR | rustix::io::Errno::CONNRESET) => {}
                Err(rustix::io::Errno::AGAIN) => return,
                Err(_) => {
                    self.channel_open = false;
                    return;
                }
            }
        }
    }

    /// Passes a signal sent to boxr on to the container. One that boxr's terminal sent to its
    /// foreground process group reached the container's processes too, unless the workload has
    /// a terminal of its own: only then is it passed on.
    fn forward_signal(&mut self) -> Result<()> {
        let Some(signals) = self.signals else { return Ok(()) };
        match next_signal(signals)? {
            Some((signal, from_terminal)) if !from_terminal || self.terminal.is_some() => {
                self.container.signal(signal)
            }
            _ => Ok(()),
        }
    }
}

/// Reads one signal from the signalfd, and whether a terminal sent it (`si_code` `SI_KERNEL`).
pub fn next_signal(signals: &OwnedFd) -> Result<Option<(Signal, bool)>> {
    let mut info = [0u8; size_of::<libc::signalfd_siginfo>()];
    match rustix::io::read(signals.as_fd(), &mut info) {
        Ok(n) if n == info.len() => {}
        Ok(_) | Err(rustix::io::Errno::INTR | rustix::io::Errno::AGAIN) => return Ok(None),
        Err(e) => return Err(anyhow!("cannot read the signalfd: {}", describe(&e.into()))),
    }
    let signo = i32::from_ne_bytes(info[0..4].try_into().expect("4 bytes"));
    let code = i32::from_ne_bytes(info[8..12].try_into().expect("4 bytes"));
    Ok(Signal::from_named_raw(signo).map(|signal| (signal, code == libc::SI_KERNEL)))
}

/// One line for a report, naming the step, the path and the error.
fn describe_report(report: &Report, plan: &Plan, init: &InitBinary) -> String {
    let errno = |e: u32| describe_errno(e as i32);
    match *report {
        Report::StepFailed { step, errno: e } => match plan.steps.get(usize::from(step)) {
            Some(s @ Step::MaskPath { .. }) if e == libc::ENODEV as u32 => format!(
                "container setup failed: {s}: the container's /dev/null is not the character device 1:3 (the rootfs or a mount replaced it); refusing to mask with it"
            ),
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
        Report::BadPlan { errno: e } => format!(
            "boxr-init at {} rejected the plan: {} (are boxr and boxr-init from the same build?)",
            init.path.display(),
            errno(e)
        ),
        Report::ForkFailed { errno: e } => {
            format!("boxr-init cannot fork the workload: {}", errno(e))
        }
        Report::TerminalFailed { errno: e } => {
            format!("cannot allocate the container's terminal: {}", errno(e))
        }
        Report::StartFailed { errno: e } => {
            format!("cannot execute boxr-init at {}: {}", init.path.display(), errno(e))
        }
        Report::ContextFailed { stage, errno: e } => {
            format!("cannot set up the workload's process: {stage}: {}", errno(e))
        }
    }
}
