//! User namespaces: the container's uid and gid maps (from `uid_map`/`gid_map`, or the default
//! for root and for rootless boxr), writing them for the cloned init (directly, or through the
//! setuid `newuidmap`/`newgidmap` for a user's subordinate ranges), and the idmapped mount that
//! shows a root-owned rootfs as owned by the container's root.

use crate::errno::describe;
use crate::users;
use anyhow::{Result, anyhow, bail};
use rustix::fd::{AsRawFd, OwnedFd};
use rustix::mount::{OpenTreeFlags, open_tree};
use rustix::process::Pid;
use serde::{Deserialize, Serialize};
use std::fs::{self, File};
use std::path::Path;
use std::process::Command;

/// The kernel's limit on the lines of an id map.
const MAX_RANGES: usize = 340;

/// One line of an id map: `size` ids from `container` inside are `host` outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdRange {
    pub container: u32,
    pub host: u32,
    pub size: u32,
}

impl IdRange {
    /// Parses `CONTAINER:HOST:SIZE` (podman's `--uidmap` form).
    pub fn parse(text: &str) -> Result<IdRange, String> {
        let bad = || format!("{text:?} is not CONTAINER_ID:HOST_ID:SIZE (\"0:100000:65536\")");
        let mut parts = text.split(':').map(|p| p.trim().parse::<u32>().map_err(|_| bad()));
        let (Some(container), Some(host), Some(size), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let range = IdRange { container: container?, host: host?, size: size? };
        if range.size == 0 {
            return Err(format!("{text:?}: the size must be at least 1"));
        }
        for (side, start) in [("container", range.container), ("host", range.host)] {
            if u64::from(start) + u64::from(range.size) > u64::from(u32::MAX) {
                return Err(format!("{text:?}: the {side} ids run past 4294967294"));
            }
        }
        Ok(range)
    }

    fn line(&self) -> String {
        format!("{} {} {}", self.container, self.host, self.size)
    }
}

/// Checks a whole map: at most the kernel's 340 lines, no id mapped twice on either side.
pub fn check_map(ranges: &[IdRange]) -> Result<(), String> {
    if ranges.is_empty() {
        return Err("the map is empty: give at least one CONTAINER_ID:HOST_ID:SIZE".into());
    }
    if ranges.len() > MAX_RANGES {
        return Err(format!("{} ranges: the kernel takes at most {MAX_RANGES}", ranges.len()));
    }
    for (i, a) in ranges.iter().enumerate() {
        for b in &ranges[..i] {
            let overlap = |x: u32, y: u32| x < y + b.size && y < x + a.size;
            if overlap(a.container, b.container) {
                return Err(format!(
                    "container ids {}-{} are mapped twice",
                    a.container.max(b.container),
                    (a.container + a.size).min(b.container + b.size) - 1
                ));
            }
            if overlap(a.host, b.host) {
                return Err(format!(
                    "host ids {}-{} are mapped twice",
                    a.host.max(b.host),
                    (a.host + a.size).min(b.host + b.size) - 1
                ));
            }
        }
    }
    Ok(())
}

/// The host id that container id `id` is, if the map maps it.
pub fn to_host(ranges: &[IdRange], id: u32) -> Option<u32> {
    ranges
        .iter()
        .find(|r| id >= r.container && id - r.container < r.size)
        .map(|r| r.host + (id - r.container))
}

/// How the maps get written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Writer {
    /// By boxr, as root, into `/proc/PID/{uid,gid}_map`: any map.
    Root,
    /// By boxr, as a user mapping only its own uid and gid; the kernel then requires `setgroups`
    /// to be denied in the namespace.
    Own,
    /// By the setuid `newuidmap` and `newgidmap`, which allow a user its `/etc/subuid` and
    /// `/etc/subgid` ranges.
    Helpers,
}

/// A user namespace's maps and how to write them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdMaps {
    pub uid: Vec<IdRange>,
    pub gid: Vec<IdRange>,
    pub writer: Writer,
}

impl IdMaps {
    /// Maps as the caller (`euid`, `egid`) can write them: directly as root, or as a user that
    /// maps only its own ids; through the helpers otherwise.
    pub fn new(uid: Vec<IdRange>, gid: Vec<IdRange>, euid: u32, egid: u32) -> IdMaps {
        let own =
            |map: &[IdRange], id: u32| map.len() == 1 && map[0].host == id && map[0].size == 1;
        let writer = if euid == 0 {
            Writer::Root
        } else if own(&uid, euid) && own(&gid, egid) {
            Writer::Own
        } else {
            Writer::Helpers
        };
        IdMaps { uid, gid, writer }
    }

