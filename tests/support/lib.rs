//! Shared helpers for the integration tests: real containers from the busybox rootfs.
//!
//! * [`boxr_bin`], [`rootfs`]: where the binaries and the shared rootfs are. The shared rootfs
//!   (`<repo>/target/rootfs`) is never written to: a test that needs new mount points or writes
//!   into the rootfs takes a private copy with [`Scratch::private_rootfs`].
//! * [`Scratch`]: a unique directory per test, removed on drop.
//! * [`Config`]: builds a config file (shared rootfs, default namespaces and a `PATH`).
//! * [`Boxr`]: runs `boxr run` with a timeout ([`Boxr::output`]) or in the background for
//!   signal tests ([`Boxr::spawn`], [`Running`]).
//! * [`Marker`]: a unique argument to find the container's processes from the host, whose drop
//!   kills whatever still carries it.
//! * [`Mount`], [`ProcStat`]: parsers for `/proc/*/mountinfo` and `/proc/*/stat` lines.
//! * [`HostHostname`]: guards the host's hostname against a container that changes it.
//! * [`containers`]: detached containers sharing one [`Dirs`], and parsers for `ps` and JSON.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub mod containers;

/// How long one `boxr run` may take before the test kills it and fails.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the container may keep boxr's stdout/stderr open after boxr itself exited (a
/// container that outlives boxr is a bug: the test fails after this long).
const PIPE_GRACE: Duration = Duration::from_secs(10);

/// The default namespaces of a [`Config`].
pub const DEFAULT_NAMESPACES: &[&str] = &["pid", "mount", "uts", "ipc", "net"];
/// The `PATH` every [`Config`] sets, so that tests do not depend on boxr's default.
pub const TEST_PATH: &str = "PATH=/usr/sbin:/usr/bin:/sbin:/bin";

/// The directory holding `boxr` and `boxr-init`: the test binary lives in `<dir>/deps/`.
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let deps = exe.parent().expect("test binary has a parent dir");
    deps.parent().expect("deps dir has a parent").to_path_buf()
}

/// The `boxr` binary: `$BOXR_BIN`, or `boxr` in [`target_dir`]. Panics with a hint when it or
/// `boxr-init` (expected beside it) is missing.
pub fn boxr_bin() -> PathBuf {
    let bin = std::env::var_os("BOXR_BIN").map_or_else(|| target_dir().join("boxr"), PathBuf::from);
    let init = bin.with_file_name("boxr-init");
    for path in [&bin, &init] {
        assert!(path.is_file(), "{} is missing: run `cargo xtask build`", path.display());
    }
    bin
}

/// The shared busybox rootfs, `<repo>/target/rootfs`. Read-only for tests.
pub fn rootfs() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/rootfs");
    assert!(
        dir.join("bin/busybox").is_file(),
        "{} has no bin/busybox: run `cargo xtask build-rootfs`",
        dir.display()
    );
    dir
}

/// A string unique on this machine (process id, a counter and the clock), digits and dots only.
pub fn unique() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    format!("{}{n:03}{nanos:09}", std::process::id())
}

/// Polls `cond` every 20 ms until it holds (true) or `timeout` passes (false).
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Sends signal `sig` (a name such as "TERM") to `pid` with kill(1).
pub fn send_signal(pid: u32, sig: &str) {
    let status =
        Command::new("kill").args(["-s", sig, &pid.to_string()]).status().expect("run kill(1)");
    assert!(status.success(), "kill -s {sig} {pid} failed: {status}");
}

/// The host's hostname, saved on creation and put back on drop if a container changed it.
pub struct HostHostname(String);

impl HostHostname {
    const PATH: &str = "/proc/sys/kernel/hostname";

    pub fn save() -> HostHostname {
        HostHostname(fs::read_to_string(Self::PATH).expect("read the host's hostname"))
    }

    /// Fails the test if the host's hostname changed (drop then restores it).
    pub fn assert_unchanged(&self) {
        let now = fs::read_to_string(Self::PATH).expect("read the host's hostname");
        assert_eq!(now, self.0, "a container changed the host's hostname");
    }
}

impl Drop for HostHostname {
    fn drop(&mut self) {
        if fs::read_to_string(Self::PATH).is_ok_and(|now| now != self.0) {
            let _ = fs::write(Self::PATH, &self.0);
        }
    }
}

