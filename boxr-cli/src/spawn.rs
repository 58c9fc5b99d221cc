//! Starting boxr-init: the only place that calls clone.
//!
//! The frontend clones a child with exactly the plan's namespace flags (clone3, with a pidfd),
//! the child puts its end of a `SOCK_SEQPACKET` socketpair on fd [`PLAN_FD`] (and, for a plan
//! with [`flags::TTY`], its end of the console socket on fd [`CONSOLE_FD`]) and execs the
//! static boxr-init; the frontend writes the user namespace's id maps if there is one and then
//! sends the plan, which is also the init's signal to go on. The caller must have blocked the
//! signals it forwards before calling [`spawn`] (the init inherits them blocked, so none sent
//! early is lost) and must not have started any thread.

use crate::elf;
use crate::errno::describe;
use crate::plan::Plan;
use crate::userns::{self, IdMaps};
use anyhow::{Context, Result, anyhow, bail};
use boxr_plan::{CONSOLE_FD, FRONTEND_READY, PLAN_FD, ROOTFS_FD, Report, flags};
use rustix::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use rustix::net::{
    AddressFamily, SendAncillaryBuffer, SendAncillaryMessage, SendFlags, SocketFlags, SocketType,
};
use rustix::process::{Pid, Signal, WaitId, WaitIdOptions, WaitIdStatus};
use std::ffi::CStr;
use std::fs::File;
use std::io::IoSlice;
use std::mem::MaybeUninit;
use std::path::PathBuf;
use std::slice;

/// clone3's flag for a child born into a cgroup (`CLONE_INTO_CGROUP`, a 64-bit flag that libc's
/// `c_int` constant cannot hold).
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// The one-byte message that tells the cloned child its user namespace's id maps are written;
/// it carries the idmapped rootfs mount, if the plan has one, for the child to place on
/// [`ROOTFS_FD`].
const MAPS_WRITTEN: u8 = 1;

/// The environment variable that names the boxr-init binary to use.
pub const INIT_ENV: &str = "BOXR_INIT";

/// A checked boxr-init executable: a sealed in-memory copy of the file at `path`, which is what
/// every container execs.
pub struct InitBinary {
    file: File,
    pub path: PathBuf,
}

impl InitBinary {
    /// Finds boxr-init: `$BOXR_INIT`, else beside the running `boxr` executable.
    pub fn locate() -> Result<InitBinary> {
        let path = match std::env::var_os(INIT_ENV) {
            Some(path) => PathBuf::from(path),
            None => {
                let exe = std::env::current_exe()
                    .context("cannot find the boxr executable's own path")?;
                exe.with_file_name("boxr-init")
            }
        };
        let file = File::open(&path).map_err(|e| {
            anyhow!(
                "cannot open boxr-init at {}: {} (build it with `cargo xtask build`, or set {INIT_ENV} to its path)",
                path.display(),
                describe(&e)
            )
        })?;
        let file = sealed_copy(&file).map_err(|e| {
            anyhow!(
                "cannot copy boxr-init at {} into sealed memory: {}",
                path.display(),
                describe(&e)
            )
        })?;
        elf::check_static(&file).map_err(|e| {
            anyhow!("boxr-init at {} is {e}; rebuild it with `cargo xtask build`", path.display())
        })?;
        Ok(InitBinary { file, path })
    }

