//! Event helpers shared by the examples: monitors and ports report what happens as
//! `(who, message)` events on a channel, and `next` waits for the next one.
//!
//! Included by each example with `#[path = "common/events.rs"] mod events;`.

#![allow(dead_code, reason = "each example uses a different subset")]

use std::error::Error;
use std::time::Duration;

use aemp::prelude::*;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

/// Something that happened: who reported it, and the message (or the kill reason).
pub(crate) type Event = (&'static str, Message);

/// A monitor callback that reports the reason as an event.
pub(crate) fn report(
    tx: &UnboundedSender<Event>,
    who: &'static str,
) -> impl FnOnce(Reason) + Send + 'static {
    let tx = tx.clone();
    move |reason: Reason| {
        let _ = tx.send((who, Message::new(reason.into_values())));
    }
}

/// A port callback that reports every message as an event.
pub(crate) fn forward(
    tx: &UnboundedSender<Event>,
    who: &'static str,
) -> impl FnMut(Message) + Send + 'static {
    let tx = tx.clone();
    move |msg: Message| {
        let _ = tx.send((who, msg));
    }
}

/// The next event, or an error after two seconds (nothing here should take that long).
pub(crate) async fn next(rx: &mut UnboundedReceiver<Event>) -> Result<Event, Box<dyn Error>> {
    let (who, msg) = tokio::time::timeout(Duration::from_secs(2), rx.recv())
        .await
        .map_err(|_| "timed out waiting for an event")?
        .ok_or("event channel closed")?;
    println!("{who:>20}: {}", Value::Array(msg.to_vec()));
    Ok((who, msg))
}
