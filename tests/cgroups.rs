//! Container cgroups: memory, CPU and pids limits hold against real workloads (a memory hog is
//! OOM-killed, a fork bomb stops at its limit, a busy loop gets its quota), `boxr stats` reports
//! the usage, the workload and `boxr exec` processes are in the container's cgroup (seen as `/`
//! in a cgroup namespace), limits land in the files the kernel reads, bad limits are refused
//! before anything exists, and `rm`, `rm -f` and `--rm` leave no cgroup behind.
//!
//! Correct on both layouts: cgroup v1 (the hybrid layout included) and pure cgroup v2, detected
//! as boxr detects them ([`Hierarchies`]); a [`Metric`] is read from the file the layout at hand
//! has, so each test is written once. Every test uses a `cgroup_parent` of its own ([`Parent`])
//! and removes it at the end: that rmdir succeeding proves no cgroup was left in it.

use boxr_tests::containers::{
    Containers, Json, SLEEPER, assert_fails, eventually, pids_named, printed_id,
};
use boxr_tests::{Config, DEFAULT_NAMESPACES, Marker, Output, host_mounts, toml_str, unique};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

/// The v1 controllers boxr may put a container into.
const V1_CONTROLLERS: [&str; 6] = ["memory", "cpu", "cpuacct", "cpuset", "pids", "devices"];
/// The v1 controllers boxr puts a container into only for a limit that uses them.
const V1_FOR_LIMITS: [&str; 2] = ["cpu", "cpuset"];
/// The key of the one cgroup2 hierarchy in `cgroup.dirs` (and in [`Hierarchies::mounts`]).
const UNIFIED: &str = "unified";
/// Grows a shell variable until the memory limit stops it.
const MEMORY_HOG: &str = "echo ready; x=a; while true; do x=\"$x$x\"; done";
/// Burns CPU until killed.
const BUSY: &str = "echo ready; while :; do :; done";
/// Every process forks new ones for ever (a refused fork ends the process that tried); the
/// first process becomes `sleep MARKER`.
const FORK_BOMB: &str = "echo ready; bomb() { while :; do bomb & done; }; bomb & exec sleep \"$0\"";
const OOM_MESSAGE: &str = "boxr: container killed: out of memory (limit 16M)";
const MIB: i64 = 1 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layout {
    V1,
    V2,
}

/// The host's cgroup hierarchies as boxr uses them: v1 when any controller boxr uses is mounted
/// as cgroup v1 (also on the hybrid layout, beside a controller-less cgroup2), else cgroup v2.
struct Hierarchies {
    layout: Layout,
    /// v1: controller → its mount point; v2: [`UNIFIED`] → the cgroup2 mount point.
    mounts: BTreeMap<String, PathBuf>,
}

impl Hierarchies {
    fn detect() -> Hierarchies {
        let mut v1 = BTreeMap::new();
        let mut unified = None;
        for mount in host_mounts() {
            match mount.fstype.as_str() {
                "cgroup" => {
                    for option in &mount.super_options {
                        if V1_CONTROLLERS.contains(&option.as_str()) {
                            v1.insert(option.clone(), PathBuf::from(&mount.mount_point));
                        }
                    }
                }
                "cgroup2" => unified = Some(PathBuf::from(&mount.mount_point)),
                _ => {}
            }
        }
        if !v1.is_empty() {
            return Hierarchies { layout: Layout::V1, mounts: v1 };
        }
        let unified = unified.expect("no cgroup filesystem is mounted");
        Hierarchies { layout: Layout::V2, mounts: BTreeMap::from([(UNIFIED.into(), unified)]) }
    }

    /// The directory of cgroup `path` (as /proc/PID/cgroup names it) in hierarchy `key`.
    fn dir(&self, key: &str, path: &str) -> PathBuf {
        self.mounts[key].join(path.trim_start_matches('/'))
    }

    /// The distinct directories of cgroup `path` over all hierarchies (co-mounted v1
    /// controllers share one).
    fn dirs(&self, path: &str) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = self.mounts.keys().map(|key| self.dir(key, path)).collect();
        dirs.sort();
        dirs.dedup();
        dirs
    }
}