    /// The open executable, for a caller that must keep it across closing other fds.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

/// A copy of `file` in a sealed memfd (CVE-2019-5736): the init's `/proc/self/exe` is then
/// this copy, which nobody can write, shrink or grow, and never the host's file, which a
/// container process that reached it could otherwise overwrite for the next `boxr` to run.
fn sealed_copy(file: &File) -> std::io::Result<File> {
    use rustix::fs::{MemfdFlags, SealFlags};
    let flags = MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING;
    // Executable even where `vm.memfd_noexec` makes memfds non-executable by default; kernels
    // before 6.3 know no MFD_EXEC (EINVAL), and their memfds are always executable.
    let memfd = match rustix::fs::memfd_create(c"boxr-init", flags | MemfdFlags::EXEC) {
        Err(rustix::io::Errno::INVAL) => rustix::fs::memfd_create(c"boxr-init", flags)?,
        memfd => memfd?,
    };
    let len = file.metadata()?.len();
    let mut offset = 0;
    while offset < len {
        let left = usize::try_from(len - offset).unwrap_or(usize::MAX);
        if rustix::fs::sendfile(&memfd, file, Some(&mut offset), left)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
    }
    rustix::fs::fcntl_add_seals(
        &memfd,
        SealFlags::SEAL | SealFlags::SHRINK | SealFlags::GROW | SealFlags::WRITE,
    )?;
    Ok(File::from(memfd))
}

/// A started init. Dropping it before [`Container::wait`] kills and reaps the init, so no
/// failure path leaves a container process behind.
pub struct Container {
    pub pid: Pid,
    pub pidfd: OwnedFd,
    /// The frontend's end of the plan socket: reports arrive here, EOF once the workload
    /// has exec'd (or failed to).
    pub channel: OwnedFd,
    /// The frontend's end of the console socket, for a plan with [`flags::TTY`]: the init
    /// sends the master of the workload's terminal here (see [`crate::tty::receive_master`]).
    pub console: Option<OwnedFd>,
    reaped: bool,
}

impl Container {
    /// Forwards `signal` to the init (which forwards it to the workload).
    pub fn signal(&self, signal: Signal) -> Result<()> {
        match rustix::process::pidfd_send_signal(&self.pidfd, signal) {
            Ok(()) | Err(rustix::io::Errno::SRCH) => Ok(()),
            Err(e) => Err(anyhow!("cannot signal the container's init: {}", describe(&e.into()))),
        }
    }

