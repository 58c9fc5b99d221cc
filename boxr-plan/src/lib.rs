//! The plan: what `boxr` hands to `boxr-init`, and what the init reports back.
//!
//! `boxr` (the frontend) parses and validates a container config and compiles it into a
//! [`Plan`]: the process to run plus an ordered list of setup [`Step`]s. It sends the plan as one
//! message over a `SOCK_SEQPACKET` socket that `boxr-init` inherits as fd [`PLAN_FD`]. The init
//! executes the steps in order, forks the workload and becomes its PID 1. When something fails,
//! the init sends a fixed-size [`Report`] back over the same socket naming the index of the step
//! (the frontend, which still has the plan, turns it into a sentence) and the errno.
//!
//! With [`flags::TTY`] the workload gets a terminal of the container's own: the init also
//! inherits the console socket (another `SOCK_SEQPACKET` socket) as fd [`CONSOLE_FD`], allocates
//! a pseudo-terminal from the container's devpts instance after setup, and sends its master to
//! the frontend there as one one-byte message carrying the fd (`SCM_RIGHTS`), as runc's console
//! socket does. The workload runs with the terminal's other end as its controlling terminal and
//! its stdin, stdout and stderr.
//!
//! This crate is `no_std` and allocation-free on the decoding side, which is all `boxr-init`
//! links; the encoder (feature `alloc`) is for the frontend.
//!
//! # Wire format (little-endian)
//! ```text
//! plan    := MAGIC version:u8 flags:u8 args:list env:list context filter nsteps:u16 step{nsteps}
//! context := context_version:u8 context_flags:u8 bounding:u64 permitted:u64 effective:u64
//!            ambient:u64 uid:u32 gid:u32 ngroups:u8 gid:u32{ngroups}
//!            nrlimits:u8 (resource:u8 soft:u64 hard:u64){nrlimits} oom_score_adj:i16
//! filter  := ninstructions:u16 (code:u16 jt:u8 jf:u8 k:u32){ninstructions}  -- seccomp BPF
//! list    := count:u16 str*
//! str     := len:u16 bytes[len]          -- bytes end in exactly one NUL, which len counts
//! step    := tag:u8 fields               -- fields per tag, see `Step`
//! report  := tag:u8 0:u8 step:u16 errno:u32   -- always REPORT_LEN bytes
//! ```
//!
//! The *process context* ([`ProcessContext`]) is the workload's security context: its
//! resource limits, OOM score adjustment, user, groups, capability sets and `no_new_privs`.
//! With the seccomp *filter* ([`Filter`], a classic BPF program, none when empty) the init
//! applies it in the workload's process right before the exec. The context has a version of
//! its own ([`CONTEXT_VERSION`]); both are validated with the rest of the plan.
#![no_std]

#[cfg(any(test, feature = "alloc"))]
extern crate alloc;

use core::ffi::CStr;
use core::fmt;

/// The fd number on which `boxr-init` finds its end of the plan socket.
pub const PLAN_FD: i32 = 3;
/// The fd number on which `boxr-init` finds its end of the console socket (with [`flags::TTY`]
/// only), where it sends the master of the workload's terminal.
pub const CONSOLE_FD: i32 = 4;
/// The fd number on which `boxr-init` finds the detached, idmapped mount of the rootfs that the
/// frontend made for a container with its own uid and gid ranges ([`Step::AttachRootfs`] only).
pub const ROOTFS_FD: i32 = 5;
/// The one-byte message the frontend sends on the plan socket once it has done its part of
/// the set-up ([`Step::AwaitFrontend`]).
pub const FRONTEND_READY: u8 = 1;
/// The largest plan the init accepts (it receives into a static buffer of this size).
pub const MAX_PLAN_LEN: usize = 64 * 1024;
/// The most arguments, and separately the most environment entries, a process may have.
pub const MAX_LIST_LEN: usize = 1024;
/// The most bytes a single string (path, argument, ...) may have, NUL included.
pub const MAX_STR_LEN: usize = 4096;
/// The size of every [`Report`] on the wire.
pub const REPORT_LEN: usize = 8;

