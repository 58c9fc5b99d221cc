//! boxr-init: PID 1 of a boxr container.
//!
//! A static, single-threaded, `no_std` binary without libc or allocator. It reads the plan the
//! frontend sends on fd 3, executes its setup steps (mounts, pivot, hostname...), forks the
//! workload, and then forwards signals to it and reaps every child until it exits. Failures go
//! back to the frontend as `Report`s on fd 3; the exit code is then 125. With the plan's `TTY`
//! flag it also gives the workload a terminal, whose master it sends to the frontend on fd 4.
#![no_std]
#![no_main]
#![deny(clippy::undocumented_unsafe_blocks)]

mod cbuf;
mod credentials;
mod exec;
mod lockdown;
mod mounts;
mod net;
mod pid1;
mod report;
mod resolve;
mod rt;
mod sysctl;
mod tty;

use boxr_plan::{MAX_PLAN_LEN, Plan, ROOTFS_FD, Report, Step, flags};
use core::ffi::CStr;
use core::slice;
use mounts::Rootfs;
use report::{SETUP_FAILED, errno, fail, plan_fd};
use rustix::fd::BorrowedFd;
use rustix::fs::Mode;
use rustix::io::{Errno, FdFlags, Result, fcntl_setfd, read};
use rustix::process::{Signal, chdir, getpid, kill_process, set_child_subreaper, umask};
use rustix::system::sethostname;
use rustix::thread::{UnshareFlags, set_name, unshare_unsafe};

// rustix's libc-like runtime API (fork, execve, raw signal calls) lives under a name that
// changes between versions: hence the exact rustix version in Cargo.toml.
use rustix::runtime_448b8ad740e2a26f as runtime;

/// The sequence, entered from `_start`.
fn main() -> ! {
    pid1::block_signals();
    // Exec'd from a sealed memfd, the kernel named the process after it ("memfd:boxr-init").
    let _ = set_name(c"boxr-init");
    let plan = receive_plan();
    if plan.flags & flags::SUBREAPER != 0 {
        if let Err(e) = set_child_subreaper(Some(getpid())) {
            fail(Report::BadPlan { errno: errno(e) });
        }
    }
    umask(Mode::empty());
    set_up_container(&plan);
    let terminal = (plan.flags & flags::TTY != 0).then(tty::open_terminal);
    lockdown::make_non_dumpable();
    let workload = pid1::spawn_workload(&plan, terminal);
    if lockdown::drop_capabilities().is_err() {
        // Lowering its own capabilities does not fail in practice; should it, the init does
        // not go on with them.
        let _ = kill_process(workload, Signal::KILL);
        runtime::exit_group(SETUP_FAILED);
    }
    pid1::close_inherited_fds();
    pid1::run_as_pid1(workload)
}

/// Reads the plan: one message, one `read` (the frontend sends it on a `SOCK_SEQPACKET` socket,
/// but a file works too). EOF means the frontend is gone: exit without a word.
fn receive_plan() -> Plan<'static> {
    static mut PLAN: [u8; MAX_PLAN_LEN + 1] = [0; MAX_PLAN_LEN + 1];
    // SAFETY: this is the only reference ever made to PLAN, and the init is single-threaded.
    let buf: &'static mut [u8] =
        unsafe { slice::from_raw_parts_mut((&raw mut PLAN).cast(), MAX_PLAN_LEN + 1) };
    // The workload must not inherit the socket; `pid1` closes it in the init. Nor the idmapped
    // rootfs mount, if the frontend passed one (`AttachRootfs` closes it).
    let _ = fcntl_setfd(plan_fd(), FdFlags::CLOEXEC);
    // SAFETY: only the flags of ROOTFS_FD change, if it is open; nothing owns it yet.
    let _ = fcntl_setfd(unsafe { BorrowedFd::borrow_raw(ROOTFS_FD) }, FdFlags::CLOEXEC);
    let len = match read(plan_fd(), &mut *buf) {
        Ok(0) => runtime::exit_group(SETUP_FAILED),
        Ok(len) if len > MAX_PLAN_LEN => fail(Report::BadPlan { errno: errno(Errno::TOOBIG) }),
        Ok(len) => len,
        Err(e) => fail(Report::BadPlan { errno: errno(e) }),
    };
    match Plan::parse(&buf[..len]) {
        Ok(plan) => plan,
        Err(_) => fail(Report::BadPlan { errno: errno(Errno::INVAL) }),
    }
}

/// Executes the setup steps in order; the first failure is reported with the step's index.
fn set_up_container(plan: &Plan<'_>) {
    let mut rootfs = Rootfs::new();
    for (index, step) in (0u16..).zip(plan.steps()) {
        // Never Err: the plan was validated by `Plan::parse`.
        let Ok(step) = step else { fail(Report::BadPlan { errno: errno(Errno::INVAL) }) };
        if let Err(e) = run_step(&mut rootfs, step) {
            fail(Report::StepFailed { step: index, errno: errno(e) });
        }
    }
}

fn run_step(rootfs: &mut Rootfs, step: Step<&CStr>) -> Result<()> {
    match step {
        Step::MakeMountsPrivate => mounts::make_mounts_private(),
        Step::MountRootfs { source, target, fstype, flags, data } => {
            rootfs.mount_rootfs(source, target, fstype, flags, data)
        }
        Step::AttachRootfs { target } => rootfs.attach_rootfs(target),
        Step::MountFs { fstype, target, flags, data, strict } => {
            rootfs.mount_fs(fstype, target, flags, data, strict)
        }
        Step::Bind { source, target, flags, file } => {
            rootfs.bind_mount(source, target, flags, file)
        }
        Step::Mknod { target, mode, major, minor } => {
            rootfs.make_device(target, mode, major, minor)
        }
        Step::Symlink { to, link } => rootfs.make_symlink(to, link),
        Step::PivotRoot => rootfs.pivot_into(),
        Step::RemountRootReadonly => mounts::remount_root_readonly(),
        Step::SetHostname { name } => sethostname(name.to_bytes()),
        Step::Chdir { path } => chdir(path),
        // SAFETY: a new cgroup namespace changes no file table or memory the init relies on
        // (what makes unshare unsafe in general is CLONE_FILES and CLONE_FS).
        Step::UnshareCgroupNamespace => unsafe { unshare_unsafe(UnshareFlags::NEWCGROUP) },
        Step::MaskPath { path } => rootfs.mask_path(path),
        Step::ReadonlyPath { path } => rootfs.make_path_readonly(path),
        Step::Sysctl { key, value } => sysctl::write_sysctl(key, value),
        Step::BringUpLoopback => net::bring_up_loopback(),
        Step::AwaitFrontend => report::await_frontend(),
    }
}
