//! `cargo xtask bench`: what boxr exists for, measured side by side in one run so that the
//! ratios hold on a noisy machine.
//!
//! - Latency: start-to-exit of a container running `/bin/true` from the busybox rootfs, for
//!   boxr, runc, crun (OCI bundles written here), bwrap and the floor (`unshare` + `chroot`),
//!   in interleaved rounds; wall time, and CPU time (user+sys of everything the runtime
//!   started, from `getrusage(RUSAGE_CHILDREN)`).
//! - Throughput: containers run one after another, and with [`PARALLEL`] at a time.
//! - Footprint: binary sizes, the RSS of the PID 1 (boxr-init, tini, catatonit) while a
//!   workload sleeps, the peak RSS of the frontends (boxr, runc, crun) during a foreground run.
//! - Scale: detached containers' start latency as they pile up, and `boxr ps` over all of them.
//!
//! Every runtime gets pid, mount, uts, ipc and net namespaces. All of it runs in a private mount
//! namespace without `/sys/fs/cgroup/unified` when the host's cgroups are hybrid: crun refuses
//! a hybrid layout whose unified hierarchy has controllers. Nothing here asserts a time.

mod report;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use boxr_cli::{config, devices, security};
use serde_json::json;

use self::report::{Align, median, ms, ratio, size, table};
use crate::apt::{self, Tool};
use crate::{build_bins, busybox, output, remove_dir_if_exists, root, rootfs, step};

/// How many containers run at a time in the parallel throughput measurement.
const PARALLEL: usize = 8;
const WARMUP_ROUNDS: usize = 3;
/// How long a footprint or scale workload sleeps (it is killed once measured).
const SLEEP: &str = "600";

const TOOLS: &[Tool] = &[
    Tool { program: "runc", package: "runc" },
    Tool { program: "crun", package: "crun" },
    Tool { program: "bwrap", package: "bubblewrap" },
    Tool { program: "tini-static", package: "tini" },
    Tool { program: "catatonit", package: "catatonit" },
    Tool { program: "unshare", package: "util-linux" },
];

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    source: busybox::Source,
    /// Interleaved rounds of the latency measurement (each runs every runtime once).
    #[arg(long, default_value_t = 100)]
    rounds: usize,
    /// Containers per throughput measurement.
    #[arg(long, default_value_t = 50)]
    containers: usize,
    /// Detached containers for the scale measurement.
    #[arg(long, default_value_t = 200)]
    scale: usize,
    /// Print the report without writing docs/benchmarks.md.
    #[arg(long)]
    no_write: bool,
}