    /// Reaps the init once it has exited (blocks until then).
    pub fn wait(&mut self) -> Result<WaitIdStatus> {
        loop {
            match rustix::process::waitid(WaitId::PidFd(self.pidfd.as_fd()), WaitIdOptions::EXITED)
            {
                Ok(Some(status)) => {
                    self.reaped = true;
                    return Ok(status);
                }
                Ok(None) | Err(rustix::io::Errno::INTR) => continue,
                Err(e) => bail!("cannot wait for the container's init: {}", describe(&e.into())),
            }
        }
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if !self.reaped {
            let _ = self.signal(Signal::KILL);
            let _ = self.wait();
        }
    }
}

/// `struct clone_args` of clone3(2).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// Clones boxr-init into the plan's namespaces — born into the cgroup v2 directory
/// `into_cgroup` if given (`CLONE_INTO_CGROUP`: no later move) —, hands it the plan, and runs
/// `while_setting_up` with its pid while the init sets the container up: the frontend's part,
/// which the init must find done before its workload starts (moving it into its cgroup on
/// v1, which waits for an RCU grace period, several milliseconds on a busy host; the
/// network). A plan that [awaits the frontend](Plan::await_frontend) then gets the word.
pub fn spawn(
    init: &InitBinary,
    plan: &Plan,
    into_cgroup: Option<BorrowedFd<'_>>,
    while_setting_up: impl FnOnce(Pid) -> Result<()>,
) -> Result<Container> {
    let bytes = plan.encode().context("cannot encode the plan")?;
    let (parent_end, child_end) = socket_pair("the plan socket")?;
    let console = if plan.init_flags & flags::TTY != 0 {
        let (parent_end, child_end) = socket_pair("the console socket")?;
        Some((parent_end, above_inherited(&child_end, "the console socket")?))
    } else {
        None
    };
    let child_end = above_inherited(&child_end, "the plan socket")?;
    let init_fd = above_inherited(&init.file, "the boxr-init fd")?;
    let argv: [*const libc::c_char; 2] = [c"boxr-init".as_ptr(), std::ptr::null()];
    let envp: [*const libc::c_char; 1] = [std::ptr::null()];

    let mut pidfd: libc::c_int = -1;
    let args = CloneArgs {
        flags: plan.clone_flags
            | libc::CLONE_PIDFD as u64
            | into_cgroup.map_or(0, |_| CLONE_INTO_CGROUP),
        pidfd: &raw mut pidfd as u64,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: into_cgroup.map_or(0, |fd| fd.as_raw_fd() as u64),
        ..CloneArgs::default()
    };
    // SAFETY: boxr is single-threaded here; `pidfd` outlives the call.
    let ret = unsafe { clone3(&args) };
    if ret == 0 {
        // SAFETY: in the child of a fork of a single-threaded process; exec_init only makes
        // async-signal-safe system calls and never returns.
        unsafe {
            exec_init(
                child_end.as_raw_fd(),
                console.as_ref().map(|(_, child_end)| child_end.as_raw_fd()),
                init_fd.as_raw_fd(),
                plan.id_maps.is_some(),
                &argv,
                &envp,
            )
        }
    }
    if ret < 0 {
        let err = std::io::Error::last_os_error();
        bail!(
            "cannot create the container's namespaces ({}): {}",
            plan_namespace_hint(plan.clone_flags),
            describe(&err)
        );
    }
    drop(child_end);
    drop(init_fd);
    // Only the init holds the console socket's other end now: EOF if it exits before sending.
    let console = console.map(|(parent_end, _)| parent_end);
    // SAFETY: clone3 stored a new pidfd, owned by nobody else, in `pidfd`.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
    let pid = Pid::from_raw(ret as i32).ok_or_else(|| anyhow!("clone3 returned pid {ret}"))?;
    let container = Container { pid, pidfd, channel: parent_end, console, reaped: false };
    if let Some(maps) = &plan.id_maps {
        maps.write(pid)?;
        let tree = match &plan.idmapped_rootfs {
            Some(rootfs) => Some(userns::idmapped_rootfs(pid, rootfs)?),
            None => None,
        };
        // The child waits for this before exec'ing the init: an exec with no uid mapped
        // yet would run it as an unmapped, non-root user and drop all its capabilities.
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        let fds = tree.as_ref().map(AsFd::as_fd);
        if let Some(fds) = fds.as_ref() {
            control.push(SendAncillaryMessage::ScmRights(slice::from_ref(fds)));
        }
        rustix::net::sendmsg(
            &container.channel,
            &[IoSlice::new(&[MAPS_WRITTEN])],
            &mut control,
            SendFlags::empty(),
        )
        .map_err(|e| anyhow!("cannot signal boxr-init's process: {}", describe(&e.into())))?;
    }
    rustix::net::send(&container.channel, &bytes, SendFlags::empty())
        .map_err(|e| anyhow!("cannot send the plan to boxr-init: {}", describe(&e.into())))?;
    while_setting_up(pid)?;
    if plan.awaits_frontend() {
        // Fails only if the init is gone already; its report (or its status) tells why.
        let _ = rustix::net::send(&container.channel, &[FRONTEND_READY], SendFlags::empty());
    }
    Ok(container)
}

/// Runs `work` in a child process that is root in a new user namespace with `maps` (a rootless
/// container's), where it may touch the files the container's users own on the host (its
/// writable layer, which holds subordinate uids the user cannot remove itself); `Ok` if `work`
/// succeeded there.
pub fn in_user_namespace(maps: &IdMaps, work: impl FnOnce() -> std::io::Result<()>) -> Result<()> {
    let (parent_end, child_end) = socket_pair("a socket to a user namespace")?;
    let args = CloneArgs {
        flags: libc::CLONE_NEWUSER as u64,
        exit_signal: libc::SIGCHLD as u64,
        ..CloneArgs::default()
    };
    // SAFETY: boxr is single-threaded here (`rm` starts no thread).
    let ret = unsafe { clone3(&args) };
    if ret == 0 {
        drop(parent_end);
        let result = become_namespace_root(&child_end).and_then(|()| work());
        // The outcome goes back as an errno, 0 for success.
        let errno = result.err().map_or(0, |e| e.raw_os_error().unwrap_or(libc::EIO));
        let _ = rustix::io::write(&child_end, &errno.to_ne_bytes());
        // SAFETY: ends the child without running the parent's exit handlers or destructors.
        unsafe { libc::_exit(i32::from(errno != 0)) }
    }
    if ret < 0 {
        bail!("cannot create a user namespace: {}", describe(&std::io::Error::last_os_error()));
    }
    drop(child_end);
    let pid = Pid::from_raw(ret as i32).ok_or_else(|| anyhow!("clone3 returned pid {ret}"))?;
    let written = maps.write(pid).and_then(|()| {
        rustix::io::write(&parent_end, &[MAPS_WRITTEN])
            .map(drop)
            .map_err(|e| anyhow!("cannot signal the user namespace's process: {e}"))
    });
    let mut errno = [0u8; 4];
    let reported =
        written.is_ok() && rustix::io::read(&parent_end, &mut errno).is_ok_and(|n| n == 4);
    drop(parent_end);
    let status = loop {
        match rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty()) {
            Ok(Some((_, status))) => break status,
            Ok(None) | Err(rustix::io::Errno::INTR) => continue,
            Err(e) => bail!("cannot wait for the user namespace's process: {e}"),
        }
    };
    written?;
    match (i32::from_ne_bytes(errno), status.exit_status()) {
        (0, Some(0)) if reported => Ok(()),
        (errno, _) if reported => {
            Err(anyhow!("{}", describe(&std::io::Error::from_raw_os_error(errno))))
        }
        _ => Err(anyhow!("its process ended without a word ({status:?})")),
    }
}

