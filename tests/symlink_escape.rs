//! A hostile rootfs whose paths are symlinks out of it (CVE-2021-30465, CVE-2023-27561 class):
//! mount targets and the working directory resolve inside the rootfs, never on the host, and a
//! `/proc` or `/sys` that is a symlink is refused.

use boxr_tests::{Config, Scratch};
use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

/// A host directory the hostile rootfs points at; it must stay empty.
fn host_target(scratch: &Scratch) -> std::path::PathBuf {
    let dir = scratch.path().join("host-etc");
    fs::create_dir(&dir).unwrap();
    dir
}

#[track_caller]
fn assert_empty(dir: &Path) {
    let entries: Vec<_> = fs::read_dir(dir).unwrap().flatten().map(|e| e.path()).collect();
    assert!(entries.is_empty(), "boxr wrote on the host: {entries:?}");
}

#[test]
fn mount_targets_through_absolute_and_climbing_symlinks_stay_in_the_rootfs() {
    let scratch = Scratch::new("symlink-targets");
    let rootfs = scratch.private_rootfs();
    let host = host_target(&scratch);
    // An absolute link to a host directory, and one that climbs far above the rootfs.
    symlink(&host, rootfs.join("abs")).unwrap();
    let depth = rootfs.components().count() + 3;
    let climb = format!("{}{}", "../".repeat(depth), host.strip_prefix("/").unwrap().display());
    symlink(&climb, rootfs.join("climb")).unwrap();
    let data = scratch.write("data/file", "bound\n");
    let config = Config::new()
        .rootfs(&rootfs)
        .set("copy_on_write", "false")
        .bind(data.parent().unwrap(), "/abs/bound", true)
        .tmpfs("/climb/tmp", None);
    let out = config.sh("cat /abs/bound/file; echo x > /climb/tmp/y && cat /climb/tmp/y");
    assert_eq!(out.ok(), "bound\nx\n");
    assert_empty(&host);
    // Both landed under the rootfs, at the path the link names as if the rootfs were `/`.
    let inside = rootfs.join(host.strip_prefix("/").unwrap());
    assert!(inside.join("bound").is_dir() && inside.join("tmp").is_dir());
}

#[test]
fn the_working_directory_resolves_inside_the_container() {
    let scratch = Scratch::new("symlink-cwd");
    let rootfs = scratch.private_rootfs();
    let host = host_target(&scratch);
    fs::write(host.join("secret"), "host\n").unwrap();
    symlink(&host, rootfs.join("escape")).unwrap();
    let config = Config::new().rootfs(&rootfs).process("cwd", "\"/escape\"");
    // The link resolves in the container's own root, where the host path does not exist.
    let out = config.sh("pwd; cat secret");
    assert_eq!(out.code(), 125, "the missing directory is an error\n{out}");
    assert!(out.stderr.contains("/escape"), "\n{out}");
    assert!(!out.stdout.contains("host"), "\n{out}");
}

#[test]
fn proc_and_sys_must_be_real_directories() {
    for dir in ["proc", "sys"] {
        let scratch = Scratch::new("symlink-proc");
        let rootfs = scratch.private_rootfs();
        let host = host_target(&scratch);
        fs::remove_dir(rootfs.join(dir)).unwrap();
        symlink(&host, rootfs.join(dir)).unwrap();
        let out = Config::new().rootfs(&rootfs).sh("true");
        let line = out.expect_boxr_error();
        assert!(line.contains(&format!("{dir} must be a real directory")), "{line}");
        assert_empty(&host);
    }
}