/// Paths everything here uses.
struct Env {
    /// Scratch space on disk: configs, bundles, boxr's storage (target/bench).
    dir: PathBuf,
    /// The runtimes' state directories, on a tmpfs as their defaults (/run/boxr-bench).
    state: PathBuf,
    boxr: PathBuf,
    init: PathBuf,
    rootfs: PathBuf,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Runtime {
    /// `boxr run`, on the rootfs directory itself (`copy_on_write = false`), like runc and crun.
    Boxr,
    /// `boxr run` with its default copy-on-write overlay over the rootfs.
    BoxrOverlay,
    Runc,
    Crun,
    Bwrap,
    /// `unshare … chroot`: the namespaces and nothing else.
    Floor,
    FloorNoNet,
}

const RUNTIMES: &[Runtime] = &[
    Runtime::Boxr,
    Runtime::BoxrOverlay,
    Runtime::Runc,
    Runtime::Crun,
    Runtime::Bwrap,
    Runtime::Floor,
    Runtime::FloorNoNet,
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Workload {
    True,
    Sleep,
}

impl Runtime {
    fn name(self) -> &'static str {
        match self {
            Runtime::Boxr => "boxr run",
            Runtime::BoxrOverlay => "boxr run (overlay)",
            Runtime::Runc => "runc run",
            Runtime::Crun => "crun run",
            Runtime::Bwrap => "bwrap",
            Runtime::Floor => "floor: unshare + chroot",
            Runtime::FloorNoNet => "floor without net ns",
        }
    }

    /// The command that runs `workload` as this runtime's container number `n`.
    fn command(self, env: &Env, n: usize, workload: Workload) -> Command {
        let argv: &[&str] = match workload {
            Workload::True => &["/bin/true"],
            Workload::Sleep => &["/bin/sleep", SLEEP],
        };
        match self {
            Runtime::Boxr | Runtime::BoxrOverlay => {
                let config = if self == Runtime::Boxr { "boxr.toml" } else { "boxr-overlay.toml" };
                let mut cmd = boxr(env, "run");
                cmd.arg("--rm").arg("--config").arg(env.dir.join(config)).arg("--").args(argv);
                cmd
            }
            Runtime::Runc | Runtime::Crun => {
                let program = if self == Runtime::Runc { "runc" } else { "crun" };
                let bundle = if workload == Workload::True { "oci-true" } else { "oci-sleep" };
                let mut cmd = Command::new(program);
                cmd.arg("--root").arg(env.state.join(program));
                cmd.arg("run").arg("--bundle").arg(env.dir.join(bundle));
                cmd.arg(format!("bench-{n}"));
                cmd
            }
            Runtime::Bwrap => {
                let mut cmd = Command::new("bwrap");
                cmd.args(["--unshare-pid", "--unshare-uts", "--unshare-ipc", "--unshare-net"]);
                cmd.arg("--bind").arg(&env.rootfs).arg("/");
                cmd.args(["--proc", "/proc", "--dev", "/dev"]).args(argv);
                cmd
            }
            Runtime::Floor | Runtime::FloorNoNet => {
                let mut cmd = Command::new("unshare");
                cmd.args(["--fork", "--pid", "--mount", "--uts", "--ipc"]);
                if self == Runtime::Floor {
                    cmd.arg("--net");
                }
                cmd.arg("--mount-proc").arg("chroot").arg(&env.rootfs).args(argv);
                cmd
            }
        }
    }
}

/// `boxr SUBCOMMAND` with the benchmark's own state and storage directories (on a tmpfs and on
/// disk, as boxr's defaults /run/boxr and /var/lib/boxr are).
fn boxr(env: &Env, subcommand: &str) -> Command {
    let mut cmd = Command::new(&env.boxr);
    cmd.arg(subcommand);
    cmd.arg("--root").arg(env.state.join("boxr"));
    cmd.arg("--storage").arg(env.dir.join("boxr-storage"));
    cmd
}

pub fn run(args: &Args) -> Result<()> {
    ensure!(
        rustix::process::geteuid().is_root(),
        "the benchmarks start containers with boxr, runc and crun, which needs root"
    );
    ensure!(args.rounds > 0 && args.containers > 0, "--rounds and --containers must be positive");
    apt::ensure_tools(TOOLS)?;
    let bins = build_bins::build(true)?;
    rootfs::build(&args.source, false)?;
    let env = Env {
        dir: root().join("target/bench"),
        state: PathBuf::from("/run/boxr-bench"),
        boxr: bins.join("boxr"),
        init: bins.join("boxr-init"),
        rootfs: root().join("target/rootfs"),
    };
    for dir in [&env.dir, &env.state] {
        remove_dir_if_exists(dir)?;
    }
    write_configs(&env)?;
    let machine = machine()?;
    let cgroups = hide_unified_hierarchy()?;

    let mut doc = String::new();
    let _ = writeln!(doc, "# Benchmarks\n");
    let _ = writeln!(
        doc,
        "Generated by `cargo xtask bench` on {}. Absolute numbers move with the machine's load; \
         compare the ratios, which come from one interleaved run.\n",
        machine.date
    );
    let _ = writeln!(doc, "- Machine: {}", machine.description);
    let _ = writeln!(doc, "- Load average at the start: {}", machine.load);
    let _ = writeln!(doc, "- Versions: {}", versions());
    let _ = writeln!(doc, "- cgroups: {cgroups}");
    let _ = writeln!(
        doc,
        "- Every container gets pid, mount, uts, ipc and net namespaces over the busybox rootfs \
         (`target/rootfs`). `boxr run` uses the rootfs directory itself (`copy_on_write = \
         false`), as runc and crun do; `(overlay)` is boxr's default copy-on-write overlay. \
         runc and crun run OCI bundles with boxr's default security profile (the same mounts, \
         docker's default capabilities, no_new_privileges, runc's masked and read-only paths, \
         docker's device rules and default seccomp profile). bwrap and the floor set up none \
         of it. The runtimes keep their state on a tmpfs (`/run/boxr-bench`), as their defaults do; boxr's storage is on \
         disk (`target/bench`), as `/var/lib/boxr` is.\n"
    );

    let usable = check_runtimes(&env);
    let failures: Vec<String> = usable
        .iter()
        .filter_map(|(rt, r)| r.as_ref().err().map(|e| format!("- {} failed: {e}", rt.name())))
        .collect();
    if !failures.is_empty() {
        let _ = writeln!(doc, "{}\n", failures.join("\n"));
    }
    let working: Vec<Runtime> =
        usable.iter().filter(|(_, r)| r.is_ok()).map(|(rt, _)| *rt).collect();

    doc.push_str(&latency(&env, &working, args.rounds)?);
    doc.push_str(&throughput(&env, &working, args.containers)?);
    doc.push_str(&footprint(&env));
    doc.push_str(&scale(&env, args.scale)?);

    println!("{doc}");
    if !args.no_write {
        let path = root().join("docs/benchmarks.md");
        fs::write(&path, &doc).with_context(|| format!("cannot write {}", path.display()))?;
        step(&format!("wrote {}", path.display()));
    }
    remove_dir_if_exists(&env.state)?;
    remove_dir_if_exists(&env.dir)
}

/// The boxr configs and OCI bundles the runtimes run.
fn write_configs(env: &Env) -> Result<()> {
    fs::create_dir_all(&env.dir).with_context(|| format!("cannot create {}", env.dir.display()))?;
    let rootfs = serde_json::to_string(&env.rootfs.to_string_lossy())?;
    for (file, cow) in [("boxr.toml", false), ("boxr-overlay.toml", true)] {
        let config = format!(
            "rootfs = {rootfs}\ncopy_on_write = {cow}\n\n[process]\nargs = [\"/bin/true\"]\n\
             env = [\"PATH=/usr/sbin:/usr/bin:/sbin:/bin\"]\n"
        );
        write(&env.dir.join(file), &config)?;
    }
    for (bundle, args) in
        [("oci-true", vec!["/bin/true"]), ("oci-sleep", vec!["/bin/sleep", SLEEP])]
    {
        let dir = env.dir.join(bundle);
        fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let spec = serde_json::to_string_pretty(&oci_spec(&env.rootfs, &args)?)?;
        write(&dir.join("config.json"), &spec)?;
    }
    Ok(())
}

/// An OCI runtime spec with what boxr gives a container by default: the namespaces and mounts,
/// docker's default capabilities, `noNewPrivileges`, runc's masked and read-only paths, docker's
/// device rules and docker's default seccomp profile (boxr's `default.json`, its `includes` and
/// `excludes` resolved for those capabilities, as docker does before it hands a spec to runc).
fn oci_spec(rootfs: &Path, args: &[&str]) -> Result<serde_json::Value> {
    let mount = |destination: &str, kind: &str, options: &[&str]| json!({ "destination": destination, "type": kind, "source": kind, "options": options });
    let caps: Vec<String> =
        security::DEFAULT_CAPABILITIES.iter().map(|c| format!("CAP_{c}")).collect();
    let mut devices = vec![json!({ "allow": false, "access": "rwm" })];
    for rule in devices::v1_allow_rules() {
        // "c MAJOR:MINOR ACCESS", `*` for any.
        let fields: Vec<&str> = rule.split([' ', ':']).collect();
        let mut device = json!({ "allow": true, "type": fields[0], "access": fields[3] });
        for (key, number) in [("major", fields[1]), ("minor", fields[2])] {
            if let Ok(n) = number.parse::<i64>() {
                device[key] = json!(n);
            }
        }
        devices.push(device);
    }
    Ok(json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": { "uid": 0, "gid": 0 },
            "args": args,
            "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],
            "cwd": "/",
            "noNewPrivileges": true,
            "capabilities": {
                "bounding": caps, "effective": caps, "permitted": caps
            }
        },
        "root": { "path": rootfs, "readonly": false },
        "hostname": "bench",
        "mounts": [
            mount("/proc", "proc", &["nosuid", "noexec", "nodev"]),
            mount("/dev", "tmpfs", &["nosuid", "strictatime", "mode=755", "size=65536k"]),
            mount("/dev/pts", "devpts", &["nosuid", "noexec", "newinstance", "ptmxmode=0666"]),
            mount("/dev/shm", "tmpfs", &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]),
            mount("/dev/mqueue", "mqueue", &["nosuid", "noexec", "nodev"]),
            mount("/sys", "sysfs", &["nosuid", "noexec", "nodev", "ro"])
        ],
        "linux": {
            "namespaces": [
                { "type": "pid" }, { "type": "network" }, { "type": "ipc" },
                { "type": "uts" }, { "type": "mount" }
            ],
            "maskedPaths": config::DEFAULT_MASKED_PATHS,
            "readonlyPaths": config::DEFAULT_READONLY_PATHS,
            "resources": { "devices": devices },
            "seccomp": oci_seccomp(&caps)?
        }
    }))
}

