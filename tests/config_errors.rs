//! Every bad config fails with exit 125 and one line `boxr: FILE:LINE:COLUMN: message` (FILE as
//! given on the command line), before anything is created or started.

use boxr_tests::{Boxr, Marker, Scratch, toml_array, toml_str};
use std::path::{Path, PathBuf};

/// A valid `[process]` table: the workload would print "started".
const PROCESS: &str = "\n[process]\nargs = {args}\n";
/// Valid mounts whose destinations do not exist in the rootfs: they must not get created.
const MOUNTS: &str = "
[[mounts]]
type = \"tmpfs\"
destination = \"/created/tmpfs\"

[[mounts]]
type = \"bind\"
source = {data}
destination = \"/created/bind\"
";

/// A config file in a scratch dir with a private rootfs. In the template, `§` marks the offending
/// value (the error must point there, or at the start of its line's key); `{process}`, `{mounts}`,
/// `{rootfs}`, `{data}` (an existing host dir), `{missing}` (a host path that does not exist) and
/// `{args}` are filled in.
struct Case {
    scratch: Scratch,
    rootfs: PathBuf,
    marker: Marker,
    /// Line and accepted columns of `§`.
    at: Option<(usize, [usize; 2])>,
}

impl Case {
    fn new(name: &str, template: &str) -> Case {
        let scratch = Scratch::new(name);
        let rootfs = scratch.private_rootfs();
        let data = scratch.write("data/file", "x");
        let marker = Marker::new();
        let path = |p: &Path| toml_str(p.to_str().unwrap());
        let text = template
            .replace("{process}", PROCESS)
            .replace("{mounts}", MOUNTS)
            .replace("{rootfs}", &path(&rootfs))
            .replace("{data}", &path(data.parent().unwrap()))
            .replace("{missing}", &path(&scratch.path().join("missing")))
            .replace("{args}", &toml_array(&["/bin/sh", "-c", "echo started", marker.as_str()]));
        let at = text.lines().enumerate().find_map(|(i, line)| {
            let col = line.chars().position(|c| c == '§')? + 1;
            let key_col = line.chars().position(|c| !c.is_whitespace()).unwrap() + 1;
            Some((i + 1, [col, key_col]))
        });
        scratch.write("bad.toml", &text.replace('§', ""));
        Case { scratch, rootfs, marker, at }
    }

    /// Runs `boxr run --config CONFIG EXTRA...` from the scratch dir, checks the failure and that
    /// nothing was created or started, and returns the error line.
    fn reject(&self, config: &Path, extra: &[&str]) -> String {
        let out = Boxr::run(config).args(extra).current_dir(self.scratch.path()).output();
        let message = out.expect_boxr_error().to_string();
        if let Some((line, cols)) = self.at {
            let prefixes = cols.map(|col| format!("boxr: {}:{line}:{col}: ", config.display()));
            assert!(
                prefixes.iter().any(|p| message.starts_with(p)),
                "expected one of {prefixes:?}\n{out}"
            );
        }
        assert_eq!(out.stdout, "", "the workload ran\n{out}");
        assert!(!self.rootfs.join("created").exists(), "a mount point was created\n{out}");
        assert!(!self.scratch.path().join("missing").exists(), "a missing path was created\n{out}");
        assert!(self.marker.pids().is_empty(), "a container process runs\n{out}");
        message
    }
}

/// Asserts that the config from `template` is rejected, naming the `§` position.
fn rejected(name: &str, template: &str) -> String {
    let case = Case::new(name, template);
    assert!(case.at.is_some(), "template without §");
    case.reject(Path::new("bad.toml"), &[])
}

#[test]
fn unknown_top_level_key() {
    rejected("unknown-key", "rootfs = {rootfs}\n§bogus = true\n{process}{mounts}");
}

#[test]
fn unknown_process_key() {
    rejected(
        "unknown-process-key",
        "rootfs = {rootfs}\n\n[process]\nargs = {args}\n§argz = []\n{mounts}",
    );
}

#[test]
fn unknown_mount_key() {
    rejected(
        "unknown-mount-key",
        "rootfs = {rootfs}\n{process}{mounts}\n[[mounts]]\ntype = \"tmpfs\"\ndestination = \"/t\"\n§sorce = \"x\"\n",
    );
}

