//! `aemp bench flood`: the memory of a sender that floods a stopped peer.
//!
//! Starts an `aemp bench serve` child, connects to it, stops it with SIGSTOP (its kernel
//! still takes what fits in the socket buffers, then nothing), and sends 1 KiB messages to
//! its sink as fast as it can for `--seconds`. The send queue to the child is capped at
//! `--max-queue`: the link must close with `send queue overflow`, reported to the sink's
//! monitor, and the sender's peak resident size must stay near that cap. Prints when the
//! monitor fired and the peak resident size of this process.

use std::time::{Duration, Instant};

use aemp::{Node, Reason, Value};
use anyhow::{Context, Result, bail};

use super::child::Served;
use super::{FramingArg, json_number, round_to};

/// Runs the benchmark and prints the result.
pub(super) fn run(seconds: f64, max_queue: usize, json: bool) -> Result<()> {
    let Ok(duration) = Duration::try_from_secs_f64(seconds) else {
        bail!("--seconds {seconds}: not a number of seconds");
    };
    if duration.is_zero() || max_queue == 0 {
        bail!("--seconds and --max-queue must be positive");
    }
    let runtime = crate::cmd::runtime(None)?;
    let served = Served::start(FramingArg::Cbor)?;
    let result = runtime.block_on(measure(&served, duration, max_queue));
    // The child must not stay stopped, whatever happened.
    let _ = super::child::signal(served.pid(), "CONT");
    drop(served);
    let r = result?;
    let fired = r.fired.map(|d| round_to(d.as_secs_f64(), 3));
    let peak = peak_resident_bytes()?;
    if json {
        println!(
            "{{\"bench\":\"flood\",\"max_queue\":{max_queue},\"seconds\":{},\"messages\":{},\"overflow_after_s\":{},\"reason\":{},\"peak_rss_bytes\":{peak}}}",
            json_number(duration.as_secs_f64()),
            r.sent,
            fired.map_or_else(|| "null".to_owned(), json_number),
            // A reason prints as a JSON array.
            r.reason.as_deref().unwrap_or("null"),
        );
    } else {
        println!(
            "flood of a stopped peer: 1 KiB messages for {seconds} s, max_queue {max_queue} B"
        );
        println!("  messages sent  {}", r.sent);
        match (fired, &r.reason) {
            (Some(s), Some(reason)) => println!("  monitor fired  after {s} s: {reason}"),
            _ => println!("  monitor fired  never"),
        }
        println!(
            "  peak RSS       {:.1} MiB",
            peak as f64 / f64::from(1 << 20)
        );
    }
    Ok(())
}

struct Flood {
    sent: u64,
    fired: Option<Duration>,
    reason: Option<String>,
}

async fn measure(served: &Served, duration: Duration, max_queue: usize) -> Result<Flood> {
    let node = Node::builder()
        .id("anon/")
        .secret(served.secret.clone())
        .max_queue(max_queue)
        .start()?;
    node.connect(served.addr)
        .await
        .with_context(|| format!("connecting to the benchmark child at {}", served.addr))?;
    let (tx, mut died) = tokio::sync::oneshot::channel::<Reason>();
    node.monitor(&served.sink, move |reason| drop(tx.send(reason)))
        .detach();
    // A round trip, so the child has the monitor before it stops.
    node.call(
        &aemp::PortId::node_port(served.node.clone()),
        aemp::msg!["info"],
        Some(Duration::from_secs(5)),
    )
    .await
    .context("the benchmark child does not answer")?;
    super::child::signal(served.pid(), "STOP")?;
    let payload = Value::from("p".repeat(1024));
    let start = Instant::now();
    let mut flood = Flood {
        sent: 0,
        fired: None,
        reason: None,
    };
    while start.elapsed() < duration {
        for _ in 0..1000 {
            node.send(&served.sink, aemp::Message::from([payload.clone()]));
        }
        flood.sent += 1000;
        if flood.fired.is_none()
            && let Ok(reason) = died.try_recv()
        {
            flood.fired = Some(start.elapsed());
            flood.reason = Some(reason.to_string());
        }
        tokio::task::yield_now().await;
    }
    node.shutdown_within(Duration::from_millis(100)).await;
    Ok(flood)
}

/// The peak resident size of this process (`VmHWM`).
fn peak_resident_bytes() -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")
        .context("reading /proc/self/status (the flood benchmark needs Linux)")?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmHWM in /proc/self/status")?;
    Ok(kib * 1024)
}
