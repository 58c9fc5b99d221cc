//! `cargo xtask build-rootfs`: a busybox root filesystem at `<workspace>/target/rootfs`.
//!
//! The location is fixed (configs refer to it as `../target/rootfs`), whatever
//! `CARGO_TARGET_DIR` says. The tree is built in `target/rootfs.tmp` and renamed into place, so
//! an interrupted build never leaves a half rootfs behind. `target/rootfs.stamp`, written last,
//! records the layout version and the SHA-256 of the busybox inside: while it matches, the rootfs
//! is complete and is not rebuilt (`--force` rebuilds).

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs::{self, DirBuilder};
use std::os::unix::ffi::OsStringExt as _;
use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _, symlink};
use std::path::{Component, Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};

use crate::busybox::{Busybox, Source};
use crate::{output, remove_dir_if_exists, remove_file_if_exists, root, step};

/// Bump when the tree built here changes, so that existing rootfs are rebuilt.
const LAYOUT: u32 = 2;

/// Where busybox lives inside the rootfs; every applet is a symlink to it.
const BUSYBOX: &str = "bin/busybox";

/// Top-level directories and their modes.
const DIRS: &[(&str, u32)] = &[
    ("bin", 0o755),
    ("dev", 0o755),
    ("etc", 0o755),
    ("home", 0o755),
    ("proc", 0o755),
    ("root", 0o700),
    ("run", 0o755),
    ("sys", 0o755),
    ("tmp", 0o1777),
    ("var", 0o755),
];

struct User {
    name: &'static str,
    uid: u32,
    gid: u32,
    home: &'static str,
    shell: &'static str,
}

const USERS: &[User] = &[
    User { name: "root", uid: 0, gid: 0, home: "/root", shell: "/bin/sh" },
    User { name: "nobody", uid: 65534, gid: 65534, home: "/nonexistent", shell: "/bin/false" },
];

/// Groups as `(name, gid)`.
const GROUPS: &[(&str, u32)] = &[("root", 0), ("tty", 5), ("nogroup", 65534)];

const HOSTS: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n";

/// Builds target/rootfs unless it is already complete (and has the requested busybox).
pub fn build(source: &Source, force: bool) -> Result<()> {
    let target = root().join("target");
    let rootfs = target.join("rootfs");
    let stamp_path = target.join("rootfs.stamp");

    if !force && let Some(stamp) = read_stamp(&stamp_path, &rootfs) {
        let wanted = source.known_sha256()?;
        if wanted.as_ref().is_none_or(|sha| *sha == stamp.sha256) {
            step(&format!(
                "{} is up to date (busybox from {}, sha256 {}); --force rebuilds it",
                rootfs.display(),
                stamp.origin,
                stamp.sha256
            ));
            return Ok(());
        }
        step(&format!("{} has another busybox: rebuilding it", rootfs.display()));
    }

    let busybox = source.fetch(&target.join("xtask"))?;
    let staging = target.join("rootfs.tmp");
    let old = target.join("rootfs.old");
    for dir in [&staging, &old, &rootfs] {
        ensure_nothing_mounted(dir)?;
    }
    for leftover in [&staging, &old] {
        remove_dir_if_exists(leftover)?;
    }
    step(&format!("building {} with busybox from {}", staging.display(), busybox.origin));
    let applets = populate(&staging, &busybox)?;

    step(&format!("moving it to {}", rootfs.display()));
    remove_file_if_exists(&stamp_path)?;
    if rootfs.exists() {
        rename(&rootfs, &old)?;
    }
    rename(&staging, &rootfs)?;
    remove_dir_if_exists(&old)?;
    fs::write(&stamp_path, stamp_text(&busybox))
        .with_context(|| format!("cannot write {}", stamp_path.display()))?;
    step(&format!(
        "{} is ready: busybox (sha256 {}) with {applets} applets",
        rootfs.display(),
        busybox.sha256
    ));
    Ok(())
}

/// Fills the empty directory `dir` with the rootfs; returns the number of applet links.
fn populate(dir: &Path, busybox: &Busybox) -> Result<usize> {
    mkdir(dir, 0o755)?;
    for &(name, mode) in DIRS {
        mkdir(&dir.join(name), mode)?;
    }
    let binary = dir.join(BUSYBOX);
    write_file(&binary, &busybox.bytes, 0o755)?;

    let list = output(Command::new(&binary).arg("--list-full"))?;
    let applets = applets(&list)?;
    for applet in &applets {
        if let Some(parent) = applet.parent() {
            mkdir_all(dir, parent)?;
        }
        let link = dir.join(applet);
        symlink(link_target(applet), &link)
            .with_context(|| format!("cannot create symlink {}", link.display()))?;
    }

    write_file(&dir.join("etc/passwd"), passwd(USERS).as_bytes(), 0o644)?;
    write_file(&dir.join("etc/group"), group(GROUPS).as_bytes(), 0o644)?;
    write_file(&dir.join("etc/hosts"), HOSTS.as_bytes(), 0o644)?;
    // Mount points for the files boxr generates per container (bound over them), so that a
    // container using this directory directly never has to create them in it.
    write_file(&dir.join("etc/hostname"), b"localhost\n", 0o644)?;
    write_file(&dir.join("etc/resolv.conf"), b"", 0o644)?;
    Ok(applets.len())
}

