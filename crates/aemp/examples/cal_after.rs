//! `cal` (send a request with a fresh reply port appended, get exactly one answer: the reply,
//! a timeout, or the called port's death) and `after` (a one-shot timer that sends a message
//! or runs a callback).
//!
//! Run it with `cargo run -p aemp --example cal_after`.
//!
//! The 2009 document (1.38) has neither; they come from AnyEvent::MP 1.30, whose forms are
//! (reference spec §2.12–2.13):
//!
//! ```perl
//! after $timeout, @msg          # one-shot timer, then snd @msg
//! after $timeout, $cb           # one-shot timer, then $cb->() (not in port context)
//!
//! cal $port, @msg, $cb[, $timeout]
//! # Creates a temporary reply port, appends its ID as the last message element, sends.
//! # Reply: $cb->(@reply). Timeout: $cb->() (no args).
//!
//! cal $node, "time", $cb;       # sends ["time", "<me>#<reply>"], the node answers <time>
//! ```
//!
//! Differences from the Perl:
//!
//! - The callback gets a `CallResult`: `Ok(reply)`, `Err(CallError::Timeout)` or
//!   `Err(CallError::PortDied(reason))`, instead of an empty `@reply` for both failures.
//! - It is called exactly once: 1.30 could call it a second time when the port died after
//!   a timeout or a reply.
//! - `node.call(...)` is the same as a future.
//! - `after $timeout, @msg` takes the port separately: `after(delay, &port, msg)`.
//!   `after $timeout, $cb` is `Node::after_fn` (no prelude name). Both return a `Timer`
//!   that can be cancelled (dropping it does not cancel it).

use std::error::Error;
use std::time::{Duration, Instant};

use aemp::prelude::*;
use tokio::sync::mpsc::unbounded_channel;

#[path = "common/events.rs"]
mod events;
use events::{Event, forward, next};

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let node = Node::builder().id("cal-after").start()?;
    let (tx, mut rx) = unbounded_channel::<Event>();

    // cal $node, "time", $cb;
    let t = tx.clone();
    let node_port = PortId::from(NODE());
    cal(&node_port, msg!["time"], None, move |result: CallResult| {
        let _ = t.send((
            "time",
            result.unwrap_or_else(|e| msg![format!("error: {e}")]),
        ));
    });
    let (who, reply) = next(&mut rx).await?;
    assert_eq!(who, "time");
    assert!(reply.first().and_then(Value::as_f64).is_some());

    // A port that answers `["add", a, b, $reply]` with `[a + b]`.
    let adder = port(|msg: Message| -> Result<(), aemp::ValueError> {
        let (_, a, b, reply): (String, i64, i64, PortId) = msg.decode()?;
        snd(&reply, msg![a + b]);
        Ok(())
    });
    // cal $adder, add => 2, 3, sub { ... }, 1;
    let t = tx.clone();
    let reply_port = cal(
        &adder,
        msg!["add", 2, 3],
        Some(Duration::from_secs(1)),
        move |result: CallResult| {
            let _ = t.send((
                "add",
                result.unwrap_or_else(|e| msg![format!("error: {e}")]),
            ));
        },
    );
    println!("cal's reply port: {reply_port}");
    assert_eq!(next(&mut rx).await?, ("add", msg![5]));

    // The same as a future.
    let sum = node
        .call(&adder, msg!["add", 40, 2], Some(Duration::from_secs(1)))
        .await?;
    println!("call(add 40 2) = {}", Value::Array(sum.to_vec()));
    assert_eq!(sum, msg![42]);

    // A port that never answers: the timeout ends the call.
    let silent = port(|_: Message| ());
    let start = Instant::now();
    let result = node
        .call(&silent, msg!["hello?"], Some(Duration::from_millis(100)))
        .await;
    println!("call(silent) = {result:?} after {:?}", start.elapsed());
    assert_eq!(result, Err(CallError::Timeout));
    assert!(start.elapsed() >= Duration::from_millis(100));

    // The callback runs once: the silent port dying after the timeout does not call it again.
    let t = tx.clone();
    cal(
        &silent,
        msg!["hello?"],
        Some(Duration::from_millis(50)),
        move |result: CallResult| {
            let _ = t.send(("silent", msg![format!("{result:?}")]));
        },
    );
    assert_eq!(next(&mut rx).await?, ("silent", msg!["Err(Timeout)"]));
    let t = tx.clone();
    mon(&silent, move |reason: Reason| {
        let _ = t.send(("silent died", Message::new(reason.into_values())));
    })
    .detach();
    kil(&silent, vec![Value::from("gone")])?;
    // Had the call's callback run again, its event would come before the monitor's.
    assert_eq!(next(&mut rx).await?, ("silent died", msg!["gone"]));

    // A port that dies instead of answering: the call learns why.
    let dying = port(|_: Message| -> Result<(), String> { Err("cannot answer".into()) });
    let result = node.call(&dying, msg!["question"], None).await;
    println!("call(dying) = {result:?}");
    assert_eq!(
        result,
        Err(CallError::PortDied(Reason::die("cannot answer")))
    );
    // A port that does not exist (any more) fails the call at once.
    let result = node.call(&dying, msg!["question"], None).await;
    println!("call(dead) = {result:?}");
    assert!(matches!(result, Err(CallError::PortDied(r)) if r.tag() == Some("no_such_port")));

    // after $timeout, @msg  -- snd @msg after the timeout.
    let inbox = port(forward(&tx, "inbox"));
    let start = Instant::now();
    let _timer = after(Duration::from_millis(80), &inbox, msg!["wake", "up"]);
    snd(&inbox, msg!["right away"]);
    assert_eq!(next(&mut rx).await?, ("inbox", msg!["right away"]));
    assert_eq!(next(&mut rx).await?, ("inbox", msg!["wake", "up"]));
    println!("after(80ms) arrived after {:?}", start.elapsed());
    assert!(start.elapsed() >= Duration::from_millis(80));

    // A cancelled timer never fires.
    let cancelled = after(Duration::from_millis(30), &inbox, msg!["cancelled"]);
    cancelled.cancel();
    let _timer = after(Duration::from_millis(60), &inbox, msg!["not cancelled"]);
    assert_eq!(next(&mut rx).await?, ("inbox", msg!["not cancelled"]));

    // after $timeout, $cb  -- a callback, not in any port's context.
    let t = tx.clone();
    let _timer = node.after_fn(Duration::from_millis(20), move || {
        let in_port = aemp::self_port().is_some();
        let _ = t.send(("after_fn", msg![in_port]));
    });
    assert_eq!(next(&mut rx).await?, ("after_fn", msg![false]));

    println!("cal_after: all assertions passed");
    Ok(())
}
