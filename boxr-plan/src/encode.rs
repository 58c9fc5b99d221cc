//! The frontend's side: turning a checked list of steps into plan bytes.

use crate::{MAGIC, MAX_LIST_LEN, MAX_PLAN_LEN, MAX_STR_LEN, Step, VERSION, flags, ms, tag};
use alloc::vec::Vec;
use core::ffi::CStr;
use core::fmt;

/// A plan that is over the init's limits. The frontend validates configs so that these are
/// reported against the config field first; this is the last line of defence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EncodeError {
    /// A string (path, argument, environment entry) is longer than `MAX_STR_LEN - 1` bytes.
    StringTooLong(usize),
    /// More than `MAX_LIST_LEN` arguments or environment entries.
    ListTooLong(usize),
    /// The whole plan is larger than `MAX_PLAN_LEN`.
    PlanTooLarge(usize),
    /// The process has no arguments.
    NoArgs,
    /// Flags outside `flags::ALL` or `ms::ALL`.
    UnknownFlags(u32),
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::StringTooLong(n) => {
                write!(f, "a string of {n} bytes is over the limit of {}", MAX_STR_LEN - 1)
            }
            EncodeError::ListTooLong(n) => {
                write!(f, "a list of {n} entries is over the limit of {MAX_LIST_LEN}")
            }
            EncodeError::PlanTooLarge(n) => {
                write!(f, "the plan is {n} bytes, over the limit of {MAX_PLAN_LEN}")
            }
            EncodeError::NoArgs => write!(f, "the process has no arguments"),
            EncodeError::UnknownFlags(v) => write!(f, "unknown flags {v:#x}"),
        }
    }
}

impl core::error::Error for EncodeError {}

/// Encodes a plan. `plan_flags` is a combination of [`flags`].
pub fn encode<S: AsRef<CStr>>(
    plan_flags: u8,
    args: &[S],
    env: &[S],
    steps: &[Step<S>],
) -> Result<Vec<u8>, EncodeError> {
    if plan_flags & !flags::ALL != 0 {
        return Err(EncodeError::UnknownFlags(plan_flags.into()));
    }
    if args.is_empty() {
        return Err(EncodeError::NoArgs);
    }
    let mut w = Writer { buf: Vec::with_capacity(1024) };
    w.buf.extend_from_slice(MAGIC);
    w.buf.push(VERSION);
    w.buf.push(plan_flags);
    w.list(args)?;
    w.list(env)?;
    let nsteps = u16::try_from(steps.len()).map_err(|_| EncodeError::ListTooLong(steps.len()))?;
    w.u16(nsteps);
    for step in steps {
        w.step(step)?;
    }
    if w.buf.len() > MAX_PLAN_LEN {
        return Err(EncodeError::PlanTooLarge(w.buf.len()));
    }
    Ok(w.buf)
}

struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    fn str(&mut self, s: &CStr) -> Result<(), EncodeError> {
        let bytes = s.to_bytes_with_nul();
        if bytes.len() > MAX_STR_LEN {
            return Err(EncodeError::StringTooLong(s.to_bytes().len()));
        }
        // Fits: MAX_STR_LEN < u16::MAX.
        self.u16(bytes.len() as u16);
        self.buf.extend_from_slice(bytes);
        Ok(())
    }
    fn list<S: AsRef<CStr>>(&mut self, items: &[S]) -> Result<(), EncodeError> {
        if items.len() > MAX_LIST_LEN {
            return Err(EncodeError::ListTooLong(items.len()));
        }
        self.u16(items.len() as u16);
        items.iter().try_for_each(|s| self.str(s.as_ref()))
    }
    fn flags(&mut self, flags: u32) -> Result<(), EncodeError> {
        if flags & !ms::ALL != 0 {
            return Err(EncodeError::UnknownFlags(flags));
        }
        self.u32(flags);
        Ok(())
    }
    fn step<S: AsRef<CStr>>(&mut self, step: &Step<S>) -> Result<(), EncodeError> {
        match step {
            Step::MakeMountsPrivate => self.buf.push(tag::MAKE_MOUNTS_PRIVATE),
            Step::MountRootfs { source, target, fstype, flags, data } => {
                self.buf.push(tag::MOUNT_ROOTFS);
                self.str(source.as_ref())?;
                self.str(target.as_ref())?;
                self.str(fstype.as_ref())?;
                self.flags(*flags)?;
                self.str(data.as_ref())?;
            }
            Step::MountFs { fstype, target, flags, data, strict } => {
                self.buf.push(tag::MOUNT_FS);
                self.str(fstype.as_ref())?;
                self.str(target.as_ref())?;
                self.flags(*flags)?;
                self.str(data.as_ref())?;
                self.buf.push(u8::from(*strict));
            }
            Step::Bind { source, target, flags, file } => {
                self.buf.push(tag::BIND);
                self.str(source.as_ref())?;
                self.str(target.as_ref())?;
                self.flags(*flags)?;
                self.buf.push(u8::from(*file));
            }
            Step::Mknod { target, mode, major, minor } => {
                self.buf.push(tag::MKNOD);
                self.str(target.as_ref())?;
                self.u32(*mode);
                self.u32(*major);
                self.u32(*minor);
            }
            Step::Symlink { to, link } => {
                self.buf.push(tag::SYMLINK);
                self.str(to.as_ref())?;
                self.str(link.as_ref())?;
            }
            Step::PivotRoot => self.buf.push(tag::PIVOT_ROOT),
            Step::RemountRootReadonly => self.buf.push(tag::REMOUNT_ROOT_READONLY),
            Step::SetHostname { name } => {
                self.buf.push(tag::SET_HOSTNAME);
                self.str(name.as_ref())?;
            }
            Step::Chdir { path } => {
                self.buf.push(tag::CHDIR);
                self.str(path.as_ref())?;
            }
            Step::UnshareCgroupNamespace => self.buf.push(tag::UNSHARE_CGROUP_NAMESPACE),
        }
        Ok(())
    }
}
