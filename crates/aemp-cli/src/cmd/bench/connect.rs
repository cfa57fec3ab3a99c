//! `aemp bench connect`: connection setup (TCP connect, greeting, authentication).

use std::time::{Duration, Instant};

use aemp::Node;
use anyhow::{Context, Result, bail};

use super::child::Served;
use super::{FramingArg, json_number, quantile, round_to};

/// Runs the benchmark against a fresh child and prints the result.
pub(super) fn run(rounds: u64, json: bool) -> Result<()> {
    if rounds == 0 {
        bail!("--rounds must be positive");
    }
    let runtime = crate::cmd::runtime(None)?;
    let served = Served::start(FramingArg::Cbor)?;
    let mut times = runtime.block_on(measure(&served, rounds))?;
    drop(served);
    times.sort();
    let ms = |d: Duration| round_to(d.as_secs_f64() * 1e3, 3);
    let p50 = ms(quantile(&times, 0.50));
    let p99 = ms(quantile(&times, 0.99));
    if json {
        // Field order is part of the output contract, so the line is written by hand.
        println!(
            "{{\"bench\":\"connect\",\"tls\":false,\"p50_ms\":{},\"p99_ms\":{}}}",
            json_number(p50),
            json_number(p99)
        );
    } else {
        println!("connect + authenticate, no TLS, 127.0.0.1, {rounds} fresh client nodes");
        println!("  p50            {p50:.3} ms");
        println!("  p99            {p99:.3} ms");
    }
    Ok(())
}

/// Connects a fresh client node per round; returns how long each `connect` took.
async fn measure(served: &Served, rounds: u64) -> Result<Vec<Duration>> {
    let warmup = (rounds / 10).max(5);
    let mut times = Vec::with_capacity(rounds as usize);
    for round in 0..warmup + rounds {
        // A new node ID each round, so the child never sees a node it already knows.
        let client = Node::builder()
            .id("anon/")
            .secret(served.secret.clone())
            .framings(vec![FramingArg::Cbor.framing()])
            .start()?;
        let start = Instant::now();
        let peer = client
            .connect(served.addr)
            .await
            .with_context(|| format!("connecting to the benchmark child at {}", served.addr))?;
        let elapsed = start.elapsed();
        if peer != served.node {
            bail!(
                "the benchmark child is {peer}, not the announced {}",
                served.node
            );
        }
        client.disconnect(&peer);
        client.shutdown();
        if round >= warmup {
            times.push(elapsed);
        }
    }
    Ok(times)
}
