//! `[process.rlimits]`, `process.oom_score_adj` and `[sysctls]`: what the workload observes,
//! what stays on the host, and what is refused before anything starts.

use boxr_tests::{Boxr, Config, Scratch};
use std::fs;

/// A config with `extra` TOML (tables) after it.
fn with(config: &Config, extra: &str) -> (Scratch, std::path::PathBuf) {
    let scratch = Scratch::new("limits");
    let path = scratch.write("config.toml", &format!("{}\n{extra}", config.render()));
    (scratch, path)
}

fn sh(config: &Config, extra: &str, script: &str) -> String {
    let (_scratch, path) = with(config, extra);
    Boxr::run(&path).command(&["/bin/sh", "-c", script]).output().ok().to_string()
}

fn rejected(config: &Config, extra: &str) -> String {
    let (_scratch, path) = with(config, extra);
    let out = Boxr::run(&path).output();
    out.expect_boxr_error().to_string()
}

#[test]
fn rlimits_are_set_for_the_workload() {
    let limits = "[process.rlimits]\nnofile = { soft = 1024, hard = 2048 }\n\
                  core = { soft = 0, hard = \"unlimited\" }\nRLIMIT_NPROC = { soft = 100, hard = 200 }\n";
    let script = "ulimit -n; ulimit -Hn; ulimit -c; ulimit -Hc; ulimit -u; ulimit -Hu";
    let out = sh(&Config::new(), limits, script);
    assert_eq!(out, "1024\n2048\n0\nunlimited\n100\n200\n");
}

#[test]
fn rlimits_apply_to_a_non_root_user_too() {
    let config = Config::new().process("user", "\"nobody\"");
    let out = sh(
        &config,
        "[process.rlimits]\nnofile = { soft = 64, hard = 128 }\n",
        "ulimit -n; ulimit -Hn",
    );
    assert_eq!(out, "64\n128\n");
}

#[test]
fn bad_rlimits_are_refused_before_anything_starts() {
    let config = Config::new();
    let e = rejected(&config, "[process.rlimits]\nnofiles = { soft = 1, hard = 2 }\n");
    assert!(e.contains("process.rlimits: unknown resource limit \"nofiles\""), "{e}");
    let e = rejected(&config, "[process.rlimits]\nnofile = { soft = 4096, hard = 1024 }\n");
    assert!(e.contains("the soft limit 4096 is above the hard limit 1024"), "{e}");
    // boxr's own open-files hard limit is what the caller has; without CAP_SYS_RESOURCE nothing
    // can raise it.
    let own: u64 = String::from_utf8(
        std::process::Command::new("sh").args(["-c", "ulimit -Hn"]).output().expect("sh").stdout,
    )
    .expect("utf-8")
    .trim()
    .parse()
    .expect("a number");
    let status = fs::read_to_string("/proc/self/status").expect("status");
    let eff = status.lines().find_map(|l| l.strip_prefix("CapEff:\t")).expect("CapEff");
    if u64::from_str_radix(eff, 16).expect("hex") & (1 << 24) == 0 {
        let limits = format!("[process.rlimits]\nnofile = {{ soft = 1, hard = {} }}\n", own + 1);
        let e = rejected(&config, &limits);
        assert!(e.contains(&format!("is above boxr's own ({own})")), "{e}");
        assert!(e.contains("CAP_SYS_RESOURCE"), "{e}");
    }
}

#[test]
fn oom_score_adj_is_written_for_the_workload() {
    let config = Config::new().process("oom_score_adj", "500");
    assert_eq!(config.sh("cat /proc/self/oom_score_adj").ok(), "500\n");
    assert_eq!(Config::new().sh("cat /proc/self/oom_score_adj").ok(), "0\n");
    let e = rejected(&Config::new().process("oom_score_adj", "1001"), "");
    assert!(e.contains("process.oom_score_adj: 1001 is not between -1000 and 1000"), "{e}");
}

#[test]
fn namespaced_sysctls_are_set_inside_and_not_on_the_host() {
    let host_ttl = fs::read_to_string("/proc/sys/net/ipv4/ip_default_ttl").expect("host ttl");
    let extra = "[sysctls]\n\"net.ipv4.ip_forward\" = 1\n\"net.ipv4.ip_default_ttl\" = \"33\"\n\
                 \"kernel.shmmni\" = 1000\n";
    let script = "sysctl net.ipv4.ip_forward net.ipv4.ip_default_ttl kernel.shmmni";
    let out = sh(&Config::new(), extra, script);
    assert_eq!(
        out,
        "net.ipv4.ip_forward = 1\nnet.ipv4.ip_default_ttl = 33\nkernel.shmmni = 1000\n"
    );
    let after = fs::read_to_string("/proc/sys/net/ipv4/ip_default_ttl").expect("host ttl");
    assert_eq!(after, host_ttl, "the host's value changed");
}

#[test]
fn sysctls_outside_the_containers_namespaces_are_refused() {
    let e = rejected(&Config::new(), "[sysctls]\n\"kernel.panic\" = 1\n");
    assert!(e.contains("sysctls: kernel.panic is not namespaced"), "{e}");
    let e = rejected(&Config::new(), "[sysctls]\n\"vm.swappiness\" = 1\n");
    assert!(e.contains("not namespaced"), "{e}");
    let no_net = Config::new().namespaces(&["pid", "mount", "uts", "ipc"]);
    let e = rejected(&no_net, "[sysctls]\n\"net.ipv4.ip_forward\" = 1\n");
    assert!(e.contains("the \"net\" namespace, which the container does not have"), "{e}");
    let no_ipc = Config::new().namespaces(&["pid", "mount", "uts", "net"]);
    let e = rejected(&no_ipc, "[sysctls]\n\"kernel.shmmax\" = 1\n");
    assert!(e.contains("the \"ipc\" namespace"), "{e}");
}