/// The cgroup path of hierarchy `key` in `/proc/PID/cgroup` text (the `0::` line for
/// [`UNIFIED`]).
fn proc_cgroup_path<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines().find_map(|line| {
        let mut fields = line.splitn(3, ':');
        let (_, names, path) = (fields.next()?, fields.next()?, fields.next()?);
        let hit =
            if key == UNIFIED { names.is_empty() } else { names.split(',').any(|n| n == key) };
        hit.then_some(path)
    })
}

/// What a test reads from a container's cgroup, whatever the layout.
#[derive(Clone, Copy, Debug)]
enum Metric {
    MemoryLimit,
    OomKills,
    CpuQuota,
    CpuPeriod,
    /// CPU time used, in nanoseconds.
    CpuUsageNs,
    /// v1 `cpu.shares`, v2 `cpu.weight`.
    CpuShare,
    CpusetCpus,
    PidsMax,
    PidsCurrent,
    PidsPeak,
    /// How many forks the pids limit refused.
    PidsRefused,
}

/// Which part of a cgroup file holds a value.
#[derive(Clone, Copy, Debug)]
enum Part {
    Whole,
    /// The value after `KEY ` on a line of a flat-keyed file (`memory.events`).
    Key(&'static str),
    /// The Nth word (`cpu.max`).
    Word(usize),
}

impl Metric {
    /// The v1 controller, then the file and the part of it on v1 and on v2.
    fn source(self) -> (&'static str, (&'static str, Part), (&'static str, Part)) {
        use Part::{Key, Whole, Word};
        match self {
            Metric::MemoryLimit => {
                ("memory", ("memory.limit_in_bytes", Whole), ("memory.max", Whole))
            }
            Metric::OomKills => (
                "memory",
                ("memory.oom_control", Key("oom_kill")),
                ("memory.events", Key("oom_kill")),
            ),
            Metric::CpuQuota => ("cpu", ("cpu.cfs_quota_us", Whole), ("cpu.max", Word(0))),
            Metric::CpuPeriod => ("cpu", ("cpu.cfs_period_us", Whole), ("cpu.max", Word(1))),
            Metric::CpuUsageNs => {
                ("cpuacct", ("cpuacct.usage", Whole), ("cpu.stat", Key("usage_usec")))
            }
            Metric::CpuShare => ("cpu", ("cpu.shares", Whole), ("cpu.weight", Whole)),
            Metric::CpusetCpus => ("cpuset", ("cpuset.cpus", Whole), ("cpuset.cpus", Whole)),
            Metric::PidsMax => ("pids", ("pids.max", Whole), ("pids.max", Whole)),
            Metric::PidsCurrent => ("pids", ("pids.current", Whole), ("pids.current", Whole)),
            Metric::PidsPeak => ("pids", ("pids.peak", Whole), ("pids.peak", Whole)),
            Metric::PidsRefused => {
                ("pids", ("pids.events", Key("max")), ("pids.events", Key("max")))
            }
        }
    }
}

/// A container's cgroup, as `boxr inspect` lists it (checked against the layout and parent).
struct Cgroup {
    layout: Layout,
    id: String,
    /// Hierarchy key (v1 controller or [`UNIFIED`]) → directory.
    dirs: BTreeMap<String, PathBuf>,
}

impl Cgroup {
    fn file(&self, metric: Metric) -> (PathBuf, Part) {
        let (controller, v1, v2) = metric.source();
        let (key, (file, part)) = match self.layout {
            Layout::V1 => (controller, v1),
            Layout::V2 => (UNIFIED, v2),
        };
        (self.dirs[key].join(file), part)
    }

    /// The metric's text, if its file exists.
    fn try_read(&self, metric: Metric) -> Option<String> {
        let (path, part) = self.file(metric);
        let text = fs::read_to_string(&path).ok()?;
        let value = match part {
            Part::Whole => Some(text.trim()),
            Part::Key(key) => text.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')),
            Part::Word(n) => text.split_whitespace().nth(n),
        };
        let value = value.unwrap_or_else(|| panic!("no {part:?} in {}: {text:?}", path.display()));
        Some(value.trim().to_string())
    }

    #[track_caller]
    fn read(&self, metric: Metric) -> String {
        self.try_read(metric).unwrap_or_else(|| panic!("cannot read {:?}", self.file(metric).0))
    }