    /// The default maps: root in the container is the caller, and for a user with
    /// subordinate ids (and `newuidmap` installed) container ids from 1 are that range, as
    /// podman's rootless default.
    pub fn default_for(euid: u32, egid: u32) -> IdMaps {
        let mut uid = vec![IdRange { container: 0, host: euid, size: 1 }];
        let mut gid = vec![IdRange { container: 0, host: egid, size: 1 }];
        if euid != 0 && helpers_installed() {
            let name = own_name(euid);
            let subuid = subordinate_range("/etc/subuid", name.as_deref(), euid);
            let subgid = subordinate_range("/etc/subgid", name.as_deref(), euid);
            if let (Some((uid_start, uid_count)), Some((gid_start, gid_count))) = (subuid, subgid) {
                uid.push(IdRange { container: 1, host: uid_start, size: uid_count });
                gid.push(IdRange { container: 1, host: gid_start, size: gid_count });
            }
        }
        IdMaps::new(uid, gid, euid, egid)
    }

    /// Whether the workload may call `setgroups` (supplementary groups): not when a user wrote
    /// the maps itself.
    pub fn allows_setgroups(&self) -> bool {
        self.writer != Writer::Own
    }

    /// Writes the maps of the init `pid`, which waits in its new user namespace.
    pub fn write(&self, pid: Pid) -> Result<()> {
        let proc = format!("/proc/{}", pid.as_raw_nonzero());
        match self.writer {
            Writer::Root | Writer::Own => {
                if !self.allows_setgroups() {
                    write_proc(&format!("{proc}/setgroups"), "deny")?;
                }
                write_proc(&format!("{proc}/uid_map"), &lines(&self.uid))?;
                write_proc(&format!("{proc}/gid_map"), &lines(&self.gid))
            }
            Writer::Helpers => {
                run_helper("newuidmap", pid, &self.uid)?;
                run_helper("newgidmap", pid, &self.gid)
            }
        }
    }

    /// The host uid and gid of the container's root.
    pub fn root_on_host(&self) -> Option<(u32, u32)> {
        Some((to_host(&self.uid, 0)?, to_host(&self.gid, 0)?))
    }
}

fn lines(map: &[IdRange]) -> String {
    map.iter().map(IdRange::line).collect::<Vec<_>>().join("\n")
}

fn write_proc(path: &str, content: &str) -> Result<()> {
    fs::write(path, content)
        .map_err(|e| anyhow!("cannot write the user namespace map {path}: {}", describe(&e)))
}

