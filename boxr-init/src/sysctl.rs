//! Kernel parameters of the container's namespaces (step `Sysctl`): `net.ipv4.ip_forward` is
//! written to `/proc/sys/net/ipv4/ip_forward`, in the container's own /proc (after the pivot).

use crate::cbuf::CBuf;
use boxr_plan::MAX_STR_LEN;
use core::ffi::CStr;
use rustix::fs::{Mode, OFlags, open};
use rustix::io::{Errno, Result, write};

/// Writes `value` to the parameter `key` (a dotted name the plan has validated).
pub fn write_sysctl(key: &CStr, value: &CStr) -> Result<()> {
    let mut path = CBuf::<{ MAX_STR_LEN + 16 }>::new();
    path.push(b"/proc/sys")?;
    for part in key.to_bytes().split(|&b| b == b'.') {
        path.push(b"/")?;
        path.push(part)?;
    }
    write_file(path.as_cstr(), value.to_bytes())
}

/// Writes `bytes` to the existing file `path` in one `write`, as /proc files want it.
pub fn write_file(path: &CStr, bytes: &[u8]) -> Result<()> {
    let fd = open(path, OFlags::WRONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW, Mode::empty())?;
    match write(&fd, bytes)? {
        n if n == bytes.len() => Ok(()),
        _ => Err(Errno::IO),
    }
}
