//! `cargo xtask vm-test`: the integration tests inside a small VM, as root on a pure cgroup-v2
//! kernel, whoever runs the task and whatever the host's cgroup layout.
//!
//! 1. The test binaries and `boxr` are built statically (`+crt-static`, explicit `--target`) into
//!    `target/vm-build`, with `boxr-init` beside `boxr`: they run in the guest as they are.
//! 2. The kernel is Debian's, fetched and cached by [`kernel`], or `--kernel IMAGE`.
//! 3. An initramfs ([`cpio`]) holds busybox, the modules, the init ([`INIT`]), the host tools
//!    of [`GUEST_TOOLS`] with their shared libraries, and the list of test binaries. The host's
//!    workspace is shared read-only over 9p and mounted at the same path (the tests have paths
//!    under it compiled in, and find `boxr` beside themselves); the busybox rootfs comes as an
//!    ext4 image (`mkfs.ext4 -d`) on a virtio disk, mounted over its `target/rootfs`: a local
//!    filesystem that supports idmapped mounts, which the kernel's tmpfs does only from 6.3.
//! 4. qemu runs it with KVM if `/dev/kvm` opens and a smoke boot succeeds, else with TCG. The
//!    guest's console is shown as it comes; its results arrive on a second serial port
//!    ([`results`]); it leaves through `isa-debug-exit`. The whole run has a timeout.

mod cpio;
mod kernel;
mod results;

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead as _, BufReader, BufWriter, Write as _};
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, ensure};
use serde_json::Value;

use crate::apt::{self, Tool};
use crate::{busybox, cargo, output, root, rootfs, show, step};

/// The guest's init: a busybox shell script.
const INIT: &str = include_str!("vm_test/init.sh");

const QEMU: &str = "qemu-system-x86_64";
/// Makes the rootfs image.
const MKFS: Tool = Tool { program: "mkfs.ext4", package: "e2fsprogs" };
/// The rootfs image's size (busybox takes 2 MB).
const ROOTFS_IMAGE_SIZE: &str = "64M";
/// Host programs the guest needs beyond busybox: those the tests run on the host.
const GUEST_TOOLS: &[Tool] = crate::test::TEST_TOOLS;
/// Host files those programs read, copied when the host has them (nft names protocols and
/// services with these; useradd reads its defaults, subordinate id ranges among them, from
/// login.defs).
const GUEST_FILES: &[&str] = &["/etc/protocols", "/etc/services", "/etc/login.defs"];
/// The static test binaries are built for this target (an explicit `--target` keeps
/// `+crt-static` away from build scripts and proc macros).
const TARGET: &str = "x86_64-unknown-linux-gnu";
/// How long a KVM smoke boot may take before KVM counts as not working.
const SMOKE_TIMEOUT: Duration = Duration::from_secs(10);
const MEMORY_MIB: u32 = 1024;
/// Where the guest's `isa-debug-exit` device listens; a write of N makes qemu exit 2N+1.
const DEBUG_EXIT: &str = "isa-debug-exit,iobase=0xf4,iosize=0x04";

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    source: busybox::Source,
    /// Boot this kernel image (a vmlinux with a PVH entry point, or a bzImage) instead of
    /// Debian's.
    #[arg(long, value_name = "IMAGE", env = "BOXR_VM_KERNEL")]
    kernel: Option<PathBuf>,
    /// The module tree (lib/modules/VERSION) of --kernel, for virtio, 9p, overlay, veth,
    /// bridge and nf_tables if they are modules.
    #[arg(long, value_name = "DIR", env = "BOXR_VM_MODULES", requires = "kernel")]
    modules: Option<PathBuf>,
    /// How qemu runs the guest; auto is KVM if /dev/kvm opens and a smoke boot succeeds.
    #[arg(long, value_enum, default_value_t = Accel::Auto)]
    accel: Accel,
    /// Run only this integration test binary (`tests/NAME.rs`); may be given more than once.
    #[arg(long = "test", value_name = "NAME")]
    tests: Vec<String>,
    /// Stop the VM and fail after this many seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 480)]
    timeout: u64,
    /// Arguments for every test binary, e.g. a test name filter or `--test-threads 1`.
    #[arg(last = true, value_name = "TEST_ARGS")]
    test_args: Vec<OsString>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, clap::ValueEnum)]
