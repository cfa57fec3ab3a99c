//! `aemp bench`: the performance numbers of SPEC §5, measured in this process.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Subcommand;

/// Arguments of `aemp bench`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    which: Which,
    /// Output format: a human table, or one JSON object per line.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum Which {
    /// Local send→callback throughput: one port's callback sends to another port's callback
    /// on the same node, `--per-run` sends per callback run.
    ///
    /// Example: `aemp bench local --messages 20000000`
    Local {
        /// Total messages (at least 10 M for a meaningful figure).
        #[arg(long, default_value_t = 10_000_000)]
        messages: u64,
        /// Sends per driver callback run.
        #[arg(long, default_value_t = 1000)]
        per_run: u64,
        /// Repeat the measurement and report the median.
        #[arg(long, default_value_t = 5)]
        runs: u32,
    },
    /// Idle callback ports: resident memory growth per port and creation rate.
    ///
    /// Example: `aemp bench ports --ports 1000000`
    Ports {
        /// How many idle ports to create.
        #[arg(long, default_value_t = 1_000_000)]
        ports: u64,
    },
}

/// Runs the chosen benchmark and prints its result.
pub(crate) fn run(args: &Args) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(async {
        match args.which {
            Which::Local {
                messages,
                per_run,
                runs,
            } => local(messages, per_run, runs, args.json).await,
            Which::Ports { ports } => ports_bench(ports, args.json).await,
        }
    })
}

async fn local(messages: u64, per_run: u64, runs: u32, json: bool) -> Result<()> {
    if messages == 0 || per_run == 0 || runs == 0 {
        bail!("--messages, --per-run and --runs must be positive");
    }
    let node = aemp::Node::builder().id("bench-local").start()?;
    // One short warm-up run so allocations and caches settle.
    aemp::bench::local_throughput(&node, messages.min(1_000_000), per_run).await;
    let mut times: Vec<Duration> = Vec::new();
    for _ in 0..runs {
        times.push(aemp::bench::local_throughput(&node, messages, per_run).await);
    }
    times.sort();
    let median = times[times.len() / 2].as_secs_f64();
    let rate = messages as f64 / median;
    if json {
        // Field order is part of the output contract, so the line is written by hand.
        println!(
            "{{\"bench\":\"local\",\"messages\":{messages},\"seconds\":{},\"msgs_per_sec\":{}}}",
            json_number(median),
            json_number(rate.round())
        );
    } else {
        println!("local send→callback, {messages} messages × {runs} runs (median)");
        println!("  seconds        {median:.4}");
        println!("  msgs/s         {:.2} M", rate / 1e6);
    }
    Ok(())
}

async fn ports_bench(ports: u64, json: bool) -> Result<()> {
    if ports == 0 {
        bail!("--ports must be positive");
    }
    let node = aemp::Node::builder().id("bench-ports").start()?;
    // Create and keep a few ports first so one-time allocations do not count.
    aemp::bench::create_idle_ports(&node, 1000).await;
    let before = resident_bytes()?;
    let elapsed = aemp::bench::create_idle_ports(&node, ports).await;
    let after = resident_bytes()?;
    let per_port = after.saturating_sub(before) as f64 / ports as f64;
    let rate = ports as f64 / elapsed.as_secs_f64();
    if json {
        println!(
            "{{\"bench\":\"ports\",\"ports\":{ports},\"bytes_per_port\":{},\"creates_per_sec\":{}}}",
            json_number(per_port.round()),
            json_number(rate.round())
        );
    } else {
        println!("idle callback ports: {ports}");
        println!("  bytes/port     {per_port:.0}");
        println!("  creates/s      {:.2} M", rate / 1e6);
    }
    Ok(())
}

/// A finite number as JSON (integral values without a fraction); non-finite as `null`.
fn json_number(x: f64) -> String {
    if !x.is_finite() {
        "null".to_owned()
    } else if x.fract() == 0.0 && x.abs() < 9.0e15 {
        format!("{x:.0}")
    } else {
        format!("{x}")
    }
}

/// Resident set size of this process, from `/proc/self/statm`.
fn resident_bytes() -> Result<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm")
        .context("reading /proc/self/statm (the ports benchmark needs Linux)")?;
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .context("unexpected /proc/self/statm format")?;
    Ok(pages * 4096)
}
