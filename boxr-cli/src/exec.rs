//! `boxr exec`: a new process in a running container. boxr joins all the container's
//! namespaces at once through a pidfd of its init (`setns(pidfd, flags)`), then forks, so that
//! the process is inside the container's PID namespace, under the container's root, with its
//! environment and working directory unless overridden. boxr stays outside the container's PID
//! namespace, forwards signals to the process and exits with its status.

use crate::config::{check_env_entry, set_env};
use crate::errno::describe;
use crate::lifecycle::{init_pidfd, refresh};
use crate::paths;
use crate::plan::clone_flag;
use crate::state::{ContainerState, Status, Store};
use crate::supervise::{EXIT_BOXR_ERROR, block_forwarded_signals, next_signal};
use crate::tty::{self, PtyRelay};
use anyhow::{Result, anyhow, bail};
use rustix::event::{PollFd, PollFlags};
use rustix::fd::{AsFd, AsRawFd, OwnedFd};
use rustix::process::{Pid, PidfdFlags, WaitId, WaitIdOptions};
use std::os::unix::process::CommandExt;
use std::process::Command;

#[derive(Debug, Default)]
pub struct ExecOptions {
    /// `KEY=VALUE` entries added to (or replacing those of) the container's environment.
    pub env: Vec<String>,
    /// The working directory instead of the container's.
    pub cwd: Option<String>,
    /// Keep boxr's stdin (`-i`); otherwise the process reads /dev/null.
    pub interactive: bool,
    /// Give the process a terminal of the container's devpts, relayed to boxr's (`-t`).
    pub tty: bool,
    pub command: Vec<String>,
}

/// Runs `opts.command` in the container; returns its exit status (128+N if killed by N).
pub fn exec(store: &Store, state: &ContainerState, opts: &ExecOptions) -> Result<i32> {
    let state = refresh(store, state.clone())?;
    if state.status != Status::Running {
        bail!("cannot exec in container {}: it is {}", state.name, state.status_text());
    }
    let mut env = state.env.clone();
    for entry in &opts.env {
        check_env_entry(entry).map_err(|m| anyhow!("-e {entry}: {m}"))?;
        set_env(&mut env, entry.clone());
    }
    let cwd = match &opts.cwd {
        Some(dir) => paths::normalize(dir).map_err(|m| anyhow!("-w {dir:?}: {m}"))?,
        None => state.cwd.clone(),
    };
    let Some(init) = init_pidfd(&state)? else {
        bail!("cannot exec in container {}: its init has just exited", state.name)
    };
    let signals = block_forwarded_signals()?;
    // Into the container's cgroup first: its files are out of reach once boxr is inside.
    if let Some(cgroup) = &state.cgroup {
        cgroup.add(std::process::id() as i32)?;
    }
    join_namespaces(&state, &init)?;
    // Allocated now, inside the container's mount namespace: from its devpts instance.
    let pty = opts.tty.then(tty::open_pty).transpose()?;
    let process =
        Process { command: &opts.command, env: &env, cwd: &cwd, interactive: opts.interactive };
    let child = fork_process(&state, &process, pty.as_ref().map(|p| &p.pts))?;
    let relay = pty.map(|p| PtyRelay::for_caller(p.master, opts.interactive)).transpose()?;
    wait_forwarding(&child, &signals, relay)
}

/// What to run, as the exec'd process sees it.
struct Process<'a> {
    command: &'a [String],
    env: &'a [String],
    cwd: &'a str,
    interactive: bool,
}

/// Moves boxr into the container's namespaces. Its process is made non-dumpable first, so the
/// container cannot open boxr's memory or executable through /proc while it is inside
/// (CVE-2019-5736); the exec'd command is dumpable again as usual.
fn join_namespaces(state: &ContainerState, init: &OwnedFd) -> Result<()> {
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
        .map_err(|e| anyhow!("cannot make boxr non-dumpable: {}", describe(&e.into())))?;
    let flags = state.namespaces.iter().fold(0, |all, &ns| all | clone_flag(ns)) as libc::c_int;
    // SAFETY: setns on a pidfd this process owns; boxr is single-threaded, as joining a user or
    // mount namespace requires.
    if unsafe { libc::setns(init.as_raw_fd(), flags) } != 0 {
        bail!(
            "cannot join the namespaces of container {}: {}",
            state.name,
            describe(&std::io::Error::last_os_error())
        );
    }
    Ok(())
}