    #[track_caller]
    fn number(&self, metric: Metric) -> i64 {
        let text = self.read(metric);
        let n: i64 = text.parse().unwrap_or_else(|_| panic!("{metric:?} is {text:?}"));
        match (self.layout, metric) {
            (Layout::V2, Metric::CpuUsageNs) => n * 1000,
            _ => n,
        }
    }

    /// A v1 value or its v2 counterpart, for the layout at hand.
    fn either<T>(&self, v1: T, v2: T) -> T {
        if self.layout == Layout::V1 { v1 } else { v2 }
    }

    fn unique_dirs(&self) -> Vec<&PathBuf> {
        let mut dirs: Vec<&PathBuf> = self.dirs.values().collect();
        dirs.sort();
        dirs.dedup();
        dirs
    }

    /// Asserts that every directory of the cgroup exists (`true`) or none does (`false`).
    #[track_caller]
    fn assert_exists(&self, exists: bool) {
        for dir in self.unique_dirs() {
            assert_eq!(dir.exists(), exists, "{} exists: {}", dir.display(), dir.exists());
        }
    }

    /// Host pids in the cgroup of hierarchy `dir`.
    fn procs(dir: &Path) -> Vec<u32> {
        let text = fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
        text.lines().filter_map(|l| l.parse().ok()).collect()
    }
}

/// A `cgroup_parent` of the test's own, `/boxr-test-<unique>`. Its drop removes its directories
/// if still there (a failed test); [`Parent::remove`] asserts that they are empty.
struct Parent {
    path: String,
    dirs: Vec<PathBuf>,
}

impl Parent {
    fn new(hierarchies: &Hierarchies) -> Parent {
        let path = format!("/boxr-test-{}", unique());
        Parent { dirs: hierarchies.dirs(&path), path }
    }

    /// Removes the parent in every hierarchy (v1's cpu and cpuset have it only if a container
    /// had limits there): fails the test if a cgroup is left in it.
    #[track_caller]
    fn remove(&self) {
        for dir in &self.dirs {
            if let Err(e) = fs::remove_dir(dir).or_else(|e| match e.kind() {
                std::io::ErrorKind::NotFound => Ok(()),
                _ => Err(e),
            }) {
                let left: Vec<PathBuf> = fs::read_dir(dir)
                    .map(|d| d.flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect())
                    .unwrap_or_default();
                panic!(
                    "cannot remove the cgroup parent {}: {e}; left in it: {left:?}",
                    dir.display()
                );
            }
        }
    }

    #[track_caller]
    fn assert_absent(&self) {
        for dir in &self.dirs {
            assert!(!dir.exists(), "{} was created", dir.display());
        }
    }
}

impl Drop for Parent {
    fn drop(&mut self) {
        for dir in &self.dirs {
            let _ = fs::remove_dir(dir);
        }
    }
}

/// Containers (own state root and storage) in a cgroup parent of their own.
struct Fixture {
    // Dropped first: the containers' cgroups go before their parent.
    c: Containers,
    parent: Parent,
    hierarchies: Hierarchies,
}

impl Fixture {
    fn new(name: &str) -> Fixture {
        let hierarchies = Hierarchies::detect();
        let parent = Parent::new(&hierarchies);
        let fixture = Fixture { c: Containers::new(name), parent, hierarchies };
        fixture.configure(&fixture.config(), "");
        fixture
    }

    /// A config whose containers go into this fixture's cgroup parent.
    fn config(&self) -> Config {
        Config::new().set("cgroup_parent", &toml_str(&self.parent.path))
    }

    /// Makes `config` plus a `[resources]` table (unless empty) the config file of the
    /// containers started from now on; returns its text.
    fn configure(&self, config: &Config, resources: &str) -> String {
        let mut text = config.render();
        if !resources.is_empty() {
            text = format!("{text}\n[resources]\n{resources}\n");
        }
        fs::write(self.c.config_path(), &text).expect("write the config");
        text
    }

