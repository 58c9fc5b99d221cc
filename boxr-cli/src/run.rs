//! `boxr run`: register the container, prepare its storage, start it, and supervise it — in
//! the foreground, or from a detached monitor process that records its exit.

use crate::cgroups::{ContainerCgroup, Hierarchies};
use crate::config::{Config, Namespace};
use crate::plan::{self, Plan};
use crate::resources::human_size;
use crate::security::SecurityContext;
use crate::spawn::{self, Container, InitBinary};
use crate::state::{ContainerState, ProcessId, Status, Store};
use crate::supervise::{self, EXIT_BOXR_ERROR, Supervision};
use crate::time::Timestamp;
use crate::{errno::describe, lifecycle, network, ports, storage, tty};
use anyhow::{Context, Result, anyhow, bail};
use boxr_plan::flags;
use rustix::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

/// Where boxr keeps state (`--root`) and container storage (`--storage`).
pub struct Dirs {
    pub root: PathBuf,
    pub storage: PathBuf,
}

#[derive(Debug, Default)]
pub struct RunOptions {
    pub name: Option<String>,
    /// `-d`: start in the background and print the id.
    pub detach: bool,
    /// `--rm`: remove the container when it exits.
    pub remove: bool,
    /// `-i`: with `tty`, relay boxr's stdin to the terminal (without, the workload inherits
    /// boxr's stdin anyway).
    pub interactive: bool,
    /// `-t`: give the workload a terminal of its own, relayed to boxr's stdin and stdout.
    pub tty: bool,
}

/// Runs a container; returns the exit status for `boxr` (`-d`: 0 once it is running).
pub fn run(dirs: &Dirs, config: &Config, opts: &RunOptions) -> Result<i32> {
    if opts.detach && opts.tty {
        bail!("detached containers with a terminal are not supported; drop -t or -d");
    }
    let init = InitBinary::locate()?;
    // boxr run by another user than root (rootless) creates no cgroups: it cannot.
    let hierarchies = match rustix::process::geteuid().is_root() {
        true => Some(Hierarchies::detect()?),
        false => None,
    };
    let store = Store::open(&dirs.root)?;
    // Held while the container runs (by the monitor with -d); taken first, so a port in use
    // leaves nothing behind.
    let ports = network::reserve_ports(&config.network)?;
    // The cgroup is recorded before it is made, so that no failure or kill leaves it unknown.
    let created = store.create(opts.name.as_deref(), |id, name| {
        let cgroup =
            hierarchies.as_ref().map(|h| h.locate(&config.cgroup_parent, &id, &config.resources));
        new_state(id, name, cgroup, dirs, config, opts)
    })?;
    let id = created.id.clone();
    let mut registration = Registration { store: &store, id: &id, armed: true };
    let layer = storage::prepare(&created.storage, config)?;
    if let (Some(h), Some(cgroup)) = (&hierarchies, &created.cgroup) {
        h.create(cgroup, &config.resources)?;
    }
    let state = match network::allocate(&store, &created, &config.network)? {
        Some(attachment) => store.update(&id, |s| s.network = Some(attachment))?,
        None => created,
    };
    let generated = network::etc_binds(&state.storage, config, state.network.as_ref())?;
    let mut plan = plan::compile(config, &layer, &generated);
    if state.network.is_some()
        || state.cgroup.as_ref().is_some_and(ContainerCgroup::joined_after_clone)
    {
        plan.await_frontend();
    }
    if opts.tty {
        plan.init_flags |= flags::TTY;
    }
    if opts.detach {
        registration.armed = false;
        start_detached(&store, &state, &init, &plan, &ports)
    } else {
        run_foreground(&mut registration, &state, &init, &plan, opts.interactive)
    }
}

fn new_state(
    id: String,
    name: String,
    cgroup: Option<ContainerCgroup>,
    dirs: &Dirs,
    config: &Config,
    opts: &RunOptions,
) -> ContainerState {
    ContainerState {
        storage: dirs.storage.join(&id),
        cgroup,
        id,
        name,
        status: Status::Created,
        init: None,
        monitor: ProcessId::of(std::process::id() as i32),
        created: Timestamp::now(),
        started: None,
        finished: None,
        exit_code: None,
        oom_killed: false,
        error: None,
        config: std::path::absolute(&config.file).unwrap_or_else(|_| config.file.clone()),
        command: config.process.args.clone(),
        env: config.process.env.clone(),
        cwd: config.process.cwd.clone(),
        namespaces: config.namespaces.clone(),
        detached: opts.detach,
        auto_remove: opts.remove,
        network: None,
        id_maps: config.user_namespace.as_ref().map(|ns| ns.maps.clone()),
        security: Some(SecurityContext::new(
            &plan::process_context(config),
            &config.process.seccomp,
        )),
    }
}