const MAGIC: &[u8; 4] = b"BXPL";
const VERSION: u8 = 3;
/// The layout of the process-context section.
pub const CONTEXT_VERSION: u8 = 4;
/// The most instructions a seccomp filter may have (the kernel's `BPF_MAXINSNS`).
pub const MAX_FILTER_LEN: usize = 4096;
/// One classic BPF instruction of a seccomp filter: (code, jt, jf, k).
pub type BpfInstruction = (u16, u8, u8, u32);
/// The most supplementary groups the workload may have.
pub const MAX_GROUPS: usize = 64;

/// Run-wide switches for the init, in the plan header.
pub mod flags {
    /// The init is not PID 1 of a new PID namespace: it makes itself a child subreaper so that
    /// orphans of the workload are still re-parented to it and reaped.
    pub const SUBREAPER: u8 = 1 << 0;
    /// The workload gets a new terminal of the container's devpts instance, whose master the
    /// init sends to the frontend on [`CONSOLE_FD`](crate::CONSOLE_FD).
    pub const TTY: u8 = 1 << 1;
    /// Every flag this version knows.
    pub const ALL: u8 = SUBREAPER | TTY;
}

/// The mount(2) flag bits the plan carries (the kernel's `MS_*` values, passed through as-is).
pub mod ms {
    pub const RDONLY: u32 = 1;
    pub const NOSUID: u32 = 2;
    pub const NODEV: u32 = 4;
    pub const NOEXEC: u32 = 8;
    pub const BIND: u32 = 0x1000;
    pub const REC: u32 = 0x4000;
    pub const STRICTATIME: u32 = 1 << 24;
    /// Every flag a plan may carry.
    pub const ALL: u32 = RDONLY | NOSUID | NODEV | NOEXEC | BIND | REC | STRICTATIME;
}

/// The capability sets of the workload's process, as masks (bit N is capability N).
///
/// The inheritable set is not carried: the init leaves it empty (CVE-2022-29162), except for
/// the capabilities in `ambient`, which the kernel keeps ambient only while they are both
/// permitted and inheritable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Capabilities {
    pub bounding: u64,
    pub permitted: u64,
    pub effective: u64,
    pub ambient: u64,
}

impl Capabilities {
    /// Whether the kernel can hold these sets: effective and ambient within permitted,
    /// permitted within bounding.
    pub fn is_consistent(&self) -> bool {
        self.permitted & !self.bounding == 0
            && self.effective & !self.permitted == 0
            && self.ambient & !self.permitted == 0
    }
}

/// The security context of the workload's process, applied in it right before the exec.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProcessContext {
    pub capabilities: Capabilities,
    /// Set `no_new_privs`: no exec (of a setuid binary, one with file capabilities) can grant
    /// more privileges than the process has.
    pub no_new_privs: bool,
    /// The user and group ids (never `u32::MAX`, which the kernel reads as "unchanged").
    pub uid: u32,
    pub gid: u32,
    /// The supplementary groups; `None` leaves them alone (in a user namespace, where
    /// `setgroups` is denied).
    pub groups: Option<Groups>,
    /// Resource limits to set, each resource at most once.
    pub rlimits: Rlimits,
    /// The value for `/proc/self/oom_score_adj` (-1000 to 1000), if any.
    pub oom_score_adj: Option<i16>,
}

/// The number of resource limits Linux has (`RLIMIT_NLIMITS`); resources are `0..RLIMITS`.
pub const RLIMITS: usize = 16;
/// A limit value meaning "unlimited" (`RLIM_INFINITY`).
pub const RLIM_INFINITY: u64 = u64::MAX;

/// One resource limit: `resource` is the kernel's `RLIMIT_*` number, `soft <= hard`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rlimit {
    pub resource: u8,
    pub soft: u64,
    pub hard: u64,
}

/// Resource limits, each resource at most once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rlimits {
    len: usize,
    limits: [Rlimit; RLIMITS],
}

impl Rlimits {
    /// `None` unless every limit has a known resource, given once, and `soft <= hard`.
    pub fn new(limits: &[Rlimit]) -> Option<Rlimits> {
        let mut all = Rlimits::default();
        for &limit in limits {
            if usize::from(limit.resource) >= RLIMITS
                || limit.soft > limit.hard
                || all.as_slice().iter().any(|l| l.resource == limit.resource)
            {
                return None;
            }
            *all.limits.get_mut(all.len)? = limit;
            all.len += 1;
        }
        Some(all)
    }
    pub fn as_slice(&self) -> &[Rlimit] {
        &self.limits[..self.len]
    }
}