/// boxr's default seccomp profile as an OCI `linux.seccomp` for a workload with `caps`: the
/// entries docker's rules select for x86_64 and those capabilities, without `includes` and
/// `excludes`.
fn oci_seccomp(caps: &[String]) -> Result<serde_json::Value> {
    let profile: serde_json::Value =
        serde_json::from_str(include_str!("../../boxr-cli/src/seccomp/default.json"))?;
    let names = |v: &serde_json::Value, key: &str| -> Vec<String> {
        v.get(key)
            .and_then(|list| list.as_array())
            .map(|list| list.iter().filter_map(|s| s.as_str().map(String::from)).collect())
            .unwrap_or_default()
    };
    let ours = |arches: &[String]| arches.iter().any(|a| a == "amd64" || a == "x86_64");
    let mut syscalls = Vec::new();
    for entry in profile["syscalls"].as_array().context("default.json has no syscalls")? {
        let (inc, exc) = (&entry["includes"], &entry["excludes"]);
        let excluded =
            names(exc, "caps").iter().any(|c| caps.contains(c)) || ours(&names(exc, "arches"));
        let inc_arches = names(inc, "arches");
        let included = names(inc, "caps").iter().all(|c| caps.contains(c))
            && (inc_arches.is_empty() || ours(&inc_arches));
        if excluded || !included {
            continue;
        }
        let mut entry = entry.clone();
        let fields = entry.as_object_mut().context("a syscalls entry is not an object")?;
        for key in ["includes", "excludes", "comment"] {
            fields.remove(key);
        }
        syscalls.push(entry);
    }
    Ok(json!({
        "defaultAction": profile["defaultAction"],
        "defaultErrnoRet": profile["defaultErrnoRet"],
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": syscalls
    }))
}

