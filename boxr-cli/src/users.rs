//! The workload's user: `process.user` (`uid[:gid]`, `name[:group]`) resolved against the
//! rootfs's own `/etc/passwd` and `/etc/group`, which are read without ever leaving the rootfs
//! (`openat2` with `RESOLVE_IN_ROOT`: a symlink in it resolves as if the rootfs were `/`).

use crate::errno::describe;
use rustix::fs::{FileType, Mode, OFlags, ResolveFlags};
use std::fs::File;
use std::io::Read;
use std::path::Path;

/// The most supplementary groups a workload may have ([`boxr_plan::MAX_GROUPS`]).
pub const MAX_GROUPS: usize = boxr_plan::MAX_GROUPS;
/// The largest passwd or group file boxr reads.
const MAX_FILE_LEN: u64 = 4 << 20;

/// A line of `/etc/passwd`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswdEntry {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
}

/// A line of `/etc/group`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupEntry {
    pub name: String,
    pub gid: u32,
    pub members: Vec<String>,
}

/// Who the workload runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups: those of `/etc/group` listing the user, then `additional_gids`.
    pub groups: Vec<u32>,
    /// The home directory from `/etc/passwd` (`/` for a uid it does not list).
    pub home: String,
}

/// An id as the kernel takes it: `u32::MAX` is `-1`, "no change".
fn parse_id(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<u32>().ok().filter(|&id| id != u32::MAX)
}

/// The colon-separated records of a passwd-style file that have at least `fields` fields and
/// a name; comments and shorter lines are skipped, as libc does.
fn records(text: &str, fields: usize) -> impl Iterator<Item = Vec<&str>> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .map(|line| line.split(':').collect::<Vec<_>>())
        .filter(move |f| f.len() >= fields && !f[0].is_empty())
}

/// The entries of a passwd file; malformed lines are skipped, as libc does.
pub fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    records(text, 7)
        .filter_map(|f| {
            Some(PasswdEntry {
                name: f[0].to_string(),
                uid: parse_id(f[2])?,
                gid: parse_id(f[3])?,
                home: f[5].to_string(),
            })
        })
        .collect()
}

/// The entries of a group file; malformed lines are skipped.
pub fn parse_group(text: &str) -> Vec<GroupEntry> {
    records(text, 4)
        .filter_map(|f| {
            Some(GroupEntry {
                name: f[0].to_string(),
                gid: parse_id(f[2])?,
                members: f[3].split(',').filter(|m| !m.is_empty()).map(String::from).collect(),
            })
        })
        .collect()
}

/// Resolves `spec` (`None`: root) as runc does: a name must be in `passwd`, a number need not
/// be (then its group is 0 and its home `/`, `/root` for root); a group name must be in `group`; without a group,
/// the user's own. `additional` gids follow the groups that list the user.
pub fn resolve(
    spec: Option<&str>,
    additional: &[u32],
    passwd: &[PasswdEntry],
    group: &[GroupEntry],
) -> Result<User, String> {
    let spec = spec.unwrap_or("0");
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let entry = match parse_id(user_part) {
        Some(uid) => passwd.iter().find(|e| e.uid == uid).cloned().unwrap_or(PasswdEntry {
            name: String::new(),
            uid,
            gid: 0,
            home: if uid == 0 { "/root" } else { "/" }.into(),
        }),
        None if user_part.is_empty() => return Err(format!("{spec:?} names no user")),
        None => passwd.iter().find(|e| e.name == user_part).cloned().ok_or_else(|| {
            format!("no user {user_part:?} in the rootfs's /etc/passwd (give a uid to use one it does not list)")
        })?,
    };
    let gid = match group_part {
        None => entry.gid,
        Some(g) => match parse_id(g) {
            Some(gid) => gid,
            None if g.is_empty() => return Err(format!("{spec:?} names no group after ':'")),
            None => group.iter().find(|e| e.name == g).map(|e| e.gid).ok_or_else(|| {
                format!("no group {g:?} in the rootfs's /etc/group (give a gid to use one it does not list)")
            })?,
        },
    };
    let mut groups: Vec<u32> = Vec::new();
    let member_of =
        group.iter().filter(|g| !entry.name.is_empty() && g.members.contains(&entry.name));
    for gid in member_of.map(|g| g.gid).chain(additional.iter().copied()) {
        if !groups.contains(&gid) {
            groups.push(gid);
        }
    }
    if groups.len() > MAX_GROUPS {
        return Err(format!(
            "the user would have {} supplementary groups, over the limit of {MAX_GROUPS}",
            groups.len()
        ));
    }
    Ok(User { uid: entry.uid, gid, groups, home: entry.home })
}