    /// `FILE:LINE:COLUMN` of `needle` in the config `text`, as boxr names places.
    fn place(&self, text: &str, needle: &str) -> String {
        let at = text.find(needle).unwrap_or_else(|| panic!("no {needle:?} in {text}"));
        let line = text[..at].matches('\n').count() + 1;
        let column = at - text[..at].rfind('\n').map_or(0, |i| i + 1) + 1;
        format!("{}:{line}:{column}", self.c.config_path().display())
    }

    /// `boxr run --name NAME --config CONFIG FLAGS -- COMMAND` in the foreground.
    fn run(&self, name: &str, flags: &[&str], command: &[&str]) -> Output {
        let run = self.c.boxr().args(["run", "--name", name, "--config"]);
        run.arg(self.c.config_path()).args(flags).command(command).output()
    }

    /// Starts `sh -c SCRIPT MARKER` detached as `name` with `flags`, and waits until it printed
    /// "ready"; returns its id.
    #[track_caller]
    fn start(&self, name: &str, flags: &[&str], script: &str, marker: &Marker) -> String {
        let flags = [&["--name", name][..], flags].concat();
        let command = ["/bin/sh", "-c", script, marker.as_str()];
        let id = printed_id(&self.c.run_detached(&flags, &command));
        self.c.wait_for_log_line(name, "ready");
        id
    }

    /// The cgroup of container `name` (see [`Fixture::inspect_cgroup`]), whatever its limits.
    #[track_caller]
    fn cgroup(&self, name: &str) -> Cgroup {
        self.inspect_cgroup(name, None)
    }

    /// The cgroup of container `name`, whose limits use exactly the v1 hierarchies of
    /// [`V1_FOR_LIMITS`] that `limited` names.
    #[track_caller]
    fn cgroup_using(&self, name: &str, limited: &[&str]) -> Cgroup {
        self.inspect_cgroup(name, Some(limited))
    }

    /// The cgroup of container `name` per `boxr inspect`: asserts that it is `<parent>/<id>` in
    /// every hierarchy of the host's layout; on v1 in those of [`V1_FOR_LIMITS`] only when
    /// `limited` names them (`None`: whether or not it is).
    #[track_caller]
    fn inspect_cgroup(&self, name: &str, limited: Option<&[&str]>) -> Cgroup {
        let state = self.c.inspect(name);
        let id = state["id"].as_str().to_string();
        let layout = self.hierarchies.layout;
        let version = if layout == Layout::V1 { "v1" } else { "v2" };
        assert_eq!(state["cgroup"]["version"].as_str(), version, "{state:?}");
        let Json::Object(pairs) = &state["cgroup"]["dirs"] else {
            panic!("no cgroup.dirs: {state:?}")
        };
        let dirs: BTreeMap<String, PathBuf> =
            pairs.iter().map(|(key, dir)| (key.clone(), PathBuf::from(dir.as_str()))).collect();
        let path = format!("{}/{id}", self.parent.path);
        let expected: BTreeMap<String, PathBuf> = self
            .hierarchies
            .mounts
            .keys()
            .filter(|key| {
                layout == Layout::V2
                    || !V1_FOR_LIMITS.contains(&key.as_str())
                    || limited.map_or(dirs.contains_key(*key), |l| l.contains(&key.as_str()))
            })
            .map(|key| (key.clone(), self.hierarchies.dir(key, &path)))
            .collect();
        assert_eq!(dirs, expected, "the cgroup dirs of {name}");
        Cgroup { layout, id, dirs }
    }

    /// Asserts that `/proc/self/cgroup` `text` (printed by a process of container `cg`) shows
    /// the container's cgroup in every hierarchy boxr uses.
    #[track_caller]
    fn assert_in_cgroup(&self, text: &str, cg: &Cgroup) {
        let expected = format!("{}/{}", self.parent.path, cg.id);
        for key in cg.dirs.keys() {
            assert_eq!(proc_cgroup_path(text, key), Some(expected.as_str()), "{key} in\n{text}");
        }
    }

    /// `boxr rm FLAGS NAME`, asserting that every cgroup dir inspect listed existed before and
    /// is gone after.
    #[track_caller]
    fn rm(&self, name: &str, flags: &[&str]) {
        let cg = self.cgroup(name);
        cg.assert_exists(true);
        let out = self.c.boxr().arg("rm").args(flags).arg(name).output();
        assert_eq!(out.ok(), format!("{name}\n"));
        cg.assert_exists(false);
    }