/// Supplementary group ids, at most [`MAX_GROUPS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Groups {
    len: usize,
    gids: [u32; MAX_GROUPS],
}

impl Groups {
    /// `None` when there are more than [`MAX_GROUPS`].
    pub fn new(gids: &[u32]) -> Option<Groups> {
        let mut groups = Groups { len: gids.len(), gids: [0; MAX_GROUPS] };
        groups.gids.get_mut(..gids.len())?.copy_from_slice(gids);
        Some(groups)
    }
    pub fn as_slice(&self) -> &[u32] {
        &self.gids[..self.len]
    }
}

/// The bits of the process context's flags byte.
mod context_flags {
    pub const NO_NEW_PRIVS: u8 = 1 << 0;
    /// Set the supplementary groups.
    pub const SET_GROUPS: u8 = 1 << 1;
    /// Write `oom_score_adj`.
    pub const OOM_SCORE_ADJ: u8 = 1 << 2;
    pub const ALL: u8 = NO_NEW_PRIVS | SET_GROUPS | OOM_SCORE_ADJ;
}

/// What the init was doing when applying the [`ProcessContext`] failed
/// ([`Report::ContextFailed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContextStage {
    /// Dropping capabilities from the bounding set (`PR_CAPBSET_DROP`).
    BoundingSet,
    /// Setting the effective, permitted and inheritable sets (`capset`).
    Capabilities,
    /// Raising the ambient capabilities (`PR_CAP_AMBIENT_RAISE`).
    AmbientSet,
    /// Setting `no_new_privs` (`PR_SET_NO_NEW_PRIVS`).
    NoNewPrivs,
    /// Setting the supplementary groups (`setgroups`).
    Groups,
    /// Setting the group id (`setgid`).
    Gid,
    /// Setting the user id, keeping the capabilities across it (`setuid`).
    Uid,
    /// Setting a resource limit (`setrlimit`).
    Rlimit,
    /// Writing `/proc/self/oom_score_adj`.
    OomScoreAdj,
    /// Installing the seccomp filter (`seccomp(SECCOMP_SET_MODE_FILTER)`).
    Seccomp,
}

impl ContextStage {
    const ALL: [ContextStage; 10] = [
        ContextStage::BoundingSet,
        ContextStage::Capabilities,
        ContextStage::AmbientSet,
        ContextStage::NoNewPrivs,
        ContextStage::Groups,
        ContextStage::Gid,
        ContextStage::Uid,
        ContextStage::Rlimit,
        ContextStage::OomScoreAdj,
        ContextStage::Seccomp,
    ];

    fn from_u16(v: u16) -> Option<ContextStage> {
        ContextStage::ALL.get(usize::from(v)).copied()
    }
}

impl fmt::Display for ContextStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ContextStage::BoundingSet => "dropping capabilities from the bounding set",
            ContextStage::Capabilities => "setting the capability sets",
            ContextStage::AmbientSet => "raising the ambient capabilities",
            ContextStage::NoNewPrivs => "setting no_new_privs",
            ContextStage::Groups => "setting the supplementary groups",
            ContextStage::Gid => "setting the group id",
            ContextStage::Uid => "setting the user id",
            ContextStage::Rlimit => "setting a resource limit",
            ContextStage::OomScoreAdj => "writing /proc/self/oom_score_adj",
            ContextStage::Seccomp => "installing the seccomp filter",
        })
    }
}

