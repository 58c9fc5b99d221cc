//! The workload's process security context: which capabilities it gets (the config names them
//! in `cap_add` and `cap_drop`; this module turns the names into the 64-bit masks the plan
//! carries, [`boxr_plan::Capabilities`], with docker's default set and semantics), its resource
//! limits and OOM score, and which kernel parameters (`sysctls`) a container may set. See
//! docs/security.md.

use crate::config::Namespace;
use boxr_plan::{Capabilities, ProcessContext, RLIM_INFINITY, Rlimit};
use serde::{Deserialize, Serialize};
use std::fs;
use std::io;

/// The capabilities by number (`CAP_CHOWN` is 0), without their `CAP_` prefix.
const NAMES: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// docker's and podman's default set.
pub const DEFAULT_CAPABILITIES: [&str; 14] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
];

/// A `cap_add` / `cap_drop` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapName {
    /// Every capability (the kernel's, as far as the container can have them).
    All,
    /// One capability, by number.
    One(u32),
}

impl CapName {
    /// Parses `NET_ADMIN`, `cap_net_admin`, `ALL`: with or without `CAP_`, in any case.
    pub fn parse(text: &str) -> Result<CapName, String> {
        let upper = text.trim().to_ascii_uppercase();
        if upper == "ALL" {
            return Ok(CapName::All);
        }
        let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
        match NAMES.iter().position(|n| *n == bare) {
            // Fits: NAMES has 41 entries.
            Some(n) => Ok(CapName::One(n as u32)),
            None => Err(format!(
                "unknown capability {text:?}: give a name such as \"NET_ADMIN\" or \"CAP_NET_ADMIN\", or \"ALL\""
            )),
        }
    }

    fn mask(self, all: u64) -> u64 {
        match self {
            CapName::All => all,
            CapName::One(n) => 1 << n,
        }
    }
}

/// The name of capability `n` as the config writes it (`NET_ADMIN`).
pub fn cap_name(n: u32) -> &'static str {
    NAMES.get(n as usize).copied().unwrap_or("unknown")
}

fn mask_of(names: &[&str]) -> u64 {
    names.iter().map(|n| CapName::parse(n).map_or(0, |c| c.mask(0))).fold(0, |a, m| a | m)
}

/// The capabilities the container's init can hand on: every one the kernel knows
/// (`/proc/sys/kernel/cap_last_cap`), and without a user namespace only those in boxr's own
/// bounding set (a user namespace gets a full set of its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Available {
    pub mask: u64,
}

impl Available {
    pub fn detect(user_namespace: bool) -> Available {
        let last = fs::read_to_string("/proc/sys/kernel/cap_last_cap")
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
            .unwrap_or(NAMES.len() as u32 - 1)
            .min(63);
        let known = u64::MAX >> (63 - last);
        if user_namespace {
            return Available { mask: known };
        }
        let bounding = (0..=last)
            .filter(|&n| {
                let cap = rustix::thread::CapabilitySet::from_bits_retain(1 << n);
                rustix::thread::capability_is_in_bounding_set(cap).unwrap_or(false)
            })
            .fold(0, |a, n| a | (1 << n));
        Available { mask: known & bounding }
    }
}

/// The workload's capability set from docker's default, `cap_drop` and `cap_add`, as docker
/// does it: with `ALL` in `cap_drop`, exactly `cap_add`; else with `ALL` in `cap_add`, every
/// capability but those in `cap_drop`; else the default without `cap_drop` plus `cap_add`. Limited to what is `available`; a capability named in `cap_add` that
/// is not available is an error naming it.
pub fn capability_set(add: &[CapName], drop: &[CapName], available: Available) -> Result<u64, u32> {
    let all = available.mask;
    let union = |names: &[CapName]| names.iter().fold(0, |a, c| a | c.mask(all));
    let (add_mask, drop_mask) = (union(add), union(drop));
    if let Some(missing) = (0..64).find(|&n| add_mask & !all & (1 << n) != 0) {
        return Err(missing);
    }
    let set = if drop.contains(&CapName::All) {
        add_mask
    } else if add.contains(&CapName::All) {
        all & !drop_mask
    } else {
        (mask_of(&DEFAULT_CAPABILITIES) & !drop_mask) | add_mask
    };
    Ok(set & all)
}

