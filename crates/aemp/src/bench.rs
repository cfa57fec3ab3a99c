//! Benchmark scenarios shared by `aemp bench` and the criterion benches. **Not a stable API.**

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aemp_proto::{Message, PortId, Value};
use tokio::sync::oneshot;

use crate::node::Node;

/// Local send→callback throughput: a driver port's callback sends `per_run` messages to a
/// sink port's callback; when the sink has counted them, it asks the driver for the next run.
/// Returns the time from the first send until the sink has received `messages` messages.
///
/// Each message is `[n]` (one integer), the smallest useful message.
pub async fn local_throughput(node: &Node, messages: u64, per_run: u64) -> Duration {
    let per_run = per_run.max(1);
    let messages = messages.max(per_run);
    let (done_tx, done_rx) = oneshot::channel::<Instant>();
    let driver_id = Arc::new(std::sync::OnceLock::<PortId>::new());
    let mut done_tx = Some(done_tx);
    let mut count = 0_u64;
    // Counts down to the end of a run (cheaper than a division per message).
    let mut left_in_run = per_run;
    let sink_node = node.clone();
    let sink_driver = driver_id.clone();
    let sink = node.port(move |_msg: Message| {
        count += 1;
        left_in_run -= 1;
        if left_in_run == 0 {
            left_in_run = per_run;
            if count >= messages {
                if let Some(tx) = done_tx.take() {
                    let _ = tx.send(Instant::now());
                }
            } else if let Some(driver) = sink_driver.get() {
                sink_node.send(driver, Message::empty());
            }
        }
    });
    let driver_node = node.clone();
    let mut next = 0_i64;
    let driver = node.port(move |_msg: Message| {
        for _ in 0..per_run {
            driver_node.send(&sink, Message::from([Value::Int(next)]));
            next += 1;
        }
    });
    // The sink asks the driver only after this is set, and it is set before the first run.
    let _ = driver_id.set(driver.clone());
    let start = Instant::now();
    node.send(&driver, Message::empty());
    let end = done_rx.await.unwrap_or_else(|_| Instant::now());
    let _ = node.kill(&driver, crate::Reason::normal());
    end - start
}

/// Creates `count` idle callback ports on `node` from inside a callback, `chunk` at a time,
/// and returns how long that took. The ports stay alive; their IDs are not kept.
pub async fn create_idle_ports(node: &Node, count: u64) -> Duration {
    const CHUNK: u64 = 10_000;
    let created = Arc::new(AtomicU64::new(0));
    let (done_tx, done_rx) = oneshot::channel::<Instant>();
    let mut done_tx = Some(done_tx);
    let maker_node = node.clone();
    let counter = created.clone();
    let maker = node.port(move |_msg: Message| {
        let have = counter.load(Ordering::Relaxed);
        let n = CHUNK.min(count - have.min(count));
        for _ in 0..n {
            // An idle port: its callback ignores messages and captures nothing.
            let _ = maker_node.port(|_m: Message| {});
        }
        let have = have + n;
        counter.store(have, Ordering::Relaxed);
        if have >= count {
            if let Some(tx) = done_tx.take() {
                let _ = tx.send(Instant::now());
            }
        } else if let Some(me) = crate::self_port() {
            maker_node.send(&me, Message::empty());
        }
    });
    let start = Instant::now();
    node.send(&maker, Message::empty());
    let end = done_rx.await.unwrap_or_else(|_| Instant::now());
    let _ = node.kill(&maker, crate::Reason::normal());
    // Wait until the dispatcher has applied every creation (a round trip through it).
    let _ = node
        .call(
            &node.node_port(),
            Message::from([Value::from("info")]),
            None,
        )
        .await;
    end - start
}