/// One setup step. `S` is `&CStr` when decoded and an owned C string when built.
///
/// Every `target`/`path` inside the container is an absolute, normalised path (no `.`, `..`, or
/// empty components) relative to the rootfs; the init resolves it inside the rootfs and never
/// follows a symlink out of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step<S> {
    /// Make every mount in the new mount namespace private, so nothing propagates to the host.
    MakeMountsPrivate,
    /// Mount the container's root filesystem on `target`, an absolute host path, with mount(2)'s
    /// arguments as given: a recursive bind of the rootfs onto itself (`fstype` empty, `flags`
    /// `BIND | REC`) or an overlay with the rootfs as its lower layer. Later targets resolve in it.
    MountRootfs { source: S, target: S, fstype: S, flags: u32, data: S },
    /// Attach the detached (idmapped) rootfs mount on [`ROOTFS_FD`] at `target`, the rootfs's
    /// host path, then close the fd. Later targets resolve in it; an overlay `MountRootfs`
    /// after it takes it as its lower layer.
    AttachRootfs { target: S },
    /// Mount a new filesystem instance at `target` (a directory, created if missing). With
    /// `strict`, no component of `target` may be a symlink (for `/proc`, `/sys`, `/dev`).
    MountFs { fstype: S, target: S, flags: u32, data: S, strict: bool },
    /// Bind-mount the host path `source` onto `target` (created as an empty file when `file`,
    /// else as a directory). `flags` may add `RDONLY`/`NOSUID`/`NODEV`/`NOEXEC` (applied by a
    /// remount) and `REC`.
    Bind { source: S, target: S, flags: u32, file: bool },
    /// Create a device node; `mode` holds the file type bits and the permissions.
    Mknod { target: S, mode: u32, major: u32, minor: u32 },
    /// Create a symlink at `link` pointing to `to`.
    Symlink { to: S, link: S },
    /// Make the rootfs `/`, detach the old root so that no host path stays reachable.
    PivotRoot,
    /// Remount `/` read-only (after the pivot, so the mounts above could create their targets).
    RemountRootReadonly,
    /// Set the UTS namespace's hostname.
    SetHostname { name: S },
    /// Change the working directory (inherited by the workload).
    Chdir { path: S },
    /// Enter a new cgroup namespace rooted at the init's cgroup, which the frontend has just
    /// moved it into (a cgroup namespace made by clone would be rooted at the frontend's).
    UnshareCgroupNamespace,
    /// Hide `path` (after the pivot; no component may be a symlink; a missing path is skipped):
    /// a directory gets an empty read-only tmpfs, anything else the container's `/dev/null`
    /// bound over it. That `/dev/null` must be the character device 1:3, else the step fails
    /// with `ENODEV` rather than bind whatever a rootfs or a mount put there (CVE-2025-31133).
    MaskPath { path: S },
    /// Make `path` read-only (after the pivot; no component may be a symlink; a missing path is
    /// skipped): bound onto itself, then remounted read-only, keeping its other flags.
    ReadonlyPath { path: S },
    /// Write `value` to the kernel parameter `key` (dotted, `net.ipv4.ip_forward`), that is to
    /// `/proc/sys/net/ipv4/ip_forward` (after the pivot: in the container's own /proc). The
    /// key's parts are names: no `/`, no `.` or `..`, none empty.
    Sysctl { key: S, value: S },
    /// Bring the network namespace's loopback interface `lo` up.
    BringUpLoopback,
    /// Wait for [`FRONTEND_READY`] on the plan socket: the frontend has moved the init into the
    /// container's cgroup and configured its network, which it does while the init runs the
    /// steps before this one.
    AwaitFrontend,
}

mod tag {
    pub const MAKE_MOUNTS_PRIVATE: u8 = 1;
    pub const MOUNT_ROOTFS: u8 = 2;
    pub const MOUNT_FS: u8 = 3;
    pub const BIND: u8 = 4;
    pub const MKNOD: u8 = 5;
    pub const SYMLINK: u8 = 6;
    pub const PIVOT_ROOT: u8 = 7;
    pub const REMOUNT_ROOT_READONLY: u8 = 8;
    pub const SET_HOSTNAME: u8 = 9;
    pub const CHDIR: u8 = 10;
    pub const UNSHARE_CGROUP_NAMESPACE: u8 = 11;
    pub const MASK_PATH: u8 = 12;
    pub const READONLY_PATH: u8 = 13;
    pub const SYSCTL: u8 = 20;
    pub const ATTACH_ROOTFS: u8 = 21;
    pub const BRING_UP_LOOPBACK: u8 = 22;
    pub const AWAIT_FRONTEND: u8 = 23;
}