fn write(path: &Path, contents: &str) -> Result<()> {
    fs::write(path, contents).with_context(|| format!("cannot write {}", path.display()))
}

struct Machine {
    date: String,
    description: String,
    load: String,
}

fn machine() -> Result<Machine> {
    let read = |path: &str| fs::read_to_string(path).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name")?.split_once(':').map(|(_, v)| v.trim()))
        .unwrap_or("unknown CPU");
    let cpus = thread::available_parallelism().map_or(1, |n| n.get());
    let mem_kb: u64 = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:")?.trim().strip_suffix("kB")?.trim().parse().ok())
        .unwrap_or(0);
    let os = read("/etc/os-release")
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME=").map(|v| v.trim_matches('"').to_owned()))
        .unwrap_or_else(|| "unknown OS".into());
    Ok(Machine {
        date: boxr_cli::time::Timestamp::now().date(),
        description: format!(
            "{cpu}, {cpus} CPUs, {:.0} GiB RAM; Linux {}; {os}",
            mem_kb as f64 / 1_048_576.0,
            read("/proc/sys/kernel/osrelease").trim()
        ),
        load: read("/proc/loadavg").split_whitespace().take(3).collect::<Vec<_>>().join(" "),
    })
}

/// What `PROGRAM --version` prints first, per program; boxr's from git.
fn versions() -> String {
    let first_line = |cmd: &mut Command| {
        cmd.stdin(Stdio::null()).stderr(Stdio::null());
        cmd.output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.lines().next().map(str::to_owned))
            .unwrap_or_else(|| "unknown".into())
    };
    let git = first_line(
        Command::new("git").args(["describe", "--always", "--dirty"]).current_dir(root()),
    );
    let mut all = vec![format!("boxr: `{git}`")];
    for program in ["runc", "crun", "bwrap", "tini-static", "catatonit"] {
        let version = first_line(Command::new(program).arg("--version"));
        all.push(format!("{program}: `{version}`"));
    }
    all.join(", ")
}

/// On a hybrid cgroup host, moves this process into a private mount namespace without the
/// unified hierarchy (crun refuses hybrid hosts whose unified hierarchy has controllers).
/// Returns a description of the cgroup layout the runtimes see.
fn hide_unified_hierarchy() -> Result<String> {
    let info = fs::read_to_string("/proc/self/mountinfo").context("cannot read mountinfo")?;
    let mount = |point: &str, fstype: &str| {
        info.lines().any(|l| {
            let (left, right) = l.split_once(" - ").unwrap_or_default();
            left.split(' ').nth(4) == Some(point) && right.split(' ').next() == Some(fstype)
        })
    };
    if mount("/sys/fs/cgroup", "cgroup2") {
        return Ok("v2".into());
    }
    if !mount("/sys/fs/cgroup/unified", "cgroup2") {
        return Ok("v1".into());
    }
    // SAFETY: only a new mount namespace (no CLONE_FILES); this process has no other threads.
    unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWNS) }
        .context("cannot create a private mount namespace")?;
    use rustix::mount::{MountPropagationFlags as Prop, UnmountFlags, mount_change, unmount};
    mount_change("/", Prop::PRIVATE | Prop::REC).context("cannot make / private")?;
    unmount("/sys/fs/cgroup/unified", UnmountFlags::DETACH)
        .context("cannot unmount /sys/fs/cgroup/unified")?;
    Ok("hybrid host (v1 controllers + unified); the runs see only the v1 hierarchies: they \
        happen in a private mount namespace without /sys/fs/cgroup/unified, because crun refuses \
        a hybrid layout whose unified hierarchy has controllers"
        .into())
}

