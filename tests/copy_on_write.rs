//! The rootfs on a copy-on-write overlay (the default): writes land in the container's own
//! layer under the storage dir, never in the rootfs directory, and are not seen by other
//! containers; `rm` removes the layer. `copy_on_write = false` writes into the rootfs itself;
//! `readonly_rootfs = true` refuses writes.

use boxr_tests::containers::{Containers, SLEEPER};
use boxr_tests::{Config, Marker};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Containers on a private copy of the rootfs (so a failure cannot touch the shared one), with
/// `config` applied on top; returns them and the copy's path.
fn on_private_rootfs(name: &str, config: impl FnOnce(Config) -> Config) -> (Containers, PathBuf) {
    let mut c = Containers::new(name);
    let rootfs = c.scratch().private_rootfs();
    c.set_config(&config(Config::new().rootfs(&rootfs)));
    (c, rootfs)
}

/// Every path under `dir` with its type, mode, size, modification time and inode.
fn snapshot(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let meta = fs::symlink_metadata(&path).expect("stat");
        let entry = (meta.mode(), meta.size(), meta.mtime(), meta.mtime_nsec(), meta.ino());
        out.push(format!("{} {entry:?}", path.display()));
        if meta.is_dir() {
            stack.extend(fs::read_dir(&path).expect("read_dir").map(|e| e.expect("entry").path()));
        }
    }
    out.sort();
    out
}

/// Runs `script` in the foreground in a new container of `c`; returns boxr's output.
fn run(c: &Containers, script: &str) -> boxr_tests::Output {
    c.run(&[], &["sh", "-c", script]).output()
}

#[test]
fn writes_go_to_the_containers_layer_not_the_rootfs() {
    let marker = Marker::new();
    let (c, rootfs) = on_private_rootfs("cow", |config| config);
    let before = snapshot(&rootfs);
    let writes = "echo new > /etc/cow-file; echo more >> /etc/passwd; rm /bin/true; mkdir /made";
    let id = c.start_sh("cow", &format!("{writes}; {SLEEPER}"), &marker);
    let check = "cat /etc/cow-file; tail -n 1 /etc/passwd; [ -e /bin/true ] || echo no-true; \
                 [ -d /made ] && echo made";
    assert_eq!(c.exec_sh(&[], "cow", check).ok(), "new\nmore\nno-true\nmade\n");
    assert_eq!(snapshot(&rootfs), before, "the container wrote into its rootfs directory");

    let storage = c.dirs().storage().join(&id);
    assert_eq!(c.inspect("cow")["storage"].as_str(), storage.to_str().unwrap());
    let upper = storage.join("upper");
    assert_eq!(fs::read_to_string(upper.join("etc/cow-file")).expect("in the layer"), "new\n");
    assert!(upper.join("made").is_dir(), "the new directory is not in the layer");

    assert_eq!(c.cmd(&["rm", "-f", "cow"]).ok(), "cow\n");
    assert!(!storage.exists(), "rm left the writable layer");
    assert_eq!(snapshot(&rootfs), before);
}

#[test]
fn containers_from_one_rootfs_do_not_see_each_others_writes() {
    let marker = Marker::new();
    let (c, rootfs) = on_private_rootfs("cow-two", |config| config);
    for name in ["a", "b"] {
        c.start_sh(name, &format!("echo {name} > /only-{name}; {SLEEPER}"), &marker);
    }
    let look = "for f in /only-a /only-b; do [ -e $f ] && echo \"$f $(cat $f)\"; done; true";
    for name in ["a", "b"] {
        assert_eq!(c.exec_sh(&[], name, look).ok(), format!("/only-{name} {name}\n"));
    }
    assert!(!rootfs.join("only-a").exists() && !rootfs.join("only-b").exists());
}

#[test]
fn without_copy_on_write_writes_land_in_the_rootfs() {
    let (c, rootfs) = on_private_rootfs("no-cow", |config| config.set("copy_on_write", "false"));
    run(&c, "echo direct > /direct-write").expect_code(0);
    assert_eq!(fs::read_to_string(rootfs.join("direct-write")).expect("written"), "direct\n");
    let ids = c.state_dirs();
    assert_eq!(ids.len(), 1);
    let layer = c.dirs().storage().join(&ids[0]).join("upper");
    assert!(!layer.exists(), "a writable layer without copy-on-write");
}

#[test]
fn a_readonly_rootfs_refuses_writes() {
    let (c, rootfs) = on_private_rootfs("readonly", |config| config.set("readonly_rootfs", "true"));
    let out = run(&c, "if echo x > /ro-write; then echo wrote; else echo refused; fi");
    assert_eq!(out.ok(), "refused\n");
    assert!(out.stderr.contains("Read-only file system"), "\n{out}");
    assert!(!rootfs.join("ro-write").exists());
}