/// Parses `busybox --list-full` (`usr/bin/wget` per line) into sorted, distinct relative paths,
/// leaving out busybox itself.
fn applets(list: &str) -> Result<Vec<PathBuf>> {
    let mut applets = BTreeSet::new();
    for line in list.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let path = Path::new(line.trim_start_matches('/'));
        ensure!(
            path.components().all(|c| matches!(c, Component::Normal(_))),
            "unexpected line {line:?} in `busybox --list-full` output"
        );
        if path != Path::new(BUSYBOX) {
            applets.insert(path.to_path_buf());
        }
    }
    ensure!(applets.contains(Path::new("bin/sh")), "this busybox has no sh applet (bin/sh)");
    Ok(applets.into_iter().collect())
}

/// The relative symlink target that reaches bin/busybox from the applet at `applet`.
fn link_target(applet: &Path) -> PathBuf {
    let from: Vec<_> = applet.parent().map(|p| p.components().collect()).unwrap_or_default();
    let to: Vec<_> = Path::new(BUSYBOX).components().collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut target = PathBuf::new();
    for _ in common..from.len() {
        target.push("..");
    }
    target.extend(&to[common..]);
    target
}

fn passwd(users: &[User]) -> String {
    users
        .iter()
        .map(|u| format!("{0}:x:{1}:{2}:{0}:{3}:{4}\n", u.name, u.uid, u.gid, u.home, u.shell))
        .collect()
}

fn group(groups: &[(&str, u32)]) -> String {
    groups.iter().map(|(name, gid)| format!("{name}:x:{gid}:\n")).collect()
}

struct Stamp {
    sha256: String,
    origin: String,
}

fn stamp_text(busybox: &Busybox) -> String {
    format!(
        "# Written by `cargo xtask build-rootfs` once target/rootfs was complete.\n\
         layout {LAYOUT}\nbusybox-sha256 {}\nbusybox-origin {}\n",
        busybox.sha256, busybox.origin
    )
}

/// The stamp, if it is there, is of the current layout, and the rootfs it describes exists.
fn read_stamp(path: &Path, rootfs: &Path) -> Option<Stamp> {
    let text = fs::read_to_string(path).ok()?;
    let stamp = parse_stamp(&text)?;
    rootfs.join(BUSYBOX).is_file().then_some(stamp)
}

fn parse_stamp(text: &str) -> Option<Stamp> {
    let value = |key: &str| {
        text.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')).map(str::to_owned)
    };
    if value("layout")? != LAYOUT.to_string() {
        return None;
    }
    Some(Stamp { sha256: value("busybox-sha256")?, origin: value("busybox-origin")? })
}

/// Refuses to go on if anything is mounted at or below `dir`: deleting that tree would
/// delete the mounted files (e.g. a host directory a crashed container left bind-mounted).
fn ensure_nothing_mounted(dir: &Path) -> Result<()> {
    let Ok(dir) = dir.canonicalize() else {
        return Ok(()); // not there: nothing to delete
    };
    let info =
        fs::read_to_string("/proc/self/mountinfo").context("cannot read /proc/self/mountinfo")?;
    if let Some(mount) = mount_points(&info).find(|m| m.starts_with(&dir)) {
        bail!(
            "refusing to replace {}: {} is a mount point (unmount it first)",
            dir.display(),
            mount.display()
        );
    }
    Ok(())
}

/// The mount points listed in /proc/self/mountinfo (5th field, with octal escapes undone).
fn mount_points(mountinfo: &str) -> impl Iterator<Item = PathBuf> + '_ {
    mountinfo.lines().filter_map(|line| line.split(' ').nth(4)).map(|escaped| {
        let mut bytes = Vec::with_capacity(escaped.len());
        let mut rest = escaped.as_bytes();
        while let Some((&b, tail)) = rest.split_first() {
            let octal = tail.get(..3).filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
            match octal {
                Some(d) if b == b'\\' => {
                    bytes.push(d.iter().fold(0u8, |n, c| n.wrapping_mul(8).wrapping_add(c - b'0')));
                    rest = &tail[3..];
                }
                _ => {
                    bytes.push(b);
                    rest = tail;
                }
            }
        }
        PathBuf::from(OsString::from_vec(bytes))
    })
}