/// The sets the workload's process runs with, as runc applies them: for root, bounding,
/// permitted and effective are `set`; for any other user, the bounding set is `set` and the
/// process has no capabilities of its own (the kernel clears them when the uid changes) but
/// those in `ambient`, which stay permitted and effective across the exec.
pub fn capability_sets(set: u64, uid: u32, ambient: u64) -> Capabilities {
    if uid == 0 {
        return Capabilities { bounding: set, permitted: set, effective: set, ambient: 0 };
    }
    let ambient = ambient & set;
    Capabilities { bounding: set, permitted: ambient, effective: ambient, ambient }
}

/// The resource limits by `RLIMIT_*` number, as docker's `--ulimit` names them.
const RLIMIT_NAMES: [&str; boxr_plan::RLIMITS] = [
    "cpu",
    "fsize",
    "data",
    "stack",
    "core",
    "rss",
    "nproc",
    "nofile",
    "memlock",
    "as",
    "locks",
    "sigpending",
    "msgqueue",
    "nice",
    "rtprio",
    "rttime",
];

/// The `RLIMIT_*` number of a limit named as docker does (`nofile`), in any case, or as the
/// OCI spec does (`RLIMIT_NOFILE`).
pub fn rlimit_resource(name: &str) -> Result<u8, String> {
    let lower = name.to_ascii_lowercase();
    let bare = lower.strip_prefix("rlimit_").unwrap_or(&lower);
    match RLIMIT_NAMES.iter().position(|n| *n == bare) {
        // Fits: there are 16.
        Some(n) => Ok(n as u8),
        None => {
            Err(format!("unknown resource limit {name:?}: use one of {}", RLIMIT_NAMES.join(", ")))
        }
    }
}

/// What boxr itself may do about limits: its own hard limits (a process without
/// `CAP_SYS_RESOURCE` cannot raise them) and whether it holds that capability (outside a user
/// namespace: in one it does not count for these).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitsAllowed {
    pub hard: [u64; boxr_plan::RLIMITS],
    pub sys_resource: bool,
    /// `fs.nr_open`: the most open files any process may have.
    pub nr_open: u64,
    /// boxr's own `oom_score_adj`.
    pub oom_score_adj: i16,
}

impl LimitsAllowed {
    pub fn detect(user_namespace: bool) -> LimitsAllowed {
        let mut hard = [RLIM_INFINITY; boxr_plan::RLIMITS];
        for (resource, slot) in hard.iter_mut().enumerate() {
            let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
            // SAFETY: getrlimit writes one rlimit into `limit`, which lives for the call.
            if unsafe { libc::getrlimit(resource as _, &mut limit) } == 0 {
                *slot = limit.rlim_max;
            }
        }
        let effective = rustix::thread::capabilities(None).map(|c| c.effective);
        let sys_resource = !user_namespace
            && effective.is_ok_and(|e| e.contains(rustix::thread::CapabilitySet::SYS_RESOURCE));
        let read = |path: &str| fs::read_to_string(path).unwrap_or_default();
        LimitsAllowed {
            hard,
            sys_resource,
            nr_open: read("/proc/sys/fs/nr_open").trim().parse().unwrap_or(1 << 20),
            oom_score_adj: read("/proc/self/oom_score_adj").trim().parse().unwrap_or(0),
        }
    }
}

