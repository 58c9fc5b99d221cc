//! `boxr`: the command line. Parsing and dispatch only; the work is in the library.

use boxr_cli::config::{self, Overrides};
use boxr_cli::run::{EXIT_BOXR_ERROR, run_foreground};
use boxr_cli::{plan, spawn};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "boxr", version, about = "Run Linux containers from TOML configs")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a container in the foreground and exit with its workload's status.
    Run(RunArgs),
}

#[derive(clap::Args)]
struct RunArgs {
    /// The container config (TOML; see docs/config.md).
    #[arg(short, long, value_name = "FILE")]
    config: PathBuf,
    /// Set an environment variable in the container (KEY=VALUE, or KEY to pass boxr's own).
    #[arg(short, long = "env", value_name = "KEY=VALUE")]
    env: Vec<String>,
    /// Set the container's hostname (needs the "uts" namespace).
    #[arg(long, value_name = "NAME")]
    hostname: Option<String>,
    /// The command to run instead of the config's process.args.
    #[arg(last = true, value_name = "CMD")]
    command: Vec<String>,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_BOXR_ERROR as u8 } else { 0 });
        }
    };
    let result = match cli.command {
        Command::Run(args) => run(args),
    };
    match result {
        // Exit statuses are 0..=255; the workload's comes through as it is.
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            eprintln!("boxr: {e:#}");
            ExitCode::from(EXIT_BOXR_ERROR as u8)
        }
    }
}

fn run(args: RunArgs) -> anyhow::Result<i32> {
    let overrides = Overrides { args: args.command, env: args.env, hostname: args.hostname };
    let config = config::load(&args.config, &overrides)?;
    let plan = plan::compile(&config, &plan::RootfsLayer::Bind);
    let init = spawn::InitBinary::locate()?;
    run_foreground(&init, &plan)
}