/// Forks the process (entering the container's PID namespace) and execs the command in it,
/// on `terminal` as its controlling terminal and stdio if given.
fn fork_process(
    state: &ContainerState,
    p: &Process<'_>,
    terminal: Option<&OwnedFd>,
) -> Result<OwnedFd> {
    let (command, env, cwd) = (p.command, p.env, p.cwd);
    let (program, args) = command
        .split_first()
        .ok_or_else(|| anyhow!("no command given: boxr exec NAME -- CMD ARGS…"))?;
    let mut cmd = Command::new(program);
    cmd.args(args).env_clear().envs(env.iter().filter_map(|e| e.split_once('=')));
    if !p.interactive && terminal.is_none() {
        cmd.stdin(std::process::Stdio::null());
    }
    // SAFETY: boxr is single-threaded; the child runs only exec (and, if it fails, a message
    // and _exit).
    match unsafe { libc::fork() } {
        -1 => bail!("cannot fork: {}", describe(&std::io::Error::last_os_error())),
        0 => {
            // SAFETY: prctl and close_range on this process: it dies with boxr, and no fd but
            // stdin, stdout and stderr reaches the command (fds boxr inherited included).
            unsafe {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                libc::syscall(libc::SYS_close_range, 3, u32::MAX, libc::CLOSE_RANGE_CLOEXEC);
            }
            if let Some(terminal) = terminal
                && let Err(e) = take_terminal(terminal)
            {
                eprintln!("boxr: cannot attach the terminal in container {}: {e:#}", state.name);
                // SAFETY: leaves the forked child without running boxr's exit handlers.
                unsafe { libc::_exit(126) }
            }
            if let Err(e) = std::env::set_current_dir(cwd) {
                eprintln!(
                    "boxr: cannot change to directory {cwd} in container {}: {}",
                    state.name,
                    describe(&e)
                );
                // SAFETY: leaves the forked child without running boxr's exit handlers.
                unsafe { libc::_exit(126) }
            }
            // The workload's user, capabilities, limits and no_new_privs: last before the exec.
            if let Some(Err((stage, e))) = state.security.as_ref().map(|s| s.apply()) {
                eprintln!(
                    "boxr: cannot set up the process in container {}: {stage}: {}",
                    state.name,
                    describe(&e)
                );
                // SAFETY: leaves the forked child without running boxr's exit handlers.
                unsafe { libc::_exit(EXIT_BOXR_ERROR) }
            }
            let err = cmd.exec();
            let (code, why) = match err.raw_os_error() {
                Some(libc::ENOENT) if !program.contains('/') => {
                    (127, "executable file not found in $PATH".to_string())
                }
                Some(libc::ENOENT) => (127, describe(&err)),
                _ => (126, describe(&err)),
            };
            eprintln!("boxr: cannot run {program:?} in container {}: {why}", state.name);
            // SAFETY: leaves the forked child without running boxr's exit handlers.
            unsafe { libc::_exit(code) }
        }
        pid => {
            let pid = Pid::from_raw(pid).ok_or_else(|| anyhow!("fork returned pid {pid}"))?;
            rustix::process::pidfd_open(pid, PidfdFlags::empty()).map_err(|e| {
                anyhow!("cannot open a pidfd for the exec'd process: {}", describe(&e.into()))
            })
        }
    }
}

/// Makes `terminal` the controlling terminal of a new session and the process's stdio.
fn take_terminal(terminal: &OwnedFd) -> Result<()> {
    let fail = |what: &str, e: rustix::io::Errno| anyhow!("{what}: {}", describe(&e.into()));
    rustix::process::setsid().map_err(|e| fail("setsid", e))?;
    rustix::process::ioctl_tiocsctty(terminal).map_err(|e| fail("TIOCSCTTY", e))?;
    rustix::stdio::dup2_stdin(terminal).map_err(|e| fail("dup2", e))?;
    rustix::stdio::dup2_stdout(terminal).map_err(|e| fail("dup2", e))?;
    rustix::stdio::dup2_stderr(terminal).map_err(|e| fail("dup2", e))?;
    Ok(())
}

/// Waits for the process, forwarding the signals boxr receives (those of boxr's terminal too
/// when the process has a terminal of its own, so is not in boxr's process group) and relaying
/// its terminal; returns its exit status.
fn wait_forwarding(child: &OwnedFd, signals: &OwnedFd, mut relay: Option<PtyRelay>) -> Result<i32> {
    loop {
        let mut fds = vec![PollFd::new(child, PollFlags::IN), PollFd::new(signals, PollFlags::IN)];
        if let Some(relay) = &relay {
            relay.poll_fds(&mut fds);
        }
        match rustix::event::poll(&mut fds, None) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => bail!("cannot poll the exec'd process: {}", describe(&e.into())),
        }
        let revents: Vec<PollFlags> = fds.iter().map(PollFd::revents).collect();
        drop(fds);
        if let Some(relay) = &mut relay {
            relay.handle(&revents[2..]);
        }
        if !revents[1].is_empty()
            && let Some((signal, from_terminal)) = next_signal(signals)?
            && (!from_terminal || relay.is_some())
        {
            // The process may have exited meanwhile; its exit is read next.
            let _ = rustix::process::pidfd_send_signal(child, signal);
        }
        if !revents[0].is_empty() {
            if let Some(relay) = &mut relay {
                relay.finish();
            }
            // Restores boxr's terminal before any message.
            drop(relay);
            let status =
                rustix::process::waitid(WaitId::PidFd(child.as_fd()), WaitIdOptions::EXITED)
                    .map_err(|e| {
                        anyhow!("cannot wait for the exec'd process: {}", describe(&e.into()))
                    })?;
            return Ok(match status.map(|s| (s.exit_status(), s.terminating_signal())) {
                Some((Some(code), _)) => code,
                Some((None, Some(signal))) => 128 + signal,
                _ => EXIT_BOXR_ERROR,
            });
        }
    }
}
