//! `aemp bench`: the performance numbers of SPEC §5. `local` and `ports` measure this
//! process; `remote`, `rtt` and `connect` measure the network between this process and a
//! child `aemp bench serve` it starts on 127.0.0.1.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Subcommand;

mod child;
mod connect;
mod flood;
mod remote;
mod rtt;
mod serve;

/// A framing the network benchmarks can use.
#[derive(Clone, Copy, Debug, Eq, PartialEq, clap::ValueEnum)]
pub(crate) enum FramingArg {
    /// Concatenated CBOR data items (aemp's binary framing).
    Cbor,
    /// Concatenated JSON texts (what Perl nodes speak).
    Json,
}

impl FramingArg {
    fn framing(self) -> aemp_proto::framing::Framing {
        match self {
            Self::Cbor => aemp_proto::framing::Framing::Cbor,
            Self::Json => aemp_proto::framing::Framing::Json,
        }
    }

    fn name(self) -> &'static str {
        self.framing().name()
    }
}

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
    /// One-way throughput between two processes on 127.0.0.1: this process sends
    /// `--messages` messages `[payload]` of `--size` payload bytes to a sink port in a child
    /// process, then `["done", reply]`; the sink answers with its count, which must match.
    /// Reports the time from the first send to the answer.
    ///
    /// Example: `aemp bench remote --framing cbor --size 1024 --json`
    Remote {
        /// The framing both nodes speak.
        #[arg(long, value_enum, default_value_t = FramingArg::Cbor)]
        framing: FramingArg,
        /// Payload bytes per message (a string of this many bytes).
        #[arg(long, default_value_t = 16)]
        size: usize,
        /// Messages to send [default: 2000000 for sizes up to 16 bytes, 500000 above].
        #[arg(long)]
        messages: Option<u64>,
        /// Flow control: at most this many messages in flight (the sink acknowledges every
        /// half window). 0: none, the sender queues as fast as it can.
        #[arg(long, default_value_t = 0)]
        window: u64,
    },
    /// Round-trip time between two processes on 127.0.0.1: ping-pong with an echo port in a
    /// child process, driven from a port callback, and in the same run (in alternating
    /// blocks) a raw TCP ping-pong of the same payload with the same child, for comparison.
    ///
    /// Example: `aemp bench rtt --size 16 --rounds 20000 --json`
    Rtt {
        /// Payload bytes per ping (a string of this many bytes).
        #[arg(long, default_value_t = 16)]
        size: usize,
        /// Measured round trips (after a warm-up of a tenth as many, at least 100).
        #[arg(long, default_value_t = 10_000)]
        rounds: u64,
    },
    /// Connection setup to a child process on 127.0.0.1: TCP connect, greeting and
    /// authentication (no TLS), each round from a fresh client node.
    ///
    /// Example: `aemp bench connect --rounds 500 --json`
    Connect {
        /// Measured connections (after a warm-up of a tenth as many, at least 5).
        #[arg(long, default_value_t = 200)]
        rounds: u64,
    },
    /// Memory of a sender flooding a stopped peer: a child process is stopped (SIGSTOP) and
    /// sent 1 KiB messages as fast as possible; the send queue to it must overflow at
    /// `--max-queue` (its monitor fires) and this process's peak resident size stay near it.
    ///
    /// Example: `aemp bench flood --seconds 5 --json`
    Flood {
        /// How long to flood.
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
        /// The sender's `max_queue`, in bytes.
        #[arg(long, default_value_t = 64 << 20)]
        max_queue: usize,
    },
    /// The child side of the network benchmarks (started by them, not by hand).
    #[command(hide = true)]
    Serve {
        /// The framing the node offers.
        #[arg(long, value_enum, default_value_t = FramingArg::Cbor)]
        framing: FramingArg,
    },
}

/// Runs the chosen benchmark and prints its result.
pub(crate) fn run(args: &Args) -> Result<()> {
    match args.which {
        Which::Remote {
            framing,
            size,
            messages,
            window,
        } => return remote::run(framing, size, messages, window, args.json),
        Which::Rtt { size, rounds } => return rtt::run(size, rounds, args.json),
        Which::Connect { rounds } => return connect::run(rounds, args.json),
        Which::Flood { seconds, max_queue } => return flood::run(seconds, max_queue, args.json),
        Which::Serve { framing } => return serve::run(framing),
        Which::Ports { ports } if std::env::var_os(PORTS_CHILD).is_none() => {
            if ports == 0 {
                bail!("--ports must be positive");
            }
            return ports_in_child();
        }
        Which::Local { .. } | Which::Ports { .. } => {}
    }
    let runtime = super::runtime(None)?;
    runtime.block_on(async {
        match args.which {
            Which::Local {
                messages,
                per_run,
                runs,
            } => local(messages, per_run, runs, args.json).await,
            Which::Ports { ports } => ports_bench(ports, args.json).await,
            // Handled above, before this runtime exists.
            Which::Remote { .. }
            | Which::Rtt { .. }
            | Which::Connect { .. }
            | Which::Flood { .. }
            | Which::Serve { .. } => Ok(()),
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

/// Set in the environment of the process that measures `bench ports`.
const PORTS_CHILD: &str = "AEMP_BENCH_PORTS_CHILD";

/// Runs `bench ports` again in a child process whose allocator returns freed memory to the
/// kernel at once (`MIMALLOC_PURGE_DELAY=0`; the aemp binary uses mimalloc, see `alloc.rs`).
/// Otherwise the resident size includes the port table's old copies, freed when it doubled
/// but kept mapped until allocator activity purges them, and a node at rest would not hold
/// them. The child's output is this command's output.
fn ports_in_child() -> Result<()> {
    let exe = std::env::current_exe().context("finding the aemp executable")?;
    let status = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env(PORTS_CHILD, "1")
        .env("MIMALLOC_PURGE_DELAY", "0")
        .status()
        .context("starting the measuring process")?;
    if !status.success() {
        // It said why on stderr already.
        std::process::exit(status.code().unwrap_or(1));
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

/// The `q`-quantile (0 ≤ q ≤ 1) of sorted, non-empty samples (nearest rank).
fn quantile(sorted: &[Duration], q: f64) -> Duration {
    let last = sorted.len().saturating_sub(1);
    let i = ((sorted.len() as f64 * q).ceil() as usize)
        .saturating_sub(1)
        .min(last);
    sorted.get(i).copied().unwrap_or_default()
}

/// `x` rounded to `digits` decimal places.
fn round_to(x: f64, digits: i32) -> f64 {
    let scale = 10_f64.powi(digits);
    (x * scale).round() / scale
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