/// Checks a limit as the kernel will: soft at most hard, a hard limit above boxr's own only
/// with `CAP_SYS_RESOURCE`, open files at most `fs.nr_open`.
pub fn check_rlimit(limit: Rlimit, allowed: &LimitsAllowed) -> Result<(), String> {
    let show = |v: u64| if v == RLIM_INFINITY { "unlimited".to_string() } else { v.to_string() };
    if limit.soft > limit.hard {
        return Err(format!(
            "the soft limit {} is above the hard limit {}",
            show(limit.soft),
            show(limit.hard)
        ));
    }
    let own = allowed.hard[usize::from(limit.resource)];
    if limit.hard > own && !allowed.sys_resource {
        return Err(format!(
            "the hard limit {} is above boxr's own ({}), and raising it needs CAP_SYS_RESOURCE, which boxr lacks here",
            show(limit.hard),
            show(own)
        ));
    }
    if RLIMIT_NAMES[usize::from(limit.resource)] == "nofile" && limit.hard > allowed.nr_open {
        return Err(format!(
            "the hard limit {} is above the kernel's fs.nr_open ({})",
            show(limit.hard),
            allowed.nr_open
        ));
    }
    Ok(())
}

/// Checks an `oom_score_adj`: -1000 to 1000, and not below boxr's own without
/// `CAP_SYS_RESOURCE`.
pub fn check_oom_score_adj(value: i64, allowed: &LimitsAllowed) -> Result<i16, String> {
    let score = i16::try_from(value)
        .ok()
        .filter(|v| (-1000..=1000).contains(v))
        .ok_or_else(|| format!("{value} is not between -1000 and 1000"))?;
    if score < allowed.oom_score_adj && !allowed.sys_resource {
        return Err(format!(
            "{score} is below boxr's own ({}), and lowering it needs CAP_SYS_RESOURCE, which boxr lacks here",
            allowed.oom_score_adj
        ));
    }
    Ok(score)
}

/// Checks a kernel parameter the config sets: only those of a namespace the container has of
/// its own (`net.*`: net; the System V IPC and POSIX message queue ones: ipc;
/// `kernel.hostname` and `kernel.domainname`: uts). Anything else would change the host.
pub fn check_sysctl(key: &str, value: &str, namespaces: &[Namespace]) -> Result<(), String> {
    let name_ok = boxr_plan::is_sysctl_key(key.as_bytes())
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if !name_ok {
        return Err(format!(
            "{key:?} is not a kernel parameter name such as \"net.ipv4.ip_forward\""
        ));
    }
    if value.contains(['\0', '\n']) {
        return Err(format!("the value of {key} holds a NUL or newline"));
    }
    let ipc = key.starts_with("kernel.shm")
        || key.starts_with("kernel.msg")
        || key == "kernel.sem"
        || key.starts_with("fs.mqueue.");
    let needs = if key.starts_with("net.") {
        Namespace::Net
    } else if ipc {
        Namespace::Ipc
    } else if key == "kernel.hostname" || key == "kernel.domainname" {
        Namespace::Uts
    } else {
        return Err(format!(
            "{key} is not namespaced: setting it would change the host (allowed: net.*, kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.*, kernel.hostname, kernel.domainname)"
        ));
    };
    if !namespaces.contains(&needs) {
        return Err(format!(
            "{key} belongs to the \"{}\" namespace, which the container does not have of its own",
            needs.name()
        ));
    }
    Ok(())
}

/// The workload's security context as the state records it, for `boxr exec`: the same
/// [`ProcessContext`] the init applied to the workload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityContext {
    pub bounding: u64,
    pub permitted: u64,
    pub effective: u64,
    pub ambient: u64,
    pub no_new_privs: bool,
    pub uid: u32,
    pub gid: u32,
    /// `None`: left alone (a user namespace whose maps deny setgroups).
    pub groups: Option<Vec<u32>>,
    /// (`RLIMIT_*` number, soft, hard).
    pub rlimits: Vec<(u8, u64, u64)>,
    pub oom_score_adj: Option<i16>,
    /// The seccomp filter's instructions; empty: none. Recorded as one hex string (a few
    /// hundred instructions as JSON arrays would be most of the state file, which `boxr ps`
    /// reads for every container).
    #[serde(default, with = "bpf_hex")]
    pub seccomp: Vec<boxr_plan::BpfInstruction>,
}