pub enum Accel {
    Auto,
    Kvm,
    Tcg,
}

/// The accelerator a VM runs with.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Engine {
    Kvm,
    Tcg,
}

impl Engine {
    fn name(self) -> &'static str {
        match self {
            Engine::Kvm => "KVM",
            Engine::Tcg => "TCG",
        }
    }
}

/// One qemu run's inputs.
struct Vm<'a> {
    image: &'a Path,
    initramfs: &'a Path,
    /// The busybox rootfs as an ext4 image, the guest's first disk.
    rootfs_image: &'a Path,
    share: &'a Path,
}

pub fn run(args: &Args) -> Result<ExitCode> {
    let started = Instant::now();
    ensure!(
        cfg!(target_arch = "x86_64"),
        "vm-test boots an x86-64 guest and builds x86-64 test binaries: run it on an x86-64 host"
    );
    for arg in &args.test_args {
        ensure!(!arg.as_bytes().contains(&b'\n'), "test arguments cannot contain newlines");
    }

    let qemu = Tool { program: QEMU, package: "qemu-system-x86" };
    apt::ensure_tools(&[&[qemu, MKFS], GUEST_TOOLS].concat())?;
    rootfs::build(&args.source, false)?;
    let vm_dir = root().join("target/vm");
    fs::create_dir_all(&vm_dir).with_context(|| format!("cannot create {}", vm_dir.display()))?;
    let rootfs_image = vm_dir.join("rootfs.ext4");
    write_rootfs_image(&root().join("target/rootfs"), &rootfs_image)?;
    let kernel = match &args.kernel {
        Some(image) => kernel::custom(image, args.modules.as_deref(), &vm_dir)?,
        None => kernel::debian(&vm_dir.join("kernel"))?,
    };
    let mut tests = build_static()?;
    if !args.tests.is_empty() {
        for wanted in &args.tests {
            ensure!(tests.iter().any(|(name, _)| name == wanted), "there is no tests/{wanted}.rs");
        }
        tests.retain(|(name, _)| args.tests.contains(name));
    }
    let initramfs = vm_dir.join("initramfs.cpio");
    write_initramfs(&initramfs, &kernel, &tests, &args.test_args)?;

    let vm = Vm {
        image: &kernel.image,
        initramfs: &initramfs,
        rootfs_image: &rootfs_image,
        share: root(),
    };
    let accel = choose_accel(args.accel, &vm, &vm_dir)?;
    let limit = Duration::from_secs(args.timeout);
    step(&format!(
        "booting {} with {} ({} test binaries, timeout {}s)",
        kernel.origin,
        accel.name(),
        tests.len(),
        limit.as_secs()
    ));
    let results_path = vm_dir.join("results.txt");
    let console_path = vm_dir.join("console.log");
    let status = boot_and_test(&vm, accel, limit, &results_path, &console_path)?;

    // Missing if qemu did not start: its own message is on stderr, the verdict follows.
    let text = fs::read(&results_path).unwrap_or_default();
    let report = results::parse(&String::from_utf8_lossy(&text));
    print!("{}", report.render());
    let counts = report.counts();
    let verdict = match status {
        None => Some(format!("the VM did not finish within {}s", limit.as_secs())),
        Some(status) => guest_verdict(status, counts.failed),
    };
    if let Some(problem) = &verdict {
        println!("FAILED  {problem} (console: {})", console_path.display());
    }
    let failed = counts.failed + usize::from(verdict.is_some() && counts.failed == 0);
    println!(
        "vm-test: {} passed, {failed} failed, {} ignored ({}, cgroup v2, {:.0}s)",
        counts.passed,
        counts.ignored,
        accel.name(),
        started.elapsed().as_secs_f64()
    );
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// What qemu's exit status says about the run beyond the failed tests, if anything is wrong.
fn guest_verdict(status: ExitStatus, failed_tests: usize) -> Option<String> {
    match status.code() {
        // isa-debug-exit with 0: every binary passed.
        Some(1) if failed_tests == 0 => None,
        Some(1) => Some("the guest reported success but the results show failures".into()),
        // isa-debug-exit with 1: some binary failed; the results say which.
        Some(3) if failed_tests > 0 => None,
        Some(3) => Some("the guest reported a failure that the results do not show".into()),
        Some(5) => Some("the guest could not mount the host's build output over 9p".into()),
        _ => Some(format!("the guest did not report its status (qemu {status})")),
    }
}

/// Builds the integration tests, boxr and boxr-init statically into `target/vm-build`;
/// returns the test binaries as (test name, path).
fn build_static() -> Result<Vec<(String, PathBuf)>> {
    let dir = root().join("target/vm-build");
    let static_build = |args: &[&str]| -> Result<Vec<Artifact>> {
        let mut cmd = cargo();
        cmd.args(args)
            .args(["--target", TARGET, "--message-format=json-render-diagnostics", "--target-dir"])
            .arg(&dir)
            .env("RUSTFLAGS", "-C target-feature=+crt-static")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .current_dir(root());
        step(&format!("building statically: {}", show(&cmd)));
        Ok(artifacts(&output(&mut cmd)?))
    };
    let tests: Vec<_> = static_build(&["test", "--package", "boxr-tests", "--tests", "--no-run"])?
        .into_iter()
        .filter(|a| a.kind == "test")
        .map(|a| (a.name, a.executable))
        .collect();
    ensure!(!tests.is_empty(), "cargo built no integration test binaries");
    let boxr = static_build(&["build", "--package", "boxr-cli", "--bin", "boxr"])?
        .into_iter()
        .find(|a| a.name == "boxr")
        .context("cargo reported no boxr executable")?
        .executable;

    // boxr-init is static by itself (its own workspace and link arguments).
    let init_dir = root().join("boxr-init");
    let mut cmd = cargo();
    cmd.arg("build")
        .arg("--manifest-path")
        .arg(init_dir.join("Cargo.toml"))
        .args(["--message-format=json-render-diagnostics", "--target-dir"])
        .arg(&dir)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .current_dir(&init_dir);
    step(&format!("building {}", show(&cmd)));
    let init = artifacts(&output(&mut cmd)?)
        .into_iter()
        .find(|a| a.name == "boxr-init")
        .context("cargo reported no boxr-init executable")?
        .executable;
    let beside = boxr.with_file_name("boxr-init");
    fs::copy(&init, &beside)
        .with_context(|| format!("cannot copy {} to {}", init.display(), beside.display()))?;

    for path in tests.iter().map(|(_, p)| p).chain([&boxr, &beside]) {
        let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        boxr_cli::elf::check_static(&file).map_err(|e| anyhow!("{} is {e}", path.display()))?;
        ensure!(path.starts_with(root()), "{} is outside the workspace", path.display());
    }
    Ok(tests)
}

/// An executable cargo reported building.
#[derive(Debug, PartialEq, Eq)]
struct Artifact {
    name: String,
    /// The target's first kind: `bin`, `test`, ...
    kind: String,
    executable: PathBuf,
}

/// The executables in cargo's `--message-format=json` output.
fn artifacts(messages: &str) -> Vec<Artifact> {
    messages
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact")
        .filter_map(|m| {
            Some(Artifact {
                name: m["target"]["name"].as_str()?.to_owned(),
                kind: m["target"]["kind"][0].as_str()?.to_owned(),
                executable: PathBuf::from(m["executable"].as_str()?),
            })
        })
        .collect()
}

/// Writes the guest's initramfs (see the module documentation).
fn write_initramfs(
    path: &Path,
    kernel: &kernel::Kernel,
    tests: &[(String, PathBuf)],
    test_args: &[OsString],
) -> Result<()> {
    step(&format!("writing {}", path.display()));
    let file = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut cpio = cpio::Writer::new(BufWriter::new(file));
    let rootfs = root().join("target/rootfs");
    cpio.file(Path::new("init"), 0o755, INIT.as_bytes())?;
    cpio.char_dev(Path::new("dev/console"), 0o600, 5, 1)?;
    let busybox =
        fs::read(rootfs.join("bin/busybox")).context("cannot read the rootfs' busybox")?;
    cpio.file(Path::new("bin/busybox"), 0o755, &busybox)?;

    for tool in GUEST_TOOLS {
        let program = crate::which(tool.program)
            .with_context(|| format!("{} is not installed", tool.program))?;
        let ldd = Command::new("ldd").arg(&program).stderr(Stdio::null()).output();
        // ldd fails on a static executable: it needs no libraries.
        let libraries = ldd.map(|o| shared_libraries(&String::from_utf8_lossy(&o.stdout)));
        for path in libraries.unwrap_or_default().iter().chain([&program]) {
            let data = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            // The host's mode: newuidmap and newgidmap are setuid root.
            let mode = fs::metadata(path).map_or(0o755, |m| m.permissions().mode() & 0o7777);
            cpio.file(path, mode, &data)?;
        }
    }
    for file in GUEST_FILES.iter().map(Path::new).filter(|f| f.is_file()) {
        let data = fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
        cpio.file(file, 0o644, &data)?;
    }

    let mut names = String::new();
    for module in &kernel.modules {
        let name = module.file_stem().context("a module without a name")?.to_string_lossy();
        let data = fs::read(module).with_context(|| format!("cannot read {}", module.display()))?;
        cpio.file(&Path::new("lib/modules").join(format!("{name}.ko")), 0o644, &data)?;
        names.push_str(&format!("{name}\n"));
    }
    cpio.file(Path::new("vm-test/modules"), 0o644, names.as_bytes())?;
    cpio.file(Path::new("vm-test/share"), 0o644, root().as_os_str().as_bytes())?;
    cpio.file(Path::new("vm-test/rootfs-at"), 0o644, rootfs.as_os_str().as_bytes())?;
    let mut list = Vec::new();
    for (name, binary) in tests {
        list.extend_from_slice(format!("{name} ").as_bytes());
        list.extend_from_slice(binary.as_os_str().as_bytes());
        list.push(b'\n');
    }
    cpio.file(Path::new("vm-test/tests"), 0o644, &list)?;
    let mut args = Vec::new();
    for arg in test_args {
        args.extend_from_slice(arg.as_bytes());
        args.push(b'\n');
    }
    cpio.file(Path::new("vm-test/args"), 0o644, &args)?;
    cpio.finish()?
        .into_inner()
        .map_err(|e| e.into_error())
        .context("cannot write the initramfs")?;
    Ok(())
}

/// Writes the busybox rootfs at `rootfs` into a fresh ext4 image at `image` (owners and modes
/// kept), which the guest mounts over its `target/rootfs`.
fn write_rootfs_image(rootfs: &Path, image: &Path) -> Result<()> {
    step(&format!("writing {}", image.display()));
    if image.exists() {
        fs::remove_file(image).with_context(|| format!("cannot remove {}", image.display()))?;
    }
    let status = Command::new(MKFS.program)
        .args(["-q", "-F", "-L", "boxr-rootfs", "-d"])
        .arg(rootfs)
        .arg(image)
        .arg(ROOTFS_IMAGE_SIZE)
        .status()
        .with_context(|| format!("cannot run {}", MKFS.program))?;
    ensure!(status.success(), "{} {} failed: {status}", MKFS.program, image.display());
    Ok(())
}

/// The shared libraries in `ldd` output (`libc.so.6 => /lib/.../libc.so.6 (0x...)`, and the
/// dynamic loader as `/lib64/ld-linux-x86-64.so.2 (0x...)`).
fn shared_libraries(ldd: &str) -> Vec<PathBuf> {
    ldd.lines()
        .filter_map(|line| {
            let line = line.trim();
            let path = line.split_once("=> ").map_or(line, |(_, p)| p);
            let path = path.split_whitespace().next()?;
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect()
}

/// The accelerator to run the tests with.
fn choose_accel(wanted: Accel, vm: &Vm, dir: &Path) -> Result<Engine> {
    match wanted {
        Accel::Kvm => return Ok(Engine::Kvm),
        Accel::Tcg => return Ok(Engine::Tcg),
        Accel::Auto => {}
    }
    if let Err(err) = OpenOptions::new().read(true).write(true).open("/dev/kvm") {
        step(&format!("using TCG: cannot open /dev/kvm ({err})"));
        return Ok(Engine::Tcg);
    }
    let log = dir.join("smoke.log");
    step(&format!("smoke-booting with KVM (at most {}s)", SMOKE_TIMEOUT.as_secs()));
    let console = File::create(&log).with_context(|| format!("cannot create {}", log.display()))?;
    let errors = console.try_clone().with_context(|| format!("cannot reopen {}", log.display()))?;
    let mut cmd = qemu(vm, Engine::Kvm, "boxr.smoke", None);
    cmd.stdin(Stdio::null()).stdout(console).stderr(errors);
    let mut child = cmd.spawn().with_context(|| format!("cannot start {}", show(&cmd)))?;
    let why = match wait_timeout(&mut child, SMOKE_TIMEOUT)? {
        Some(status) if status.code() == Some(1) => {
            step("KVM works");
            return Ok(Engine::Kvm);
        }
        Some(status) => format!("qemu exited with {status}"),
        None => format!("the guest did not come up within {}s", SMOKE_TIMEOUT.as_secs()),
    };
    step(&format!("using TCG: a KVM smoke boot failed: {why} (console: {})", log.display()));
    Ok(Engine::Tcg)
}

/// Boots the test run; returns qemu's exit status, or `None` if it hit `limit` and was killed.
fn boot_and_test(
    vm: &Vm,
    accel: Engine,
    limit: Duration,
    results: &Path,
    console: &Path,
) -> Result<Option<ExitStatus>> {
    let _ = fs::remove_file(results);
    let mut log =
        File::create(console).with_context(|| format!("cannot create {}", console.display()))?;
    let mut cmd = qemu(vm, accel, "", Some(results));
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::inherit());
    let mut child = cmd.spawn().with_context(|| format!("cannot start {}", show(&cmd)))?;
    let stdout = child.stdout.take().expect("piped stdout");
    let echo = thread::spawn(move || {
        for line in BufReader::new(stdout).split(b'\n').map_while(Result::ok) {
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches('\r');
            eprintln!("  vm| {line}");
            let _ = writeln!(log, "{line}");
        }
    });
    let status = wait_timeout(&mut child, limit)?;
    let _ = echo.join();
    Ok(status)
}

/// The qemu command for `vm`; `results` is the file behind the guest's second serial port.
fn qemu(vm: &Vm, accel: Engine, extra_cmdline: &str, results: Option<&Path>) -> Command {
    let cpus = thread::available_parallelism().map_or(1, |n| n.get()).min(4);
    let mut cmd = Command::new(QEMU);
    cmd.args(["-nodefaults", "-no-user-config", "-no-reboot", "-display", "none"]);
    cmd.args(["-machine", "pc", "-m", &MEMORY_MIB.to_string(), "-smp", &cpus.to_string()]);
    match accel {
        Engine::Kvm => cmd.args(["-accel", "kvm", "-cpu", "host"]),
        Engine::Tcg => cmd.args(["-accel", "tcg,thread=multi"]),
    };
    cmd.arg("-kernel").arg(vm.image).arg("-initrd").arg(vm.initramfs);
    cmd.arg("-append")
        .arg(format!("console=ttyS0 quiet panic=-1 cgroup_no_v1=all {extra_cmdline}").trim_end());
    cmd.args(["-chardev", "stdio,id=console,signal=off", "-serial", "chardev:console"]);
    match results {
        Some(path) => cmd.arg("-chardev").arg(format!("file,id=results,path={}", opt(path))),
        None => cmd.args(["-chardev", "null,id=results"]),
    };
    cmd.args(["-serial", "chardev:results", "-device", DEBUG_EXIT]);
    cmd.arg("-fsdev")
        .arg(format!("local,id=share,path={},security_model=none,readonly=on", opt(vm.share)));
    cmd.args(["-device", "virtio-9p-pci,fsdev=share,mount_tag=boxr"]);
    cmd.arg("-drive").arg(format!("file={},if=none,id=rootfs,format=raw", opt(vm.rootfs_image)));
    cmd.args(["-device", "virtio-blk-pci,drive=rootfs"]);
    // A network device, as hosts have one (user mode, no access to the host or beyond).
    cmd.args(["-netdev", "user,id=net,restrict=on", "-device", "virtio-net-pci,netdev=net"]);
    cmd
}

/// A path as a qemu option value (a `,` is written `,,`).
fn opt(path: &Path) -> String {
    path.to_string_lossy().replace(',', ",,")
}

/// Waits for `child` at most `limit`; kills it and returns `None` when the time is up.
fn wait_timeout(child: &mut Child, limit: Duration) -> Result<Option<ExitStatus>> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().context("cannot wait for qemu")? {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            child.wait().context("cannot wait for qemu")?;
            return Ok(None);
        }
        thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt as _;

    #[test]
    fn finds_test_binaries_in_cargo_messages() {
        let messages = r#"
{"reason":"compiler-artifact","target":{"name":"libc","kind":["lib"]},"executable":null}
{"reason":"compiler-artifact","target":{"name":"mounts","kind":["test"]},"profile":{"test":true},"executable":"/t/x86_64-unknown-linux-gnu/debug/deps/mounts-0123"}
{"reason":"compiler-artifact","target":{"name":"boxr","kind":["bin"]},"executable":"/t/x86_64-unknown-linux-gnu/debug/boxr"}
{"reason":"build-finished","success":true}
"#;
        assert_eq!(
            artifacts(messages),
            [
                Artifact {
                    name: "mounts".into(),
                    kind: "test".into(),
                    executable: "/t/x86_64-unknown-linux-gnu/debug/deps/mounts-0123".into(),
                },
                Artifact {
                    name: "boxr".into(),
                    kind: "bin".into(),
                    executable: "/t/x86_64-unknown-linux-gnu/debug/boxr".into(),
                },
            ]
        );
    }

    #[test]
    fn qemu_exit_statuses() {
        let exit = |code: i32| ExitStatus::from_raw(code << 8);
        assert_eq!(guest_verdict(exit(1), 0), None);
        assert_eq!(guest_verdict(exit(3), 2), None);
        assert!(guest_verdict(exit(1), 1).unwrap().contains("results show failures"));
        assert!(guest_verdict(exit(3), 0).is_some());
        assert!(guest_verdict(exit(5), 0).unwrap().contains("9p"));
        assert!(guest_verdict(exit(0), 0).unwrap().contains("did not report"));
    }

    #[test]
    fn shared_libraries_from_ldd() {
        let ldd = "\tlinux-vdso.so.1 (0x00007ffd)\n\
                   \tlibnftables.so.1 => /lib/x86_64-linux-gnu/libnftables.so.1 (0x00007f9e)\n\
                   \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f9e)\n\
                   \tlibmissing.so.2 => not found\n\
                   \t/lib64/ld-linux-x86-64.so.2 (0x00007f9e)\n";
        assert_eq!(
            shared_libraries(ldd),
            [
                "/lib/x86_64-linux-gnu/libnftables.so.1",
                "/lib/x86_64-linux-gnu/libc.so.6",
                "/lib64/ld-linux-x86-64.so.2"
            ]
            .map(PathBuf::from)
        );
        assert!(shared_libraries("\tnot a dynamic executable\n").is_empty());
    }

    #[test]
    fn option_values_escape_commas() {
        assert_eq!(opt(Path::new("/a,b/c")), "/a,,b/c");
    }
}
