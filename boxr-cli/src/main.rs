//! `boxr`: the command line. Parsing and dispatch only; the work is in the library.

use anyhow::Result;
use boxr_cli::config::{self, Overrides};
use boxr_cli::exec::ExecOptions;
use boxr_cli::run::{Dirs, RunOptions};
use boxr_cli::state::{Store, default_root};
use boxr_cli::storage::default_storage;
use boxr_cli::supervise::EXIT_BOXR_ERROR;
use boxr_cli::{exec, lifecycle, logs, network, ps, run, stats};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(name = "boxr", version, about = "Run Linux containers from TOML configs")]
struct Cli {
    /// Where container state lives [default: /run/boxr; for another user than root
    /// $XDG_RUNTIME_DIR/boxr]
    #[arg(long, global = true, value_name = "DIR", env = "BOXR_ROOT")]
    root: Option<PathBuf>,
    /// Where containers' writable layers and logs live [default: /var/lib/boxr; for another
    /// user than root ~/.local/share/boxr]
    #[arg(long, global = true, value_name = "DIR", env = "BOXR_STORAGE")]
    storage: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a container: in the foreground with the workload's exit status, or detached (-d).
    Run(Box<RunArgs>),
    /// List containers.
    Ps {
        /// Include exited containers.
        #[arg(short, long)]
        all: bool,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Print a detached container's output.
    Logs {
        /// Keep printing new output until the container exits.
        #[arg(short, long)]
        follow: bool,
        /// Only the last N lines.
        #[arg(long, value_name = "N")]
        tail: Option<usize>,
        container: String,
    },
    /// Run a command in a running container.
    Exec {
        /// Keep stdin open (otherwise the command reads /dev/null).
        #[arg(short, long)]
        interactive: bool,
        /// Give the command a terminal (from the container's devpts).
        #[arg(short, long)]
        tty: bool,
        /// Set an environment variable (KEY=VALUE) on top of the container's.
        #[arg(short, long = "env", value_name = "KEY=VALUE")]
        env: Vec<String>,
        /// The working directory inside the container (default: the container's).
        #[arg(short = 'w', long = "workdir", value_name = "DIR")]
        workdir: Option<String>,
        container: String,
        /// The command and its arguments.
        #[arg(last = true, required = true, value_name = "CMD")]
        command: Vec<String>,
    },
    /// Stop containers: SIGTERM, then SIGKILL after a grace period.
    Stop {
        /// Seconds to wait before SIGKILL.
        #[arg(short, long, value_name = "SECS", default_value_t = 10)]
        time: u64,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Send a signal to containers.
    Kill {
        /// The signal, by name (TERM, SIGKILL) or number.
        #[arg(short, long, default_value = "KILL")]
        signal: String,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Remove containers: their state, logs and writable layer.
    Rm {
        /// Kill running containers first.
        #[arg(short, long)]
        force: bool,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Print containers' state as JSON.
    Inspect {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Show containers' memory, CPU and pids use (all running ones if none are named).
    Stats {
        /// Print one sample and exit.
        #[arg(long)]
        no_stream: bool,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
        containers: Vec<String>,
    },
    /// Bridge networks.
    Network {
        #[command(subcommand)]
        command: NetworkCommand,
    },
}

#[derive(Subcommand)]
enum NetworkCommand {
    /// List the bridge networks and their containers' addresses and ports (releasing first what
    /// containers that are gone still hold).
    Ls,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Format {
    Table,
    Json,
}

#[derive(clap::Args)]
struct RunArgs {
    /// The container config (TOML; see docs/config.md).
    #[arg(short, long, value_name = "FILE")]
    config: PathBuf,
    /// Run in the background and print the container's id.
    #[arg(short, long)]
    detach: bool,
    /// Keep stdin attached: with -t, what you type reaches the container's terminal.
    #[arg(short, long)]
    interactive: bool,
    /// Give the workload a terminal of its own, relayed to yours (not with -d).
    #[arg(short, long)]
    tty: bool,
    /// Remove the container when it exits.
    #[arg(long)]
    rm: bool,
    /// A name for the container (default: a generated one).
    #[arg(long)]
    name: Option<String>,
    /// Set an environment variable in the container (KEY=VALUE, or KEY to pass boxr's own).
    #[arg(short, long = "env", value_name = "KEY=VALUE")]
    env: Vec<String>,
    /// Set the container's hostname (needs the "uts" namespace).
    #[arg(long, value_name = "NAME")]
    hostname: Option<String>,
    /// The network mode: none, host or bridge (replaces the config's).
    #[arg(long, value_name = "MODE")]
    network: Option<String>,
    /// Publish a container port on the host (bridge mode), e.g. 8080:80 or 127.0.0.1:8080:80/udp.
    #[arg(short, long, value_name = "[IP:]HOST_PORT:CONTAINER_PORT[/PROTO]")]
    publish: Vec<String>,
    #[command(flatten)]
    resources: ResourceArgs,
    /// The command to run instead of the config's process.args.
    #[arg(last = true, value_name = "CMD")]
    command: Vec<String>,
}

/// Resource limits, as docker names them; they replace the config's `[resources]` values.
#[derive(clap::Args)]
struct ResourceArgs {
    /// Memory limit (bytes, or with a k, m or g suffix).
    #[arg(long, value_name = "SIZE")]
    memory: Option<String>,
    /// Memory plus swap limit (-1: unlimited swap).
    #[arg(long, value_name = "SIZE", allow_hyphen_values = true)]
    memory_swap: Option<String>,
    /// CPUs the container may use, fractional (0.5: half a CPU).
    #[arg(long, value_name = "N")]
    cpus: Option<String>,
    /// Relative CPU share (cgroup v1 shares, 2 to 262144; converted on v2).
    #[arg(long, value_name = "N")]
    cpu_shares: Option<String>,
    /// CPUs the container may run on, e.g. 0-1,3.
    #[arg(long, value_name = "LIST")]
    cpuset_cpus: Option<String>,
    /// The most processes and threads the container may have.
    #[arg(long, value_name = "N")]
    pids_limit: Option<String>,
}

impl From<ResourceArgs> for config::ResourceFlags {
    fn from(r: ResourceArgs) -> Self {
        config::ResourceFlags {
            memory: r.memory,
            memory_swap: r.memory_swap,
            cpus: r.cpus,
            cpu_shares: r.cpu_shares,
            cpuset_cpus: r.cpuset_cpus,
            pids_limit: r.pids_limit,
        }
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_BOXR_ERROR as u8 } else { 0 });
        }
    };
    match dispatch(cli) {
        // Exit statuses are 0..=255; the workload's comes through as it is.
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            eprintln!("boxr: {e:#}");
            ExitCode::from(EXIT_BOXR_ERROR as u8)
        }
    }
}

fn dispatch(cli: Cli) -> Result<i32> {
    let dirs = Dirs {
        root: cli.root.unwrap_or_else(default_root),
        storage: match cli.storage {
            Some(dir) => dir,
            None => default_storage()?,
        },
    };
    let store = || Store::open(&dirs.root);
    match cli.command {
        Command::Run(args) => {
            let overrides = Overrides {
                args: args.command,
                env: args.env,
                hostname: args.hostname,
                resources: args.resources.into(),
                network: args.network,
                publish: args.publish,
            };
            let config = config::load(&args.config, &overrides)?;
            let opts = RunOptions {
                name: args.name,
                detach: args.detach,
                remove: args.rm,
                interactive: args.interactive,
                tty: args.tty,
            };
            run::run(&dirs, &config, &opts)
        }
        Command::Ps { all, format } => {
            ps::ps(&store()?, all, matches!(format, Format::Json)).map(|()| 0)
        }
        Command::Logs { follow, tail, container } => {
            let store = store()?;
            let state = store.find(&container)?;
            logs::logs(&store, &state, follow, tail).map(|()| 0)
        }
        Command::Exec { interactive, tty, env, workdir, container, command } => {
            let store = store()?;
            let state = store.find(&container)?;
            exec::exec(
                &store,
                &state,
                &ExecOptions { env, cwd: workdir, interactive, tty, command },
            )
        }
        Command::Stop { time, containers } => for_each(&store()?, &containers, |store, state| {
            lifecycle::stop(store, state, Duration::from_secs(time)).map(|_| ())
        }),
        Command::Kill { signal, containers } => {
            let signal = lifecycle::parse_signal(&signal)?;
            for_each(&store()?, &containers, |store, state| lifecycle::kill(store, state, signal))
        }
        Command::Rm { force, containers } => {
            for_each(&store()?, &containers, |store, state| lifecycle::remove(store, state, force))
        }
        Command::Inspect { containers } => ps::inspect(&store()?, &containers).map(|()| 0),
        Command::Stats { no_stream, format, containers } => {
            stats::stats(&store()?, &containers, no_stream, matches!(format, Format::Json))
                .map(|()| 0)
        }
        Command::Network { command: NetworkCommand::Ls } => network::ls(&store()?).map(|()| 0),
    }
}

/// Applies `action` to each named container, printing each name done (as docker does) and each
/// failure; the status is 1 if any failed.
fn for_each(
    store: &Store,
    names: &[String],
    action: impl Fn(&Store, &boxr_cli::state::ContainerState) -> Result<()>,
) -> Result<i32> {
    let mut failed = false;
    for name in names {
        match store.find(name).and_then(|state| action(store, &state)) {
            Ok(()) => println!("{name}"),
            Err(e) => {
                eprintln!("boxr: {e:#}");
                failed = true;
            }
        }
    }
    Ok(i32::from(failed))
}
