//! Masked and read-only kernel paths (runc's defaults): what the workload must not read is
//! hidden, what it must not write is read-only, and masking never uses a `/dev/null` that is not
//! the null device (CVE-2025-31133).

use boxr_tests::{Config, HostHostname, Scratch};
use std::fs;
use std::path::Path;

/// Reads what the masks hide (each read yields nothing, or the file is missing on this kernel),
/// then prints the container's mount table.
const READ_MASKED: &str = "for f in /proc/kcore /proc/keys /proc/timer_list; do
         [ -e $f ] && echo \"$f $(head -c 64 $f | wc -c)\"
     done
     echo \"/sys/firmware $(ls -A /sys/firmware | wc -l)\"
     cat /proc/self/mountinfo";

#[test]
fn kernel_information_is_masked() {
    let out = Config::new().sh(READ_MASKED);
    out.ok();
    for line in out.lines().iter().take_while(|l| l.starts_with('/')) {
        assert!(line.ends_with(" 0"), "{line}: the masked path is readable\n{out}");
    }
    let firmware = out.mount("/sys/firmware");
    assert_eq!(firmware.fstype, "tmpfs", "{firmware:?}");
    assert!(firmware.is_readonly(), "{firmware:?}");
    for file in ["/proc/keys", "/proc/timer_list"] {
        let mask = out.mount(file);
        assert_eq!((mask.fstype.as_str(), mask.root.as_str()), ("tmpfs", "/null"), "{mask:?}");
    }
}

#[test]
fn masks_apply_in_a_user_namespace() {
    // Without a network namespace, /sys is the host's, bound read-only: masked on top.
    let out = Config::new().namespaces(&["pid", "mount", "user"]).sh(READ_MASKED);
    out.ok();
    assert!(out.lines().contains(&"/sys/firmware 0"), "\n{out}");
    assert!(out.lines().contains(&"/proc/timer_list 0"), "\n{out}");
    assert!(out.mount("/proc/sys").is_readonly(), "\n{out}");
}

#[test]
fn kernel_tunables_and_triggers_are_read_only() {
    let hostname = HostHostname::save();
    // Opening for writing is what fails: nothing is ever written, even if it did not.
    let out = Config::new().sh("for f in /proc/sysrq-trigger /proc/sys/kernel/hostname; do
             [ -e $f ] || { echo \"$f missing\"; continue; }
             (: > $f) 2>&1 | grep -q 'Read-only file system' && echo \"$f erofs\"
         done
         cat /proc/sys/kernel/ostype");
    let lines = out.lines();
    // Some kernels have no /proc/sysrq-trigger (CONFIG_MAGIC_SYSRQ=n).
    assert!(
        ["/proc/sysrq-trigger erofs", "/proc/sysrq-trigger missing"].contains(&lines[0]),
        "\n{out}"
    );
    assert_eq!(lines[1..], ["/proc/sys/kernel/hostname erofs", "Linux"], "\n{out}");
    hostname.assert_unchanged();
}

#[test]
fn empty_lists_relax_the_defaults() {
    let out = Config::new()
        .set("masked_paths", "[]")
        .set("readonly_paths", "[]")
        .sh("ls -A /sys/firmware | wc -l; cat /proc/self/mountinfo");
    assert_ne!(out.lines()[0], "0", "/sys/firmware still masked\n{out}");
    let mounts = out.stdout.lines().skip(1).collect::<Vec<_>>().join("\n");
    for point in [" /proc/sys ", " /proc/keys ", " /sys/firmware "] {
        assert!(!mounts.contains(point), "{point} still mounted\n{out}");
    }
}

#[test]
fn configured_paths_replace_the_defaults() {
    let out = Config::new()
        .set("masked_paths", "[\"/etc/passwd\", \"/home\", \"/no/such/path\"]")
        .set("readonly_paths", "[\"/tmp\"]")
        .sh("wc -c < /etc/passwd; touch /home/x 2>/dev/null || echo home-masked
             touch /tmp/x 2>/dev/null || echo tmp-read-only
             grep -c ' /proc/sys ' /proc/self/mountinfo");
    assert_eq!(out.lines(), ["0", "home-masked", "tmp-read-only", "0"], "\n{out}");
}

#[test]
fn a_replaced_dev_null_is_refused() {
    let scratch = Scratch::new("fake-null");
    let secret = scratch.write("secret", "host secret\n");
    // A regular file, and a character device that is not 1:3.
    for source in [secret.as_path(), Path::new("/dev/zero")] {
        let out = Config::new().bind(source, "/dev/null", false).sh("cat /proc/keys");
        let line = out.expect_boxr_error();
        assert!(
            line.contains("masking /proc/")
                && line.contains(": the container's /dev/null is not the character device 1:3"),
            "\n{out}"
        );
        assert!(!out.stdout.contains("host secret"), "\n{out}");
    }
    assert_eq!(fs::read_to_string(&secret).unwrap(), "host secret\n");
}
