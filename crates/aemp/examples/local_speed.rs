//! Quick local throughput probe (temporary).
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use aemp::{Message, Node, Value};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let node = Node::builder().start()?;
    let total: u64 = std::env::var("N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000_000);
    let batch: u64 = 1000;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let mut tx = Some(tx);
    let received = Arc::new(AtomicU64::new(0));
    let r2 = received.clone();
    let driver_slot: Arc<std::sync::OnceLock<aemp::PortId>> = Arc::new(std::sync::OnceLock::new());
    let d2 = driver_slot.clone();
    let n2 = node.clone();
    let mut count = 0u64;
    let sink = node.port(move |_m: Message| {
        count += 1;
        if count % batch == 0 {
            r2.store(count, Ordering::Relaxed);
            if count >= total {
                if let Some(tx) = tx.take() {
                    let _ = tx.send(());
                }
            } else if let Some(d) = d2.get() {
                n2.send(d, Message::empty());
            }
        }
    });
    let n3 = node.clone();
    let s2 = sink.clone();
    let driver = node.port(move |_m: Message| {
        for i in 0..batch {
            n3.send(&s2, Message::from([Value::Int(i as i64)]));
        }
    });
    driver_slot.set(driver.clone()).ok();
    let start = Instant::now();
    node.send(&driver, Message::empty());
    rx.await?;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{} msgs in {:.3}s = {:.2} M msg/s",
        total,
        secs,
        total as f64 / secs / 1e6
    );
    Ok(())
}
