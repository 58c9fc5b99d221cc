//! The container's mount table: the rootfs and boxr's own mounts, the config's bind and tmpfs
//! mounts, a read-only rootfs, and nothing of the host's.

use boxr_tests::{Boxr, Config, Mount, Scratch, container_mounts};
use std::fs;
use std::path::{Path, PathBuf};

/// A scratch dir holding a private rootfs and a host dir `data/` with `in.txt` ("from-host").
struct Setup {
    scratch: Scratch,
    rootfs: PathBuf,
    data: PathBuf,
}

impl Setup {
    fn new(name: &str) -> Setup {
        let scratch = Scratch::new(name);
        let data = scratch.write("data/in.txt", "from-host\n").parent().unwrap().to_path_buf();
        let rootfs = scratch.private_rootfs();
        Setup { scratch, rootfs, data }
    }

    /// A config with the private rootfs, used directly (no copy-on-write layer), so that the
    /// tests can see on the host where mount points and writes land in it.
    fn config(&self) -> Config {
        Config::new().rootfs(&self.rootfs).set("copy_on_write", "false")
    }
}

/// The mount points boxr itself sets up (with "ipc" and "net" in the namespaces).
const BOXR_MOUNTS: [&str; 9] = [
    "/",
    "/proc",
    "/sys",
    "/dev",
    "/dev/pts",
    "/dev/shm",
    "/dev/mqueue",
    "/etc/hostname",
    "/etc/hosts",
];

/// The default masked and read-only paths this kernel has: each is a mount of its own.
fn kernel_paths() -> impl Iterator<Item = &'static str> {
    const DEFAULTS: [&str; 15] = [
        "/proc/acpi",
        "/proc/kcore",
        "/proc/keys",
        "/proc/latency_stats",
        "/proc/timer_list",
        "/proc/timer_stats",
        "/proc/sched_debug",
        "/proc/scsi",
        "/sys/firmware",
        "/sys/devices/virtual/powercap",
        "/proc/bus",
        "/proc/fs",
        "/proc/irq",
        "/proc/sys",
        "/proc/sysrq-trigger",
    ];
    DEFAULTS.into_iter().filter(|p| Path::new(p).exists())
}

#[test]
fn mount_table_holds_only_the_containers_mounts() {
    let s = Setup::new("mount-table");
    let config = s.config().bind(&s.data, "/data", false).tmpfs("/scratch", None);
    let mounts = container_mounts(&config);
    let mut points: Vec<&str> = mounts.iter().map(|m| m.mount_point.as_str()).collect();
    points.sort();
    let mut expected: Vec<&str> =
        BOXR_MOUNTS.iter().copied().chain(["/data", "/scratch"]).chain(kernel_paths()).collect();
    expected.sort();
    // The old root (and every host mount under it) must be gone after pivot_root.
    assert_eq!(points, expected, "{mounts:#?}");
    let host_paths = [s.rootfs.to_str().unwrap(), s.scratch.path().to_str().unwrap()];
    for m in &mounts {
        assert!(
            !host_paths.iter().any(|h| m.mount_point.contains(h)),
            "host path as a mount point: {m:?}"
        );
    }
}

#[test]
fn bind_mount_is_writable_and_shared_with_the_host() {
    let s = Setup::new("bind-rw");
    let out = s.config().bind(&s.data, "/mnt/data", false).sh(
        "cat /mnt/data/in.txt; echo from-container > /mnt/data/out.txt; cat /proc/self/mountinfo",
    );
    assert_eq!(out.lines()[0], "from-host", "\n{out}");
    let data = out.mount("/mnt/data");
    assert!(!data.is_readonly(), "{data:?}");
    assert_eq!(fs::read_to_string(s.data.join("out.txt")).unwrap(), "from-container\n");
    assert!(
        s.rootfs.join("mnt/data").is_dir(),
        "the missing destination was not created in the rootfs"
    );
    assert!(
        !s.rootfs.join("mnt/data/out.txt").exists(),
        "the write went to the rootfs, not the bind mount"
    );
}

#[test]
fn readonly_bind_mount_refuses_writes() {
    let s = Setup::new("bind-ro");
    let out = s
        .config()
        .bind(&s.data, "/data", true)
        .sh("cat /data/in.txt; touch /data/new; echo touch=$?; cat /proc/self/mountinfo");
    assert_eq!(out.lines()[..2], ["from-host", "touch=1"], "\n{out}");
    assert!(out.stderr.contains("Read-only file system"), "\n{out}");
    assert!(out.mount("/data").is_readonly());
    assert!(!s.data.join("new").exists());
}

#[test]
fn bind_source_and_rootfs_are_relative_to_the_config_dir() {
    let s = Setup::new("relative");
    let conf = s.scratch.path().join("conf");
    fs::create_dir(&conf).unwrap();
    fs::rename(&s.rootfs, conf.join("rootfs")).unwrap();
    fs::rename(&s.data, conf.join("data")).unwrap();
    let config = Config::new().set("rootfs", "\"rootfs\"").set("copy_on_write", "false").mount(&[
        ("type", "\"bind\""),
        ("source", "\"data\""),
        ("destination", "\"/data\""),
    ]);
    let file = s.scratch.write("conf/config.toml", &config.render());
    // Run from another directory: relative paths must not depend on boxr's cwd.
    let out = Boxr::run(&file)
        .current_dir(std::path::Path::new("/"))
        .command(&["/bin/cat", "/data/in.txt"])
        .output();
    assert_eq!(out.ok(), "from-host\n");
    assert!(conf.join("rootfs/data").is_dir());
}

