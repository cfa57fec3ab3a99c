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
    let runtime = crate::cmd::runtime(None)?;
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

/// Ping-pongs with the child's echo port and its TCP echo listener, in alternating blocks
/// so both see the same machine load. Returns the aemp and the raw TCP round-trip times.
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

    let payload = Value::String("x".repeat(size));
    let warmup = (rounds / 10).max(100);
    aemp_block(&node, served, &payload, warmup).await?;
    tcp_block(&mut tcp, size, warmup).await?;
    let block = (rounds / BLOCKS).max(1);
    let mut aemp_rtts = Vec::with_capacity(rounds as usize);
    let mut tcp_rtts = Vec::with_capacity(rounds as usize);
    let mut done = 0;
    while done < rounds {
        let n = block.min(rounds - done);
        aemp_rtts.extend(aemp_block(&node, served, &payload, n).await?);
        tcp_rtts.extend(tcp_block(&mut tcp, size, n).await?);
        done += n;
    }
    node.disconnect(&peer);
    node.shutdown();
    Ok((aemp_rtts, tcp_rtts))
}

/// How many alternating aemp and raw TCP blocks the measured rounds are split into.
const BLOCKS: u64 = 20;

/// `rounds` ping-pongs with the echo port, driven from a port's callback as an aemp program
/// would be: each answer is timed and sends the next ping at once.
async fn aemp_block(
    node: &Node,
    served: &Served,
    payload: &Value,
    rounds: u64,
) -> Result<Vec<Duration>> {
    let (tx, rx) = tokio::sync::oneshot::channel::<Result<Vec<Duration>, String>>();
    let mut tx = Some(tx);
    let mut finish = move |result| {
        if let Some(tx) = tx.take() {
            let _ = tx.send(result);
        }
        true // done: the port dies
    };
    let mut rtts = Vec::with_capacity(rounds as usize);
    let mut start = Instant::now();
    let driver = node.clone();
    let echo = served.echo.clone();
    let payload = payload.clone();
    let size = payload.as_str().map_or(0, str::len);
    let pinger = node.port(move |msg: Message| {
        let Some(me) = aemp::self_port() else {
            return finish(Err("no port context".to_owned()));
        };
        // The empty message starts the block; every other one is a pong.
        if !msg.is_empty() {
            rtts.push(start.elapsed());
            if msg.len() != 1 || msg.first().and_then(Value::as_str).map(str::len) != Some(size) {
                return finish(Err(format!("the echo port answered {msg}")));
            }
            if rtts.len() as u64 >= rounds {
                return finish(Ok(std::mem::take(&mut rtts)));
            }
        }
        start = Instant::now();
        driver.send(&echo, Message::from([Value::from(me), payload.clone()]));
        false
    });
    node.send(&pinger, Message::empty());
    let limit = ROUND_LIMIT + Duration::from_millis(rounds.saturating_mul(10));
    match tokio::time::timeout(limit, rx).await {
        Ok(Ok(Ok(rtts))) => Ok(rtts),
        Ok(Ok(Err(e))) => bail!("{e}"),
        Ok(Err(_)) => bail!("the ping port died"),
        Err(_) => {
            let _ = node.kill(&pinger, aemp::Reason::normal());
            bail!("no answer from the benchmark child's echo port")
        }
    }
}

/// `rounds` ping-pongs of `size` bytes with the TCP echo listener.
async fn tcp_block(
    tcp: &mut tokio::net::TcpStream,
    size: usize,
    rounds: u64,
) -> Result<Vec<Duration>> {
    let raw = vec![b'x'; size];
    let mut echoed = vec![0_u8; size];
    let mut rtts = Vec::with_capacity(rounds as usize);
    for _ in 0..rounds {
        let start = Instant::now();
        tokio::time::timeout(ROUND_LIMIT, async {
            tcp.write_all(&raw).await?;
            tcp.read_exact(&mut echoed).await
        })
        .await
        .context("no answer from the benchmark child's TCP echo")?
        .context("TCP echo")?;
        rtts.push(start.elapsed());
    }
    Ok(rtts)
}
