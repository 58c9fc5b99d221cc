//! The frontend's side: turning a checked list of steps into plan bytes.

use crate::{BpfInstruction, CONTEXT_VERSION, MAGIC, MAX_FILTER_LEN, MAX_LIST_LEN, MAX_PLAN_LEN};
use crate::{Groups, ProcessContext, Step, context_flags, flags, is_sysctl_key, ms, tag};
use crate::{MAX_STR_LEN, VERSION};
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
    /// Capability sets the kernel cannot hold (see `Capabilities::is_consistent`), an id of
    /// `u32::MAX`, or an `oom_score_adj` outside -1000..=1000.
    BadContext,
    /// A sysctl key with an empty, `.`-only or `/`-holding part.
    BadSysctlKey,
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
            EncodeError::BadContext => {
                write!(f, "inconsistent capability sets, an invalid id or oom_score_adj")
            }
            EncodeError::BadSysctlKey => write!(f, "a sysctl key that is not a dotted name"),
        }
    }
}

impl core::error::Error for EncodeError {}

/// Encodes a plan. `plan_flags` is a combination of [`flags`]; an empty `seccomp` is no filter.
pub fn encode<S: AsRef<CStr>>(
    plan_flags: u8,
    args: &[S],
    env: &[S],
    context: &ProcessContext,
    seccomp: &[BpfInstruction],
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
    w.context(context)?;
    if seccomp.len() > MAX_FILTER_LEN {
        return Err(EncodeError::ListTooLong(seccomp.len()));
    }
    // Fits: at most MAX_FILTER_LEN (4096).
    w.u16(seccomp.len() as u16);
    for &(code, jt, jf, k) in seccomp {
        w.u16(code);
        w.buf.extend_from_slice(&[jt, jf]);
        w.u32(k);
    }
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
    fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    fn context(&mut self, context: &ProcessContext) -> Result<(), EncodeError> {
        let caps = &context.capabilities;
        let oom_ok = context.oom_score_adj.is_none_or(|v| (-1000..=1000).contains(&v));
        if !caps.is_consistent() || context.uid == u32::MAX || context.gid == u32::MAX || !oom_ok {
            return Err(EncodeError::BadContext);
        }
        self.buf.push(CONTEXT_VERSION);
        let mut flags = 0;
        if context.no_new_privs {
            flags |= context_flags::NO_NEW_PRIVS;
        }
        if context.groups.is_some() {
            flags |= context_flags::SET_GROUPS;
        }
        if context.oom_score_adj.is_some() {
            flags |= context_flags::OOM_SCORE_ADJ;
        }
        self.buf.push(flags);
        for set in [caps.bounding, caps.permitted, caps.effective, caps.ambient] {
            self.u64(set);
        }
        self.u32(context.uid);
        self.u32(context.gid);
        let groups = context.groups.as_ref().map_or(&[][..], Groups::as_slice);
        // Fits: Groups holds at most MAX_GROUPS (64).
        self.buf.push(groups.len() as u8);
        for &gid in groups {
            self.u32(gid);
        }
        let rlimits = context.rlimits.as_slice();
        // Fits: Rlimits holds at most RLIMITS (16).
        self.buf.push(rlimits.len() as u8);
        for limit in rlimits {
            self.buf.push(limit.resource);
            self.u64(limit.soft);
            self.u64(limit.hard);
        }
        self.u16(context.oom_score_adj.unwrap_or(0) as u16);
        Ok(())
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
            Step::MaskPath { path } => {
                self.buf.push(tag::MASK_PATH);
                self.str(path.as_ref())?;
            }
            Step::ReadonlyPath { path } => {
                self.buf.push(tag::READONLY_PATH);
                self.str(path.as_ref())?;
            }
            Step::Sysctl { key, value } => {
                if !is_sysctl_key(key.as_ref().to_bytes()) {
                    return Err(EncodeError::BadSysctlKey);
                }
                self.buf.push(tag::SYSCTL);
                self.str(key.as_ref())?;
                self.str(value.as_ref())?;
            }
            Step::AttachRootfs { target } => {
                self.buf.push(tag::ATTACH_ROOTFS);
                self.str(target.as_ref())?;
            }
            Step::BringUpLoopback => self.buf.push(tag::BRING_UP_LOOPBACK),
            Step::AwaitFrontend => self.buf.push(tag::AWAIT_FRONTEND),
        }
        Ok(())
    }
}
