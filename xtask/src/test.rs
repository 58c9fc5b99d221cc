//! `cargo xtask test`: builds boxr and boxr-init (debug) and the rootfs, then runs
//! `cargo test --workspace`. The integration tests create real containers, so this needs root.

use std::ffi::OsString;
use std::fs;

use anyhow::{Context, Result, ensure};

use crate::apt::{self, Tool};
use crate::busybox::Source;
use crate::{build_bins, cargo, root, rootfs, run_cmd, show, step};

/// Host programs the integration tests (and boxr under them) run: nft for bridge networking;
/// for the rootless tests useradd, usermod and userdel to make a user, setpriv to become it, and
/// newuidmap and newgidmap, through which boxr maps a user's subordinate ids.
pub const TEST_TOOLS: &[Tool] = &[
    Tool { program: "nft", package: "nftables" },
    Tool { program: "useradd", package: "passwd" },
    Tool { program: "usermod", package: "passwd" },
    Tool { program: "userdel", package: "passwd" },
    Tool { program: "setpriv", package: "util-linux" },
    Tool { program: "newuidmap", package: "uidmap" },
    Tool { program: "newgidmap", package: "uidmap" },
];

/// `cargo_args` go to `cargo test`; `test_args` go after its `--`, to the test binaries.
pub fn run(source: &Source, cargo_args: &[OsString], test_args: &[OsString]) -> Result<()> {
    let status =
        fs::read_to_string("/proc/self/status").context("cannot read /proc/self/status")?;
    let euid = effective_uid(&status).context("no Uid line in /proc/self/status")?;
    ensure!(
        euid == 0,
        "the integration tests create containers and need root, but the effective uid is {euid}: \
         run `cargo xtask test` as root"
    );

    apt::ensure_tools(TEST_TOOLS)?;
    build_bins::build(false)?;
    rootfs::build(source, false)?;

    let mut test = cargo();
    test.args(["test", "--workspace"]).args(cargo_args).current_dir(root());
    if !test_args.is_empty() {
        test.arg("--").args(test_args);
    }
    step(&format!("running {}", show(&test)));
    run_cmd(&mut test)
}

/// The effective uid from /proc/self/status (`Uid:` real, effective, saved, filesystem).
fn effective_uid(status: &str) -> Option<u32> {
    let line = status.lines().find_map(|l| l.strip_prefix("Uid:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_effective_uid() {
        let status =
            "Name:\txtask\nUmask:\t0022\nUid:\t1000\t0\t0\t0\nGid:\t1000\t1000\t1000\t1000\n";
        assert_eq!(effective_uid(status), Some(0));
        assert_eq!(effective_uid("Uid:\t1000\t1001\t1000\t1000\n"), Some(1001));
        assert_eq!(effective_uid("Name:\txtask\n"), None);
        assert_eq!(effective_uid("Uid:\t1000\n"), None);
    }
}
