//! Debian packages the tasks need: tools installed with `apt-get install` when missing (as root
//! only), and packages fetched with `apt-get download` without being installed.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};

use crate::{TempDir, on_path, output, run_cmd, step, which};

/// A program a task runs and the Debian package that provides it.
#[derive(Clone, Copy)]
pub struct Tool {
    pub program: &'static str,
    pub package: &'static str,
}

/// Installs the packages of the `tools` whose program is not installed (which takes root).
pub fn ensure_tools(tools: &[Tool]) -> Result<()> {
    let mut missing: Vec<&str> =
        tools.iter().filter(|t| which(t.program).is_none()).map(|t| t.package).collect();
    missing.sort_unstable();
    missing.dedup();
    if missing.is_empty() {
        return Ok(());
    }
    let line = format!("apt-get install -y --no-install-recommends {}", missing.join(" "));
    ensure!(on_path("apt-get"), "missing tools: install the packages {}", missing.join(" "));
    step(&format!("installing {}", missing.join(" ")));
    let install = || {
        run_cmd(
            Command::new("apt-get")
                .args(["install", "-y", "--no-install-recommends", "-q"])
                .args(&missing)
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )
    };
    install()
        .or_else(|_| {
            // Usually apt has no package lists yet (or stale ones): refresh them once.
            step("refreshing apt's package lists and retrying");
            run_cmd(Command::new("apt-get").arg("update"))?;
            install()
        })
        .with_context(|| format!("cannot install missing tools (as root: `{line}`)"))
}

/// The candidate version of `package` in apt's index (`apt-cache show`), updating the package
/// lists once (which takes root) if apt does not know the package yet.
pub fn candidate(package: &str) -> Result<String> {
    let lookup = || -> Result<String> {
        let show = output(Command::new("apt-cache").args(["show", "--no-all-versions", package]))?;
        show.lines()
            .find_map(|l| l.strip_prefix("Version:"))
            .map(|v| v.trim().to_owned())
            .with_context(|| format!("apt's index has no version of {package}"))
    };
    lookup().or_else(|err| {
        step(&format!("{err:#}; refreshing apt's package lists and retrying"));
        run_cmd(Command::new("apt-get").arg("update"))
            .context("cannot refresh apt's package lists (run `apt-get update` as root)")?;
        lookup()
    })
}

/// Downloads `package` at `version` into `dir` with `apt-get download` (apt checks it against
/// the signed archive index); returns the .deb's path.
pub fn download(package: &str, version: &str, dir: &Path) -> Result<PathBuf> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let tmp = TempDir::new(dir, "download")?;
    step(&format!("downloading {package} {version} into {}", dir.display()));
    run_cmd(
        Command::new("apt-get")
            // Downloading into a directory apt's sandbox user may not write to; say so up front
            // rather than have apt warn that it falls back to root.
            .args(["-o", "APT::Sandbox::User=root", "download"])
            .arg(format!("{package}={version}"))
            .current_dir(tmp.path()),
    )?;
    let mut debs = fs::read_dir(tmp.path())
        .with_context(|| format!("cannot read {}", tmp.path().display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "deb"));
    let (Some(deb), None) = (debs.next(), debs.next()) else {
        bail!("apt-get download {package} did not produce exactly one .deb");
    };
    let dest = dir.join(deb.file_name().context("a .deb without a file name")?);
    fs::rename(&deb, &dest)
        .with_context(|| format!("cannot move {} to {}", deb.display(), dest.display()))?;
    Ok(dest)
}

/// The first package that `package` depends on whose name starts with `prefix`, from
/// `apt-cache depends` output (e.g. linux-image-amd64 → linux-image-6.1.0-56-amd64).
pub fn dependency(package: &str, prefix: &str) -> Result<String> {
    let text = output(Command::new("apt-cache").args(["depends", package]))?;
    first_dependency(&text, prefix)
        .with_context(|| format!("`apt-cache depends {package}` lists no {prefix}* dependency"))
}

fn first_dependency(depends: &str, prefix: &str) -> Option<String> {
    depends.lines().find_map(|line| {
        let name = line.trim().trim_start_matches('|').strip_prefix("Depends:")?.trim();
        name.starts_with(prefix).then(|| name.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_versioned_dependency() {
        let text = "linux-image-amd64\n  Depends: linux-image-6.1.0-56-amd64\n  \
                    Recommends: firmware\n";
        assert_eq!(
            first_dependency(text, "linux-image-").as_deref(),
            Some("linux-image-6.1.0-56-amd64")
        );
        let alternatives = "meta\n |Depends: other\n  Depends: linux-image-6.12.1-amd64\n";
        assert_eq!(
            first_dependency(alternatives, "linux-image-").as_deref(),
            Some("linux-image-6.12.1-amd64")
        );
        assert_eq!(first_dependency("meta\n  Recommends: linux-image-x\n", "linux-image-"), None);
    }
}
