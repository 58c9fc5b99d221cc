//! The workload's terminal (plan flag `TTY`): a pseudo-terminal of the container's devpts
//! instance, whose master goes to the frontend over the console socket and whose other end
//! becomes the workload's controlling terminal and standard fds.

use crate::report::{errno, fail};
use boxr_plan::{CONSOLE_FD, Report};
use core::mem::MaybeUninit;
use rustix::fd::{AsFd, AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
use rustix::io::{IoSlice, Result};
use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags, sendmsg};
use rustix::process::{ioctl_tiocsctty, setsid};
use rustix::pty::{OpenptFlags, ioctl_tiocgptpeer, openpt, unlockpt};
use rustix::stdio::{dup2_stderr, dup2_stdin, dup2_stdout};

/// Allocates the terminal from `/dev/ptmx` (after the pivot: the container's `pts/ptmx`), sends
/// its master to the frontend and closes the console socket; returns the terminal's other end.
pub fn open_terminal() -> OwnedFd {
    // SAFETY: with the TTY flag the frontend hands us the console socket as fd 4; nothing else
    // owns it, and it is closed when `console` drops here.
    let console = unsafe { OwnedFd::from_raw_fd(CONSOLE_FD) };
    match allocate(&console) {
        Ok(pts) => pts,
        Err(e) => fail(Report::TerminalFailed { errno: errno(e) }),
    }
}

fn allocate(console: &OwnedFd) -> Result<OwnedFd> {
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)?;
    unlockpt(&master)?;
    // Not close-on-exec: the workload's process puts it on fds 0-2 (if it is one of them already,
    // dup2 leaves the flags alone). The init itself never execs.
    let pts = ioctl_tiocgptpeer(&master, OpenptFlags::RDWR | OpenptFlags::NOCTTY)?;
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    let fds = [master.as_fd()];
    control.push(SendAncillaryMessage::ScmRights(&fds));
    // One byte: an empty message would read as EOF.
    sendmsg(console, &[IoSlice::new(&[0])], &mut control, SendFlags::empty())?;
    Ok(pts)
}

/// In the workload's process: a new session with `pts` as its controlling terminal and as
/// stdin, stdout and stderr.
pub fn attach(pts: OwnedFd) -> Result<()> {
    setsid()?;
    ioctl_tiocsctty(&pts)?;
    dup2_stdin(&pts)?;
    dup2_stdout(&pts)?;
    dup2_stderr(&pts)?;
    if pts.as_raw_fd() <= 2 {
        // It is one of the standard fds now: keep it open.
        let _ = pts.into_raw_fd();
    }
    Ok(())
}
