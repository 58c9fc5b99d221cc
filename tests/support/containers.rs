//! Detached containers and the commands acting on them (`ps`, `inspect`, `logs`, `exec`, `stop`,
//! `kill`, `rm`), all sharing one state root and storage dir.
//!
//! * [`Containers`]: a [`Dirs`] plus a scratch dir holding the config file; its drop removes
//!   every container left (`rm -f`), then the dirs.
//! * [`Json`]: a small JSON parser for `boxr inspect`, `ps --format json` and `state.json`.
//! * [`PsRow`]: one row of the `boxr ps` table.

use crate::{Boxr, Config, Dirs, Marker, Output, ProcStat, RUN_TIMEOUT, Scratch, wait_until};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The columns of `boxr ps`, in order.
pub const PS_COLUMNS: [&str; 6] = ["CONTAINER ID", "NAME", "PID", "STATUS", "CREATED", "COMMAND"];

/// A workload for `sh -c SCRIPT MARKER` that prints "ready" and then becomes `sleep MARKER`.
pub const SLEEPER: &str = "echo ready; exec sleep \"$0\"";

/// A state root, a storage dir and a config file (at first [`Config::new`]) for detached
/// containers. Dropping it removes the containers left (`rm -f`) and then the directories.
pub struct Containers {
    // Declared first so that it is dropped first: the containers go before the scratch dir.
    dirs: Dirs,
    scratch: Scratch,
    config: PathBuf,
}

impl Containers {
    pub fn new(name: &str) -> Containers {
        let scratch = Scratch::new(name);
        let config = scratch.config(&Config::new());
        Containers { dirs: Dirs::new(), scratch, config }
    }

    /// Replaces the config file of the containers started from now on.
    pub fn set_config(&mut self, config: &Config) {
        self.config = self.scratch.config(config);
    }

    /// A scratch dir for the test's own files (the config file is `config.toml` in it).
    pub fn scratch(&self) -> &Scratch {
        &self.scratch
    }

    pub fn config_path(&self) -> &Path {
        &self.config
    }

    pub fn dirs(&self) -> &Dirs {
        &self.dirs
    }

    /// `boxr` with these dirs.
    pub fn boxr(&self) -> Boxr {
        self.dirs.boxr()
    }

    /// Runs `boxr ARGS` to completion.
    pub fn cmd(&self, args: &[&str]) -> Output {
        self.boxr().args(args).output()
    }

    /// `boxr run --config CONFIG FLAGS -- COMMAND`, not started yet.
    pub fn run(&self, flags: &[&str], command: &[&str]) -> Boxr {
        self.boxr().args(["run", "--config"]).arg(&self.config).args(flags).command(command)
    }

    /// `boxr run -d --config CONFIG FLAGS -- COMMAND`, whatever its outcome.
    pub fn run_detached(&self, flags: &[&str], command: &[&str]) -> Output {
        self.run(&[&["-d"], flags].concat(), command).output()
    }

    /// Starts a detached container named `name` running `command`; returns its id.
    #[track_caller]
    pub fn start(&self, name: &str, command: &[&str]) -> String {
        printed_id(&self.run_detached(&["--name", name], command))
    }

    /// Starts `sh -c SCRIPT MARKER` detached as `name` and waits until it printed "ready".
    #[track_caller]
    pub fn start_sh(&self, name: &str, script: &str, marker: &Marker) -> String {
        let id = self.start(name, &["/bin/sh", "-c", script, marker.as_str()]);
        self.wait_for_log_line(name, "ready");
        id
    }

    /// The state of container `name` as `boxr inspect` prints it.
    #[track_caller]
    pub fn inspect(&self, name: &str) -> Json {
        let out = self.cmd(&["inspect", name]);
        let all = Json::parse(out.ok()).unwrap_or_else(|e| panic!("inspect {name}: {e}\n{out}"));
        let [one] = all.as_array() else { panic!("inspect {name}: not one state\n{out}") };
        one.clone()
    }

    /// The `status` of `name` per `boxr inspect`.
    #[track_caller]
    pub fn status(&self, name: &str) -> String {
        self.inspect(name)["status"].as_str().to_string()
    }