    /// Asserts that no container is left (`ps -a` lists none) and removes the (then empty)
    /// cgroup parent.
    #[track_caller]
    fn finish(self) {
        assert_eq!(self.c.ps(&["-a"]), [], "containers left");
        self.parent.remove();
    }

    /// Asserts what a memory hog `name` killed at a 16 MiB limit leaves recorded.
    #[track_caller]
    fn assert_oom_recorded(&self, name: &str) {
        let row = self.c.ps_row(name).expect("ps -a lists it");
        assert_eq!(row.status, "exited (137, out of memory)");
        let state = self.c.inspect(name);
        assert_eq!(state["oom_killed"], Json::Bool(true), "{state:?}");
        assert_eq!(state["exit_code"].as_i64(), 137);
        let error = state["error"].as_str();
        assert_eq!(Some(error), OOM_MESSAGE.strip_prefix("boxr: "));
        let cg = self.cgroup(name);
        assert_eq!(cg.number(Metric::MemoryLimit), 16 * MIB);
        assert!(cg.number(Metric::OomKills) >= 1, "the cgroup counted no OOM kill");
    }

    /// `boxr stats --no-stream --format json NAME`: the one row.
    #[track_caller]
    fn stats_json(&self, name: &str) -> Json {
        let out = self.c.cmd(&["stats", "--no-stream", "--format", "json", name]);
        let rows = Json::parse(out.ok()).unwrap_or_else(|e| panic!("stats: {e}\n{out}"));
        let [row] = rows.as_array() else { panic!("not one row\n{out}") };
        row.clone()
    }
}

/// The host's online CPUs (/sys/devices/system/cpu/online, e.g. `0-1`) and that text.
fn online_cpus() -> (Vec<u32>, String) {
    let text = fs::read_to_string("/sys/devices/system/cpu/online").expect("online cpus");
    let mut cpus = Vec::new();
    for part in text.trim().split(',') {
        let (lo, hi) = part.split_once('-').unwrap_or((part, part));
        cpus.extend(lo.parse::<u32>().expect("cpu")..=hi.parse::<u32>().expect("cpu"));
    }
    (cpus, text.trim().to_string())
}

fn float(value: &Json) -> f64 {
    match value {
        Json::Number(n) => n.parse().unwrap_or_else(|_| panic!("not a number: {n}")),
        other => panic!("not a number: {other:?}"),
    }
}

#[test]
fn a_memory_hog_is_oom_killed_at_the_limit() {
    let f = Fixture::new("cg-oom");
    let out = f.run("hog", &["--memory", "16m"], &["/bin/sh", "-c", MEMORY_HOG]);
    out.expect_code(137);
    assert!(out.stderr.lines().any(|l| l == OOM_MESSAGE), "no OOM message\n{out}");
    f.assert_oom_recorded("hog");
    f.rm("hog", &[]);
    f.finish();
}

#[test]
fn a_child_killed_by_the_oom_killer_does_not_make_the_container_oom_killed() {
    // The hog is a child; the workload survives it and exits 0 on its own.
    let f = Fixture::new("cg-oom-child");
    let script = format!("sh -c '{MEMORY_HOG}' >/dev/null; echo child=$?; exit 0");
    let out = f.run("survivor", &["--memory", "16m"], &["/bin/sh", "-c", &script]);
    assert_eq!(out.expect_code(0).stdout, "child=137\n");
    assert!(!out.stderr.contains("out of memory"), "an OOM kill was reported\n{out}");
    let state = f.c.inspect("survivor");
    assert_eq!(state["oom_killed"], Json::Bool(false), "{state:?}");
    assert_eq!(f.c.ps_row("survivor").expect("ps -a lists it").status, "exited (0)");
    f.rm("survivor", &[]);
    f.finish();
}

#[test]
fn without_a_pid_namespace_orphans_die_with_the_workload() {
    let (f, marker) = (Fixture::new("cg-orphans"), Marker::new());
    let no_pid: Vec<&str> = DEFAULT_NAMESPACES.iter().copied().filter(|ns| *ns != "pid").collect();
    f.configure(&f.config().namespaces(&no_pid), "");
    let script = "sleep \"$0\" & echo started";
    let out = f.run("orphans", &[], &["/bin/sh", "-c", script, marker.as_str()]);
    assert_eq!(out.expect_code(0).stdout, "started\n");
    eventually(10, "the orphaned sleep is killed with the container", || marker.pids().is_empty());
    f.rm("orphans", &[]);
    f.finish();
}

#[test]
fn a_detached_memory_hog_limited_by_the_config_is_recorded_as_oom_killed() {
    let (f, marker) = (Fixture::new("cg-oom-detached"), Marker::new());
    f.configure(&f.config(), "memory = \"16m\"");
    f.start("hog", &[], MEMORY_HOG, &marker);
    f.c.wait_exited("hog");
    f.assert_oom_recorded("hog");
    f.rm("hog", &[]);
    f.finish();
}

#[test]
fn a_fork_bomb_stops_at_the_pids_limit() {
    let (f, marker) = (Fixture::new("cg-pids"), Marker::new());
    // The quota keeps the bomb from starving the tests running beside it.
    f.start("bomb", &["--pids-limit", "20", "--cpus", "0.5"], FORK_BOMB, &marker);
    let cg = f.cgroup_using("bomb", &["cpu"]);
    assert_eq!(cg.read(Metric::PidsMax), "20");
    let (started, deadline) = (Instant::now(), Instant::now() + Duration::from_secs(20));
    let mut highest = 0;
    loop {
        let current = cg.number(Metric::PidsCurrent);
        assert!(current <= 20, "pids.current is {current} with pids.max 20");
        highest = highest.max(current);
        // Watch the bomb for a second at least, and until the limit refused a fork.
        if cg.number(Metric::PidsRefused) > 0 && started.elapsed() >= Duration::from_secs(1) {
            break;
        }
        assert!(Instant::now() < deadline, "no fork refused; pids.current reached {highest}");
        thread::sleep(Duration::from_millis(10));
    }
    if let Some(peak) = cg.try_read(Metric::PidsPeak) {
        assert_eq!(peak, "20", "pids.peak: forks were refused below the limit, or let through");
    }
    let host = Command::new("/bin/sh").args(["-c", "/bin/true & wait $!"]).status();
    assert!(host.expect("run sh on the host").success(), "the host cannot fork");
    f.rm("bomb", &["-f"]);
    eventually(10, "the bomb's processes are gone", || marker.pids().is_empty());
    f.finish();
}

#[test]
fn a_cpu_quota_of_half_a_cpu_holds_a_busy_loop_to_half_its_wall_time() {
    let (f, marker) = (Fixture::new("cg-cpu"), Marker::new());
    f.start("busy", &["--cpus", "0.5"], BUSY, &marker);
    let cg = f.cgroup_using("busy", &["cpu"]);
    assert_eq!(
        (cg.read(Metric::CpuQuota), cg.read(Metric::CpuPeriod)),
        ("50000".into(), "100000".into())
    );
    let (cpu, wall) = (cg.number(Metric::CpuUsageNs), Instant::now());
    thread::sleep(Duration::from_secs(2));
    let used = cg.number(Metric::CpuUsageNs) - cpu;
    let ratio = used as f64 / wall.elapsed().as_nanos() as f64;
    assert!((0.25..=0.75).contains(&ratio), "CPU time / wall time is {ratio:.3}, not about 0.5");
    f.rm("busy", &["-f"]);
    f.finish();
}

#[test]
fn stats_report_usage_against_the_limits() {
    let (f, marker) = (Fixture::new("cg-stats"), Marker::new());
    let flags = ["--memory", "32m", "--pids-limit", "50", "--cpus", "0.5"];
    f.start("stats", &flags, BUSY, &marker);
    let cg = f.cgroup_using("stats", &["cpu"]);
    let first = f.stats_json("stats");
    let second = f.stats_json("stats");
    for row in [&first, &second] {
        assert_eq!(row["id"].as_str(), &cg.id[..12]);
        assert_eq!(row["name"].as_str(), "stats");
        assert!(row["memory_usage"].as_i64() > 0, "{row:?}");
        assert_eq!(row["memory_limit"].as_i64(), 32 * MIB, "{row:?}");
        assert!((1..=50).contains(&row["pids_current"].as_i64()), "{row:?}");
        assert_eq!(row["pids_limit"].as_i64(), 50, "{row:?}");
        let percent = float(&row["cpu_percent"]);
        assert!(percent > 0.0 && percent <= 75.0, "cpu_percent {percent} with --cpus 0.5");
    }
    let (before, after) = (first["cpu_time_ns"].as_i64(), second["cpu_time_ns"].as_i64());
    assert!(after > before, "cpu_time_ns did not grow: {before} then {after}");

    let out = f.c.cmd(&["stats", "--no-stream", "stats"]);
    let [header, row] = out.lines()[..] else { panic!("not a header and one row\n{out}") };
    let header: Vec<&str> = header.split("   ").map(str::trim).filter(|w| !w.is_empty()).collect();
    assert_eq!(header, ["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "PIDS"]);
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells[..2], [&cg.id[..12], "stats"], "{row}");
    assert!(cells[2].ends_with('%') && row.contains(" / 32M") && row.ends_with("/50"), "{row}");
    f.rm("stats", &["-f"]);
    f.finish();
}

#[test]
fn the_workload_is_in_the_containers_cgroup() {
    let f = Fixture::new("cg-proc");
    let out = f.run("plain", &[], &["cat", "/proc/self/cgroup"]);
    f.assert_in_cgroup(out.ok(), &f.cgroup_using("plain", &[]));
    f.rm("plain", &[]);
    f.finish();
}

#[test]
fn a_cgroup_namespace_shows_the_containers_cgroup_as_root() {
    let f = Fixture::new("cg-ns");
    let namespaces = [DEFAULT_NAMESPACES, &["cgroup"]].concat();
    f.configure(&f.config().namespaces(&namespaces), "");
    let out = f.run("ns", &[], &["cat", "/proc/self/cgroup"]);
    let lines = out.lines();
    assert!(!lines.is_empty() && lines.iter().all(|l| l.ends_with(":/")), "\n{out}");
    for key in f.hierarchies.mounts.keys() {
        assert_eq!(proc_cgroup_path(&out.stdout, key), Some("/"), "{key}\n{out}");
    }
    f.rm("ns", &[]);
    f.finish();
}

#[test]
fn exec_processes_join_the_containers_cgroup() {
    let (f, marker, joined) = (Fixture::new("cg-exec"), Marker::new(), Marker::new());
    f.start("target", &[], SLEEPER, &marker);
    let cg = f.cgroup("target");
    let out = f.c.exec_sh(&[], "target", "cat /proc/self/cgroup");
    f.assert_in_cgroup(out.ok(), &cg);
    let _exec = f.c.boxr().args(["exec", "target"]).command(&["sleep", joined.as_str()]).spawn();
    eventually(10, "the exec'd sleep runs", || pids_named(&joined, "sleep").len() == 1);
    let pid = pids_named(&joined, "sleep")[0];
    for dir in cg.unique_dirs() {
        assert!(Cgroup::procs(dir).contains(&pid), "{pid} is not in {}", dir.display());
    }
    f.rm("target", &["-f"]);
    f.finish();
}

#[test]
fn limits_land_in_the_cgroup_files() {
    let (f, marker) = (Fixture::new("cg-limits"), Marker::new());
    // The flags replace the config's memory and weight; its pids_limit stays.
    f.configure(&f.config(), "memory = \"64m\"\npids_limit = 30\ncpu_weight = 300");
    let cpu = online_cpus().0[0].to_string();
    let flags = ["--memory", "32m", "--cpu-shares", "512", "--cpuset-cpus", &cpu, "--cpus", "0.25"];
    f.start("limited", &flags, SLEEPER, &marker);
    let cg = f.cgroup_using("limited", &["cpu", "cpuset"]);
    assert_eq!(cg.number(Metric::MemoryLimit), 32 * MIB);
    // 512 shares are weight 20 on v2 (runc's conversion).
    assert_eq!(cg.number(Metric::CpuShare), cg.either(512, 20));
    assert_eq!(cg.read(Metric::CpusetCpus), cpu);
    assert_eq!(cg.read(Metric::PidsMax), "30");
    assert_eq!((cg.number(Metric::CpuQuota), cg.number(Metric::CpuPeriod)), (25_000, 100_000));
    let [sleep] = pids_named(&marker, "sleep")[..] else { panic!("not one sleep") };
    let status = fs::read_to_string(format!("/proc/{sleep}/status")).expect("its status");
    let allowed = status.lines().find_map(|l| l.strip_prefix("Cpus_allowed_list:"));
    assert_eq!(allowed.map(str::trim), Some(cpu.as_str()), "the workload's CPUs");
    f.rm("limited", &["-f"]);
    f.finish();
}

#[test]
fn bad_limits_are_refused_before_anything_is_created() {
    let f = Fixture::new("cg-refused");
    let (cpus, online) = online_cpus();
    let too_many = (cpus.len() + 3).to_string();
    let offline = (cpus[cpus.len() - 1] + 1).to_string();
    let flag_cases: [(&[&str], String); 4] = [
        (&["--memory", "1k"], "--memory: 1024 bytes is below the minimum of 6 MiB".into()),
        (
            &["--cpus", &too_many],
            format!("--cpus: {too_many} is out of range: from 0.01 to {}", cpus.len()),
        ),
        (
            &["--cpuset-cpus", &offline],
            format!("--cpuset-cpus: cpu {offline} is not online (online: {online})"),
        ),
        (&["--pids-limit", "0"], "--pids-limit: 0: give at least 1".into()),
    ];
    let assert_refused = |out: &Output, message: &str| {
        assert_fails(out, 125, &[message]);
        f.c.assert_nothing_left();
        f.parent.assert_absent();
    };
    for (flags, message) in &flag_cases {
        assert_refused(&f.run("refused", flags, &["true"]), message);
    }
    let text = f.configure(&f.config(), "memory = \"16m\"\nmemory_swap = \"8m\"");
    let message = "resources.memory_swap: 8388608 bytes is less than memory (16777216)";
    let message = format!("{}: {message}", f.place(&text, "\"8m\""));
    assert_refused(&f.run("refused", &[], &["true"]), &message);
    let text = f.configure(&f.config(), "memory = \"16m\"\nno_such_limit = 1");
    let message = format!("{}: unknown field `no_such_limit`", f.place(&text, "no_such_limit"));
    assert_refused(&f.run("refused", &[], &["true"]), &message);
}

#[test]
fn rm_f_of_a_running_container_removes_its_cgroup() {
    let (f, marker) = (Fixture::new("cg-rm-f"), Marker::new());
    f.start("running", &["--memory", "32m", "--pids-limit", "10"], SLEEPER, &marker);
    f.rm("running", &["-f"]);
    eventually(10, "the workload is gone", || marker.pids().is_empty());
    f.finish();
}

#[test]
fn a_foreground_rm_container_leaves_no_cgroup() {
    let f = Fixture::new("cg-auto-rm");
    let out = f.run("gone", &["--rm", "--memory", "32m"], &["cat", "/proc/self/cgroup"]);
    let text = out.ok();
    // A memory limit only: v1's cpu and cpuset hierarchies are not used.
    let used = |key: &&String| {
        f.hierarchies.layout == Layout::V2 || !V1_FOR_LIMITS.contains(&key.as_str())
    };
    for key in f.hierarchies.mounts.keys().filter(used) {
        let path = proc_cgroup_path(text, key).unwrap_or_else(|| panic!("no {key} in\n{text}"));
        assert!(path.starts_with(&format!("{}/", f.parent.path)), "{key}: {path}");
        let dir = f.hierarchies.dir(key, path);
        assert!(!dir.exists(), "--rm left {}", dir.display());
    }
    f.finish();
}

#[test]
fn a_detached_rm_container_leaves_no_cgroup_when_it_exits() {
    let (f, marker) = (Fixture::new("cg-auto-rm-detached"), Marker::new());
    f.start("gone", &["--rm", "--pids-limit", "10"], SLEEPER, &marker);
    let cg = f.cgroup("gone");
    cg.assert_exists(true);
    f.c.cmd(&["kill", "gone"]).ok();
    eventually(10, "the container removes itself", || f.c.ps_row("gone").is_none());
    cg.assert_exists(false);
    f.finish();
}
