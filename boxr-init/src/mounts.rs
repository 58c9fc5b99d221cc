//! The mount steps: private propagation, the rootfs bind, filesystems, bind mounts, device nodes
//! and symlinks inside the rootfs, the pivot into it, the read-only root, and masked and
//! read-only paths.
//!
//! Targets are resolved inside the rootfs (see `resolve`) and mounted on through the resolved
//! fd's magic link, never by path, so a symlink in the rootfs cannot redirect a mount.

use crate::cbuf::fd_path;
use crate::resolve::{Kind, make_in_root, make_parent_in_root, open_in_root, open_node_in_root};
use boxr_plan::{ROOTFS_FD, ms};
use core::ffi::CStr;
use rustix::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};
use rustix::fs::{
    CWD, FileType, Mode, OFlags, StatVfsMountFlags, fstatvfs, makedev, mknodat, open,
};
use rustix::fs::{fstat, major, minor, statvfs, symlinkat};
use rustix::io::{Errno, Result};
use rustix::mount::{MountFlags, MountPropagationFlags, MoveMountFlags, UnmountFlags, move_mount};
use rustix::mount::{
    mount, mount_bind, mount_bind_recursive, mount_change, mount_remount, unmount,
};
use rustix::process::{chdir, fchdir, pivot_root};

/// The per-mount flags a bind mount can only get by a remount. They have the same values as
/// the `ST_*` flags `statvfs` reports, so the current ones can be kept by OR-ing them in.
const REMOUNT_FLAGS: u32 = ms::RDONLY | ms::NOSUID | ms::NODEV | ms::NOEXEC;

/// The directory that container paths are resolved in: the rootfs once it is bound, and the
/// current root before that and after the pivot.
pub struct Rootfs {
    root: Option<OwnedFd>,
}

impl Rootfs {
    pub const fn new() -> Self {
        Rootfs { root: None }
    }

    fn root(&mut self) -> Result<BorrowedFd<'_>> {
        let fd = match self.root.take() {
            Some(fd) => fd,
            None => open_dir(c"/")?,
        };
        let fd: &OwnedFd = self.root.insert(fd);
        Ok(fd.as_fd())
    }

    /// Mounts the container's root filesystem on `target` (a host path: a bind of the rootfs
    /// onto itself, or an overlay), and resolves all later targets in it.
    pub fn mount_rootfs(
        &mut self,
        source: &CStr,
        target: &CStr,
        fstype: &CStr,
        flags: u32,
        data: &CStr,
    ) -> Result<()> {
        mount(source, target, fstype, MountFlags::from_bits_retain(flags), data)?;
        self.root = Some(open_dir(target)?);
        Ok(())
    }

    /// Attaches the detached rootfs mount the frontend made (idmapped to the container's user
    /// namespace, see `ROOTFS_FD`) at `target`, the rootfs's host path, and resolves all later
    /// targets in it.
    pub fn attach_rootfs(&mut self, target: &CStr) -> Result<()> {
        // SAFETY: the frontend passes the detached mount on ROOTFS_FD for this step alone, and
        // nothing else in the init uses that fd.
        let tree = unsafe { OwnedFd::from_raw_fd(ROOTFS_FD) };
        move_mount(&tree, c"", CWD, target, MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH)?;
        drop(tree);
        self.root = Some(open_dir(target)?);
        Ok(())
    }

    /// Mounts a new `fstype` instance on `target`.
    pub fn mount_fs(
        &mut self,
        fstype: &CStr,
        target: &CStr,
        flags: u32,
        data: &CStr,
        strict: bool,
    ) -> Result<()> {
        let target = make_in_root(self.root()?, target.to_bytes(), strict, Kind::Dir)?;
        mount(
            fstype,
            fd_path(target.as_fd()).as_cstr(),
            fstype,
            MountFlags::from_bits_retain(flags),
            data,
        )
    }

    /// Bind-mounts the host path `source` on `target`, then applies the per-mount flags.
    pub fn bind_mount(
        &mut self,
        source: &CStr,
        target: &CStr,
        flags: u32,
        file: bool,
    ) -> Result<()> {
        let root = self.root()?;
        let kind = if file { Kind::File } else { Kind::Dir };
        let covered = make_in_root(root, target.to_bytes(), false, kind)?;
        let on = fd_path(covered.as_fd());
        if flags & ms::REC != 0 {
            mount_bind_recursive(source, on.as_cstr())?;
        } else {
            mount_bind(source, on.as_cstr())?;
        }
        if flags & REMOUNT_FLAGS == 0 {
            return Ok(());
        }
        // `covered` is the directory under the new mount: resolve again to reach the mount.
        remount_resolved(root, target, false, flags)
    }

    /// Hides `path` if it exists: a directory under an empty read-only tmpfs, anything else
    /// under the container's `/dev/null`, once that is checked to be the null device.
    pub fn mask_path(&mut self, path: &CStr) -> Result<()> {
        let root = self.root()?;
        let target = match open_in_root(root, path, true) {
            Err(Errno::NOENT) => return Ok(()),
            target => target?,
        };
        let on = fd_path(target.as_fd());
        if FileType::from_raw_mode(fstat(&target)?.st_mode) == FileType::Directory {
            // Read-only, so it stays empty: no size limit needed.
            let flags = MountFlags::RDONLY | MountFlags::NOSUID | MountFlags::NODEV;
            return mount(c"tmpfs", on.as_cstr(), c"tmpfs", flags | MountFlags::NOEXEC, c"mode=0");
        }
        let null = open_null_device(root)?;
        mount_bind(fd_path(null.as_fd()).as_cstr(), on.as_cstr())
    }

    /// Makes `path`, if it exists, a read-only bind mount of itself.
    pub fn make_path_readonly(&mut self, path: &CStr) -> Result<()> {
        let root = self.root()?;
        let target = match open_in_root(root, path, true) {
            Err(Errno::NOENT) => return Ok(()),
            target => target?,
        };
        let on = fd_path(target.as_fd());
        mount_bind_recursive(on.as_cstr(), on.as_cstr())?;
        remount_resolved(root, path, true, ms::RDONLY)
    }

    /// Creates a device node (`mode` holds the file type and the permissions).
    pub fn make_device(&mut self, target: &CStr, mode: u32, major: u32, minor: u32) -> Result<()> {
        let (dir, name) = make_parent_in_root(self.root()?, target)?;
        let kind = FileType::from_raw_mode(mode);
        mknodat(dir, name, kind, Mode::from_raw_mode(mode), makedev(major, minor))
    }

    /// Creates the symlink `link` pointing to `to`.
    pub fn make_symlink(&mut self, to: &CStr, link: &CStr) -> Result<()> {
        let (dir, name) = make_parent_in_root(self.root()?, link)?;
        symlinkat(to, dir, name)
    }

    /// Makes the rootfs `/` and detaches the old root, so that no host path stays reachable.
    pub fn pivot_into(&mut self) -> Result<()> {
        fchdir(self.root()?)?;
        // The old root ends up stacked on the new one, at ".": detach it from there.
        pivot_root(c".", c".")?;
        unmount(c".", UnmountFlags::DETACH)?;
        chdir(c"/")?;
        self.root = None;
        Ok(())
    }
}

