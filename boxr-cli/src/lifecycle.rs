//! Acting on existing containers: reconciling stale state, `kill`, `stop`, `rm`.

use crate::errno::describe;
use crate::state::{ContainerState, Status, Store};
use crate::time::Timestamp;
use crate::{network, storage};
use anyhow::{Result, anyhow, bail};
use rustix::event::{PollFd, PollFlags};
use rustix::fd::OwnedFd;
use rustix::process::{Pid, PidfdFlags, Signal};
use std::time::{Duration, Instant};

/// Brings a container's recorded status in line with reality: a container recorded as
/// created or running whose init and monitor are both gone (the host rebooted, the monitor was
/// killed) is exited, with its exit code unknown, and what it held on its network is released.
pub fn refresh(store: &Store, state: ContainerState) -> Result<ContainerState> {
    if state.status == Status::Exited || supervised(&state) {
        return Ok(state);
    }
    // Decided again on the state under its lock: the one read before may name a monitor that
    // has handed over to another since (`boxr run -d` to its detached monitor) and exited.
    let state = store.update(&state.id, |s| {
        if s.status != Status::Exited && !supervised(s) {
            s.status = Status::Exited;
            s.finished.get_or_insert_with(Timestamp::now);
            s.error.get_or_insert_with(|| {
                "the process supervising the container died; its exit code is unknown".to_string()
            });
        }
    })?;
    if state.status != Status::Exited || state.network.is_none() {
        return Ok(state);
    }
    network::release(store, &state.id)?;
    store.update(&state.id, |s| s.network = None)
}

/// Whether a process still answers for the container: its monitor, or its init (when the
/// monitor is gone but the init lives on, it dies with its parent (PDEATHSIG): that lasts an
/// instant, and the container is still running meanwhile).
pub fn supervised(state: &ContainerState) -> bool {
    state.monitor.is_some_and(|m| m.is_alive()) || state.init.is_some_and(|i| i.is_alive())
}

/// A pidfd for the container's init, if it is still the same process.
pub fn init_pidfd(state: &ContainerState) -> Result<Option<OwnedFd>> {
    let Some(init) = state.init else { return Ok(None) };
    let Some(pid) = Pid::from_raw(init.pid) else { return Ok(None) };
    let fd = match rustix::process::pidfd_open(pid, PidfdFlags::empty()) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::SRCH) => return Ok(None),
        Err(e) => {
            bail!("cannot open a pidfd for container {}: {}", state.name, describe(&e.into()))
        }
    };
    // Checked after opening: the pidfd now pins the process, so it cannot be recycled in between.
    Ok(init.is_alive().then_some(fd))
}

fn require_running(state: &ContainerState, action: &str) -> Result<()> {
    if state.status != Status::Running {
        bail!("cannot {action} container {}: it is {}", state.name, state.status_text());
    }
    Ok(())
}

/// Sends `signal` to the container's init, which forwards it to the workload (SIGKILL and
/// SIGSTOP act on the init itself; killing it ends the whole container).
pub fn kill(store: &Store, state: &ContainerState, signal: Signal) -> Result<()> {
    let state = refresh(store, state.clone())?;
    require_running(&state, "signal")?;
    let Some(fd) = init_pidfd(&state)? else {
        bail!("cannot signal container {}: its init has just exited", state.name)
    };
    rustix::process::pidfd_send_signal(&fd, signal)
        .map_err(|e| anyhow!("cannot signal container {}: {}", state.name, describe(&e.into())))
}