/// In the child of `in_user_namespace`: waits for its maps, then becomes the namespace's root.
fn become_namespace_root(channel: &OwnedFd) -> std::io::Result<()> {
    use rustix::process::{Gid, Uid};
    let mut byte = [0u8];
    if rustix::io::read(channel, &mut byte)? != 1 || byte[0] != MAPS_WRITTEN {
        return Err(std::io::Error::from_raw_os_error(libc::ECONNRESET));
    }
    rustix::thread::set_thread_res_gid(Gid::ROOT, Gid::ROOT, Gid::ROOT)?;
    rustix::thread::set_thread_res_uid(Uid::ROOT, Uid::ROOT, Uid::ROOT)?;
    Ok(())
}

/// clone3 with `args`, without `CLONE_VM`: like fork, 0 in the child, the child's pid in the
/// parent, -1 on failure (errno set).
///
/// # Safety
/// The calling process must be single-threaded (the child gets a copy of this thread only), and
/// any pointer in `args` must stay valid for the call.
unsafe fn clone3(args: &CloneArgs) -> libc::c_long {
    // SAFETY: `args` is a valid clone_args of the size passed; the caller vouches for the rest.
    unsafe { libc::syscall(libc::SYS_clone3, std::ptr::from_ref(args), size_of::<CloneArgs>()) }
}

fn socket_pair(what: &str) -> Result<(OwnedFd, OwnedFd)> {
    rustix::net::socketpair(AddressFamily::UNIX, SocketType::SEQPACKET, SocketFlags::CLOEXEC, None)
        .map_err(|e| anyhow!("cannot create {what}: {}", describe(&e.into())))
}

/// A close-on-exec duplicate of `fd` above the fds the child places for the init, so that
/// placing one cannot clobber another.
fn above_inherited(fd: &impl AsFd, what: &str) -> Result<OwnedFd> {
    rustix::io::fcntl_dupfd_cloexec(fd, ROOTFS_FD + 1)
        .map_err(|e| anyhow!("cannot duplicate {what}: {}", describe(&e.into())))
}

fn plan_namespace_hint(flags: u64) -> String {
    let names = [
        (libc::CLONE_NEWNS, "mount"),
        (libc::CLONE_NEWPID, "pid"),
        (libc::CLONE_NEWUTS, "uts"),
        (libc::CLONE_NEWIPC, "ipc"),
        (libc::CLONE_NEWNET, "net"),
        (libc::CLONE_NEWUSER, "user"),
        (libc::CLONE_NEWCGROUP, "cgroup"),
    ];
    let set: Vec<_> =
        names.iter().filter(|(f, _)| flags & *f as u64 != 0).map(|(_, n)| *n).collect();
    set.join(", ")
}