    /// Waits (polling `boxr inspect`) until `name` has exited; returns its state.
    #[track_caller]
    pub fn wait_exited(&self, name: &str) -> Json {
        let exited = wait_until(RUN_TIMEOUT, || self.status(name) == "exited");
        let state = self.inspect(name);
        assert!(exited, "{name} did not exit within {RUN_TIMEOUT:?}: {state:?}");
        state
    }

    /// The state file `<root>/<id>/state.json`, read directly (no boxr command runs).
    pub fn state_file(&self, id: &str) -> PathBuf {
        self.dirs.root().join(id).join("state.json")
    }

    /// Waits, reading only `state.json` (no boxr command runs meanwhile), until container `id`
    /// is recorded as exited; returns that state.
    #[track_caller]
    pub fn wait_recorded_exit(&self, id: &str) -> Json {
        let read = || {
            let text = fs::read_to_string(self.state_file(id)).unwrap_or_default();
            Json::parse(&text).ok().filter(|s| s["status"].as_str() == "exited")
        };
        assert!(wait_until(RUN_TIMEOUT, || read().is_some()), "{id} was not recorded as exited");
        read().expect("the exit was recorded")
    }

    /// `boxr ps FLAGS` as rows (the header is checked).
    #[track_caller]
    pub fn ps(&self, flags: &[&str]) -> Vec<PsRow> {
        let out = self.boxr().arg("ps").args(flags).output();
        PsRow::parse_table(out.ok())
    }

    /// The row of `ps -a` for `name`, if listed.
    #[track_caller]
    pub fn ps_row(&self, name: &str) -> Option<PsRow> {
        self.ps(&["-a"]).into_iter().find(|r| r.name == name)
    }

    /// `boxr logs NAME` (asserting success).
    #[track_caller]
    pub fn logs(&self, name: &str) -> String {
        self.cmd(&["logs", name]).ok().to_string()
    }

    /// Waits until the log of `name` has a line equal to `line`; returns the whole log.
    #[track_caller]
    pub fn wait_for_log_line(&self, name: &str, line: &str) -> String {
        let has = |log: &str| log.lines().any(|l| l == line);
        if !wait_until(RUN_TIMEOUT, || has(&self.logs(name))) {
            panic!("no line {line:?} in the log of {name}:\n{}", self.logs(name));
        }
        self.logs(name)
    }

    /// `boxr exec FLAGS NAME -- sh -c SCRIPT`.
    pub fn exec_sh(&self, flags: &[&str], name: &str, script: &str) -> Output {
        self.boxr().arg("exec").args(flags).arg(name).command(&["/bin/sh", "-c", script]).output()
    }

    /// The container directories under the state root (the `names` index aside).
    pub fn state_dirs(&self) -> Vec<String> {
        let root = self.dirs.root();
        let is_id = |n: &String| n.len() == 64 && n.bytes().all(|b| b.is_ascii_hexdigit());
        entries(&root).into_iter().filter(|n| is_id(n) && root.join(n).is_dir()).collect()
    }

    /// The entries of the storage dir.
    pub fn storage_dirs(&self) -> Vec<String> {
        entries(&self.dirs.storage())
    }

    /// Asserts that nothing of any container is left: no state dir, no name, no storage dir.
    #[track_caller]
    pub fn assert_nothing_left(&self) {
        assert_eq!(self.state_dirs(), Vec::<String>::new(), "state dirs left");
        assert_eq!(entries(&self.dirs.root().join("names")), Vec::<String>::new(), "names left");
        assert_eq!(self.storage_dirs(), Vec::<String>::new(), "storage dirs left");
    }
}

/// The id a successful `boxr run -d` printed: asserts that it printed just 64 lowercase hex
/// digits and a newline.
#[track_caller]
pub fn printed_id(out: &Output) -> String {
    let id = out.ok().strip_suffix('\n').unwrap_or_default();
    let hex =
        id.len() == 64 && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    assert!(hex, "not a 64-hex id and a newline\n{out}");
    id.to_string()
}

/// Entries of a directory, sorted; none if it does not exist.
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    names.sort();
    names
}

