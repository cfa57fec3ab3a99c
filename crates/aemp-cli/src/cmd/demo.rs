//! `aemp demo`: shows aemp working, with no setup at all.
//!
//! Today it runs in one process (the network transport, and with it the multi-node demo of a
//! seed and two nodes, is still being built): a spawned echo port, ping-pong with round-trip
//! times, a monitor firing when the port is killed, and the local throughput.

use std::time::{Duration, Instant};

use aemp::{Message, Node, Reason, Value, msg};
use anyhow::{Context, Result, bail};

/// Runs the demo; fails if anything does not behave.
pub(crate) fn run() -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(demo())
}

async fn demo() -> Result<()> {
    let node = Node::builder().id("demo").start()?;
    println!(
        "node {} started (single-process demo; the multi-node demo needs the network transport, coming next)",
        node.id()
    );

    // An init function other nodes (here: this one) can spawn by name.
    let echo_node = node.clone();
    node.register_init("demo::echo", move |_args: Message| {
        let me = aemp::self_port().context("spawn init runs in its port's context")?;
        let n = echo_node.clone();
        echo_node.receive(
            &me,
            "ping",
            move |msg: Message| -> Result<(), aemp::ValueError> {
                let reply: aemp::PortId = msg.decode_element(1)?;
                n.send(
                    &reply,
                    msg!["pong", msg.get(2).cloned().unwrap_or_default()],
                );
                Ok(())
            },
        )?;
        Ok::<_, anyhow::Error>(())
    })?;
    let echo = node.spawn(node.id(), "demo::echo", Message::empty())?;
    println!("spawned demo::echo as {echo}");

    // Ping-pong through a mailbox, timing each round trip.
    let mut inbox = node.mailbox();
    let rounds = 10_000;
    let mut rtts = Vec::with_capacity(rounds);
    for i in 0..rounds {
        let start = Instant::now();
        node.send(&echo, msg!["ping", inbox.port(), i as u64]);
        let reply = inbox
            .recv_timeout(Duration::from_secs(5))
            .await
            .context("no pong within 5 s")?;
        rtts.push(start.elapsed());
        if reply.get(1) != Some(&Value::from(i as u64)) {
            bail!("pong {i} came back as {reply}");
        }
    }
    rtts.sort();
    println!(
        "ping-pong: {rounds} round trips, p50 {:.1} µs, p99 {:.1} µs",
        micros(rtts[rounds / 2]),
        micros(rtts[rounds * 99 / 100])
    );

    // A monitor fires when the port dies, with the reason.
    let (tx, rx) = tokio::sync::oneshot::channel();
    node.monitor(&echo, move |reason| drop(tx.send(reason)))
        .detach();
    node.kill(&echo, Reason::new(vec![Value::from("demo over")]))?;
    let reason = tokio::time::timeout(Duration::from_secs(5), rx)
        .await
        .context("the monitor did not fire")?
        .context("the monitor was dropped")?;
    println!("monitor fired: {echo} died with {reason}");

    let elapsed = aemp::bench::local_throughput(&node, 2_000_000, 1000).await;
    println!(
        "local throughput: {:.1} M messages/s",
        2_000_000.0 / elapsed.as_secs_f64() / 1e6
    );
    node.shutdown();
    println!("demo finished");
    Ok(())
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}
