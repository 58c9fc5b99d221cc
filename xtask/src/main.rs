//! boxr's development tasks, run as `cargo xtask <task>` (see `cargo xtask --help`).
//!
//! One module per task; this file parses the command line, dispatches, and holds the few helpers
//! the tasks share (the workspace root, running commands, temporary directories).

mod apt;
mod bench;
mod build_bins;
mod busybox;
mod rootfs;
mod test;
mod vm_test;

use std::ffi::OsString;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use anyhow::{Context, Result, ensure};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "xtask", bin_name = "cargo xtask", about = "boxr's development tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Build the busybox root filesystem at target/rootfs (used by configs/ and the tests).
    BuildRootfs {
        #[command(flatten)]
        source: busybox::Source,
        /// Rebuild even if target/rootfs is already complete.
        #[arg(long)]
        force: bool,
    },
    /// Build boxr and boxr-init side by side in the target directory.
    Build {
        /// Build with the release profile.
        #[arg(long)]
        release: bool,
    },
    /// Build everything (debug), build the rootfs, then run `cargo test --workspace` (as root).
    ///
    /// Arguments go to `cargo test` as given; those after `--` go to the test binaries, as with
    /// `cargo test`: `cargo xtask test -- --test-threads 4`.
    Test {
        #[command(flatten)]
        source: busybox::Source,
        /// Arguments for `cargo test`, e.g. `--release` or a test name filter.
        #[arg(allow_hyphen_values = true, value_name = "CARGO_TEST_ARGS")]
        cargo_args: Vec<OsString>,
        /// Arguments for the test binaries, e.g. `--test-threads 4`.
        #[arg(last = true, value_name = "TEST_ARGS")]
        test_args: Vec<OsString>,
    },
    /// Run the integration tests inside a VM (qemu; KVM or TCG) on a pure cgroup-v2 kernel.
    ///
    /// Needs no root: Debian's kernel is fetched with apt-get download (not installed) and
    /// cached in target/vm. Arguments after `--` go to every test binary.
    VmTest(vm_test::Args),
    /// Measure boxr against runc, crun, bwrap and the bare kernel; writes docs/benchmarks.md.
    Bench(bench::Args),
    /// Build everything (release), build the rootfs, then run configs/hello.toml.
    Demo {
        #[command(flatten)]
        source: busybox::Source,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse().task) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(task: Task) -> Result<ExitCode> {
    match task {
        Task::BuildRootfs { source, force } => rootfs::build(&source, force)?,
        Task::Build { release } => {
            build_bins::build(release)?;
        }
        Task::Test { source, cargo_args, test_args } => {
            test::run(&source, &cargo_args, &test_args)?
        }
        Task::VmTest(args) => return vm_test::run(&args),
        Task::Bench(args) => bench::run(&args)?,
        Task::Demo { source } => return demo(&source),
    }
    Ok(ExitCode::SUCCESS)
}

/// `cargo xtask demo`: release build, rootfs, then `boxr run --rm --config configs/hello.toml`.
fn demo(source: &busybox::Source) -> Result<ExitCode> {
    let bins = build_bins::build(true)?;
    rootfs::build(source, false)?;
    let config = Path::new("configs/hello.toml");
    ensure!(root().join(config).is_file(), "{} does not exist", root().join(config).display());
    let mut boxr = Command::new(bins.join("boxr"));
    // --rm: the demo leaves no container behind.
    boxr.args(["run", "--rm", "--config"]).arg(config).current_dir(root());
    step(&format!("running {}", show(&boxr)));
    let status = boxr.status().with_context(|| format!("cannot start {}", show(&boxr)))?;
    // Exit as the container did; a signal death becomes 128 + signal, as in a shell.
    let code = status.code().or_else(|| {
        use std::os::unix::process::ExitStatusExt as _;
        status.signal().map(|sig| 128 + sig)
    });
    Ok(code.and_then(|c| u8::try_from(c).ok()).map_or(ExitCode::FAILURE, ExitCode::from))
}

/// The workspace root (the directory holding the root Cargo.toml).
fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives inside the workspace")
}

/// The cargo that runs us (`$CARGO`), for nested builds.
fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// Prints a step as it starts.
fn step(what: &str) {
    eprintln!("==> {what}");
}