#[test]
fn tmpfs_mounts_get_their_size() {
    let s = Setup::new("tmpfs");
    let config = s
        .config()
        .tmpfs("/t/sixteen-m", Some("16m"))
        .tmpfs("/t/bytes", Some("1048576"))
        .tmpfs("/t/k", Some("512k"))
        .tmpfs("/t/g", Some("1g"))
        .tmpfs("/t/default", None);
    let out = config.sh("echo hi > /t/sixteen-m/f && cat /t/sixteen-m/f; cat /proc/self/mountinfo");
    assert_eq!(out.lines()[0], "hi", "\n{out}");
    let mounts = Mount::parse_all(&out.stdout);
    for (point, size) in
        [("/t/sixteen-m", "16384k"), ("/t/bytes", "1024k"), ("/t/k", "512k"), ("/t/g", "1048576k")]
    {
        let m = Mount::at(&mounts, point);
        assert_eq!(m.fstype, "tmpfs", "{m:?}");
        assert!(
            m.super_options.contains(&format!("size={size}")),
            "{point} should have size={size}: {m:?}"
        );
    }
    assert_eq!(Mount::at(&mounts, "/t/default").fstype, "tmpfs");
    assert!(
        fs::read_dir(s.rootfs.join("t/sixteen-m")).unwrap().next().is_none(),
        "the tmpfs write reached the rootfs"
    );
}

#[test]
fn readonly_rootfs_refuses_writes_but_mounts_stay_writable() {
    let s = Setup::new("ro-rootfs");
    let config = s.config().set("readonly_rootfs", "true").tmpfs("/scratch", None);
    let out = config.sh("touch /root/new; echo root=$?
         touch /scratch/new; echo scratch=$?
         touch /dev/shm/new; echo shm=$?
         cat /proc/self/mountinfo");
    assert_eq!(out.lines()[..3], ["root=1", "scratch=0", "shm=0"], "\n{out}");
    assert!(out.stderr.contains("Read-only file system"), "\n{out}");
    assert!(out.mount("/").is_readonly());
    assert!(!s.rootfs.join("root/new").exists());
}

#[test]
fn rootfs_is_writable_by_default() {
    let s = Setup::new("rw-rootfs");
    let out = s.config().sh("echo written > /root/new && cat /proc/self/mountinfo");
    out.expect_code(0);
    assert!(!out.mount("/").is_readonly());
    assert_eq!(fs::read_to_string(s.rootfs.join("root/new")).unwrap(), "written\n");
    assert!(!boxr_tests::rootfs().join("root/new").exists(), "the shared rootfs was written to");
}

#[test]
fn readonly_tmpfs_refuses_writes() {
    let s = Setup::new("tmpfs-ro");
    let config = s.config().mount(&[
        ("type", "\"tmpfs\""),
        ("destination", "\"/ro-tmp\""),
        ("readonly", "true"),
    ]);
    let out =
        config.sh("touch /ro-tmp/new; echo touch=$?; stat -c %a /ro-tmp; cat /proc/self/mountinfo");
    assert_eq!(out.lines()[..2], ["touch=1", "1777"], "\n{out}");
    assert!(out.stderr.contains("Read-only file system"), "\n{out}");
    let m = out.mount("/ro-tmp");
    assert!(m.is_readonly() && m.fstype == "tmpfs", "{m:?}");
}

#[test]
fn bind_mount_of_a_file() {
    let s = Setup::new("bind-file");
    let config = s.config().bind(&s.data.join("in.txt"), "/etc/greeting", false);
    let out = config.sh("cat /etc/greeting; echo appended >> /etc/greeting");
    assert_eq!(out.ok(), "from-host\n");
    assert_eq!(fs::read_to_string(s.data.join("in.txt")).unwrap(), "from-host\nappended\n");
    let created = fs::metadata(s.rootfs.join("etc/greeting")).unwrap();
    assert!(created.is_file() && created.len() == 0, "the destination should be an empty file");
}

#[test]
fn nested_mounts_apply_parents_first() {
    // Listed child first: the parent tmpfs must not hide the bind mount inside it.
    let s = Setup::new("nested");
    let config = s.config().bind(&s.data, "/outer/inner", true).tmpfs("/outer", None);
    let out = config.sh("cat /outer/inner/in.txt; cat /proc/self/mountinfo");
    assert_eq!(out.lines()[0], "from-host", "\n{out}");
    assert_eq!(out.mount("/outer").fstype, "tmpfs");
    assert!(out.mount("/outer/inner").is_readonly());
}

#[test]
fn destination_symlinks_resolve_inside_the_rootfs() {
    // /escape in the rootfs points at an absolute host path: the mount point must be created
    // under the rootfs, never in the host directory.
    let s = Setup::new("symlink-escape");
    let host_dir = s.scratch.path().join("host-dir");
    fs::create_dir(&host_dir).unwrap();
    std::os::unix::fs::symlink(&host_dir, s.rootfs.join("escape")).unwrap();
    let out =
        s.config().tmpfs("/escape/sub", None).sh("echo hi > /escape/sub/f && cat /escape/sub/f");
    assert!(fs::read_dir(&host_dir).unwrap().next().is_none(), "boxr created a host path");
    assert_eq!(out.ok(), "hi\n");
    assert!(s.rootfs.join(host_dir.strip_prefix("/").unwrap()).join("sub").is_dir());
}