/// Stops mount events propagating between the container and the host, both ways.
pub fn make_mounts_private() -> Result<()> {
    mount_change(c"/", MountPropagationFlags::PRIVATE | MountPropagationFlags::REC)
}

/// Remounts `/` read-only.
pub fn remount_root_readonly() -> Result<()> {
    remount_bind(c"/", ms::RDONLY, statvfs(c"/")?.f_flag)
}

/// Applies `flags` to the bind mount at `target`, keeping the ones it already has: in a user
/// namespace they may be locked, and clearing a locked flag fails with `EPERM`. The atime flags
/// are not passed, so the kernel keeps the mount's own.
fn remount_bind(target: &CStr, flags: u32, current: StatVfsMountFlags) -> Result<()> {
    let kept = current.bits() as u32 & REMOUNT_FLAGS;
    mount_remount(
        target,
        MountFlags::BIND | MountFlags::from_bits_retain(flags & REMOUNT_FLAGS | kept),
        c"",
    )
}

/// Resolves `target` again (an fd opened before a mount refers to what it covers) and applies
/// `flags` to the mount found there.
fn remount_resolved(root: BorrowedFd<'_>, target: &CStr, strict: bool, flags: u32) -> Result<()> {
    let mounted = open_in_root(root, target, strict)?;
    let current = fstatvfs(mounted.as_fd())?.f_flag;
    remount_bind(fd_path(mounted.as_fd()).as_cstr(), flags, current)
}

/// Opens the container's `/dev/null` for binding over a masked file, and checks that it is the
/// character device 1:3 itself: a rootfs or an earlier mount may have put a symlink or another
/// file there, which would then be exposed in place of the masked file (CVE-2025-31133).
/// `ENODEV` when it is not.
fn open_null_device(root: BorrowedFd<'_>) -> Result<OwnedFd> {
    let null = open_node_in_root(root, c"/dev/null")?;
    let stat = fstat(&null)?;
    let is_null = FileType::from_raw_mode(stat.st_mode) == FileType::CharacterDevice
        && major(stat.st_rdev) == 1
        && minor(stat.st_rdev) == 3;
    if is_null { Ok(null) } else { Err(Errno::NODEV) }
}

fn open_dir(path: &CStr) -> Result<OwnedFd> {
    open(path, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
}
