//! /dev is a fresh tmpfs with the standard devices, a private devpts, /dev/shm, /dev/mqueue and
//! the fd symlinks.

use boxr_tests::{Boxr, Config, Mount, Scratch, assert_new_instance, container_mounts};

#[test]
fn dev_holds_the_standard_char_devices() {
    let out = Config::new().sh(
        "stat -c '%n %t:%T %F' /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty",
    );
    assert_eq!(
        out.lines(),
        [
            "/dev/null 1:3 character special file",
            "/dev/zero 1:5 character special file",
            "/dev/full 1:7 character special file",
            "/dev/random 1:8 character special file",
            "/dev/urandom 1:9 character special file",
            "/dev/tty 5:0 character special file",
        ],
        "\n{out}"
    );
}

#[test]
fn devices_behave_like_the_real_ones() {
    let out = Config::new().sh("echo discarded > /dev/null && echo null-ok
         head -c 4 /dev/zero | od -An -tx1
         head -c 32 /dev/urandom | wc -c
         head -c 32 /dev/random | wc -c
         echo x > /dev/full || echo full-refused");
    let lines: Vec<String> =
        out.lines().iter().map(|l| l.split_whitespace().collect::<Vec<_>>().join(" ")).collect();
    assert_eq!(lines, ["null-ok", "00 00 00 00", "32", "32", "full-refused"], "\n{out}");
    assert!(
        out.stderr.contains("No space left on device"),
        "writing /dev/full must fail with ENOSPC\n{out}"
    );
}

#[test]
fn dev_is_a_tmpfs_with_mode_755() {
    let out = Config::new().sh("stat -c '%a %F' /dev; cat /proc/self/mountinfo");
    assert_eq!(out.lines()[0], "755 directory", "\n{out}");
    assert_new_instance(&out.mount("/dev"), "tmpfs");
}

#[test]
fn devpts_is_a_new_instance_behind_dev_ptmx() {
    // Opening /dev/ptmx must allocate pty 0 of the container's own devpts instance.
    let out = Config::new()
        .sh("readlink /dev/ptmx; ls /dev/pts; exec 3<>/dev/ptmx; echo opened; ls /dev/pts");
    assert_eq!(out.lines(), ["pts/ptmx", "ptmx", "opened", "0", "ptmx"], "\n{out}");
    let mounts = container_mounts(&Config::new());
    assert_new_instance(Mount::at(&mounts, "/dev/pts"), "devpts");
}

#[test]
fn dev_shm_and_dev_mqueue_are_mounted_with_ipc() {
    let mounts = container_mounts(&Config::new());
    assert_new_instance(Mount::at(&mounts, "/dev/shm"), "tmpfs");
    assert_new_instance(Mount::at(&mounts, "/dev/mqueue"), "mqueue");
    let out = Config::new().sh("echo shared > /dev/shm/probe && cat /dev/shm/probe");
    assert_eq!(out.ok(), "shared\n");
}

#[test]
fn no_dev_mqueue_without_ipc_namespace() {
    let mounts = container_mounts(&Config::new().namespaces(&["pid", "mount", "uts", "net"]));
    assert!(
        mounts.iter().all(|m| m.mount_point != "/dev/mqueue" && m.fstype != "mqueue"),
        "{mounts:#?}"
    );
    Mount::at(&mounts, "/dev/shm");
}

#[test]
fn fd_symlinks_reach_the_standard_streams() {
    let scratch = Scratch::new("fd-links");
    let config = scratch.config(&Config::new());
    let script = "for l in fd stdin stdout stderr; do [ -L /dev/$l ] && echo link-$l; done
                  cat /dev/stdin; echo to-stdout > /dev/stdout; echo to-stderr > /dev/stderr
                  ls /dev/fd/";
    let out = Boxr::run(&config).command(&["/bin/sh", "-c", script]).stdin("from-stdin\n").output();
    let lines = out.lines();
    assert_eq!(
        lines[..6],
        ["link-fd", "link-stdin", "link-stdout", "link-stderr", "from-stdin", "to-stdout"],
        "\n{out}"
    );
    assert!(lines[6..].starts_with(&["0", "1", "2"]), "/dev/fd/ does not list the fds\n{out}");
    assert_eq!(out.stderr, "to-stderr\n", "\n{out}");
}
