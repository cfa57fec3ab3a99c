//! `aemp bench rtt`: round-trip time between two processes, aemp against raw TCP.

use std::time::{Duration, Instant};

use aemp::{Message, Node, Value};
use anyhow::{Context, Result, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::child::Served;
use super::{FramingArg, json_number, quantile, round_to};

/// How long one round trip may take before the benchmark gives up.
const ROUND_LIMIT: Duration = Duration::from_secs(10);

/// Runs the benchmark against a fresh child and prints the result.
pub(super) fn run(size: usize, rounds: u64, json: bool) -> Result<()> {
    if rounds == 0 {
        bail!("--rounds must be positive");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let served = Served::start(FramingArg::Cbor)?;
    let (mut aemp_rtts, mut tcp_rtts) = runtime.block_on(measure(&served, size, rounds))?;
    drop(served);
    aemp_rtts.sort();
    tcp_rtts.sort();
    let us = |d: Duration| round_to(d.as_secs_f64() * 1e6, 1);
    let p50 = us(quantile(&aemp_rtts, 0.50));
    let p99 = us(quantile(&aemp_rtts, 0.99));
    let raw_p50 = us(quantile(&tcp_rtts, 0.50));
    let ratio = round_to(p50 / raw_p50, 2);
    if json {
        // Field order is part of the output contract, so the line is written by hand.
        println!(
            "{{\"bench\":\"rtt\",\"size\":{size},\"p50_us\":{},\"p99_us\":{},\"raw_tcp_p50_us\":{},\"ratio_p50\":{}}}",
            json_number(p50),
            json_number(p99),
            json_number(raw_p50),
            json_number(ratio)
        );
    } else {
        println!("round trip, two processes on 127.0.0.1, {rounds} rounds × {size} B, cbor");
        println!("  aemp p50       {p50:.1} µs");
        println!("  aemp p99       {p99:.1} µs");
        println!("  raw TCP p50    {raw_p50:.1} µs");
        println!("  ratio p50      {ratio:.2}");
    }
    Ok(())
}

/// Ping-pongs with the child's echo port and its TCP echo listener, rounds interleaved so
/// both see the same machine load. Returns the aemp and the raw TCP round-trip times.
async fn measure(
    served: &Served,
    size: usize,
    rounds: u64,
) -> Result<(Vec<Duration>, Vec<Duration>)> {
    let node = Node::builder()
        .id("anon/")
        .secret(served.secret.clone())
        .framings(vec![FramingArg::Cbor.framing()])
        .start()?;
    let peer = node
        .connect(served.addr)
        .await
        .with_context(|| format!("connecting to the benchmark child at {}", served.addr))?;
    let mut tcp = tokio::net::TcpStream::connect(served.tcp)
        .await
        .with_context(|| format!("connecting to the child's TCP echo at {}", served.tcp))?;
    tcp.set_nodelay(true)?;

    let mut inbox = node.mailbox();
    let ping = Message::from([Value::from(inbox.port()), Value::String("x".repeat(size))]);
    let raw = vec![b'x'; size];
    let mut echoed = vec![0_u8; size];
    let warmup = (rounds / 10).max(100);
    let mut aemp_rtts = Vec::with_capacity(rounds as usize);
    let mut tcp_rtts = Vec::with_capacity(rounds as usize);
    for round in 0..warmup + rounds {
        let start = Instant::now();
        node.send(&served.echo, ping.clone());
        let pong = inbox
            .recv_timeout(ROUND_LIMIT)
            .await
            .context("no answer from the benchmark child's echo port")?;
        let aemp_rtt = start.elapsed();
        if pong.len() != 1 || pong.first().and_then(Value::as_str).map(str::len) != Some(size) {
            bail!("the echo port answered {pong}");
        }

        let start = Instant::now();
        tokio::time::timeout(ROUND_LIMIT, async {
            tcp.write_all(&raw).await?;
            tcp.read_exact(&mut echoed).await
        })
        .await
        .context("no answer from the benchmark child's TCP echo")?
        .context("TCP echo")?;
        let tcp_rtt = start.elapsed();

        if round >= warmup {
            aemp_rtts.push(aemp_rtt);
            tcp_rtts.push(tcp_rtt);
        }
    }
    node.disconnect(&peer);
    node.shutdown();
    Ok((aemp_rtts, tcp_rtts))
}