/// A fresh directory under the system temp dir, removed (with everything in it) on drop.
pub struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    /// Creates `<tmp>/boxr-test-<name>-<unique>`.
    pub fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("boxr-test-{name}-{}", unique()));
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        Scratch { dir }
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Writes `contents` to `name` (relative to the scratch dir, parents created).
    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.dir.join(name);
        fs::create_dir_all(path.parent().expect("file has a parent")).expect("create parent dir");
        fs::write(&path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    }

    /// Writes `config` as `config.toml` and returns its path.
    pub fn config(&self, config: &Config) -> PathBuf {
        self.write("config.toml", &config.render())
    }

    /// A private copy (`cp -a`) of the shared rootfs at `<scratch>/rootfs`, for tests that create
    /// mount points or write into the rootfs.
    pub fn private_rootfs(&self) -> PathBuf {
        let copy = self.dir.join("rootfs");
        let status =
            Command::new("cp").arg("-a").arg(rootfs()).arg(&copy).status().expect("run cp");
        assert!(status.success(), "cp -a rootfs {}: {status}", copy.display());
        copy
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Err(e) = fs::remove_dir_all(&self.dir) {
            eprintln!("warning: cannot remove {}: {e}", self.dir.display());
        }
    }
}

/// A TOML string literal holding `s`.
pub fn toml_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A TOML array of string literals.
pub fn toml_array(items: &[&str]) -> String {
    let items: Vec<String> = items.iter().map(|s| toml_str(s)).collect();
    format!("[{}]", items.join(", "))
}

/// A config file under construction. Starts with the shared rootfs, [`DEFAULT_NAMESPACES`],
/// `args = ["/bin/true"]` and `env = [TEST_PATH]`; each setter replaces a key's value (values are
/// TOML text).
#[derive(Clone, Debug)]
pub struct Config {
    top: Vec<(String, String)>,
    process: Vec<(String, String)>,
    mounts: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self::new()
    }
}

impl Config {
    pub fn new() -> Config {
        Config { top: Vec::new(), process: Vec::new(), mounts: Vec::new() }
            .rootfs(&rootfs())
            .namespaces(DEFAULT_NAMESPACES)
            .args(&["/bin/true"])
            .env(&[TEST_PATH])
    }

    fn put(list: &mut Vec<(String, String)>, key: &str, value: String) {
        match list.iter_mut().find(|(k, _)| k == key) {
            Some(entry) => entry.1 = value,
            None => list.push((key.to_string(), value)),
        }
    }

    /// Sets a top-level key to TOML `value`, e.g. `.set("readonly_rootfs", "true")`.
    pub fn set(mut self, key: &str, value: &str) -> Config {
        Self::put(&mut self.top, key, value.to_string());
        self
    }

    /// Removes a top-level or `[process]` key.
    pub fn unset(mut self, key: &str) -> Config {
        self.top.retain(|(k, _)| k != key);
        self.process.retain(|(k, _)| k != key);
        self
    }

    pub fn rootfs(self, path: &Path) -> Config {
        let value = toml_str(path.to_str().expect("UTF-8 rootfs path"));
        self.set("rootfs", &value)
    }

    pub fn namespaces(self, namespaces: &[&str]) -> Config {
        self.set("namespaces", &toml_array(namespaces))
    }

    /// Sets a `[process]` key to TOML `value`, e.g. `.process("cwd", "\"/tmp\"")`.
    pub fn process(mut self, key: &str, value: &str) -> Config {
        Self::put(&mut self.process, key, value.to_string());
        self
    }

    pub fn args(self, args: &[&str]) -> Config {
        self.process("args", &toml_array(args))
    }

    pub fn env(self, env: &[&str]) -> Config {
        self.process("env", &toml_array(env))
    }

    /// Adds a `[[mounts]]` table made of `key = value` pairs (values are TOML text).
    pub fn mount(mut self, pairs: &[(&str, &str)]) -> Config {
        let lines: Vec<String> = pairs.iter().map(|(k, v)| format!("{k} = {v}\n")).collect();
        self.mounts.push(lines.concat());
        self
    }

    /// Adds a bind mount of host `source` at `destination`.
    pub fn bind(self, source: &Path, destination: &str, readonly: bool) -> Config {
        let source = toml_str(source.to_str().expect("UTF-8 source path"));
        let readonly = readonly.to_string();
        self.mount(&[
            ("type", "\"bind\""),
            ("source", &source),
            ("destination", &toml_str(destination)),
            ("readonly", &readonly),
        ])
    }