/// A BPF program as a string of 16 hex digits per instruction: code, jt, jf, k.
mod bpf_hex {
    use boxr_plan::BpfInstruction;
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};
    use std::fmt::Write as _;

    pub fn serialize<S: Serializer>(program: &[BpfInstruction], s: S) -> Result<S::Ok, S::Error> {
        let mut text = String::with_capacity(program.len() * 16);
        for (code, jt, jf, k) in program {
            let _ = write!(text, "{code:04x}{jt:02x}{jf:02x}{k:08x}");
        }
        s.serialize_str(&text)
    }

    /// Also takes the list of `[code, jt, jf, k]` arrays that earlier versions recorded.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<BpfInstruction>, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Recorded {
            Hex(String),
            List(Vec<BpfInstruction>),
        }
        let text = match Recorded::deserialize(d)? {
            Recorded::List(program) => return Ok(program),
            Recorded::Hex(text) => text,
        };
        if text.len() % 16 != 0 || !text.is_ascii() {
            return Err(D::Error::custom("a seccomp program is 16 hex digits per instruction"));
        }
        let field = |i: usize, len: usize| {
            u32::from_str_radix(&text[i..i + len], 16)
                .map_err(|_| D::Error::custom(format!("{:?} is not hex", &text[i..i + len])))
        };
        (0..text.len())
            .step_by(16)
            .map(|i| {
                Ok((
                    field(i, 4)? as u16,
                    field(i + 4, 2)? as u8,
                    field(i + 6, 2)? as u8,
                    field(i + 8, 8)?,
                ))
            })
            .collect()
    }
}

impl SecurityContext {
    pub fn new(c: &ProcessContext, seccomp: &[boxr_plan::BpfInstruction]) -> SecurityContext {
        let caps = c.capabilities;
        SecurityContext {
            bounding: caps.bounding,
            permitted: caps.permitted,
            effective: caps.effective,
            ambient: caps.ambient,
            no_new_privs: c.no_new_privs,
            uid: c.uid,
            gid: c.gid,
            groups: c.groups.map(|g| g.as_slice().to_vec()),
            rlimits: c.rlimits.as_slice().iter().map(|l| (l.resource, l.soft, l.hard)).collect(),
            oom_score_adj: c.oom_score_adj,
            seccomp: seccomp.to_vec(),
        }
    }

