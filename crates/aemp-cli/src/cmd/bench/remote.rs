//! `aemp bench remote`: one-way message throughput between two processes.

use std::time::{Duration, Instant};

use aemp::{Message, Node, Reason, Value};
use anyhow::{Context, Result, bail};

use super::child::Served;
use super::{FramingArg, json_number, round_to};

/// Runs the benchmark against a fresh child and prints the result.
pub(super) fn run(
    framing: FramingArg,
    size: usize,
    messages: Option<u64>,
    window: u64,
    json: bool,
) -> Result<()> {
    let messages = messages.unwrap_or(if size <= 16 { 2_000_000 } else { 500_000 });
    if messages == 0 {
        bail!("--messages must be positive");
    }
    let runtime = crate::cmd::runtime(None)?;
    let served = Served::start(framing)?;
    let seconds = runtime
        .block_on(measure(&served, framing, size, messages, window))?
        .as_secs_f64();
    let seconds = round_to(seconds, 6);
    drop(served);
    let rate = messages as f64 / seconds;
    let bytes_rate = rate * size as f64;
    if json {
        // Field order is part of the output contract, so the line is written by hand.
        println!(
            "{{\"bench\":\"remote\",\"framing\":\"{}\",\"size\":{size},\"messages\":{messages},\"seconds\":{},\"msgs_per_sec\":{},\"bytes_per_sec\":{}}}",
            framing.name(),
            json_number(seconds),
            json_number(rate.round()),
            json_number(bytes_rate.round())
        );
    } else {
        println!(
            "remote one-way, two processes on 127.0.0.1, {} framing, {messages} × {size} B",
            framing.name()
        );
        println!("  seconds        {seconds:.4}");
        println!("  msgs/s         {:.2} M", rate / 1e6);
        println!("  payload        {:.1} MB/s", bytes_rate / 1e6);
    }
    Ok(())
}

/// Sends `messages` payloads and `done` to the child's sink; returns the time from the
/// first send until the sink's count arrived.
async fn measure(
    served: &Served,
    framing: FramingArg,
    size: usize,
    messages: u64,
    window: u64,
) -> Result<Duration> {
    let node = Node::builder()
        .id("anon/")
        .secret(served.secret.clone())
        .framings(vec![framing.framing()])
        .start()?;
    let peer = node
        .connect(served.addr)
        .await
        .with_context(|| format!("connecting to the benchmark child at {}", served.addr))?;
    if peer != served.node {
        bail!(
            "the benchmark child is {peer}, not the announced {}",
            served.node
        );
    }
    // The answer, with the time it arrived; or the sink's death (the connection broke).
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Result<(Instant, Message), Reason>>();
    let answer_tx = tx.clone();
    let reply = node.port(move |msg: Message| {
        let _ = answer_tx.send(Ok((Instant::now(), msg)));
    });
    let _monitor = node.monitor(&served.sink, move |reason| {
        let _ = tx.send(Err(reason));
    });

    let payload = Value::String("x".repeat(size));
    // With a window, an `["ack", reply]` follows every half window and the sender waits
    // for the one before last, so at most a window of messages is in flight.
    let chunk = if window == 0 {
        messages
    } else {
        (window / 2).max(1)
    };
    // Generous: even a slow debug build moves far more than 10 k messages a second.
    let limit = Duration::from_secs(60 + messages / 10_000);
    // Flow control without a window: about HIGH_WATER_BYTES of payload may wait for the
    // writer, checked every quarter of that.
    let high_water = (HIGH_WATER_BYTES / size.max(16)).clamp(64, 16_384);
    let flow_batch = (high_water as u64 / 4).max(1);
    let start = Instant::now();
    let mut sent = 0;
    let mut acks_due = 0_u32;
    while sent < messages {
        let n = chunk.min(messages - sent);
        for i in 0..n {
            node.send(&served.sink, Message::from([payload.clone()]));
            if window == 0 && i % flow_batch == flow_batch - 1 {
                // Stream with the library's flow control: wait while the writer is behind,
                // so memory stays bounded, the writer's batches stay large and what it
                // writes was encoded recently enough to be in the cache.
                node.wait_queue_below(&peer, high_water).await;
            }
        }
        sent += n;
        if window > 0 && sent < messages {
            node.send(
                &served.sink,
                Message::from([Value::from("ack"), Value::from(&reply)]),
            );
            acks_due += 1;
            if acks_due == 2 {
                next_answer(&mut rx, limit).await?;
                acks_due -= 1;
            }
        }
    }
    node.send(
        &served.sink,
        Message::from([Value::from("done"), Value::from(&reply)]),
    );
    let (end, msg) = loop {
        let (end, msg) = next_answer(&mut rx, limit).await?;
        if msg.len() == 1 {
            break (end, msg);
        }
    };
    let counted = msg.first().and_then(Value::as_u64);
    if counted != Some(messages) {
        bail!(
            "the sink counted {} messages, {messages} were sent",
            counted.map_or_else(|| msg.to_string(), |c| c.to_string())
        );
    }
    node.disconnect(&peer);
    node.shutdown();
    Ok(end - start)
}

/// The sink's next answer (`["ack", count]` or `[count]`) and when it arrived.
async fn next_answer(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<Result<(Instant, Message), Reason>>,
    limit: Duration,
) -> Result<(Instant, Message)> {
    let answer = tokio::time::timeout(limit, rx.recv())
        .await
        .with_context(|| format!("no answer from the sink within {} s", limit.as_secs()))?;
    match answer {
        Some(Ok(a)) => Ok(a),
        Some(Err(reason)) => bail!("the benchmark child's sink died: {reason}"),
        None => bail!("the reply port died"),
    }
}

/// Payload bytes allowed to wait for the writer before the sender pauses (16,384 messages of
/// 16 bytes, 256 of 1 KiB).
const HIGH_WATER_BYTES: usize = 256 * 1024;
