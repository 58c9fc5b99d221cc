//! `cargo xtask build`: builds `boxr` and `boxr-init` so that they end up side by side in
//! `<target dir>/<profile>/`, and checks that boxr-init is statically linked.
//!
//! boxr-init has a workspace of its own (it is no_std and libc-free); it is built from its own
//! directory, so that its `.cargo/config.toml` applies, but into this workspace's target
//! directory. The binaries' paths are taken from cargo's JSON messages rather than guessed.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, anyhow};
use serde_json::Value;

use crate::{cargo, output, root, show, step};

/// Builds both binaries (release or debug profile); returns the directory holding them.
pub fn build(release: bool) -> Result<PathBuf> {
    let profile: &[&str] = if release { &["--release"] } else { &[] };

    let mut boxr = cargo();
    boxr.args(["build", "--package", "boxr-cli"]).args(profile).current_dir(root());
    let boxr = build_bin(&mut boxr, "boxr")?;
    let bin_dir =
        boxr.parent().context("cargo reported boxr at a path without a parent")?.to_path_buf();

    let init_dir = root().join("boxr-init");
    let mut init = cargo();
    init.arg("build")
        .arg("--manifest-path")
        .arg(init_dir.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir()?)
        .args(profile)
        .current_dir(&init_dir);
    let init = build_bin(&mut init, "boxr-init")?;

    // boxr looks for boxr-init beside itself. If boxr-init's own config builds it for an
    // explicit target triple, it lands in <target dir>/<triple>/<profile>/: copy it over.
    let beside = bin_dir.join("boxr-init");
    if init != beside {
        step(&format!("copying {} to {}", init.display(), beside.display()));
        fs::copy(&init, &beside)
            .with_context(|| format!("cannot copy {} to {}", init.display(), beside.display()))?;
    }
    step(&format!("checking that {} is statically linked", beside.display()));
    let file =
        fs::File::open(&beside).with_context(|| format!("cannot open {}", beside.display()))?;
    boxr_cli::elf::check_static(&file).map_err(|e| anyhow!("{} is {e}", beside.display()))?;
    step(&format!("built {} and {}", bin_dir.join("boxr").display(), beside.display()));
    Ok(bin_dir)
}

/// Runs a `cargo build` and returns the path of the executable named `name` it produced.
fn build_bin(cmd: &mut Command, name: &str) -> Result<PathBuf> {
    step(&format!("building {name}: {}", show(cmd)));
    // JSON messages on stdout; diagnostics and progress still go to the terminal.
    cmd.arg("--message-format=json-render-diagnostics");
    let messages = output(cmd)?;
    executable(&messages, name)
        .with_context(|| format!("{} reported no executable named {name}", show(cmd)))
}

/// The target directory of this workspace, as cargo sees it (`CARGO_TARGET_DIR`, config, ...).
fn target_dir() -> Result<PathBuf> {
    let mut cmd = cargo();
    cmd.args(["metadata", "--format-version", "1", "--no-deps"]).current_dir(root());
    let json = output(&mut cmd)?;
    let metadata: Value = serde_json::from_str(&json)
        .with_context(|| format!("{} printed invalid JSON", show(&cmd)))?;
    metadata["target_directory"]
        .as_str()
        .map(PathBuf::from)
        .with_context(|| format!("{} printed no target_directory", show(&cmd)))
}

/// Finds the executable named `name` in cargo's `--message-format=json` output.
fn executable(messages: &str, name: &str) -> Option<PathBuf> {
    messages
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == name)
        .filter_map(|m| m["executable"].as_str().map(Path::new).map(Path::to_path_buf))
        .next_back()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_executable_in_cargo_messages() {
        let messages = r#"
{"reason":"compiler-artifact","target":{"name":"anyhow","kind":["lib"]},"executable":null}
{"reason":"build-script-executed","package_id":"x"}
not json: cargo only prints JSON here, but be lenient
{"reason":"compiler-artifact","target":{"name":"boxr-init","kind":["bin"]},"executable":"/t/x86_64-unknown-linux-gnu/release/boxr-init"}
{"reason":"compiler-artifact","target":{"name":"boxr","kind":["bin"]},"executable":"/t/release/boxr"}
{"reason":"build-finished","success":true}
"#;
        assert_eq!(executable(messages, "boxr"), Some(PathBuf::from("/t/release/boxr")));
        assert_eq!(
            executable(messages, "boxr-init"),
            Some(PathBuf::from("/t/x86_64-unknown-linux-gnu/release/boxr-init"))
        );
        assert_eq!(executable(messages, "anyhow"), None);
        assert_eq!(executable(messages, "missing"), None);
    }
}