    /// Adds a tmpfs at `destination`, with `size` when given.
    pub fn tmpfs(self, destination: &str, size: Option<&str>) -> Config {
        let destination = toml_str(destination);
        let size = size.map(toml_str);
        let mut pairs = vec![("type", "\"tmpfs\""), ("destination", destination.as_str())];
        pairs.extend(size.as_deref().map(|s| ("size", s)));
        self.mount(&pairs)
    }

    /// The TOML text.
    pub fn render(&self) -> String {
        let pairs = |list: &[(String, String)]| {
            list.iter().map(|(k, v)| format!("{k} = {v}\n")).collect::<String>()
        };
        let mut out = pairs(&self.top);
        if !self.process.is_empty() {
            out.push_str("\n[process]\n");
            out.push_str(&pairs(&self.process));
        }
        for mount in &self.mounts {
            out.push_str("\n[[mounts]]\n");
            out.push_str(mount);
        }
        out
    }

    /// Writes this config into a throw-away scratch dir and runs `/bin/sh -c script` in it.
    pub fn sh(&self, script: &str) -> Output {
        let scratch = Scratch::new("sh");
        Boxr::run(&scratch.config(self)).command(&["/bin/sh", "-c", script]).output()
    }
}

/// One `boxr` invocation under construction: `Boxr::run(config)` is `boxr run --config CONFIG`.
///
/// Each invocation keeps its state and storage (`BOXR_ROOT`, `BOXR_STORAGE`) in a scratch dir
/// of its own, removed with it, unless [`Boxr::dirs`] shares a [`Dirs`] between invocations.
pub struct Boxr {
    argv: Vec<OsString>,
    envs: Vec<(OsString, OsString)>,
    cwd: Option<PathBuf>,
    stdin: Option<Vec<u8>>,
    own_dirs: Option<Dirs>,
}

/// A state root and storage dir for boxr, in a scratch dir removed on drop (after removing any
/// container left in it, so no process outlives a test).
pub struct Dirs {
    scratch: Scratch,
}

impl Dirs {
    pub fn new() -> Dirs {
        Dirs { scratch: Scratch::new("dirs") }
    }
    pub fn root(&self) -> PathBuf {
        self.scratch.path().join("root")
    }
    pub fn storage(&self) -> PathBuf {
        self.scratch.path().join("storage")
    }
    /// `boxr ARGS` with these dirs.
    pub fn boxr(&self) -> Boxr {
        Boxr::new().dirs(self)
    }
}

impl Default for Dirs {
    fn default() -> Self {
        Dirs::new()
    }
}

impl Drop for Dirs {
    fn drop(&mut self) {
        let Ok(entries) = fs::read_dir(self.root()) else { return };
        let ids: Vec<String> = entries
            .flatten()
            .filter(|e| e.path().join("state.json").exists())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        if !ids.is_empty() {
            let mut rm = Command::new(boxr_bin());
            rm.args(["--root"]).arg(self.root()).arg("--storage").arg(self.storage());
            let _ = rm.args(["rm", "-f"]).args(&ids).stdout(Stdio::null()).status();
        }
    }
}

impl Boxr {
    /// `boxr run --config CONFIG`.
    pub fn run(config: &Path) -> Boxr {
        Boxr::new().args(["run", "--config"]).arg(config)
    }

    /// `boxr` with no arguments yet, with state and storage dirs of its own.
    pub fn new() -> Boxr {
        let boxr = Boxr {
            argv: vec![boxr_bin().into()],
            envs: Vec::new(),
            cwd: None,
            stdin: None,
            own_dirs: None,
        };
        let dirs = Dirs::new();
        let mut boxr = boxr.dirs(&dirs);
        boxr.own_dirs = Some(dirs);
        boxr
    }