impl<S: AsRef<CStr>> fmt::Display for Step<S> {
    /// What the step does, as the frontend words a failure: "mounting proc on /proc".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn s<S: AsRef<CStr>>(s: &S) -> Lossy<'_> {
            Lossy(s.as_ref().to_bytes())
        }
        match self {
            Step::MakeMountsPrivate => write!(f, "making mounts private"),
            Step::MountRootfs { source, target, fstype, .. } if fstype.as_ref().is_empty() => {
                write!(f, "bind-mounting the rootfs {} on {}", s(source), s(target))
            }
            Step::MountRootfs { fstype, target, .. } => {
                write!(f, "mounting the {} rootfs on {}", s(fstype), s(target))
            }
            Step::AttachRootfs { target } => {
                write!(f, "attaching the idmapped rootfs on {}", s(target))
            }
            Step::MountFs { fstype, target, .. } => {
                write!(f, "mounting {} on {}", s(fstype), s(target))
            }
            Step::Bind { source, target, .. } => {
                write!(f, "bind-mounting {} on {}", s(source), s(target))
            }
            Step::Mknod { target, .. } => write!(f, "creating device node {}", s(target)),
            Step::Symlink { to, link } => write!(f, "creating symlink {} -> {}", s(link), s(to)),
            Step::PivotRoot => write!(f, "pivoting into the rootfs"),
            Step::RemountRootReadonly => write!(f, "remounting the rootfs read-only"),
            Step::SetHostname { name } => write!(f, "setting hostname {}", s(name)),
            Step::Chdir { path } => write!(f, "changing directory to {}", s(path)),
            Step::UnshareCgroupNamespace => write!(f, "entering a new cgroup namespace"),
            Step::MaskPath { path } => write!(f, "masking {}", s(path)),
            Step::ReadonlyPath { path } => write!(f, "making {} read-only", s(path)),
            Step::Sysctl { key, value } => write!(f, "setting sysctl {} to {}", s(key), s(value)),
            Step::BringUpLoopback => write!(f, "bringing the loopback interface up"),
            Step::AwaitFrontend => write!(f, "waiting for the container's cgroup and network"),
        }
    }
}

/// Whether `key` is a dotted sysctl name whose parts are plain names (so that the path made
/// from it stays under /proc/sys).
pub fn is_sysctl_key(key: &[u8]) -> bool {
    key.split(|&b| b == b'.').all(|part| !part.is_empty() && !part.contains(&b'/'))
}

/// Displays a C string's bytes, replacing what is not UTF-8.
struct Lossy<'a>(&'a [u8]);
impl fmt::Display for Lossy<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for chunk in self.0.utf8_chunks() {
            f.write_str(chunk.valid())?;
            if !chunk.invalid().is_empty() {
                f.write_str("\u{FFFD}")?;
            }
        }
        Ok(())
    }
}

/// Why a plan could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// The buffer does not start with the magic bytes.
    BadMagic,
    /// The plan was written by another version of boxr.
    Version(u8),
    /// The buffer ends in the middle of a field.
    Truncated,
    /// A string is empty, lacks its final NUL, or holds another NUL.
    BadString,
    /// A list or string is longer than the limits above.
    TooLong,
    /// An unknown step tag, flag or report tag.
    Unknown(u8),
    /// Bytes follow the last step.
    TrailingBytes,
    /// The process context has another version, or values the kernel cannot hold.
    BadContext,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::BadMagic => write!(f, "not a boxr plan"),
            DecodeError::Version(v) => {
                write!(f, "plan version {v}, expected {VERSION} (boxr and boxr-init differ)")
            }
            DecodeError::Truncated => write!(f, "plan is truncated"),
            DecodeError::BadString => write!(f, "plan holds a malformed string"),
            DecodeError::TooLong => write!(f, "plan holds a list or string over the limits"),
            DecodeError::Unknown(t) => write!(f, "plan holds unknown tag or flag {t}"),
            DecodeError::TrailingBytes => write!(f, "plan has bytes after its last step"),
            DecodeError::BadContext => write!(f, "plan holds an invalid process context"),
        }
    }
}

/// A list of C strings inside a plan (argv, envp).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StrList<'a> {
    count: usize,
    bytes: &'a [u8],
}

impl<'a> StrList<'a> {
    pub fn len(&self) -> usize {
        self.count
    }
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
    pub fn iter(&self) -> StrListIter<'a> {
        StrListIter { left: self.count, r: Reader { buf: self.bytes } }
    }
}

