//! The plan socket (fd `PLAN_FD`): where the init tells the frontend what failed.

use crate::runtime::exit_group;
use boxr_plan::{FRONTEND_READY, PLAN_FD, Report};
use rustix::fd::BorrowedFd;
use rustix::io::{Errno, read, write};

/// The exit code of the init when the container could not be set up.
pub const SETUP_FAILED: i32 = 125;

pub fn plan_fd() -> BorrowedFd<'static> {
    // SAFETY: the frontend hands us fd 3; it stays open until `pid1::close_inherited_fds`, after
    // which nothing borrows it again. (Should it not be open, calls fail with `EBADF`.)
    unsafe { BorrowedFd::borrow_raw(PLAN_FD) }
}

/// Sends `report` to the frontend. A failure is ignored: the frontend is gone, and the exit
/// code still tells.
pub fn send_report(report: Report) {
    let _ = write(plan_fd(), &report.encode());
}

/// Waits for the frontend's `FRONTEND_READY` (the `AwaitFrontend` step). EOF means the frontend
/// is gone: exit without a word.
pub fn await_frontend() -> Result<(), Errno> {
    let mut byte = [0u8];
    loop {
        match read(plan_fd(), &mut byte) {
            Ok(0) => exit_group(SETUP_FAILED),
            Ok(_) if byte[0] == FRONTEND_READY => return Ok(()),
            Ok(_) => return Err(Errno::PROTO),
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Sends `report` and exits with [`SETUP_FAILED`].
pub fn fail(report: Report) -> ! {
    send_report(report);
    exit_group(SETUP_FAILED)
}

/// An errno as the reports carry it.
pub fn errno(e: Errno) -> u32 {
    e.raw_os_error().unsigned_abs()
}