/// Creates `dir` with exactly `mode` (whatever the umask).
fn mkdir(dir: &Path, mode: u32) -> Result<()> {
    DirBuilder::new()
        .mode(mode)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot chmod {}", dir.display()))
}

/// Creates the missing directories of the relative path `sub` under `base`, mode 0755.
fn mkdir_all(base: &Path, sub: &Path) -> Result<()> {
    let mut dir = base.to_path_buf();
    for component in sub.components() {
        dir.push(component);
        if !dir.is_dir() {
            mkdir(&dir, 0o755)?;
        }
    }
    Ok(())
}

fn write_file(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    fs::write(path, contents).with_context(|| format!("cannot write {}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot chmod {}", path.display()))
}

fn rename(from: &Path, to: &Path) -> Result<()> {
    fs::rename(from, to)
        .with_context(|| format!("cannot rename {} to {}", from.display(), to.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applet_list_is_parsed_sorted_and_deduplicated() {
        let list = "usr/bin/wget\nbin/sh\n\nbin/busybox\n/sbin/init\nlinuxrc\nbin/sh\n";
        let paths: Vec<_> =
            ["bin/sh", "linuxrc", "sbin/init", "usr/bin/wget"].map(PathBuf::from).into();
        assert_eq!(applets(list).unwrap(), paths);
    }

    #[test]
    fn applet_list_is_checked() {
        let err = applets("bin/sh\n../../etc/passwd\n").unwrap_err().to_string();
        assert!(err.contains("unexpected line \"../../etc/passwd\""), "{err}");
        let err = applets("bin/ls\nbin/cat\n").unwrap_err().to_string();
        assert!(err.contains("no sh applet"), "{err}");
    }

    #[test]
    fn links_are_relative_to_bin_busybox() {
        for (applet, target) in [
            ("bin/sh", "busybox"),
            ("sbin/init", "../bin/busybox"),
            ("usr/bin/wget", "../../bin/busybox"),
            ("usr/sbin/chroot", "../../bin/busybox"),
            ("linuxrc", "bin/busybox"),
        ] {
            assert_eq!(link_target(Path::new(applet)), Path::new(target), "{applet}");
        }
    }

    #[test]
    fn passwd_and_group_files() {
        let passwd = passwd(USERS);
        assert_eq!(
            passwd,
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
        );
        let group = group(GROUPS);
        assert_eq!(group, "root:x:0:\ntty:x:5:\nnogroup:x:65534:\n");
        // Every user's primary group exists.
        for line in passwd.lines() {
            let gid = line.split(':').nth(3).unwrap();
            assert!(group.lines().any(|g| g.split(':').nth(2) == Some(gid)), "{line}");
        }
    }

    #[test]
    fn stamp_round_trip() {
        let busybox = Busybox {
            bytes: Vec::new(),
            sha256: "ab".repeat(32),
            origin: "/tmp/my busybox".into(),
        };
        let stamp = parse_stamp(&stamp_text(&busybox)).unwrap();
        assert_eq!(stamp.sha256, busybox.sha256);
        assert_eq!(stamp.origin, "/tmp/my busybox");
        let old_layout = stamp_text(&busybox).replace(&format!("layout {LAYOUT}"), "layout 0");
        assert!(parse_stamp(&old_layout).is_none());
        assert!(parse_stamp("").is_none());
    }

    #[test]
    fn mountinfo_mount_points_are_unescaped() {
        let info = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
90 27 0:50 / /work/target/rootfs/with\\040space rw - tmpfs tmpfs rw
91 27 0:51 / /back\\134slash\\012 rw - tmpfs tmpfs rw
";
        let points: Vec<_> = mount_points(info).collect();
        assert_eq!(
            points,
            ["/proc", "/work/target/rootfs/with space", "/back\\slash\n"].map(PathBuf::from)
        );
        assert!(points[1].starts_with("/work/target/rootfs"));
        assert!(!Path::new("/work/target/rootfs.old").starts_with("/work/target/rootfs"));
    }

    #[test]
    fn mounted_directories_are_not_replaced() {
        let err = ensure_nothing_mounted(Path::new("/proc")).unwrap_err().to_string();
        assert!(err.contains("/proc is a mount point"), "{err}");
        ensure_nothing_mounted(Path::new("/nonexistent/xtask")).unwrap();
    }
}