/// A registered container whose start is under way: dropped while armed (the container never
/// ran), it removes the container's cgroup, storage and state again, leaving nothing behind.
struct Registration<'a> {
    store: &'a Store,
    id: &'a str,
    armed: bool,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        if self.armed
            && let Ok(state) = self.store.load(self.id)
        {
            let _ = lifecycle::destroy(self.store, &state);
        }
    }
}

/// Starts the container's init, moved into the container's cgroup and given its network while
/// it sets up, before its workload starts.
fn start(state: &ContainerState, init: &InitBinary, plan: &Plan) -> Result<Container> {
    let born_into = match &state.cgroup {
        Some(cgroup) => cgroup.open_for_clone()?,
        None => None,
    };
    spawn::spawn(init, plan, born_into.as_ref().map(AsFd::as_fd), |pid| {
        if let Some(cgroup) = state.cgroup.as_ref().filter(|_| born_into.is_none()) {
            cgroup.add(pid.as_raw_nonzero().get())?;
        }
        network::attach(state, pid)
    })
}

/// The init's reports, plus the OOM killer's verdict, one line each.
fn exit_messages(
    state: &ContainerState,
    code: i32,
    supervision: &Supervision<'_>,
    plan: &Plan,
    init: &InitBinary,
) -> Vec<String> {
    let mut messages = supervision.messages(plan, init);
    if let Some(cgroup) = state.cgroup.as_ref().filter(|c| c.oom_killed(code)) {
        let limit = cgroup.memory_limit().map_or_else(|| "none".to_string(), human_size);
        messages.push(format!("container killed: out of memory (limit {limit})"));
    }
    messages
}

fn mark_running(store: &Store, id: &str, container: &Container) -> Result<()> {
    let init = ProcessId::of(container.pid.as_raw_nonzero().get());
    store.update(id, |s| {
        s.status = Status::Running;
        s.init = init;
        s.started = Some(Timestamp::now());
    })?;
    Ok(())
}

/// Records the exit and releases the container's network, or removes the container if it was
/// started with `--rm`.
fn record_exit(
    store: &Store,
    state: &ContainerState,
    code: i32,
    messages: &[String],
) -> Result<()> {
    // With a PID namespace the kernel has killed everything in it once its init was gone.
    if let Some(cgroup) =
        state.cgroup.as_ref().filter(|_| !state.namespaces.contains(&Namespace::Pid))
    {
        cgroup.kill_all();
    }
    if state.auto_remove {
        return lifecycle::destroy(store, state);
    }
    let oom_killed = state.cgroup.as_ref().is_some_and(|c| c.oom_killed(code));
    // Released first, so that a container recorded as exited holds nothing; the exit is
    // recorded even if that failed (the next command's reconciliation retries).
    let released = network::release(store, &state.id);
    store.update(&state.id, |s| {
        s.status = Status::Exited;
        s.exit_code = Some(code);
        s.oom_killed = oom_killed;
        s.finished = Some(Timestamp::now());
        s.error = (!messages.is_empty()).then(|| messages.join("; "));
        if released.is_ok() {
            s.network = None;
        }
    })?;
    released
}

fn run_foreground(
    registration: &mut Registration<'_>,
    state: &ContainerState,
    init: &InitBinary,
    plan: &Plan,
    interactive: bool,
) -> Result<i32> {
    let store = registration.store;
    let signals = supervise::block_forwarded_signals()?;
    let mut container = start(state, init, plan)?;
    mark_running(store, &state.id, &container)?;
    registration.armed = false;
    let terminal = tty::attach(&mut container, interactive)?;
    let mut supervision = Supervision::new(&mut container, Some(&signals)).with_terminal(terminal);
    let code = supervision.until_exit()?;
    let messages = exit_messages(state, code, &supervision, plan, init);
    for message in &messages {
        eprintln!("boxr: {message}");
    }
    record_exit(store, state, code, &messages)?;
    Ok(code)
}