    /// Applies the context to this (single-threaded, forked) process, in the init's order:
    /// limits and OOM score, bounding set, groups and ids (keeping the permitted capabilities
    /// across the uid change), the capability sets, the ambient set, `no_new_privs`, the seccomp
    /// filter (without `no_new_privs`, first: installing it needs `CAP_SYS_ADMIN` then). The
    /// error names the stage.
    pub fn apply(&self) -> Result<(), (&'static str, io::Error)> {
        use rustix::thread::{CapabilitySet, CapabilitySets};
        let os = |what: &'static str, ok: bool| {
            if ok { Ok(()) } else { Err((what, io::Error::last_os_error())) }
        };
        let errno = |what: &'static str| move |e: rustix::io::Errno| (what, io::Error::from(e));
        for &(resource, soft, hard) in &self.rlimits {
            let limit = libc::rlimit { rlim_cur: soft, rlim_max: hard };
            // SAFETY: setrlimit reads one rlimit, which lives for the call.
            os(
                "setting a resource limit",
                unsafe { libc::setrlimit(resource.into(), &limit) } == 0,
            )?;
        }
        if let Some(score) = self.oom_score_adj {
            fs::write("/proc/self/oom_score_adj", score.to_string())
                .map_err(|e| ("writing /proc/self/oom_score_adj", e))?;
        }
        if !self.no_new_privs {
            self.install_seccomp()?;
        }
        let last = fs::read_to_string("/proc/sys/kernel/cap_last_cap")
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
            .unwrap_or(63)
            .min(63);
        for cap in (0..=last).filter(|cap| self.bounding & (1 << cap) == 0) {
            rustix::thread::remove_capability_from_bounding_set(CapabilitySet::from_bits_retain(
                1 << cap,
            ))
            .map_err(errno("dropping capabilities from the bounding set"))?;
        }
        if let Some(groups) = &self.groups {
            // SAFETY: setgroups reads `groups.len()` gids from a live slice.
            os(
                "setting the supplementary groups",
                unsafe { libc::setgroups(groups.len(), groups.as_ptr()) } == 0,
            )?;
        }
        // SAFETY: plain id changes of this single-threaded process.
        os("setting the group id", unsafe { libc::setgid(self.gid) } == 0)?;
        if self.uid != 0 {
            rustix::thread::set_keep_capabilities(true).map_err(errno("setting the user id"))?;
        }
        // SAFETY: as above.
        os("setting the user id", unsafe { libc::setuid(self.uid) } == 0)?;
        let sets = CapabilitySets {
            effective: CapabilitySet::from_bits_retain(self.effective),
            permitted: CapabilitySet::from_bits_retain(self.permitted),
            inheritable: CapabilitySet::from_bits_retain(self.ambient),
        };
        rustix::thread::set_capabilities(None, sets)
            .map_err(errno("setting the capability sets"))?;
        for cap in (0..64).filter(|cap| self.ambient & (1u64 << cap) != 0) {
            rustix::thread::configure_capability_in_ambient_set(
                CapabilitySet::from_bits_retain(1 << cap),
                true,
            )
            .map_err(errno("raising the ambient capabilities"))?;
        }
        if self.no_new_privs {
            rustix::thread::set_no_new_privs(true).map_err(errno("setting no_new_privs"))?;
            self.install_seccomp()?;
        }
        Ok(())
    }

    fn install_seccomp(&self) -> Result<(), (&'static str, io::Error)> {
        if self.seccomp.is_empty() {
            return Ok(());
        }
        let filter: Vec<libc::sock_filter> = self
            .seccomp
            .iter()
            .map(|&(code, jt, jf, k)| libc::sock_filter { code, jt, jf, k })
            .collect();
        // Fits: the plan's encoder allowed at most 4096 instructions.
        let prog =
            libc::sock_fprog { len: filter.len() as u16, filter: filter.as_ptr().cast_mut() };
        // SAFETY: seccomp reads `prog` and the instructions it points to, which outlive the call.
        let ret = unsafe {
            libc::syscall(libc::SYS_seccomp, libc::SECCOMP_SET_MODE_FILTER, 0, &raw const prog)
        };
        match ret {
            0 => Ok(()),
            _ => Err(("installing the seccomp filter", io::Error::last_os_error())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL_41: Available = Available { mask: (1 << 41) - 1 };

    fn names(list: &[&str]) -> Vec<CapName> {
        list.iter().map(|n| CapName::parse(n).unwrap()).collect()
    }

    #[test]
    fn names_parse_with_or_without_prefix_in_any_case() {
        assert_eq!(CapName::parse("NET_ADMIN"), Ok(CapName::One(12)));
        assert_eq!(CapName::parse("cap_net_admin"), Ok(CapName::One(12)));
        assert_eq!(CapName::parse("Cap_Chown"), Ok(CapName::One(0)));
        assert_eq!(CapName::parse("checkpoint_restore"), Ok(CapName::One(40)));
        assert_eq!(CapName::parse("all"), Ok(CapName::All));
        assert!(CapName::parse("CAP_ALL").unwrap_err().contains("unknown capability"));
        assert!(CapName::parse("NET_ADMINS").is_err());
        assert!(CapName::parse("").is_err());
        assert_eq!(cap_name(21), "SYS_ADMIN");
    }

    #[test]
    fn default_set_is_dockers() {
        // docker's default CapEff for root.
        assert_eq!(capability_set(&[], &[], ALL_41), Ok(0xa80425fb));
    }

    #[test]
    fn add_and_drop_follow_docker() {
        let set = capability_set(&names(&["NET_BIND_SERVICE"]), &names(&["ALL"]), ALL_41);
        assert_eq!(set, Ok(1 << 10));
        assert_eq!(capability_set(&names(&["ALL"]), &[], ALL_41), Ok((1 << 41) - 1));
        let set = capability_set(&names(&["ALL"]), &names(&["SYS_ADMIN"]), ALL_41);
        assert_eq!(set, Ok(((1 << 41) - 1) & !(1 << 21)));
        let set =
            capability_set(&names(&["NET_ADMIN", "chown"]), &names(&["CHOWN", "KILL"]), ALL_41);
        assert_eq!(set, Ok((0xa80425fb | 1 << 12) & !(1 << 5)));
        assert_eq!(capability_set(&[], &names(&["ALL"]), ALL_41), Ok(0));
    }

    #[test]
    fn unavailable_capabilities_are_refused_when_named_and_left_out_otherwise() {
        let no_sys_resource = Available { mask: ALL_41.mask & !(1 << 24) };
        let set = capability_set(&names(&["ALL"]), &[], no_sys_resource);
        assert_eq!(set, Ok(no_sys_resource.mask));
        let named = capability_set(&names(&["SYS_RESOURCE"]), &[], no_sys_resource);
        assert_eq!(named, Err(24));
        let no_net_raw = Available { mask: ALL_41.mask & !(1 << 13) };
        assert_eq!(capability_set(&[], &[], no_net_raw), Ok(0xa80425fb & !(1 << 13)));
    }

    #[test]
    fn root_gets_the_set_and_other_users_only_their_ambient_capabilities() {
        let root = capability_sets(0xff, 0, 0x1);
        assert_eq!(
            root,
            Capabilities { bounding: 0xff, permitted: 0xff, effective: 0xff, ambient: 0 }
        );
        let user = capability_sets(0xff, 1000, 0x101);
        assert_eq!(
            user,
            Capabilities { bounding: 0xff, permitted: 0x1, effective: 0x1, ambient: 0x1 }
        );
        assert_eq!(
            capability_sets(0xff, 1000, 0),
            Capabilities { bounding: 0xff, ..Default::default() }
        );
        assert!(user.is_consistent() && root.is_consistent());
    }

    fn allowed() -> LimitsAllowed {
        let mut hard = [RLIM_INFINITY; boxr_plan::RLIMITS];
        hard[7] = 20000;
        LimitsAllowed { hard, sys_resource: false, nr_open: 1 << 20, oom_score_adj: 0 }
    }

    #[test]
    fn rlimit_names_are_dockers_or_ocis() {
        assert_eq!(rlimit_resource("nofile"), Ok(7));
        assert_eq!(rlimit_resource("RLIMIT_NOFILE"), Ok(7));
        assert_eq!(rlimit_resource("Core"), Ok(4));
        assert_eq!(rlimit_resource("rttime"), Ok(15));
        assert!(rlimit_resource("files").unwrap_err().contains("unknown resource limit \"files\""));
    }

    #[test]
    fn rlimits_are_checked_as_the_kernel_would() {
        let limit = |resource, soft, hard| Rlimit { resource, soft, hard };
        assert_eq!(check_rlimit(limit(7, 1024, 2048), &allowed()), Ok(()));
        assert_eq!(check_rlimit(limit(7, 20000, 20000), &allowed()), Ok(()));
        let e = check_rlimit(limit(7, 2048, 1024), &allowed()).unwrap_err();
        assert_eq!(e, "the soft limit 2048 is above the hard limit 1024");
        let e = check_rlimit(limit(7, 1, 20001), &allowed()).unwrap_err();
        assert!(e.starts_with("the hard limit 20001 is above boxr's own (20000)"), "{e}");
        let e = check_rlimit(limit(7, 1, RLIM_INFINITY), &allowed()).unwrap_err();
        assert!(e.starts_with("the hard limit unlimited is above"), "{e}");
        let privileged = LimitsAllowed { sys_resource: true, ..allowed() };
        assert_eq!(check_rlimit(limit(7, 1, 30000), &privileged), Ok(()));
        let e = check_rlimit(limit(7, 1, 2 << 20), &privileged).unwrap_err();
        assert!(e.contains("fs.nr_open"), "{e}");
        assert_eq!(check_rlimit(limit(4, 0, RLIM_INFINITY), &allowed()), Ok(()));
    }

    #[test]
    fn oom_score_adj_is_checked() {
        assert_eq!(check_oom_score_adj(500, &allowed()), Ok(500));
        assert_eq!(check_oom_score_adj(0, &allowed()), Ok(0));
        assert!(
            check_oom_score_adj(1001, &allowed()).unwrap_err().contains("between -1000 and 1000")
        );
        assert!(check_oom_score_adj(-1, &allowed()).unwrap_err().contains("CAP_SYS_RESOURCE"));
        let privileged = LimitsAllowed { sys_resource: true, ..allowed() };
        assert_eq!(check_oom_score_adj(-1000, &privileged), Ok(-1000));
    }

    #[test]
    fn only_namespaced_sysctls_of_the_containers_namespaces_are_allowed() {
        let all = [Namespace::Net, Namespace::Ipc, Namespace::Uts];
        for key in [
            "net.ipv4.ip_forward",
            "kernel.shmmax",
            "kernel.msgmnb",
            "kernel.sem",
            "fs.mqueue.msg_max",
            "kernel.domainname",
        ] {
            assert_eq!(check_sysctl(key, "1", &all), Ok(()), "{key}");
        }
        let e = check_sysctl("net.ipv4.ip_forward", "1", &[Namespace::Ipc]).unwrap_err();
        assert!(e.contains("the \"net\" namespace"), "{e}");
        let e = check_sysctl("kernel.shmmax", "1", &[Namespace::Net]).unwrap_err();
        assert!(e.contains("the \"ipc\" namespace"), "{e}");
        for key in ["kernel.panic", "vm.swappiness", "fs.file-max", "kernel.hostnames"] {
            assert!(check_sysctl(key, "1", &all).unwrap_err().contains("not namespaced"), "{key}");
        }
        for key in ["net..x", "net/ipv4", "../x", "net.ipv4.ip forward"] {
            assert!(
                check_sysctl(key, "1", &all).unwrap_err().contains("not a kernel parameter name"),
                "{key}"
            );
        }
        assert!(check_sysctl("net.ipv4.ip_forward", "1\n0", &all).is_err());
    }

    #[test]
    fn the_state_records_the_plans_context() {
        let context = ProcessContext {
            capabilities: capability_sets(0xff, 1000, 0x1),
            no_new_privs: true,
            uid: 1000,
            gid: 100,
            groups: boxr_plan::Groups::new(&[5, 6]),
            rlimits: boxr_plan::Rlimits::new(&[Rlimit { resource: 7, soft: 1, hard: 2 }]).unwrap(),
            oom_score_adj: Some(-3),
        };
        let recorded = SecurityContext::new(&context, &[(6, 0, 0, 0x7fff_0000)]);
        assert_eq!((recorded.bounding, recorded.permitted, recorded.ambient), (0xff, 0x1, 0x1));
        assert_eq!(
            (recorded.uid, recorded.gid, recorded.groups.as_deref()),
            (1000, 100, Some(&[5, 6][..]))
        );
        assert_eq!(
            (recorded.rlimits.as_slice(), recorded.oom_score_adj),
            (&[(7, 1, 2)][..], Some(-3))
        );
        assert_eq!(recorded.seccomp, [(6, 0, 0, 0x7fff_0000)]);
        let json = serde_json::to_string(&recorded).unwrap();
        assert!(json.contains("\"seccomp\":\"000600007fff0000\""), "{json}");
        assert_eq!(serde_json::from_str::<SecurityContext>(&json).unwrap(), recorded);
        // What earlier versions recorded still reads; a damaged program does not.
        let old = json.replace("\"000600007fff0000\"", "[[6,0,0,2147418112]]");
        assert_eq!(serde_json::from_str::<SecurityContext>(&old).unwrap(), recorded);
        for bad in ["\"0006\"", "\"00060000zzzz0000\""] {
            let damaged = json.replace("\"000600007fff0000\"", bad);
            assert!(serde_json::from_str::<SecurityContext>(&damaged).is_err(), "{bad}");
        }
    }

    #[test]
    fn available_set_comes_from_the_kernel() {
        let ns = Available::detect(true);
        assert_eq!(ns.mask & 1, 1);
        assert_eq!((ns.mask + 1) & ns.mask, 0, "a contiguous mask from bit 0");
        assert_eq!(Available::detect(false).mask & !ns.mask, 0);
    }
}