/// Runs each runtime once, to leave out (and report) those that do not work here.
fn check_runtimes(env: &Env) -> Vec<(Runtime, Result<(), String>)> {
    RUNTIMES
        .iter()
        .map(|&rt| {
            let mut cmd = rt.command(env, 0, Workload::True);
            cmd.stdin(Stdio::null()).stdout(Stdio::null());
            let result = match cmd.output() {
                Ok(out) if out.status.success() => Ok(()),
                Ok(out) => {
                    let stderr = String::from_utf8_lossy(&out.stderr);
                    let last = stderr.lines().last().unwrap_or_default().to_owned();
                    Err(format!("{} ({last})", out.status))
                }
                Err(err) => Err(err.to_string()),
            };
            (rt, result)
        })
        .collect()
}

#[derive(Clone, Copy)]
struct Sample {
    wall: Duration,
    cpu: Duration,
}

/// user+sys time of all reaped children of this process so far.
fn children_cpu() -> Duration {
    // SAFETY: getrusage only writes the rusage struct it is given.
    let usage = unsafe {
        let mut usage = std::mem::zeroed::<libc::rusage>();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec.unsigned_abs())
            + Duration::from_micros(t.tv_usec.unsigned_abs())
    };
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// Runs `cmd` to completion, its output discarded; fails unless it succeeds.
fn run_quiet(mut cmd: Command) -> Result<()> {
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    let status = cmd.status().with_context(|| format!("cannot start {}", crate::show(&cmd)))?;
    ensure!(status.success(), "{} failed ({status})", crate::show(&cmd));
    Ok(())
}

/// Runs `cmd` like [`run_quiet`] and measures it (no other child may finish meanwhile).
fn measure(cmd: Command) -> Result<Sample> {
    let cpu = children_cpu();
    let start = Instant::now();
    run_quiet(cmd)?;
    let wall = start.elapsed();
    Ok(Sample { wall, cpu: children_cpu().saturating_sub(cpu) })
}

fn latency(env: &Env, runtimes: &[Runtime], rounds: usize) -> Result<String> {
    step(&format!("latency: {rounds} interleaved rounds of {} runtimes", runtimes.len()));
    let mut samples: BTreeMap<usize, Vec<Sample>> = BTreeMap::new();
    for round in 0..WARMUP_ROUNDS + rounds {
        // Rotate the order so that no runtime always follows the same one.
        for k in 0..runtimes.len() {
            let i = (round + k) % runtimes.len();
            let sample = measure(runtimes[i].command(env, round, Workload::True))?;
            if round >= WARMUP_ROUNDS {
                samples.entry(i).or_default().push(sample);
            }
        }
    }
    let stats = |i: usize| {
        let s = &samples[&i];
        let wall: Vec<_> = s.iter().map(|s| s.wall).collect();
        let cpu: Vec<_> = s.iter().map(|s| s.cpu).collect();
        let min = wall.iter().min().copied().unwrap_or_default();
        (median(&wall).unwrap_or_default(), min, median(&cpu).unwrap_or_default())
    };
    let base = |rt: Runtime| runtimes.iter().position(|&r| r == rt).map(stats);
    let crun = base(Runtime::Crun);
    let floor = base(Runtime::Floor);
    let vs =
        |value: Duration, base: Option<Duration>| base.map_or("–".into(), |b| ratio(value, b));
    let rows: Vec<Vec<String>> = (0..runtimes.len())
        .map(|i| {
            let (wall, min, cpu) = stats(i);
            vec![
                runtimes[i].name().to_owned(),
                ms(wall),
                ms(min),
                ms(cpu),
                vs(wall, crun.map(|c| c.0)),
                vs(wall, floor.map(|f| f.0)),
                vs(cpu, crun.map(|c| c.2)),
                vs(cpu, floor.map(|f| f.2)),
            ]
        })
        .collect();
    let header = [
        ("runtime", Align::Left),
        ("median ms", Align::Right),
        ("min ms", Align::Right),
        ("CPU ms", Align::Right),
        ("÷ crun", Align::Right),
        ("÷ floor", Align::Right),
        ("CPU ÷ crun", Align::Right),
        ("CPU ÷ floor", Align::Right),
    ];
    Ok(format!(
        "## Start-to-exit latency of `/bin/true`\n\n{rounds} interleaved rounds (each runs every \
         runtime once, in rotating order) after {WARMUP_ROUNDS} warm-up rounds. CPU is the \
         median user+sys time of the runtime and everything it started. Ratios are of medians; \
         the floor is `unshare --fork --pid --mount --uts --ipc --net --mount-proc chroot \
         ROOTFS /bin/true`.\n\n{}\n",
        table(&header, &rows)
    ))
}