/// The cloned child: put the plan socket on `PLAN_FD` and the console socket, if any, on
/// `CONSOLE_FD` (then also leave boxr's process group), make every other inherited fd
/// close-on-exec, wait for the id maps if it is in a new user namespace, and exec boxr-init. Reports to the frontend and exits if the exec fails.
///
/// # Safety
/// Only to be called in the child right after clone; `argv` and `envp` are NULL-terminated; the
/// fds are all above `CONSOLE_FD`.
unsafe fn exec_init(
    channel: RawFd,
    console: Option<RawFd>,
    init: RawFd,
    wait_for_maps: bool,
    argv: &[*const libc::c_char; 2],
    envp: &[*const libc::c_char; 1],
) -> ! {
    let empty: &CStr = c"";
    // SAFETY: plain system calls on fds this process owns; the pointers are valid C strings
    // and NULL-terminated arrays that live in this (copied) address space.
    unsafe {
        // The init dies with the frontend; with the plan socket closed it then reads EOF.
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        // dup2 clears close-on-exec on the copy; the sources are above both targets.
        libc::dup2(channel, PLAN_FD);
        let mut last_inherited = PLAN_FD;
        if let Some(console) = console {
            libc::dup2(console, CONSOLE_FD);
            last_inherited = CONSOLE_FD;
            // Off the caller's terminal (the workload gets its own): what that terminal sends
            // reaches boxr alone, which forwards it once.
            libc::setpgid(0, 0);
        }
        libc::syscall(
            libc::SYS_close_range,
            last_inherited + 1,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        );
        if wait_for_maps {
            let mut byte = 0u8;
            let mut iov = libc::iovec { iov_base: (&raw mut byte).cast(), iov_len: 1 };
            // Room for one fd's control message (CMSG_SPACE(4) is 24 bytes), aligned.
            let mut control = [0u64; 4];
            let mut msg: libc::msghdr = core::mem::zeroed();
            msg.msg_iov = &raw mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = control.as_mut_ptr().cast();
            msg.msg_controllen = size_of_val(&control);
            // Anything but the one byte means the frontend is gone.
            if libc::recvmsg(PLAN_FD, &raw mut msg, libc::MSG_CMSG_CLOEXEC) != 1
                || byte != MAPS_WRITTEN
            {
                libc::_exit(125);
            }
            let cmsg = libc::CMSG_FIRSTHDR(&raw const msg);
            if !cmsg.is_null()
                && (*cmsg).cmsg_level == libc::SOL_SOCKET
                && (*cmsg).cmsg_type == libc::SCM_RIGHTS
            {
                let tree = libc::CMSG_DATA(cmsg).cast::<libc::c_int>().read_unaligned();
                // The copy on ROOTFS_FD is inherited; the received one closes at the exec.
                libc::dup2(tree, ROOTFS_FD);
            }
            // Become the namespace's root (the caller's ids may not be mapped in it, and an
            // exec by an unmapped uid drops every capability).
            if libc::setresgid(0, 0, 0) != 0 || libc::setresuid(0, 0, 0) != 0 {
                report_start_failure();
            }
        }
        // Rust's runtime ignores SIGPIPE; an ignored disposition would survive exec.
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        libc::syscall(
            libc::SYS_execveat,
            init,
            empty.as_ptr(),
            argv.as_ptr(),
            envp.as_ptr(),
            libc::AT_EMPTY_PATH,
        );
        report_start_failure()
    }
}

/// Reports `errno` to the frontend as the init's failure to start, and exits.
///
/// # Safety
/// Only in the cloned child, with the plan socket on `PLAN_FD`.
unsafe fn report_start_failure() -> ! {
    // SAFETY: async-signal-safe calls on the child's own fd and errno.
    unsafe {
        let errno = *libc::__errno_location();
        let report = Report::StartFailed { errno: errno as u32 }.encode();
        libc::write(PLAN_FD, report.as_ptr().cast(), report.len());
        libc::_exit(125)
    }
}
