//! Mailboxes: ports whose messages queue up until an async task reads them, with timeouts and
//! Erlang-style selective receive (messages passed over stay queued, in order).
//!
//! Run it with `cargo run -p aemp --example mailbox`.
//!
//! AEMP itself does not queue (AnyEvent::MP 1.38, "AnyEvent::MP vs. Distributed Erlang"):
//!
//! ```perl
//! # * Erlang uses processes and a mailbox, AEMP does not queue.
//! #
//! # Erlang uses processes that selctively receive messages, and therefore
//! # needs a queue. AEMP is event based, queuing messages would serve no useful
//! # purpose.
//! #
//! # (But see Coro::MP for a more Erlang-like process model on top of AEMP).
//! ```
//!
//! A mailbox is this library's Coro::MP: an async task owns a port and reads it like an
//! Erlang process reads its mailbox. The Erlang it mirrors:
//!
//! ```erlang
//! receive {reply, Ref, Value} -> Value after 1000 -> timeout end
//! ```
//!
//! It is a port like any other (`snd`, `mon`, `kil` work on `mailbox.port()`); dropping the
//! mailbox kills its port normally.

use std::error::Error;
use std::time::Duration;

use aemp::RecvError;
use aemp::prelude::*;

const WAIT: Duration = Duration::from_secs(2);

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let node = Node::builder().id("mailbox").start()?;

    // A counter "process": an async task looping over its mailbox.
    let mut counter_box = node.mailbox();
    let counter = counter_box.port().clone();
    let process = tokio::spawn(async move {
        let mut count: i64 = 0;
        while let Some(msg) = counter_box.recv().await {
            match msg.first().and_then(Value::as_str) {
                Some("incr") => count += msg.decode_element::<i64>(1).unwrap_or(1),
                Some("get") => {
                    if let Ok(reply) = msg.decode_element::<PortId>(1) {
                        snd(&reply, msg!["count", count]);
                    }
                }
                Some("stop") => break,
                _ => println!("counter: ignoring {}", show(&msg)),
            }
        }
        count // the mailbox is dropped here, which kills its port normally
    });

    let mut inbox = node.mailbox();
    let (tx, rx) = tokio::sync::oneshot::channel();
    mon(&counter, move |reason: Reason| {
        let _ = tx.send(reason);
    })
    .detach();

    for n in [1, 2, 3] {
        snd(&counter, msg!["incr", n]);
    }
    snd(&counter, msg!["bogus"]);
    snd(&counter, msg!["get", inbox.port().to_string()]);
    let reply = inbox.recv_timeout(WAIT).await?;
    println!("inbox: {}", show(&reply));
    assert_eq!(reply, msg!["count", 6]);

    // Selective receive: take the message you want, leave the others queued in order.
    let me = inbox.port().clone();
    snd(&me, msg!["noise", 1]);
    snd(&me, msg!["reply", "ref-2", "second"]);
    snd(&me, msg!["noise", 2]);
    snd(&me, msg!["reply", "ref-1", "first"]);
    // receive {reply, "ref-1", Value} -> Value after 1000 -> timeout end
    let first = inbox
        .recv_matching(
            &Pattern::prefix([Value::from("reply"), Value::from("ref-1")]),
            WAIT,
        )
        .await?;
    println!("selective receive ref-1: {}", show(&first));
    assert_eq!(first[2], Value::from("first"));
    // Or with any predicate.
    let second = inbox
        .recv_where(|m| m.get(2) == Some(&Value::from("second")), WAIT)
        .await?;
    println!("selective receive second: {}", show(&second));
    assert_eq!(second, msg!["reply", "ref-2", "second"]);
    // The messages passed over are still there, in their order.
    assert_eq!(inbox.try_recv(), Some(msg!["noise", 1]));
    assert_eq!(inbox.try_recv(), Some(msg!["noise", 2]));
    assert_eq!(inbox.try_recv(), None);

    // Nothing matches: the receive times out, and what did arrive stays queued.
    snd(&me, msg!["unrelated"]);
    let missing = inbox
        .recv_matching(&Pattern::from("never"), Duration::from_millis(50))
        .await;
    println!("receive 'never' for 50ms: {missing:?}");
    assert_eq!(missing, Err(RecvError::Timeout));
    assert_eq!(inbox.recv_timeout(WAIT).await?, msg!["unrelated"]);

    // Stop the counter process: its task returns, the mailbox is dropped, the port dies
    // normally, and the monitor says so.
    snd(&counter, msg!["stop"]);
    let total = tokio::time::timeout(WAIT, process).await??;
    let reason = tokio::time::timeout(WAIT, rx).await??;
    println!("counter stopped at {total}; its port died with {reason}");
    assert_eq!(total, 6);
    assert!(reason.is_normal());

    // Killing a mailbox's port: what was queued before the kill can still be read, then the
    // mailbox reports it is closed.
    snd(&me, msg!["last", "words"]);
    kil(&me, vec![Value::from("closing")])?;
    assert_eq!(inbox.recv_timeout(WAIT).await?, msg!["last", "words"]);
    let closed = inbox.recv_timeout(WAIT).await;
    println!("after the kill: {closed:?}");
    assert_eq!(closed, Err(RecvError::Closed));

    println!("mailbox: all assertions passed");
    Ok(())
}

fn show(msg: &Message) -> String {
    Value::Array(msg.to_vec()).to_string()
}