/// Asserts that boxr failed with `code` and one `boxr: ` line on stderr containing each of
/// `needles`; returns that line.
#[track_caller]
pub fn assert_fails<'a>(out: &'a Output, code: i32, needles: &[&str]) -> &'a str {
    out.expect_code(code);
    let line = out.stderr.trim_end_matches('\n');
    assert!(line.starts_with("boxr: ") && !line.contains('\n'), "one `boxr: ` line\n{out}");
    for needle in needles {
        assert!(line.contains(needle), "{needle:?} not in the message\n{out}");
    }
    line
}

/// The start time (field 22 of `/proc/PID/stat`) of host process `pid`.
pub fn proc_start_time(pid: u64) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 2..].split(' ').nth(22 - 3)?.parse().ok()
}

/// Polls `cond` for up to `secs` seconds; fails the test with `what` if it never holds.
#[track_caller]
pub fn eventually(secs: u64, what: &str, cond: impl FnMut() -> bool) {
    assert!(wait_until(Duration::from_secs(secs), cond), "{what} (waited {secs} s)");
}

/// One row of the `boxr ps` table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PsRow {
    pub id: String,
    pub name: String,
    pub pid: String,
    pub status: String,
    pub created: String,
    pub command: String,
}

impl PsRow {
    /// Parses a `boxr ps` table: the header must be exactly [`PS_COLUMNS`], each column starting
    /// where its header does.
    #[track_caller]
    pub fn parse_table(text: &str) -> Vec<PsRow> {
        let mut lines = text.lines();
        let header = lines.next().unwrap_or_else(|| panic!("ps printed nothing"));
        let mut starts = Vec::new();
        for (i, column) in PS_COLUMNS.iter().enumerate() {
            let at = header.find(column).unwrap_or_else(|| panic!("no {column}: {header:?}"));
            assert!(i == 0 || at > starts[i - 1], "columns out of order: {header:?}");
            starts.push(at);
        }
        let words: Vec<&str> =
            header.split("   ").map(str::trim).filter(|w| !w.is_empty()).collect();
        assert_eq!(words, PS_COLUMNS, "the ps header");
        lines
            .map(|line| {
                let cell = |i: usize| {
                    let end = starts.get(i + 1).copied().unwrap_or(line.len()).min(line.len());
                    line.get(starts[i]..end).unwrap_or_default().trim().to_string()
                };
                PsRow {
                    id: cell(0),
                    name: cell(1),
                    pid: cell(2),
                    status: cell(3),
                    created: cell(4),
                    command: cell(5),
                }
            })
            .collect()
    }
}

/// A parsed JSON value. Indexing a missing key or index gives [`Json::Null`].
#[derive(Clone, Debug, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    /// A number, as written.
    Number(String),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    /// Parses a whole JSON text.
    pub fn parse(text: &str) -> Result<Json, String> {
        let mut parser = JsonParser { text: text.as_bytes(), at: 0 };
        let value = parser.value()?;
        parser.skip_space();
        if parser.at != text.len() {
            return Err(format!("trailing text at byte {}", parser.at));
        }
        Ok(value)
    }

    /// The string; fails the test for anything else.
    #[track_caller]
    pub fn as_str(&self) -> &str {
        match self {
            Json::String(s) => s,
            other => panic!("not a string: {other:?}"),
        }
    }

    /// The integer; fails the test for anything else.
    #[track_caller]
    pub fn as_i64(&self) -> i64 {
        match self {
            Json::Number(n) => n.parse().unwrap_or_else(|_| panic!("not an integer: {n}")),
            other => panic!("not a number: {other:?}"),
        }
    }

    /// The elements; fails the test for anything else.
    #[track_caller]
    pub fn as_array(&self) -> &[Json] {
        match self {
            Json::Array(items) => items,
            other => panic!("not an array: {other:?}"),
        }
    }

    /// An array of strings as a vector; fails the test for anything else.
    #[track_caller]
    pub fn strings(&self) -> Vec<&str> {
        self.as_array().iter().map(Json::as_str).collect()
    }

    /// The integer as a host pid; fails the test for anything else.
    #[track_caller]
    pub fn as_pid(&self) -> u32 {
        u32::try_from(self.as_i64()).unwrap_or_else(|_| panic!("not a pid: {self:?}"))
    }
}

