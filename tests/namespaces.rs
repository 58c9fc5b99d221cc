//! The workload is in a new namespace of each kind the config names, and in the host's of the
//! others.

use boxr_tests::Config;

/// Config names and their /proc/PID/ns/ entries.
const KINDS: [(&str, &str); 7] = [
    ("pid", "pid"),
    ("mount", "mnt"),
    ("uts", "uts"),
    ("ipc", "ipc"),
    ("net", "net"),
    ("user", "user"),
    ("cgroup", "cgroup"),
];

/// Asserts that a workload of a config with `namespaces` is in new namespaces of exactly those
/// kinds.
fn assert_namespaces(namespaces: &[&str]) {
    let script: String =
        KINDS.iter().map(|(_, ns)| format!("readlink /proc/$$/ns/{ns}; ")).collect();
    let out = Config::new().namespaces(namespaces).sh(&script);
    let inside: Vec<&str> = out.ok().lines().collect();
    assert_eq!(inside.len(), KINDS.len(), "\n{out}");
    for ((kind, ns), inside) in KINDS.iter().zip(inside) {
        let host = std::fs::read_link(format!("/proc/self/ns/{ns}")).unwrap();
        let host = host.to_str().unwrap();
        assert!(inside.starts_with(&format!("{ns}:[")), "\n{out}");
        let new = namespaces.contains(kind);
        assert_eq!(
            inside != host,
            new,
            "{kind}: container {inside}, host {host}, expected new: {new}"
        );
    }
}

#[test]
fn every_namespace() {
    assert_namespaces(&["pid", "mount", "uts", "ipc", "net", "user", "cgroup"]);
}

#[test]
fn default_namespaces() {
    assert_namespaces(boxr_tests::DEFAULT_NAMESPACES);
}

#[test]
fn mount_namespace_only() {
    assert_namespaces(&["mount"]);
}

#[test]
fn user_namespace_containers_start_reliably_in_parallel() {
    // Root in the container is the user running boxr (root here): a mapped uid 0.
    let config = Config::new().namespaces(&["pid", "mount", "user"]);
    let runs: Vec<_> = (0..4)
        .map(|_| {
            let config = config.clone();
            std::thread::spawn(move || (0..3).map(|_| config.sh("id -u")).collect::<Vec<_>>())
        })
        .collect();
    for out in runs.into_iter().flat_map(|t| t.join().unwrap()) {
        assert_eq!(out.ok(), "0\n", "\n{out}");
    }
}