impl<'a> IntoIterator for &StrList<'a> {
    type Item = &'a CStr;
    type IntoIter = StrListIter<'a>;
    fn into_iter(self) -> StrListIter<'a> {
        self.iter()
    }
}

pub struct StrListIter<'a> {
    left: usize,
    r: Reader<'a>,
}

impl<'a> Iterator for StrListIter<'a> {
    type Item = &'a CStr;
    fn next(&mut self) -> Option<&'a CStr> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        // The list was validated when the plan was parsed.
        self.r.str().ok()
    }
}

/// A seccomp filter inside a plan: classic BPF instructions, at most [`MAX_FILTER_LEN`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Filter<'a> {
    bytes: &'a [u8],
}

impl Filter<'_> {
    pub fn len(&self) -> usize {
        self.bytes.len() / 8
    }
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
    pub fn iter(&self) -> impl Iterator<Item = BpfInstruction> + '_ {
        self.bytes.chunks_exact(8).map(|b| {
            (
                u16::from_le_bytes([b[0], b[1]]),
                b[2],
                b[3],
                u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
            )
        })
    }
}

/// A decoded plan, borrowing the received bytes.
#[derive(Debug, Clone, Copy)]
pub struct Plan<'a> {
    pub flags: u8,
    pub args: StrList<'a>,
    pub env: StrList<'a>,
    pub context: ProcessContext,
    /// The workload's seccomp filter; empty: none.
    pub seccomp: Filter<'a>,
    nsteps: u16,
    steps: &'a [u8],
}

impl<'a> Plan<'a> {
    /// Decodes and fully validates a plan, so that executing it never meets a malformed step.
    pub fn parse(buf: &'a [u8]) -> Result<Plan<'a>, DecodeError> {
        let mut r = Reader { buf };
        if r.take(MAGIC.len())? != MAGIC {
            return Err(DecodeError::BadMagic);
        }
        let version = r.u8()?;
        if version != VERSION {
            return Err(DecodeError::Version(version));
        }
        let flags = r.u8()?;
        if flags & !flags::ALL != 0 {
            return Err(DecodeError::Unknown(flags));
        }
        let args = r.list()?;
        if args.is_empty() {
            return Err(DecodeError::Truncated);
        }
        let env = r.list()?;
        let context = r.context()?;
        let ninstructions = usize::from(r.u16()?);
        if ninstructions > MAX_FILTER_LEN {
            return Err(DecodeError::TooLong);
        }
        let seccomp = Filter { bytes: r.take(ninstructions * 8)? };
        let nsteps = r.u16()?;
        let plan = Plan { flags, args, env, context, seccomp, nsteps, steps: r.buf };
        let mut steps = plan.steps();
        for step in &mut steps {
            step?;
        }
        if steps.left != 0 {
            return Err(DecodeError::Truncated);
        }
        if !steps.r.buf.is_empty() {
            return Err(DecodeError::TrailingBytes);
        }
        Ok(plan)
    }

    /// The steps in order. Each item is `Ok` for a plan that [`Plan::parse`] accepted.
    pub fn steps(&self) -> Steps<'a> {
        Steps { left: self.nsteps, r: Reader { buf: self.steps } }
    }
}

pub struct Steps<'a> {
    left: u16,
    r: Reader<'a>,
}