impl std::ops::Index<&str> for Json {
    type Output = Json;
    fn index(&self, key: &str) -> &Json {
        match self {
            Json::Object(pairs) => {
                pairs.iter().find(|(k, _)| k == key).map_or(&Json::Null, |p| &p.1)
            }
            _ => &Json::Null,
        }
    }
}

struct JsonParser<'a> {
    text: &'a [u8],
    at: usize,
}

impl JsonParser<'_> {
    fn skip_space(&mut self) {
        while self.text.get(self.at).is_some_and(u8::is_ascii_whitespace) {
            self.at += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_space();
        self.text.get(self.at).copied()
    }

    fn expect(&mut self, byte: u8) -> Result<(), String> {
        if self.peek() == Some(byte) {
            self.at += 1;
            Ok(())
        } else {
            Err(format!("expected {:?} at byte {}", byte as char, self.at))
        }
    }

    fn literal(&mut self, word: &str, value: Json) -> Result<Json, String> {
        if self.text[self.at..].starts_with(word.as_bytes()) {
            self.at += word.len();
            Ok(value)
        } else {
            Err(format!("bad literal at byte {}", self.at))
        }
    }

    fn value(&mut self) -> Result<Json, String> {
        match self.peek().ok_or("unexpected end")? {
            b'{' => self
                .items(b'}', |p| {
                    let key = p.string()?;
                    p.expect(b':')?;
                    Ok((key, p.value()?))
                })
                .map(Json::Object),
            b'[' => self.items(b']', JsonParser::value).map(Json::Array),
            b'"' => self.string().map(Json::String),
            b't' => self.literal("true", Json::Bool(true)),
            b'f' => self.literal("false", Json::Bool(false)),
            b'n' => self.literal("null", Json::Null),
            _ => {
                let start = self.at;
                let number = |b: &u8| b.is_ascii_digit() || b"+-.eE".contains(b);
                while self.text.get(self.at).is_some_and(number) {
                    self.at += 1;
                }
                if start == self.at {
                    return Err(format!("unexpected byte at {start}"));
                }
                Ok(Json::Number(String::from_utf8_lossy(&self.text[start..self.at]).into()))
            }
        }
    }

    /// `open item (, item)* close`, the opening byte being at the cursor.
    fn items<T>(
        &mut self,
        close: u8,
        mut item: impl FnMut(&mut Self) -> Result<T, String>,
    ) -> Result<Vec<T>, String> {
        self.at += 1;
        let mut items = Vec::new();
        if self.peek() == Some(close) {
            self.at += 1;
            return Ok(items);
        }
        loop {
            items.push(item(self)?);
            if self.peek() == Some(b',') {
                self.at += 1;
            } else {
                self.expect(close)?;
                return Ok(items);
            }
        }
    }

    fn string(&mut self) -> Result<String, String> {
        self.expect(b'"')?;
        let mut out = Vec::new();
        loop {
            let byte = *self.text.get(self.at).ok_or("unterminated string")?;
            self.at += 1;
            match byte {
                b'"' => return String::from_utf8(out).map_err(|e| e.to_string()),
                b'\\' => {
                    let escape = *self.text.get(self.at).ok_or("unterminated escape")?;
                    self.at += 1;
                    let c = match escape {
                        b'n' => '\n',
                        b't' => '\t',
                        b'r' => '\r',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'u' => {
                            let hex = self.text.get(self.at..self.at + 4).ok_or("short \\u")?;
                            self.at += 4;
                            let code = u32::from_str_radix(&String::from_utf8_lossy(hex), 16)
                                .map_err(|e| e.to_string())?;
                            char::from_u32(code).unwrap_or('\u{fffd}')
                        }
                        other => other as char,
                    };
                    out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                }
                _ => out.push(byte),
            }
        }
    }
}

/// Host pids of the live processes carrying `marker` whose command name is `comm` (e.g. the
/// `sleep MARKER` workloads, not the monitors whose argv holds the marker too).
pub fn pids_named(marker: &Marker, comm: &str) -> Vec<u32> {
    let named = |pid: &u32| ProcStat::of(*pid).is_some_and(|s| s.comm == comm);
    marker.pids().into_iter().filter(named).collect()
}
