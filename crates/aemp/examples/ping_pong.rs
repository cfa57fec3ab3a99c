//! Ping-pong: two ports bounce a counter back and forth N times, then the example prints the
//! rate. Once between two callback ports (everything stays on the node's dispatcher), once
//! between a callback port and a mailbox read by an async task (every hop crosses tasks).
//!
//! Run it with `cargo run -p aemp --example ping_pong` (debug build), or faster with
//! `cargo run --release -p aemp --example ping_pong`. `N=1000000` sets the number of round
//! trips (default 200000; the mailbox round uses a tenth of it).
//!
//! The Perl it builds on (AnyEvent::MP 1.38, SYNOPSIS):
//!
//! ```perl
//! rcv $port, ping => sub { snd $_[0], "pong"; 0 };
//! rcv $port, pong => sub { warn "pong received\n"; 0 };
//! ```
//!
//! Here each side knows its peer, so the ball carries only the counter: `["ping", n]` one
//! way, `["pong", n]` back. There is no network transport yet, so both ports live on one
//! node.

use std::error::Error;
use std::time::{Duration, Instant};

use aemp::ValueError;
use aemp::prelude::*;

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let node = Node::builder().id("ping-pong").start()?;
    let rounds: i64 = std::env::var("N")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(200_000);

    // Two full ports, each with the other's ID.
    let (pinger, ponger) = (new_port(), new_port());
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let mut done_tx = Some(done_tx);
    let to_pinger = pinger.clone();
    // rcv $ponger, ping => sub { snd $pinger, pong => $n; 0 };
    rcv(
        &ponger,
        "ping",
        move |msg: Message| -> Result<(), ValueError> {
            let n: i64 = msg.decode_element(1)?;
            snd(&to_pinger, msg!["pong", n]);
            Ok(())
        },
    )?;
    let to_ponger = ponger.clone();
    // rcv $pinger, pong => sub { snd $ponger, ping => $n + 1 unless $n == N; ... };
    rcv(
        &pinger,
        "pong",
        move |msg: Message| -> Result<Flow, ValueError> {
            let n: i64 = msg.decode_element(1)?;
            if n < rounds {
                snd(&to_ponger, msg!["ping", n + 1]);
                Ok(Flow::Continue)
            } else {
                if let Some(tx) = done_tx.take() {
                    let _ = tx.send(n);
                }
                Ok(Flow::Done)
            }
        },
    )?;

    let start = Instant::now();
    snd(&ponger, msg!["ping", 1]);
    let last = tokio::time::timeout(Duration::from_secs(30), done_rx).await??;
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(last, rounds, "the counter went through every round");
    report("callback <-> callback", rounds, secs);

    // The same between a callback port and a mailbox in an async task.
    let rounds = (rounds / 10).max(1);
    let mut mailbox = node.mailbox();
    let echo = port(|msg: Message| -> Result<(), ValueError> {
        let (n, reply): (i64, PortId) = (msg.decode_element(1)?, msg.decode_element(2)?);
        snd(&reply, msg!["pong", n]);
        Ok(())
    });
    let me = mailbox.port().to_string();
    let start = Instant::now();
    for n in 1..=rounds {
        snd(&echo, msg!["ping", n, me.clone()]);
        let reply = mailbox.recv_timeout(Duration::from_secs(2)).await?;
        assert_eq!(reply, msg!["pong", n]);
    }
    let secs = start.elapsed().as_secs_f64();
    report("callback <-> mailbox task", rounds, secs);

    println!("ping_pong: all assertions passed");
    Ok(())
}

fn report(what: &str, rounds: i64, secs: f64) {
    let per_sec = rounds as f64 / secs;
    println!(
        "{what}: {rounds} round trips in {:.3} s = {:.0} round trips/s ({:.2} M msg/s), {:.2} µs per round trip",
        secs,
        per_sec,
        2.0 * per_sec / 1e6,
        1e6 / per_sec,
    );
}
