//! The `aemp` command-line tool: benchmarks today; profiles, nodes and network commands as
//! the runtime grows. Argument parsing and output only — the work is done by the library.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod alloc;
mod cmd;

/// aemp — AnyEvent::MP for Rust.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Measure aemp's performance.
    ///
    /// Example: `aemp bench local --json`
    Bench(cmd::bench::Args),
    /// Show aemp working, with no setup: spawn, ping-pong with round-trip times, a monitor
    /// firing on a kill.
    ///
    /// Example: `aemp demo`
    Demo,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Bench(args) => cmd::bench::run(&args),
        Command::Demo => cmd::demo::run(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("aemp: {e:#}");
            ExitCode::FAILURE
        }
    }
}