fn run_helper(helper: &str, pid: Pid, map: &[IdRange]) -> Result<()> {
    let mut command = Command::new(helper);
    command.arg(pid.as_raw_nonzero().to_string());
    for r in map {
        command.args([r.container, r.host, r.size].map(|n| n.to_string()));
    }
    let output = command.output().map_err(|e| {
        anyhow!(
            "cannot run {helper} to map your subordinate ids: {} (install the uidmap package)",
            describe(&e)
        )
    })?;
    if !output.status.success() {
        bail!(
            "{helper} refused the map {}: {} (the ranges must be yours in /etc/subuid and /etc/subgid)",
            lines(map).replace('\n', ", "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

/// Whether `newuidmap` and `newgidmap` are on the PATH.
fn helpers_installed() -> bool {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
    ["newuidmap", "newgidmap"]
        .iter()
        .all(|helper| std::env::split_paths(&path).any(|dir| dir.join(helper).is_file()))
}

/// The caller's user name, from the host's `/etc/passwd`.
fn own_name(uid: u32) -> Option<String> {
    let passwd = fs::read_to_string("/etc/passwd").ok()?;
    users::parse_passwd(&passwd).into_iter().find(|e| e.uid == uid).map(|e| e.name)
}

/// The first range `/etc/subuid` (or `/etc/subgid`) gives the user, by name or uid.
fn subordinate_range(file: &str, name: Option<&str>, uid: u32) -> Option<(u32, u32)> {
    let text = fs::read_to_string(file).ok()?;
    parse_subordinate(&text, name, uid)
}

fn parse_subordinate(text: &str, name: Option<&str>, uid: u32) -> Option<(u32, u32)> {
    let uid = uid.to_string();
    text.lines().find_map(|line| {
        let mut f = line.trim().split(':');
        let (owner, start, count) = (f.next()?, f.next()?, f.next()?);
        if owner != uid && Some(owner) != name {
            return None;
        }
        let (start, count) = (start.parse().ok()?, count.parse::<u32>().ok()?);
        (count > 0).then_some((start, count))
    })
}

/// `struct mount_attr` for `mount_setattr`.
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

/// A detached copy of the mount tree at `rootfs`, idmapped with the user namespace of the
/// init `pid` (whose maps are written): a file the rootfs's filesystem says is owned by id N
/// shows as owned by container id N. The init attaches it (`ROOTFS_FD`).
pub fn idmapped_rootfs(pid: Pid, rootfs: &Path) -> Result<OwnedFd> {
    let ns_path = format!("/proc/{}/ns/user", pid.as_raw_nonzero());
    let userns = File::open(&ns_path).map_err(|e| {
        anyhow!("cannot open the container's user namespace {ns_path}: {}", describe(&e))
    })?;
    let tree = open_tree(
        rustix::fs::CWD,
        rootfs,
        OpenTreeFlags::OPEN_TREE_CLONE
            | OpenTreeFlags::OPEN_TREE_CLOEXEC
            | OpenTreeFlags::AT_RECURSIVE,
    )
    .map_err(|e| anyhow!("cannot copy the mount of the rootfs {}: {e}", rootfs.display()))?;
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.as_raw_fd() as u64,
    };
    // SAFETY: mount_setattr reads `attr`, a `struct mount_attr` of the size passed, during the
    // call; the path is an empty C string and the fds are open.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH | libc::AT_RECURSIVE,
            &raw const attr,
            size_of::<MountAttr>(),
        )
    };
    if ret != 0 {
        let err = std::io::Error::last_os_error();
        bail!(
            "cannot idmap the rootfs {}: {} (its filesystem must support idmapped mounts, as ext4, xfs, btrfs and tmpfs do; or chown the rootfs to the mapped ids yourself and set idmapped_rootfs = false)",
            rootfs.display(),
            describe(&err)
        );
    }
    Ok(tree)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(container: u32, host: u32, size: u32) -> IdRange {
        IdRange { container, host, size }
    }

    #[test]
    fn ranges_parse_and_are_checked() {
        assert_eq!(IdRange::parse("0:100000:65536"), Ok(r(0, 100000, 65536)));
        for bad in ["0:1", "0:1:2:3", "a:1:1", "-1:0:1", "0:0:0", "4294967295:0:1", ""] {
            assert!(IdRange::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(check_map(&[r(0, 100000, 1000), r(1000, 200000, 10)]), Ok(()));
        assert_eq!(
            check_map(&[r(0, 100000, 1000), r(999, 200000, 10)]).unwrap_err(),
            "container ids 999-999 are mapped twice"
        );
        assert_eq!(
            check_map(&[r(0, 100000, 1000), r(1000, 100500, 10)]).unwrap_err(),
            "host ids 100500-100509 are mapped twice"
        );
        assert!(check_map(&[]).is_err());
        assert!(check_map(&vec![r(0, 0, 1); 341]).is_err());
    }

    #[test]
    fn ids_map_to_the_host() {
        let map = [r(0, 100000, 1000), r(1000, 5000, 1)];
        assert_eq!(to_host(&map, 0), Some(100000));
        assert_eq!(to_host(&map, 999), Some(100999));
        assert_eq!(to_host(&map, 1000), Some(5000));
        assert_eq!(to_host(&map, 1001), None);
    }

    #[test]
    fn the_writer_follows_the_caller() {
        let own = |id| vec![r(0, id, 1)];
        assert_eq!(IdMaps::new(own(1000), own(1000), 1000, 1000).writer, Writer::Own);
        let wide = vec![r(0, 1000, 1), r(1, 100000, 65536)];
        assert_eq!(IdMaps::new(wide.clone(), own(1000), 1000, 1000).writer, Writer::Helpers);
        assert_eq!(IdMaps::new(wide.clone(), wide, 0, 0).writer, Writer::Root);
    }

    #[test]
    fn subordinate_ranges_match_by_name_or_uid() {
        let text = "alice:100000:65536\n1001:200000:1000\nbob:300000:0\n";
        assert_eq!(parse_subordinate(text, Some("alice"), 1000), Some((100000, 65536)));
        assert_eq!(parse_subordinate(text, Some("carol"), 1001), Some((200000, 1000)));
        assert_eq!(parse_subordinate(text, Some("bob"), 1002), None);
        assert_eq!(parse_subordinate(text, None, 1003), None);
    }
}
