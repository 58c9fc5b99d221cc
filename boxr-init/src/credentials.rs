//! The workload's security context ([`ProcessContext`]), applied in its process right before
//! the exec, in this order: resource limits and `oom_score_adj` (raising a hard limit or
//! lowering the score may need `CAP_SYS_RESOURCE`); the capability bounding set (which needs
//! `CAP_SETPCAP`, still held); the supplementary groups, group and user (keeping the permitted
//! capabilities across the uid change); the effective, permitted and inheritable sets; the
//! ambient set; `no_new_privs`; and last the seccomp filter (without `no_new_privs` it comes
//! first instead: installing it then needs `CAP_SYS_ADMIN`, still held at the start).

use crate::report::{errno, fail};
use crate::sysctl::write_file;
use boxr_plan::{ContextStage, Filter, MAX_FILTER_LEN, MAX_GROUPS, ProcessContext};
use boxr_plan::{RLIM_INFINITY, Report};
use core::arch::asm;
use rustix::io::{Errno, Result};
use rustix::path::DecInt;
use rustix::process::{Gid, Resource, Rlimit, Uid, setrlimit};
use rustix::thread::{CapabilitySet, CapabilitySets, configure_capability_in_ambient_set};
use rustix::thread::{remove_capability_from_bounding_set, set_capabilities, set_no_new_privs};
use rustix::thread::{set_keep_capabilities, set_thread_gid, set_thread_groups, set_thread_uid};

/// Applies `context` and the `seccomp` filter to this process; reports the first failure and
/// exits.
pub fn apply(context: &ProcessContext, seccomp: &Filter<'_>) {
    for limit in context.rlimits.as_slice() {
        let value = |v| if v == RLIM_INFINITY { None } else { Some(v) };
        let new = Rlimit { current: value(limit.soft), maximum: value(limit.hard) };
        check(ContextStage::Rlimit, setrlimit(resource(limit.resource), new));
    }
    if let Some(score) = context.oom_score_adj {
        let text = DecInt::new(score);
        check(ContextStage::OomScoreAdj, write_file(c"/proc/self/oom_score_adj", text.as_bytes()));
    }
    if !context.no_new_privs {
        check(ContextStage::Seccomp, install_filter(seccomp));
    }
    let caps = &context.capabilities;
    check(ContextStage::BoundingSet, drop_from_bounding_set(caps.bounding));
    if let Some(groups) = &context.groups {
        let mut gids = [Gid::ROOT; MAX_GROUPS];
        for (slot, &gid) in gids.iter_mut().zip(groups.as_slice()) {
            *slot = Gid::from_raw(gid);
        }
        check(ContextStage::Groups, set_thread_groups(&gids[..groups.as_slice().len()]));
    }
    // Never u32::MAX: the plan was validated. setgid and setuid as root set the real, effective
    // and saved ids.
    check(ContextStage::Gid, set_thread_gid(Gid::from_raw(context.gid)));
    if context.uid != 0 {
        // Else leaving uid 0 clears the permitted set, and the capability step below could not
        // keep what it should.
        check(ContextStage::Uid, set_keep_capabilities(true));
    }
    check(ContextStage::Uid, set_thread_uid(Uid::from_raw(context.uid)));
    // The inheritable set holds the ambient capabilities only: the kernel drops an ambient
    // capability that is not inheritable.
    let sets = CapabilitySets {
        effective: CapabilitySet::from_bits_retain(caps.effective),
        permitted: CapabilitySet::from_bits_retain(caps.permitted),
        inheritable: CapabilitySet::from_bits_retain(caps.ambient),
    };
    check(ContextStage::Capabilities, set_capabilities(None, sets));
    check(ContextStage::AmbientSet, raise_ambient(caps.ambient));
    if context.no_new_privs {
        check(ContextStage::NoNewPrivs, set_no_new_privs(true));
        check(ContextStage::Seccomp, install_filter(seccomp));
    }
}

/// `struct sock_filter`.
#[repr(C)]
#[derive(Clone, Copy)]
struct SockFilter {
    code: u16,
    jt: u8,
    jf: u8,
    k: u32,
}

/// `struct sock_fprog`.
#[repr(C)]
struct SockFprog {
    len: u16,
    filter: *const SockFilter,
}

/// `seccomp(SECCOMP_SET_MODE_FILTER, 0, &program)`; nothing for an empty filter.
fn install_filter(filter: &Filter<'_>) -> Result<()> {
    const SYS_SECCOMP: usize = 317;
    const SECCOMP_SET_MODE_FILTER: usize = 1;
    if filter.is_empty() {
        return Ok(());
    }
    // Copied out of the plan, whose bytes need not be aligned for the kernel's struct.
    let mut program = [SockFilter { code: 0, jt: 0, jf: 0, k: 0 }; MAX_FILTER_LEN];
    for (slot, (code, jt, jf, k)) in program.iter_mut().zip(filter.iter()) {
        *slot = SockFilter { code, jt, jf, k };
    }
    // Fits: the plan holds at most MAX_FILTER_LEN (4096) instructions.
    let prog = SockFprog { len: filter.len() as u16, filter: program.as_ptr() };
    let ret: isize;
    // SAFETY: the seccomp system call reads `prog` and the instructions it points to, which
    // outlive the call, and writes no memory of this process; rcx and r11 are clobbered by
    // `syscall`, as declared.
    unsafe {
        asm!("syscall", inlateout("rax") SYS_SECCOMP as isize => ret,
            in("rdi") SECCOMP_SET_MODE_FILTER, in("rsi") 0usize, in("rdx") &raw const prog,
            lateout("rcx") _, lateout("r11") _, options(nostack));
    }
    match ret {
        0 => Ok(()),
        // A negative errno, -4095..-1.
        _ => Err(Errno::from_raw_os_error(-ret as i32)),
    }
}

fn check(stage: ContextStage, result: Result<()>) {
    if let Err(e) = result {
        fail(Report::ContextFailed { stage, errno: errno(e) });
    }
}

/// Drops every capability the kernel knows that `keep` does not hold.
fn drop_from_bounding_set(keep: u64) -> Result<()> {
    for cap in (0..u64::BITS).filter(|cap| keep & (1 << cap) == 0) {
        match remove_capability_from_bounding_set(CapabilitySet::from_bits_retain(1 << cap)) {
            Ok(()) => {}
            // Past the kernel's last capability: so are all that follow.
            Err(Errno::INVAL) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn raise_ambient(ambient: u64) -> Result<()> {
    for cap in (0..u64::BITS).filter(|cap| ambient & (1 << cap) != 0) {
        configure_capability_in_ambient_set(CapabilitySet::from_bits_retain(1 << cap), true)?;
    }
    Ok(())
}

/// The resource of a kernel `RLIMIT_*` number (below `RLIMITS`: the plan was validated).
fn resource(n: u8) -> Resource {
    const BY_NUMBER: [Resource; boxr_plan::RLIMITS] = [
        Resource::Cpu,
        Resource::Fsize,
        Resource::Data,
        Resource::Stack,
        Resource::Core,
        Resource::Rss,
        Resource::Nproc,
        Resource::Nofile,
        Resource::Memlock,
        Resource::As,
        Resource::Locks,
        Resource::Sigpending,
        Resource::Msgqueue,
        Resource::Nice,
        Resource::Rtprio,
        Resource::Rttime,
    ];
    BY_NUMBER[usize::from(n) % boxr_plan::RLIMITS]
}