    /// Uses `dirs` for state and storage (shared with other invocations).
    pub fn dirs(mut self, dirs: &Dirs) -> Boxr {
        self.own_dirs = None;
        self.envs.retain(|(k, _)| k != "BOXR_ROOT" && k != "BOXR_STORAGE");
        self.envs.push(("BOXR_ROOT".into(), dirs.root().into()));
        self.envs.push(("BOXR_STORAGE".into(), dirs.storage().into()));
        self
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Boxr {
        self.argv.push(arg.as_ref().to_owned());
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(self, args: I) -> Boxr {
        args.into_iter().fold(self, Boxr::arg)
    }

    /// Appends `-- CMD ARGS...`.
    pub fn command(self, cmd: &[&str]) -> Boxr {
        self.arg("--").args(cmd)
    }

    /// Sets a variable in boxr's own environment.
    pub fn env(mut self, key: &str, value: &str) -> Boxr {
        self.envs.push((key.into(), value.into()));
        self
    }

    pub fn current_dir(mut self, dir: &Path) -> Boxr {
        self.cwd = Some(dir.to_path_buf());
        self
    }

    /// Feeds `data` to boxr's stdin (otherwise stdin is /dev/null).
    pub fn stdin(mut self, data: &str) -> Boxr {
        self.stdin = Some(data.as_bytes().to_vec());
        self
    }

    /// Starts boxr through `wrapper` (e.g. a shell that opens extra fds and then runs `"$0" "$@"`):
    /// the final argv is `wrapper... boxr args...`.
    pub fn via(mut self, wrapper: &[&str]) -> Boxr {
        let mut argv: Vec<OsString> = wrapper.iter().map(OsString::from).collect();
        argv.append(&mut self.argv);
        self.argv = argv;
        self
    }

    /// Runs to completion (at most [`RUN_TIMEOUT`]) and captures the result.
    pub fn output(self) -> Output {
        self.spawn().wait()
    }

    /// Starts boxr in the background with stdout and stderr captured.
    pub fn spawn(self) -> Running {
        let mut cmd = Command::new(&self.argv[0]);
        cmd.args(&self.argv[1..]).envs(self.envs.iter().map(|(k, v)| (k, v)));
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd.stdin(if self.stdin.is_some() { Stdio::piped() } else { Stdio::null() });
        if let Some(dir) = &self.cwd {
            cmd.current_dir(dir);
        }
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {:?}: {e}", self.argv));
        if let Some(data) = self.stdin {
            let mut pipe = child.stdin.take().expect("stdin pipe");
            // A writer thread: the container may not read all of it.
            thread::spawn(move || pipe.write_all(&data));
        }
        let (line_tx, lines) = mpsc::channel();
        let mut out = BufReader::new(child.stdout.take().expect("stdout pipe"));
        thread::spawn(move || {
            let mut line = Vec::new();
            while out.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
                if line_tx.send(String::from_utf8_lossy(&line).into_owned()).is_err() {
                    break;
                }
                line.clear();
            }
        });
        let (err_tx, stderr) = mpsc::channel();
        let mut err = child.stderr.take().expect("stderr pipe");
        thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = err.read_to_end(&mut buf);
            let _ = err_tx.send(String::from_utf8_lossy(&buf).into_owned());
        });
        Running {
            child,
            lines,
            stdout: String::new(),
            stderr,
            started: Instant::now(),
            reaped: false,
            _dirs: self.own_dirs,
        }
    }
}

impl Default for Boxr {
    fn default() -> Self {
        Self::new()
    }
}

/// A `boxr` running in the background. Dropping it SIGKILLs boxr if it still runs.
pub struct Running {
    child: Child,
    lines: Receiver<String>,
    stdout: String,
    stderr: Receiver<String>,
    started: Instant,
    reaped: bool,
    /// The invocation's own state and storage, removed after it.
    _dirs: Option<Dirs>,
}

impl Running {
    /// boxr's process id on the host.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends signal `sig` (e.g. "TERM") to boxr.
    pub fn signal(&self, sig: &str) {
        send_signal(self.pid(), sig);
    }

    fn deadline(&self) -> Instant {
        self.started + RUN_TIMEOUT
    }