/// Waits until the container's monitor has recorded its exit, or `timeout` passes.
pub fn wait_exited(store: &Store, id: &str, timeout: Duration) -> Result<ContainerState> {
    let deadline = Instant::now() + timeout;
    loop {
        let state = refresh(store, store.load(id)?)?;
        if state.status == Status::Exited || Instant::now() >= deadline {
            return Ok(state);
        }
        if let Some(fd) = init_pidfd(&state)? {
            // Readable once the init exits; then the monitor records the exit right after.
            let left = deadline.saturating_duration_since(Instant::now());
            let mut fds = [PollFd::new(&fd, PollFlags::IN)];
            let timeout =
                rustix::event::Timespec::try_from(left.min(Duration::from_millis(500))).ok();
            let _ = rustix::event::poll(&mut fds, timeout.as_ref());
        } else {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// SIGTERM, then SIGKILL once `grace` has passed; returns once the exit is recorded.
pub fn stop(store: &Store, state: &ContainerState, grace: Duration) -> Result<ContainerState> {
    let state = refresh(store, state.clone())?;
    if state.status != Status::Running {
        return Ok(state);
    }
    kill(store, &state, Signal::TERM)?;
    let after_term = wait_exited(store, &state.id, grace)?;
    if after_term.status == Status::Exited {
        return Ok(after_term);
    }
    kill(store, &after_term, Signal::KILL)?;
    let after_kill = wait_exited(store, &state.id, Duration::from_secs(10))?;
    if after_kill.status != Status::Exited {
        bail!("container {} did not exit after SIGKILL", state.name);
    }
    Ok(after_kill)
}

/// Removes a container: its state, logs and writable layer. A running container is refused
/// unless `force`, which kills it first.
pub fn remove(store: &Store, state: &ContainerState, force: bool) -> Result<()> {
    let mut state = refresh(store, state.clone())?;
    if state.status != Status::Exited {
        if !force {
            bail!(
                "cannot remove container {}: it is {}; stop it first or use `boxr rm -f`",
                state.name,
                state.status_text()
            );
        }
        if state.status == Status::Running {
            kill(store, &state, Signal::KILL)?;
        }
        state = wait_exited(store, &state.id, Duration::from_secs(10))?;
        if state.status != Status::Exited {
            bail!("cannot remove container {}: it did not exit after SIGKILL", state.name);
        }
    }
    destroy(store, &state)
}

/// Deletes everything of a container that is not running: what it holds on its network, its
/// cgroup (killing anything lingering in it), its storage (writable layer, log) and its state.
pub fn destroy(store: &Store, state: &ContainerState) -> Result<()> {
    let _lock = store.lock(&state.id)?;
    network::release(store, &state.id)?;
    if let Some(cgroup) = &state.cgroup {
        cgroup.remove()?;
    }
    storage::remove(&state.storage, state.id_maps.as_ref())?;
    store.remove(&state.id)
}

/// A signal by name (`TERM`, `SIGTERM`, case-insensitive) or number.
pub fn parse_signal(text: &str) -> Result<Signal> {
    let upper = text.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    let number = match name.parse::<i32>() {
        Ok(n) => n,
        Err(_) => {
            SIGNAL_NAMES.iter().find(|(n, _)| *n == name).map(|(_, n)| *n).ok_or_else(|| {
                anyhow!("unknown signal {text:?}: give a name such as TERM or KILL, or a number")
            })?
        }
    };
    Signal::from_named_raw(number).ok_or_else(|| anyhow!("unknown signal number {number}"))
}

const SIGNAL_NAMES: [(&str, i32); 20] = [
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("ILL", libc::SIGILL),
    ("TRAP", libc::SIGTRAP),
    ("ABRT", libc::SIGABRT),
    ("BUS", libc::SIGBUS),
    ("FPE", libc::SIGFPE),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("SEGV", libc::SIGSEGV),
    ("USR2", libc::SIGUSR2),
    ("PIPE", libc::SIGPIPE),
    ("ALRM", libc::SIGALRM),
    ("TERM", libc::SIGTERM),
    ("CHLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("STOP", libc::SIGSTOP),
    ("TSTP", libc::SIGTSTP),
    ("WINCH", libc::SIGWINCH),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_parse_by_name_and_number() {
        assert_eq!(parse_signal("TERM").unwrap(), Signal::TERM);
        assert_eq!(parse_signal("sigkill").unwrap(), Signal::KILL);
        assert_eq!(parse_signal("9").unwrap(), Signal::KILL);
        assert_eq!(parse_signal("USR1").unwrap(), Signal::USR1);
        assert!(parse_signal("NOPE").unwrap_err().to_string().contains("unknown signal \"NOPE\""));
        assert!(parse_signal("999").is_err());
    }
}