impl<'a> Iterator for Steps<'a> {
    type Item = Result<Step<&'a CStr>, DecodeError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        let step = self.r.step();
        self.left = if step.is_err() { 0 } else { self.left - 1 };
        Some(step)
    }
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < n {
            return Err(DecodeError::Truncated);
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, DecodeError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, DecodeError> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
    }
    fn context(&mut self) -> Result<ProcessContext, DecodeError> {
        if self.u8()? != CONTEXT_VERSION {
            return Err(DecodeError::BadContext);
        }
        let flags = self.u8()?;
        if flags & !context_flags::ALL != 0 {
            return Err(DecodeError::BadContext);
        }
        let capabilities = Capabilities {
            bounding: self.u64()?,
            permitted: self.u64()?,
            effective: self.u64()?,
            ambient: self.u64()?,
        };
        let (uid, gid) = (self.u32()?, self.u32()?);
        let ngroups = usize::from(self.u8()?);
        let mut gids = [0; MAX_GROUPS];
        for slot in gids.get_mut(..ngroups).ok_or(DecodeError::BadContext)? {
            *slot = self.u32()?;
        }
        let nrlimits = usize::from(self.u8()?);
        let mut limits = [Rlimit::default(); RLIMITS];
        for slot in limits.get_mut(..nrlimits).ok_or(DecodeError::BadContext)? {
            *slot = Rlimit { resource: self.u8()?, soft: self.u64()?, hard: self.u64()? };
        }
        let rlimits = Rlimits::new(&limits[..nrlimits]).ok_or(DecodeError::BadContext)?;
        let oom_score_adj = self.u16()? as i16;
        let has_oom_score_adj = flags & context_flags::OOM_SCORE_ADJ != 0;
        let set_groups = flags & context_flags::SET_GROUPS != 0;
        if !(-1000..=1000).contains(&oom_score_adj) || (!has_oom_score_adj && oom_score_adj != 0) {
            return Err(DecodeError::BadContext);
        }
        if !capabilities.is_consistent()
            || uid == u32::MAX
            || gid == u32::MAX
            || (!set_groups && ngroups != 0)
        {
            return Err(DecodeError::BadContext);
        }
        Ok(ProcessContext {
            capabilities,
            no_new_privs: flags & context_flags::NO_NEW_PRIVS != 0,
            uid,
            gid,
            groups: set_groups.then_some(Groups { len: ngroups, gids }),
            rlimits,
            oom_score_adj: has_oom_score_adj.then_some(oom_score_adj),
        })
    }
    fn bool(&mut self) -> Result<bool, DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(DecodeError::Unknown(other)),
        }
    }
    fn str(&mut self) -> Result<&'a CStr, DecodeError> {
        let len = usize::from(self.u16()?);
        if len > MAX_STR_LEN {
            return Err(DecodeError::TooLong);
        }
        let bytes = self.take(len)?;
        match CStr::from_bytes_with_nul(bytes) {
            Ok(s) => Ok(s),
            Err(_) => Err(DecodeError::BadString),
        }
    }
    fn list(&mut self) -> Result<StrList<'a>, DecodeError> {
        let count = usize::from(self.u16()?);
        if count > MAX_LIST_LEN {
            return Err(DecodeError::TooLong);
        }
        let start = self.buf;
        for _ in 0..count {
            self.str()?;
        }
        let used = start.len() - self.buf.len();
        Ok(StrList { count, bytes: &start[..used] })
    }
    fn flags(&mut self) -> Result<u32, DecodeError> {
        let flags = self.u32()?;
        if flags & !ms::ALL != 0 {
            return Err(DecodeError::Unknown(tag::MOUNT_FS));
        }
        Ok(flags)
    }
    fn step(&mut self) -> Result<Step<&'a CStr>, DecodeError> {
        Ok(match self.u8()? {
            tag::MAKE_MOUNTS_PRIVATE => Step::MakeMountsPrivate,
            tag::MOUNT_ROOTFS => Step::MountRootfs {
                source: self.str()?,
                target: self.str()?,
                fstype: self.str()?,
                flags: self.flags()?,
                data: self.str()?,
            },
            tag::MOUNT_FS => Step::MountFs {
                fstype: self.str()?,
                target: self.str()?,
                flags: self.flags()?,
                data: self.str()?,
                strict: self.bool()?,
            },
            tag::BIND => Step::Bind {
                source: self.str()?,
                target: self.str()?,
                flags: self.flags()?,
                file: self.bool()?,
            },
            tag::MKNOD => Step::Mknod {
                target: self.str()?,
                mode: self.u32()?,
                major: self.u32()?,
                minor: self.u32()?,
            },
            tag::SYMLINK => Step::Symlink { to: self.str()?, link: self.str()? },
            tag::PIVOT_ROOT => Step::PivotRoot,
            tag::REMOUNT_ROOT_READONLY => Step::RemountRootReadonly,
            tag::SET_HOSTNAME => Step::SetHostname { name: self.str()? },
            tag::CHDIR => Step::Chdir { path: self.str()? },
            tag::UNSHARE_CGROUP_NAMESPACE => Step::UnshareCgroupNamespace,
            tag::MASK_PATH => Step::MaskPath { path: self.str()? },
            tag::READONLY_PATH => Step::ReadonlyPath { path: self.str()? },
            tag::SYSCTL => {
                let key = self.str()?;
                if !is_sysctl_key(key.to_bytes()) {
                    return Err(DecodeError::BadString);
                }
                Step::Sysctl { key, value: self.str()? }
            }
            tag::ATTACH_ROOTFS => Step::AttachRootfs { target: self.str()? },
            tag::BRING_UP_LOOPBACK => Step::BringUpLoopback,
            tag::AWAIT_FRONTEND => Step::AwaitFrontend,
            other => return Err(DecodeError::Unknown(other)),
        })
    }
}