/// A command line for messages, e.g. `cargo build -p boxr-cli`.
fn show(cmd: &Command) -> String {
    let mut line = format!("`{}", cmd.get_program().to_string_lossy());
    for arg in cmd.get_args() {
        let arg = arg.to_string_lossy();
        if arg.is_empty() || arg.contains(char::is_whitespace) {
            let _ = write!(line, " '{arg}'");
        } else {
            let _ = write!(line, " {arg}");
        }
    }
    line.push('`');
    line
}

/// Runs `cmd` with inherited stdio; fails unless it exits successfully.
fn run_cmd(cmd: &mut Command) -> Result<()> {
    let status = cmd.status().with_context(|| format!("cannot start {}", show(cmd)))?;
    ensure!(status.success(), "{} failed ({status})", show(cmd));
    Ok(())
}

/// Runs `cmd` and returns its standard output; its standard error is shown as it comes.
fn output(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("cannot start {}", show(cmd)))?;
    ensure!(out.status.success(), "{} failed ({})", show(cmd), out.status);
    String::from_utf8(out.stdout).with_context(|| format!("{} printed non-UTF-8 output", show(cmd)))
}

/// Whether `program` is an executable file in a directory of `$PATH`.
fn on_path(program: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    executable_in(std::env::split_paths(&path), program).is_some()
}

/// Where `program` is: in a directory of `$PATH`, or else in /usr/sbin or /sbin (which are not
/// on the `$PATH` of ordinary users, but hold tools such as nft and runc).
fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let sbin = ["/usr/sbin", "/sbin"].map(PathBuf::from);
    executable_in(std::env::split_paths(&path).chain(sbin), program)
}

/// The first `dir/program` that is an executable file.
fn executable_in(dirs: impl Iterator<Item = PathBuf>, program: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;
    dirs.map(|dir| dir.join(program)).find(|path| {
        fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

/// A directory removed (with everything in it) when dropped.
struct TempDir(PathBuf);

impl TempDir {
    /// Creates `<parent>/<name>.<pid>`, replacing a leftover of the same name.
    fn new(parent: &Path, name: &str) -> Result<Self> {
        let path = parent.join(format!("{name}.{}", std::process::id()));
        remove_dir_if_exists(&path)?;
        fs::create_dir_all(&path).with_context(|| format!("cannot create {}", path.display()))?;
        Ok(Self(path))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Removes a directory tree if it exists.
fn remove_dir_if_exists(path: &Path) -> Result<()> {
    missing_is_fine(fs::remove_dir_all(path), path)
}

/// Removes a file if it exists.
fn remove_file_if_exists(path: &Path) -> Result<()> {
    missing_is_fine(fs::remove_file(path), path)
}

fn missing_is_fine(removed: std::io::Result<()>, path: &Path) -> Result<()> {
    match removed {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
            Err(err).with_context(|| format!("cannot remove {}", path.display()))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn show_quotes_only_what_needs_it() {
        let mut cmd = Command::new("cargo");
        cmd.args(["build", "-p", "boxr-cli", "a b", ""]);
        assert_eq!(show(&cmd), "`cargo build -p boxr-cli 'a b' ''`");
    }

    #[test]
    fn test_arguments_reach_cargo_and_the_test_binaries() {
        let parse =
            |args: &[&str]| match Cli::try_parse_from(["cargo xtask", "test"].iter().chain(args)) {
                Ok(Cli { task: Task::Test { source, cargo_args, test_args } }) => {
                    (source, cargo_args, test_args)
                }
                _ => panic!("{args:?} does not parse as a test task"),
            };
        let os = |args: &[&str]| args.iter().map(OsString::from).collect::<Vec<_>>();

        let (_, cargo_args, test_args) = parse(&["--", "--test-threads", "4"]);
        assert_eq!((cargo_args, test_args), (vec![], os(&["--test-threads", "4"])));

        // Once cargo's arguments start, everything (`--` too) goes to cargo test as given.
        let (_, cargo_args, test_args) = parse(&["--release", "--", "--nocapture"]);
        assert_eq!((cargo_args, test_args), (os(&["--release", "--", "--nocapture"]), vec![]));

        let sha = "AB".repeat(32);
        let (source, cargo_args, _) = parse(&["--url", "file:///bb", "--sha256", &sha, "mounts"]);
        assert_eq!(source.known_sha256().unwrap(), Some(sha.to_lowercase()));
        assert_eq!(cargo_args, os(&["mounts"]));
    }

    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory as _;
        Cli::command().debug_assert();
    }
}