/// Forks the monitor that starts and supervises the container, and waits for its word: the
/// container runs (print its id) or it failed to start (print why, return its status).
fn start_detached(
    store: &Store,
    state: &ContainerState,
    init: &InitBinary,
    plan: &Plan,
    ports: &ports::Reservation,
) -> Result<i32> {
    let log_path = storage::log_path(&state.storage);
    let log =
        OpenOptions::new().create(true).append(true).mode(0o640).open(&log_path).map_err(|e| {
            anyhow!("cannot create the log {}: {}", log_path.display(), describe(&e))
        })?;
    let (from_monitor, to_parent) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(|e| anyhow!("cannot create a pipe: {}", describe(&e.into())))?;
    // SAFETY: boxr is single-threaded, so the child may go on running Rust code after fork.
    match unsafe { libc::fork() } {
        -1 => bail!(
            "cannot fork the container's monitor: {}",
            describe(&std::io::Error::last_os_error())
        ),
        0 => {
            drop(from_monitor);
            let code = match monitor(store, state, init, plan, ports, log, to_parent) {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("boxr: monitor of container {}: {e:#}", state.name);
                    1
                }
            };
            std::process::exit(code)
        }
        _ => {}
    }
    drop(to_parent);
    let mut word = String::new();
    File::from(from_monitor)
        .read_to_string(&mut word)
        .context("cannot read the monitor's report")?;
    match word.split_once('\n') {
        Some(("0", _)) => {
            println!("{}", state.id);
            Ok(0)
        }
        Some((code, messages)) => {
            for message in messages.lines() {
                eprintln!("boxr: {message}");
            }
            Ok(code.parse().unwrap_or(EXIT_BOXR_ERROR))
        }
        None => bail!(
            "the monitor of container {} exited before the container started; see {}",
            state.name,
            log_path.display()
        ),
    }
}

/// Closes every fd above stderr but those in `keep`: the monitor outlives its caller and must
/// not hold what the caller left open (a `$(boxr run -d …)` would wait on its stdout forever).
fn close_fds_except(keep: &[RawFd]) {
    let mut keep = keep.to_vec();
    keep.sort_unstable();
    let mut from = 3;
    for fd in keep.into_iter().chain([RawFd::MAX]) {
        if fd > from {
            // SAFETY: closes fds no Rust object of the monitor owns: everything it still uses
            // is in `keep`.
            unsafe { libc::syscall(libc::SYS_close_range, from as u32, (fd - 1) as u32, 0) };
        }
        from = from.max(fd.saturating_add(1));
    }
}

/// The detached monitor: a session of its own, stdio on the log, the container as its child,
/// holding its published ports.
/// Tells the parent on `to_parent` "0\n" once the workload runs, or "CODE\nMESSAGES" if it
/// did not start; then waits for the exit and records it.
fn monitor(
    store: &Store,
    state: &ContainerState,
    init: &InitBinary,
    plan: &Plan,
    ports: &ports::Reservation,
    log: File,
    to_parent: OwnedFd,
) -> Result<()> {
    let mut to_parent = File::from(to_parent);
    rustix::process::setsid()
        .map_err(|e| anyhow!("cannot start a session: {}", describe(&e.into())))?;
    let null =
        File::open("/dev/null").map_err(|e| anyhow!("cannot open /dev/null: {}", describe(&e)))?;
    for (fd, target) in [(null.as_fd(), 0), (log.as_fd(), 1), (log.as_fd(), 2)] {
        // SAFETY: dup2 onto the standard fds, which this process owns; no Rust object owns them.
        if unsafe { libc::dup2(fd.as_raw_fd(), target) } < 0 {
            bail!(
                "cannot redirect the monitor's stdio: {}",
                describe(&std::io::Error::last_os_error())
            );
        }
    }
    drop((null, log));
    let mut keep = vec![to_parent.as_raw_fd(), init.fd().as_raw_fd()];
    keep.extend(ports.fds());
    close_fds_except(&keep);
    store.update(&state.id, |s| s.monitor = ProcessId::of(std::process::id() as i32))?;
    let mut container = match start(state, init, plan) {
        Ok(container) => container,
        Err(e) => {
            let message = format!("{e:#}");
            record_exit(store, state, EXIT_BOXR_ERROR, std::slice::from_ref(&message))?;
            write!(to_parent, "{EXIT_BOXR_ERROR}\n{message}")?;
            return Ok(());
        }
    };
    mark_running(store, &state.id, &container)?;
    let mut supervision = Supervision::new(&mut container, None);
    if supervision.until_started()? {
        writeln!(to_parent, "0")?;
        drop(to_parent);
        let code = supervision.until_exit()?;
        return record_exit(
            store,
            state,
            code,
            &exit_messages(state, code, &supervision, plan, init),
        );
    }
    let code = supervision.until_exit()?;
    let messages = exit_messages(state, code, &supervision, plan, init);
    record_exit(store, state, code, &messages)?;
    write!(to_parent, "{code}\n{}", messages.join("\n"))?;
    Ok(())
}