    /// Waits until the workload printed a line equal to `line` (trimmed), returning everything
    /// printed so far. Fails the test when boxr exits first or [`RUN_TIMEOUT`] passes.
    pub fn wait_for_line(&mut self, line: &str) -> String {
        loop {
            if self.stdout.lines().any(|l| l.trim() == line) {
                return self.stdout.clone();
            }
            let left = self.deadline().saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(chunk) => self.stdout.push_str(&chunk),
                Err(e) => {
                    let what =
                        if e == RecvTimeoutError::Timeout { "timed out" } else { "stdout closed" };
                    self.kill();
                    panic!(
                        "{what} waiting for line {line:?}; stdout so far:\n{}\nstderr:\n{}",
                        self.stdout,
                        self.stderr_now()
                    );
                }
            }
        }
    }

    fn kill(&mut self) {
        if !self.reaped {
            let _ = self.child.kill();
            let _ = self.child.wait();
            self.reaped = true;
        }
    }

    fn stderr_now(&self) -> String {
        self.stderr.recv_timeout(Duration::from_millis(200)).unwrap_or_default()
    }

    /// Waits for boxr to exit (until [`RUN_TIMEOUT`] after the start) and for the container to
    /// close stdout and stderr; fails the test on either timeout.
    pub fn wait(&mut self) -> Output {
        let status = loop {
            while let Ok(chunk) = self.lines.try_recv() {
                self.stdout.push_str(&chunk);
            }
            if let Some(status) = self.child.try_wait().expect("try_wait boxr") {
                self.reaped = true;
                break status;
            }
            if Instant::now() >= self.deadline() {
                self.kill();
                panic!(
                    "boxr still running after {RUN_TIMEOUT:?}: killed it\nstdout:\n{}\nstderr:\n{}",
                    self.stdout,
                    self.stderr_now()
                );
            }
            thread::sleep(Duration::from_millis(10));
        };
        let grace = Instant::now() + PIPE_GRACE;
        loop {
            match self.lines.recv_timeout(grace.saturating_duration_since(Instant::now())) {
                Ok(chunk) => self.stdout.push_str(&chunk),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {
                    panic!(
                        "boxr exited ({status}) but its stdout is still open after {PIPE_GRACE:?}: the container outlived boxr\nstdout:\n{}",
                        self.stdout
                    )
                }
            }
        }
        let stderr = self.stderr.recv_timeout(PIPE_GRACE).unwrap_or_else(|_| {
            panic!("boxr exited ({status}) but its stderr is still open after {PIPE_GRACE:?}: the container outlived boxr")
        });
        Output { status, stdout: std::mem::take(&mut self.stdout), stderr }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill();
    }
}

/// What a finished `boxr` left behind.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// boxr's exit code; fails the test if boxr itself died of a signal.
    #[track_caller]
    pub fn code(&self) -> i32 {
        self.status.code().unwrap_or_else(|| {
            panic!("boxr was killed by signal {:?}\n{self}", self.status.signal())
        })
    }

    /// The signal boxr itself died of, if it did.
    pub fn signal(&self) -> Option<i32> {
        self.status.signal()
    }

    /// Asserts exit code `code` and returns `self`.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Output {
        assert_eq!(self.code(), code, "unexpected exit code\n{self}");
        self
    }

    /// Asserts exit code 0 and returns stdout.
    #[track_caller]
    pub fn ok(&self) -> &str {
        self.expect_code(0);
        &self.stdout
    }

    /// stdout's lines, trimmed at the end.
    pub fn lines(&self) -> Vec<&str> {
        self.stdout.lines().map(str::trim_end).collect()
    }

    /// The mount at `mount_point` in the mountinfo lines of stdout (the workload ran
    /// `cat /proc/self/mountinfo`); fails the test when there is none.
    #[track_caller]
    pub fn mount(&self, mount_point: &str) -> Mount {
        Mount::at(&Mount::parse_all(&self.stdout), mount_point).clone()
    }

    /// Asserts that boxr failed by itself: exit 125 and one line on stderr starting `boxr: `.
    /// Returns that line.
    #[track_caller]
    pub fn expect_boxr_error(&self) -> &str {
        self.expect_code(125);
        let line = self.stderr.strip_suffix('\n').unwrap_or(&self.stderr);
        assert!(
            line.starts_with("boxr: ") && !line.contains('\n'),
            "expected one `boxr: ` line on stderr\n{self}"
        );
        line
    }
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "status: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

/// A unique marker of the form `987.<digits>`: usable as a `sleep` duration or as an extra
/// argument, so that the container's processes can be found from the host by their command
/// line. Dropping it SIGKILLs every process still carrying it (cleanup after a failed test).
pub struct Marker(String);

impl Marker {
    pub fn new() -> Marker {
        Marker(format!("987.{}", unique()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Host pids of live (non-zombie) processes with the marker as one of their arguments.
    pub fn pids(&self) -> Vec<u32> {
        let Ok(dir) = fs::read_dir("/proc") else { return Vec::new() };
        dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|cmd| cmd.split(|b| *b == 0).any(|arg| arg == self.0.as_bytes()))
            })
            .collect()
    }
}