/// What the init (or the workload's process before its exec) tells the frontend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report {
    /// The plan could not be received or decoded.
    BadPlan { errno: u32 },
    /// Step number `step` (0-based, in plan order) failed with `errno`.
    StepFailed { step: u16, errno: u32 },
    /// Forking the workload failed.
    ForkFailed { errno: u32 },
    /// `execve` of the workload failed; `ENOENT` means no candidate was found on `PATH`.
    ExecFailed { errno: u32 },
    /// The frontend's cloned child could not exec boxr-init itself.
    StartFailed { errno: u32 },
    /// The workload's terminal could not be allocated, sent to the frontend or attached.
    TerminalFailed { errno: u32 },
    /// Applying the process context in the workload's process failed at `stage`.
    ContextFailed { stage: ContextStage, errno: u32 },
}

mod report_tag {
    pub const BAD_PLAN: u8 = 1;
    pub const STEP_FAILED: u8 = 2;
    pub const FORK_FAILED: u8 = 3;
    pub const EXEC_FAILED: u8 = 4;
    pub const START_FAILED: u8 = 5;
    pub const TERMINAL_FAILED: u8 = 6;
    pub const CONTEXT_FAILED: u8 = 7;
}

impl Report {
    pub fn encode(&self) -> [u8; REPORT_LEN] {
        let (t, step, errno) = match *self {
            Report::BadPlan { errno } => (report_tag::BAD_PLAN, 0, errno),
            Report::StepFailed { step, errno } => (report_tag::STEP_FAILED, step, errno),
            Report::ForkFailed { errno } => (report_tag::FORK_FAILED, 0, errno),
            Report::ExecFailed { errno } => (report_tag::EXEC_FAILED, 0, errno),
            Report::StartFailed { errno } => (report_tag::START_FAILED, 0, errno),
            Report::TerminalFailed { errno } => (report_tag::TERMINAL_FAILED, 0, errno),
            Report::ContextFailed { stage, errno } => {
                (report_tag::CONTEXT_FAILED, stage as u16, errno)
            }
        };
        let s = step.to_le_bytes();
        let e = errno.to_le_bytes();
        [t, 0, s[0], s[1], e[0], e[1], e[2], e[3]]
    }

    pub fn decode(buf: &[u8]) -> Result<Report, DecodeError> {
        let b: &[u8; REPORT_LEN] = buf.try_into().map_err(|_| DecodeError::Truncated)?;
        let step = u16::from_le_bytes([b[2], b[3]]);
        let errno = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
        Ok(match b[0] {
            report_tag::BAD_PLAN => Report::BadPlan { errno },
            report_tag::STEP_FAILED => Report::StepFailed { step, errno },
            report_tag::FORK_FAILED => Report::ForkFailed { errno },
            report_tag::EXEC_FAILED => Report::ExecFailed { errno },
            report_tag::START_FAILED => Report::StartFailed { errno },
            report_tag::TERMINAL_FAILED => Report::TerminalFailed { errno },
            report_tag::CONTEXT_FAILED => match ContextStage::from_u16(step) {
                Some(stage) => Report::ContextFailed { stage, errno },
                None => return Err(DecodeError::Unknown(report_tag::CONTEXT_FAILED)),
            },
            other => return Err(DecodeError::Unknown(other)),
        })
    }
}

#[cfg(any(test, feature = "alloc"))]
mod encode;
#[cfg(any(test, feature = "alloc"))]
pub use encode::{EncodeError, encode};

#[cfg(test)]
mod tests;
