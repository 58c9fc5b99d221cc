//! Resolving container paths inside the rootfs (CVE-2021-30465 class).
//!
//! Every target is resolved from the rootfs fd with `openat2(RESOLVE_IN_ROOT)`: an absolute
//! symlink or `..` in the rootfs stays inside it, so no target can ever lead to a host path.
//! Missing components are created one by one inside their parent, which was itself resolved
//! that way; the result is an `O_PATH` fd that the mount steps use through its magic link.

use crate::cbuf::{CBuf, tail};
use boxr_plan::MAX_STR_LEN;
use core::ffi::CStr;
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{Mode, OFlags, ResolveFlags, mkdirat, openat, openat2};
use rustix::io::{Errno, Result};

/// How often to retry when `openat2` reports a concurrent rename or mount (`EAGAIN`).
const RETRIES: usize = 32;

/// What to create when a target is missing.
#[derive(Clone, Copy)]
pub enum Kind {
    Dir,
    File,
}

/// Opens `path` (absolute, inside the container) as an `O_PATH` fd, resolved inside `root`.
/// With `strict`, no component may be a symlink.
pub fn open_in_root(root: BorrowedFd<'_>, path: &CStr, strict: bool) -> Result<OwnedFd> {
    let mut how = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS;
    if strict {
        how |= ResolveFlags::NO_SYMLINKS;
    }
    resolve(root, path, OFlags::empty(), how)
}

/// Opens `path` itself as an `O_PATH | O_NOFOLLOW` fd: no component may be a symlink, and a
/// symlink at the end is opened as the link, for the caller to inspect (not to mount on).
pub fn open_node_in_root(root: BorrowedFd<'_>, path: &CStr) -> Result<OwnedFd> {
    let how = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS | ResolveFlags::NO_SYMLINKS;
    resolve(root, path, OFlags::NOFOLLOW, how)
}

fn resolve(
    root: BorrowedFd<'_>,
    path: &CStr,
    oflags: OFlags,
    how: ResolveFlags,
) -> Result<OwnedFd> {
    let oflags = oflags | OFlags::PATH | OFlags::CLOEXEC;
    let rel = tail(path, path.to_bytes().iter().take_while(|&&b| b == b'/').count());
    let rel = if rel.is_empty() { c"." } else { rel };
    let mut tries = 1;
    loop {
        match openat2(root, rel, oflags, Mode::empty(), how) {
            Err(Errno::AGAIN) if tries < RETRIES => tries += 1,
            result => return result,
        }
    }
}

/// Like [`open_in_root`], but first creates what is missing: directories (mode 0755), and the
/// last component as `leaf`.
pub fn make_in_root(
    root: BorrowedFd<'_>,
    path: &[u8],
    strict: bool,
    leaf: Kind,
) -> Result<OwnedFd> {
    let mut prefix = CBuf::<MAX_STR_LEN>::new();
    prefix.push(path)?;
    match open_in_root(root, prefix.as_cstr(), strict) {
        Err(Errno::NOENT) => {}
        found => return found,
    }
    // Walk down from the root, creating each missing component in its resolved parent.
    prefix = CBuf::new();
    let mut dir = open_in_root(root, c"/", strict)?;
    let mut names = path.split(|&b| b == b'/').filter(|name| !name.is_empty()).peekable();
    while let Some(name) = names.next() {
        prefix.push(b"/")?;
        let name_at = prefix.as_cstr().count_bytes();
        prefix.push(name)?;
        dir = match open_in_root(root, prefix.as_cstr(), strict) {
            Err(Errno::NOENT) => {
                let kind = if names.peek().is_some() { Kind::Dir } else { leaf };
                create(dir.as_fd(), tail(prefix.as_cstr(), name_at), kind)?;
                open_in_root(root, prefix.as_cstr(), strict)?
            }
            opened => opened?,
        };
    }
    Ok(dir)
}

/// Resolves (creating if needed) the directory that holds `path`; returns it with the name of
/// the last component, for the `*at` calls that create it.
pub fn make_parent_in_root<'p>(
    root: BorrowedFd<'_>,
    path: &'p CStr,
) -> Result<(OwnedFd, &'p CStr)> {
    let bytes = path.to_bytes();
    let name_at = bytes.iter().rposition(|&b| b == b'/').map_or(0, |slash| slash + 1);
    Ok((make_in_root(root, &bytes[..name_at], false, Kind::Dir)?, tail(path, name_at)))
}

/// Creates `name` in `dir`, never following a symlink at `name`.
fn create(dir: BorrowedFd<'_>, name: &CStr, kind: Kind) -> Result<()> {
    match kind {
        Kind::Dir => mkdirat(dir, name, Mode::from_raw_mode(0o755)),
        Kind::File => {
            let flags = OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            openat(dir, name, flags, Mode::from_raw_mode(0o644)).map(drop)
        }
    }
}