impl Default for Marker {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for Marker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Drop for Marker {
    fn drop(&mut self) {
        for pid in self.pids() {
            let _ = Command::new("kill").args(["-s", "KILL", &pid.to_string()]).status();
        }
    }
}

/// One line of `/proc/PID/stat`: the fields the tests look at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcStat {
    pub pid: u32,
    pub comm: String,
    pub state: char,
    pub ppid: u32,
}

impl ProcStat {
    /// Parses `pid (comm) state ppid ...`.
    pub fn parse(line: &str) -> Option<ProcStat> {
        let (pid, rest) = line.split_once(" (")?;
        let (comm, rest) = rest.rsplit_once(") ")?;
        let mut fields = rest.split_whitespace();
        let state = fields.next()?.chars().next()?;
        let ppid = fields.next()?.parse().ok()?;
        Some(ProcStat { pid: pid.trim().parse().ok()?, comm: comm.to_string(), state, ppid })
    }

    /// The host's view of process `pid`, if it exists.
    pub fn of(pid: u32) -> Option<ProcStat> {
        ProcStat::parse(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
    }
}

/// True when `pid` no longer exists on the host or is a zombie.
pub fn is_dead(pid: u32) -> bool {
    ProcStat::of(pid).is_none_or(|s| s.state == 'Z' || s.state == 'X')
}

/// One line of `/proc/PID/mountinfo`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    /// `major:minor` of the filesystem.
    pub dev: String,
    /// The root of the mount within its filesystem.
    pub root: String,
    pub mount_point: String,
    /// Per-mount options (`rw,nosuid,...`).
    pub options: Vec<String>,
    pub fstype: String,
    pub source: String,
    /// Per-superblock options.
    pub super_options: Vec<String>,
}

impl Mount {
    /// Parses every mountinfo line in `text` (other lines are ignored).
    pub fn parse_all(text: &str) -> Vec<Mount> {
        text.lines().filter_map(Mount::parse).collect()
    }

    /// Parses one mountinfo line.
    pub fn parse(line: &str) -> Option<Mount> {
        let (left, right) = line.split_once(" - ")?;
        let left: Vec<&str> = left.split(' ').collect();
        let right: Vec<&str> = right.split(' ').collect();
        let opts = |s: &str| s.split(',').map(String::from).collect();
        Some(Mount {
            dev: left.get(2)?.to_string(),
            root: left.get(3)?.to_string(),
            mount_point: left.get(4)?.to_string(),
            options: opts(left.get(5)?),
            fstype: right.first()?.to_string(),
            source: right.get(1)?.to_string(),
            super_options: opts(right.get(2).unwrap_or(&"")),
        })
    }

    /// The topmost mount at `mount_point` in `mounts`; fails the test when there is none.
    #[track_caller]
    pub fn at<'a>(mounts: &'a [Mount], mount_point: &str) -> &'a Mount {
        mounts
            .iter()
            .rev()
            .find(|m| m.mount_point == mount_point)
            .unwrap_or_else(|| panic!("no mount at {mount_point} in {mounts:#?}"))
    }

    pub fn has_option(&self, option: &str) -> bool {
        self.options.iter().any(|o| o == option)
    }

    pub fn is_readonly(&self) -> bool {
        self.has_option("ro")
    }
}

/// The mount table the test process itself (the host) sees.
pub fn host_mounts() -> Vec<Mount> {
    Mount::parse_all(
        &fs::read_to_string("/proc/self/mountinfo").expect("read /proc/self/mountinfo"),
    )
}

/// The mount table a workload of `config` sees (it runs `cat /proc/self/mountinfo`).
pub fn container_mounts(config: &Config) -> Vec<Mount> {
    Mount::parse_all(config.sh("cat /proc/self/mountinfo").ok())
}

/// Asserts that `mount` (seen in a container) is a filesystem instance of its own: of type
/// `fstype` and with a device number no host mount has (not the host's, nor a bind of it).
#[track_caller]
pub fn assert_new_instance(mount: &Mount, fstype: &str) {
    assert_eq!(mount.fstype, fstype, "{} has the wrong type: {mount:?}", mount.mount_point);
    let host = host_mounts();
    let same = host.iter().find(|h| h.dev == mount.dev);
    assert!(same.is_none(), "{} is the host's {same:?}, not a new {fstype}", mount.mount_point);
}