fn throughput(env: &Env, runtimes: &[Runtime], containers: usize) -> Result<String> {
    step(&format!(
        "throughput: {containers} containers per runtime, sequential and {PARALLEL} at a time"
    ));
    let mut rows = Vec::new();
    for &rt in runtimes {
        let start = Instant::now();
        for n in 0..containers {
            run_quiet(rt.command(env, n, Workload::True))?;
        }
        let sequential = start.elapsed();
        let parallel = run_parallel(env, rt, containers)?;
        let rate = |d: Duration| format!("{:.0}", containers as f64 / d.as_secs_f64());
        rows.push(vec![
            rt.name().to_owned(),
            format!("{:.2}", sequential.as_secs_f64()),
            rate(sequential),
            format!("{:.2}", parallel.as_secs_f64()),
            rate(parallel),
        ]);
    }
    let header = [
        ("runtime", Align::Left),
        ("sequential s", Align::Right),
        ("containers/s", Align::Right),
        (&*format!("{PARALLEL} parallel s"), Align::Right),
        ("containers/s", Align::Right),
    ];
    Ok(format!(
        "## Throughput: {containers} containers running `/bin/true`\n\n{}\n",
        table(&header, &rows)
    ))
}

/// Runs `containers` containers of `rt`, [`PARALLEL`] at a time; returns the wall time.
fn run_parallel(env: &Env, rt: Runtime, containers: usize) -> Result<Duration> {
    let next = AtomicUsize::new(0);
    let errors = Mutex::new(Vec::new());
    let start = Instant::now();
    thread::scope(|s| {
        for _ in 0..PARALLEL {
            s.spawn(|| {
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= containers {
                        break;
                    }
                    // Ids apart from the sequential run's, for runc and crun.
                    if let Err(err) = run_quiet(rt.command(env, containers + n, Workload::True)) {
                        errors.lock().expect("no panics while locked").push(err);
                    }
                }
            });
        }
    });
    let elapsed = start.elapsed();
    if let Some(err) = errors.into_inner().expect("no panics while locked").into_iter().next() {
        return Err(err.context(format!("{} in parallel", rt.name())));
    }
    Ok(elapsed)
}

/// One process in /proc.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Proc {
    pid: u32,
    ppid: u32,
    comm: String,
}

/// Parses `/proc/PID/stat`: `pid (comm) state ppid ...`.
fn parse_stat(line: &str) -> Option<Proc> {
    let (pid, rest) = line.split_once(" (")?;
    let (comm, rest) = rest.rsplit_once(") ")?;
    let ppid = rest.split_whitespace().nth(1)?.parse().ok()?;
    Some(Proc { pid: pid.trim().parse().ok()?, ppid, comm: comm.to_owned() })
}

fn processes() -> Vec<Proc> {
    let Ok(dir) = fs::read_dir("/proc") else { return Vec::new() };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| parse_stat(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?))
        .collect()
}

/// The descendants of `pid` in `procs`, parents before children.
fn descendants(procs: &[Proc], pid: u32) -> Vec<&Proc> {
    let mut found: Vec<&Proc> = Vec::new();
    let mut frontier = vec![pid];
    while let Some(parent) = frontier.pop() {
        for p in procs.iter().filter(|p| p.ppid == parent) {
            found.push(p);
            frontier.push(p.pid);
        }
    }
    found
}

/// A `kB` field (`VmRSS`, `VmHWM`) of `/proc/PID/status`.
fn status_kb(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|l| {
        l.strip_prefix(field)?.strip_prefix(':')?.trim().strip_suffix("kB")?.trim().parse().ok()
    })
}

fn process_kb(pid: u32, field: &str) -> Option<u64> {
    status_kb(&fs::read_to_string(format!("/proc/{pid}/status")).ok()?, field)
}

