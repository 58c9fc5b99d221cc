//! C strings built in fixed-size stack buffers (paths, PATH candidates, `/proc/self/fd/N`): the
//! init allocates nothing.

use core::ffi::CStr;
use rustix::fd::BorrowedFd;
use rustix::io::{Errno, Result};
use rustix::path::DecInt;

/// A NUL-terminated string of at most `N - 1` bytes, built in place.
pub struct CBuf<const N: usize> {
    bytes: [u8; N],
    len: usize,
}

impl<const N: usize> CBuf<N> {
    pub const fn new() -> Self {
        CBuf { bytes: [0; N], len: 0 }
    }

    /// Appends `more` (which holds no NUL); `ENAMETOOLONG` when it and the NUL do not fit.
    pub fn push(&mut self, more: &[u8]) -> Result<()> {
        let end = self.len + more.len();
        if end >= N {
            return Err(Errno::NAMETOOLONG);
        }
        self.bytes[self.len..end].copy_from_slice(more);
        self.bytes[end] = 0;
        self.len = end;
        Ok(())
    }

    pub fn as_cstr(&self) -> &CStr {
        // The buffer starts zeroed and `push` keeps a NUL after the content.
        CStr::from_bytes_until_nul(&self.bytes).unwrap_or_default()
    }
}

/// The part of `s` from byte `at` on (still NUL-terminated, so still a C string).
pub fn tail(s: &CStr, at: usize) -> &CStr {
    s.to_bytes_with_nul()
        .get(at..)
        .and_then(|b| CStr::from_bytes_with_nul(b).ok())
        .unwrap_or_default()
}

/// `/proc/self/fd/N`: the magic link through which mount(2) reaches the object `fd` refers to,
/// instead of resolving a path again (which a symlink swapped in meanwhile could redirect).
pub fn fd_path(fd: BorrowedFd<'_>) -> CBuf<32> {
    let mut path = CBuf::new();
    // Cannot fail: 14 bytes of prefix and at most 10 digits fit in 31.
    let _ = path.push(b"/proc/self/fd/");
    let _ = path.push(DecInt::from_fd(fd).as_bytes());
    path
}