#[test]
fn wrong_type() {
    rejected("wrong-type", "rootfs = {rootfs}\nreadonly_rootfs = §\"yes\"\n{process}{mounts}");
}

#[test]
fn wrong_type_in_a_mount() {
    rejected(
        "wrong-type-mount",
        "rootfs = {rootfs}\n{process}{mounts}\n[[mounts]]\ntype = \"bind\"\nsource = {data}\ndestination = \"/ro\"\nreadonly = §\"no\"\n",
    );
}

#[test]
fn syntax_error() {
    let case = Case::new("syntax", "rootfs = {rootfs}\nreadonly_rootfs = tru\n{process}{mounts}");
    let message = case.reject(Path::new("bad.toml"), &[]);
    assert!(message.starts_with("boxr: bad.toml:2:"), "{message}");
}

#[test]
fn missing_rootfs_dir() {
    rejected("missing-rootfs", "rootfs = §{missing}\n{process}{mounts}");
}

#[test]
fn missing_rootfs_key() {
    let message = Case::new("no-rootfs", "hostname = \"x\"\n{process}{mounts}")
        .reject(Path::new("bad.toml"), &[]);
    assert!(message.starts_with("boxr: bad.toml") && message.contains("rootfs"), "{message}");
}

#[test]
fn missing_bind_source() {
    rejected(
        "missing-source",
        "rootfs = {rootfs}\n{process}{mounts}\n[[mounts]]\ntype = \"bind\"\nsource = §{missing}\ndestination = \"/src\"\n",
    );
}

#[test]
fn relative_destination() {
    rejected(
        "relative-dest",
        "rootfs = {rootfs}\n{process}{mounts}\n[[mounts]]\ntype = \"tmpfs\"\ndestination = §\"data\"\n",
    );
}

#[test]
fn dotdot_in_destination() {
    rejected(
        "dotdot-dest",
        "rootfs = {rootfs}\n{process}{mounts}\n[[mounts]]\ntype = \"tmpfs\"\ndestination = §\"/a/../b\"\n",
    );
}

#[test]
fn duplicate_destination() {
    rejected(
        "duplicate-dest",
        "rootfs = {rootfs}\n{process}{mounts}\n[[mounts]]\ntype = \"tmpfs\"\ndestination = \"/dup\"\n\n[[mounts]]\ntype = \"tmpfs\"\ndestination = §\"/dup\"\n",
    );
}

#[test]
fn bad_tmpfs_size() {
    rejected(
        "bad-size",
        "rootfs = {rootfs}\n{process}{mounts}\n[[mounts]]\ntype = \"tmpfs\"\ndestination = \"/s\"\nsize = §\"16x\"\n",
    );
}

#[test]
fn hostname_without_uts() {
    rejected(
        "hostname-no-uts",
        "rootfs = {rootfs}\nnamespaces = [\"mount\", \"pid\"]\nhostname = §\"box\"\n{process}{mounts}",
    );
}

#[test]
fn hostname_flag_without_uts() {
    let case = Case::new(
        "hostname-flag-no-uts",
        "rootfs = {rootfs}\nnamespaces = [\"mount\", \"pid\"]\n{process}{mounts}",
    );
    let message = case.reject(Path::new("bad.toml"), &["--hostname", "box"]);
    assert!(message.contains("uts"), "{message}");
}

#[test]
fn unknown_namespace() {
    rejected(
        "unknown-ns",
        "rootfs = {rootfs}\nnamespaces = [\"mount\", §\"bogus\"]\n{process}{mounts}",
    );
}

#[test]
fn mount_namespace_is_required() {
    rejected(
        "no-mount-ns",
        "rootfs = {rootfs}\nnamespaces = §[\"pid\", \"uts\"]\n{process}{mounts}",
    );
}

#[test]
fn file_is_named_as_given() {
    let case = Case::new("absolute-path", "rootfs = {rootfs}\n§bogus = 1\n{process}{mounts}");
    case.reject(&case.scratch.path().join("bad.toml"), &[]);
    case.scratch.write("sub/keep", "");
    case.reject(Path::new("./sub/../bad.toml"), &[]);
}

#[test]
fn missing_config_file() {
    let case = Case::new("no-config", "rootfs = {rootfs}\n{process}{mounts}");
    let message = case.reject(Path::new("no-such.toml"), &[]);
    assert!(message.contains("no-such.toml"), "{message}");
}