/// Starts `cmd` and waits until one of its descendants runs `sleep`; returns the child and the
/// process list at that moment.
fn start_sleeping(mut cmd: Command) -> Result<(Child, Vec<Proc>)> {
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    let mut child = cmd.spawn().with_context(|| format!("cannot start {}", crate::show(&cmd)))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let procs = processes();
        if descendants(&procs, child.id()).iter().any(|p| p.comm == "sleep") {
            return Ok((child, procs));
        }
        if Instant::now() > deadline || child.try_wait().ok().flatten().is_some() {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{} did not start its sleeping workload", crate::show(&cmd));
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// SIGKILLs the sleeping workload (and so ends the container) and reaps `child`.
fn stop_sleeping(mut child: Child) {
    for p in descendants(&processes(), child.id()) {
        if p.comm == "sleep"
            && let Some(pid) = rustix::process::Pid::from_raw(p.pid as i32)
        {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(5));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Runs `cmd` (a container whose workload sleeps) until the workload runs; returns the RSS of
/// its PID 1 named `init` (if given) and the peak RSS of `cmd`'s own process, in kB. A runtime
/// that fails here is reported and measured as nothing.
fn sleeping_rss(cmd: Command, init: Option<&str>) -> (Option<u64>, Option<u64>) {
    let (child, procs) = match start_sleeping(cmd) {
        Ok(started) => started,
        Err(err) => {
            step(&format!("warning: {err:#}"));
            return (None, None);
        }
    };
    let pid1 = init
        .and_then(|comm| descendants(&procs, child.id()).into_iter().find(|p| p.comm == comm))
        .and_then(|p| process_kb(p.pid, "VmRSS"));
    let frontend = process_kb(child.id(), "VmHWM");
    stop_sleeping(child);
    (pid1, frontend)
}

fn footprint(env: &Env) -> String {
    step("footprint: sizes and resident memory");
    let which = |program: &str| crate::which(program).unwrap_or_else(|| program.into());
    let file_info = |path: &Path| -> (String, String) {
        let bytes = fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        let is_static =
            fs::File::open(path).map(|f| boxr_cli::elf::check_static(&f).is_ok()).unwrap_or(false);
        (size(bytes), if is_static { "yes" } else { "no" }.into())
    };
    let kb = |v: Option<u64>| v.map_or("–".into(), |kb| format!("{kb} kB"));

    let (init_rss, boxr_peak) =
        sleeping_rss(Runtime::Boxr.command(env, 0, Workload::Sleep), Some("boxr-init"));
    let in_pid_ns = |program: &Path, args: &[&str]| {
        let mut cmd = Command::new("unshare");
        cmd.args(["--fork", "--pid"]).arg(program).args(args).args(["/bin/sleep", SLEEP]);
        cmd
    };
    let tini = which("tini-static");
    let (tini_rss, _) = sleeping_rss(in_pid_ns(&tini, &["--"]), Some("tini-static"));
    let catatonit = which("catatonit");
    let (catatonit_rss, _) = sleeping_rss(in_pid_ns(&catatonit, &["--"]), Some("catatonit"));
    let (_, runc_peak) = sleeping_rss(Runtime::Runc.command(env, 0, Workload::Sleep), None);
    let (_, crun_peak) = sleeping_rss(Runtime::Crun.command(env, 0, Workload::Sleep), None);

    let mut rows = Vec::new();
    for (name, path, role, rss) in [
        ("boxr-init", env.init.clone(), "PID 1 (VmRSS)", init_rss),
        ("tini-static", tini, "PID 1 (VmRSS)", tini_rss),
        ("catatonit", catatonit, "PID 1 (VmRSS)", catatonit_rss),
        ("boxr", env.boxr.clone(), "frontend (peak RSS)", boxr_peak),
        ("runc", which("runc"), "frontend (peak RSS)", runc_peak),
        ("crun", which("crun"), "frontend (peak RSS)", crun_peak),
    ] {
        let (bytes, is_static) = file_info(&path);
        rows.push(vec![name.into(), bytes, is_static, role.into(), kb(rss)]);
    }
    let header = [
        ("binary", Align::Left),
        ("size", Align::Right),
        ("static", Align::Left),
        ("role", Align::Left),
        ("RSS", Align::Right),
    ];
    format!(
        "## Footprint\n\nThe PID 1 RSS is measured while the workload (`sleep`) runs in a PID \
         namespace (tini and catatonit under `unshare --fork --pid`); the frontends' peak RSS \
         (VmHWM) during a foreground run of the same workload. boxr and boxr-init are release \
         builds (boxr-init is stripped by its profile).\n\n{}\n",
        table(&header, &rows)
    )
}

/// Whether `boxr --help` lists a `ps` command (detached containers exist).
fn lists_ps(help: &str) -> bool {
    help.lines().any(|l| l.split_whitespace().next() == Some("ps") && l.starts_with("  "))
}

fn scale(env: &Env, count: usize) -> Result<String> {
    let heading = format!("## Scale: {count} detached containers\n\n");
    if count == 0 {
        return Ok(format!("{heading}skipped (`--scale 0`)\n"));
    }
    let help = output(Command::new(&env.boxr).arg("--help"))?;
    if !lists_ps(&help) {
        step("scale: skipped (boxr has no detached containers)");
        return Ok(format!(
            "{heading}skipped: needs detached containers (`boxr run -d`, `boxr ps`)\n"
        ));
    }
    step(&format!("scale: starting {count} detached containers"));
    let mut started = Started { env, ids: Vec::new() };
    let mut latencies = Vec::new();
    for n in 0..count {
        let mut cmd = boxr(env, "run");
        cmd.arg("--detach").arg("--config").arg(env.dir.join("boxr.toml"));
        cmd.args(["--", "/bin/sleep", SLEEP]);
        let start = Instant::now();
        let id = output(&mut cmd).with_context(|| format!("starting container {n}"))?;
        latencies.push(start.elapsed());
        started.ids.push(id.trim().to_owned());
    }
    let mut ps = Vec::new();
    for _ in 0..5 {
        let mut cmd = boxr(env, "ps");
        let start = Instant::now();
        let listing = output(&mut cmd)?;
        ps.push(start.elapsed());
        let lines = listing.lines().count().saturating_sub(1);
        ensure!(lines >= count, "boxr ps listed {lines} containers, expected {count}");
    }
    let first = median(&latencies[..10.min(count)]).unwrap_or_default();
    let last = median(&latencies[count.saturating_sub(10)..]).unwrap_or_default();
    let rows = vec![
        vec!["start latency, first 10 (median)".into(), ms(first)],
        vec!["start latency, last 10 (median)".into(), ms(last)],
        vec![
            format!("`boxr ps` with {count} running (median of 5)"),
            ms(median(&ps).unwrap_or_default()),
        ],
    ];
    let header = [("measurement", Align::Left), ("ms", Align::Right)];
    Ok(format!(
        "{heading}`boxr run --detach` of `sleep`, one after another, on the rootfs directory.\n\n{}",
        table(&header, &rows)
    ))
}

/// Detached containers, removed (`boxr rm --force`) when dropped.
struct Started<'a> {
    env: &'a Env,
    ids: Vec<String>,
}

impl Drop for Started<'_> {
    fn drop(&mut self) {
        for chunk in self.ids.chunks(50) {
            let mut cmd = boxr(self.env, "rm");
            cmd.arg("--force").args(chunk).stdout(Stdio::null());
            let _ = cmd.status();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_stat_and_status() {
        let stat = "4242 (boxr-init) S 4241 4242 100 0 -1 4194560 93 0 0 0 0 0";
        assert_eq!(
            parse_stat(stat),
            Some(Proc { pid: 4242, ppid: 4241, comm: "boxr-init".into() })
        );
        let odd = "7 (a) b (c)) R 1 7 7";
        assert_eq!(parse_stat(odd), Some(Proc { pid: 7, ppid: 1, comm: "a) b (c)".into() }));
        let status = "Name:\tboxr-init\nVmHWM:\t     28 kB\nVmRSS:\t      24 kB\n";
        assert_eq!(status_kb(status, "VmRSS"), Some(24));
        assert_eq!(status_kb(status, "VmHWM"), Some(28));
        assert_eq!(status_kb(status, "VmSwap"), None);
    }

    #[test]
    fn finds_descendants() {
        let p = |pid, ppid, comm: &str| Proc { pid, ppid, comm: comm.into() };
        let procs = [p(10, 1, "boxr"), p(11, 10, "boxr-init"), p(12, 11, "sleep"), p(13, 1, "x")];
        let names: Vec<_> = descendants(&procs, 10).iter().map(|p| p.comm.as_str()).collect();
        assert_eq!(names, ["boxr-init", "sleep"]);
        assert!(descendants(&procs, 12).is_empty());
    }

    #[test]
    fn detects_the_ps_command() {
        let with = "Commands:\n  run      Run a container\n  ps       List containers\n";
        assert!(lists_ps(with));
        assert!(!lists_ps("Commands:\n  run      Run a container\n  help  Print ps help\n"));
    }

    #[test]
    fn oci_spec_has_boxrs_namespaces_mounts_and_security_profile() {
        let spec = oci_spec(Path::new("/r"), &["/bin/true"]).unwrap();
        assert_eq!(spec["root"]["path"], "/r");
        assert_eq!(spec["process"]["args"][0], "/bin/true");
        let namespaces: Vec<_> =
            spec["linux"]["namespaces"].as_array().unwrap().iter().map(|n| &n["type"]).collect();
        assert_eq!(namespaces, ["pid", "network", "ipc", "uts", "mount"]);
        let mounts: Vec<_> =
            spec["mounts"].as_array().unwrap().iter().map(|m| &m["destination"]).collect();
        assert_eq!(mounts, ["/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys"]);
        let process = &spec["process"];
        assert_eq!(process["noNewPrivileges"], true);
        assert_eq!(process["capabilities"]["bounding"].as_array().unwrap().len(), 14);
        assert_eq!(spec["linux"]["maskedPaths"][1], "/proc/kcore");
        let devices = spec["linux"]["resources"]["devices"].as_array().unwrap();
        assert_eq!(devices[0], json!({ "allow": false, "access": "rwm" }));
        assert!(devices.contains(
            &json!({ "allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm" })
        ));
        assert!(devices.contains(&json!({ "allow": true, "type": "c", "access": "m" })));
        // Resolved for the default capabilities: mount needs CAP_SYS_ADMIN, chroot is allowed.
        let seccomp = &spec["linux"]["seccomp"];
        let named = |name: &str| {
            seccomp["syscalls"].as_array().unwrap().iter().any(|e| {
                e["action"] == "SCMP_ACT_ALLOW"
                    && e["names"].as_array().unwrap().iter().any(|n| n == name)
            })
        };
        assert!(named("read") && named("chroot") && !named("mount"));
        assert!(
            seccomp["syscalls"].as_array().unwrap().iter().all(|e| e.get("includes").is_none())
        );
    }
}