/// The text of `path` (relative to the rootfs, e.g. `etc/passwd`), `None` if it does not exist.
/// Symlinks resolve inside the rootfs; anything but a regular file, or a huge one, is an error.
pub fn read_in_rootfs(rootfs: &Path, path: &str) -> Result<Option<String>, String> {
    let fail = |e: std::io::Error| format!("cannot read /{path} in the rootfs: {}", describe(&e));
    let root = File::open(rootfs).map_err(fail)?;
    let fd = match rustix::fs::openat2(
        &root,
        path,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    ) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) => return Ok(None),
        Err(e) => return Err(fail(e.into())),
    };
    let stat = rustix::fs::fstat(&fd).map_err(|e| fail(e.into()))?;
    if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
        return Err(format!("/{path} in the rootfs is not a regular file"));
    }
    let mut text = String::new();
    File::from(fd).take(MAX_FILE_LEN + 1).read_to_string(&mut text).map_err(fail)?;
    if text.len() as u64 > MAX_FILE_LEN {
        return Err(format!("/{path} in the rootfs is over {MAX_FILE_LEN} bytes"));
    }
    Ok(Some(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
        # a comment\n\
        broken line\n\
        web:x:1000:1001:Web:/srv/web:/bin/false\n\
        bad:x:12a:0::/:/bin/sh\n\
        nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
    const GROUP: &str = "root:x:0:\nwheel:x:10:root,web\nwebgrp:x:1001:\nextra:x:20:web\n\
        nogroup:x:65534:\nbad:x:-1:web\n";

    fn resolve_with(spec: Option<&str>, additional: &[u32]) -> Result<User, String> {
        resolve(spec, additional, &parse_passwd(PASSWD), &parse_group(GROUP))
    }

    #[test]
    fn passwd_and_group_files_parse_skipping_malformed_lines() {
        let passwd = parse_passwd(PASSWD);
        let names: Vec<&str> = passwd.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["root", "web", "nobody"]);
        assert_eq!(
            passwd[1],
            PasswdEntry { name: "web".into(), uid: 1000, gid: 1001, home: "/srv/web".into() }
        );
        let group = parse_group(GROUP);
        assert_eq!(group.len(), 5);
        assert_eq!(group[1].members, ["root", "web"]);
        assert!(group[0].members.is_empty());
    }

    #[test]
    fn names_and_ids_resolve_like_runc() {
        let root = resolve_with(None, &[]).unwrap();
        assert_eq!(root, User { uid: 0, gid: 0, groups: vec![10], home: "/root".into() });
        let web = resolve_with(Some("web"), &[]).unwrap();
        assert_eq!(
            web,
            User { uid: 1000, gid: 1001, groups: vec![10, 20], home: "/srv/web".into() }
        );
        let web = resolve_with(Some("1000:nogroup"), &[20, 7]).unwrap();
        assert_eq!((web.gid, web.groups), (65534, vec![10, 20, 7]));
        let unknown = resolve_with(Some("4242"), &[5]).unwrap();
        assert_eq!(unknown, User { uid: 4242, gid: 0, groups: vec![5], home: "/".into() });
        assert_eq!(resolve_with(Some("nobody:12"), &[]).unwrap().gid, 12);
    }

    #[test]
    fn bad_user_specs_are_explained() {
        assert!(resolve_with(Some("ghost"), &[]).unwrap_err().contains("no user \"ghost\""));
        assert!(resolve_with(Some("web:ghosts"), &[]).unwrap_err().contains("no group \"ghosts\""));
        assert!(resolve_with(Some(":10"), &[]).unwrap_err().contains("names no user"));
        assert!(resolve_with(Some("web:"), &[]).unwrap_err().contains("names no group"));
        assert!(resolve_with(Some("4294967295"), &[]).unwrap_err().contains("no user"));
        let many: Vec<u32> = (100..100 + MAX_GROUPS as u32).collect();
        assert!(resolve_with(Some("web"), &many).unwrap_err().contains("over the limit"));
    }

    #[test]
    fn files_are_read_inside_the_rootfs_only() {
        let dir = std::env::temp_dir().join(format!("boxr-users-test-{}", std::process::id()));
        let rootfs = dir.join("rootfs");
        std::fs::create_dir_all(rootfs.join("etc")).unwrap();
        std::fs::write(dir.join("host-passwd"), "evil:x:0:0::/:/bin/sh\n").unwrap();
        // Absolute and relative links that would leave the rootfs on the host.
        std::os::unix::fs::symlink("/../host-passwd", rootfs.join("etc/passwd")).unwrap();
        std::os::unix::fs::symlink("../../host-passwd", rootfs.join("etc/group")).unwrap();
        assert_eq!(read_in_rootfs(&rootfs, "etc/passwd"), Ok(None));
        assert_eq!(read_in_rootfs(&rootfs, "etc/group"), Ok(None));
        std::fs::write(rootfs.join("etc/real"), "root:x:0:0::/root:/bin/sh\n").unwrap();
        std::os::unix::fs::symlink("/etc/real", rootfs.join("etc/link")).unwrap();
        assert_eq!(
            read_in_rootfs(&rootfs, "etc/link").unwrap().unwrap(),
            "root:x:0:0::/root:/bin/sh\n"
        );
        assert!(read_in_rootfs(&rootfs, "etc").unwrap_err().contains("not a regular file"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
