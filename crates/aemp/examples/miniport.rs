//! Miniports: `port { ... }`, a port with one callback that gets every message as-is, and
//! that is destroyed when the callback says its job is done (the 2009 API's "return true",
//! here `Flow::Done` or `true`).
//!
//! Run it with `cargo run -p aemp --example miniport`.
//!
//! The Perl it translates (AnyEvent::MP 1.38, `$port = port { my @msg = @_; $finished }`):
//!
//! ```perl
//! # The block will be called for every message received on the port. When the
//! # callback returns a true value its job is considered "done" and the port
//! # will be destroyed. Otherwise it will stay alive.
//! my $port = port { my @msg = @_; $finished };
//!
//! # Semantically the same as creating a port and calling rcv $port, $callback on it.
//! my $port = port; rcv $port, $callback;
//!
//! # If you need the local port id in the callback, this works nicely:
//! my $port; $port = port {
//!    snd $otherport, reply => $port;
//! };
//! ```
//!
//! Differences from the Perl:
//!
//! - A Rust closure cannot capture the ID its own `port(...)` call returns, so the
//!   `my $port; $port = port { ... $port ... }` trick becomes `SELF()`, which is the running
//!   port's ID inside any callback (as `$SELF` is in the Perl).
//! - The prelude has no single-callback `rcv $port, $callback`; that form is
//!   [`Node::set_callback`].

use std::error::Error;

use aemp::prelude::*;
use tokio::sync::mpsc::unbounded_channel;

#[path = "common/events.rs"]
mod events;
use events::{Event, next};

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let node = Node::builder().id("miniport").start()?;
    let (tx, mut rx) = unbounded_channel::<Event>();

    // my $port = port { my @msg = @_; $finished };
    // This one is finished after its third message.
    let t = tx.clone();
    let mut seen = 0;
    let counter = port(move |msg: Message| {
        seen += 1;
        let _ = t.send(("counter", msg));
        if seen == 3 {
            Flow::Done
        } else {
            Flow::Continue
        }
    });
    let t = tx.clone();
    mon(&counter, move |reason: Reason| {
        let _ = t.send(("counter died", Message::new(reason.into_values())));
    })
    .detach();

    for i in 1..=4 {
        snd(&counter, msg!["count", i]);
    }
    // The message arrives as-is: no port ID or other extra argument is passed.
    assert_eq!(next(&mut rx).await?, ("counter", msg!["count", 1]));
    assert_eq!(next(&mut rx).await?, ("counter", msg!["count", 2]));
    assert_eq!(next(&mut rx).await?, ("counter", msg!["count", 3]));
    // Done: the port is destroyed normally (an empty reason) and the fourth message, already
    // queued, is dropped.
    assert_eq!(next(&mut rx).await?, ("counter died", msg![]));

    // The port is gone for good: monitoring it now reports that at once.
    let t = tx.clone();
    mon(&counter, move |reason: Reason| {
        let _ = t.send(("mon dead port", Message::new(reason.into_values())));
    })
    .detach();
    let (who, reason) = next(&mut rx).await?;
    assert_eq!(who, "mon dead port");
    assert_eq!(reason[0], Value::from("no_such_port"));

    // my $port = port; rcv $port, $callback;  -- the same as port { ... }
    let t = tx.clone();
    let same = new_port();
    node.set_callback(&same, move |msg: Message| {
        let _ = t.send(("set_callback", msg));
        true // done after one message
    })?;
    let t = tx.clone();
    mon(&same, move |reason: Reason| {
        let _ = t.send(("same died", Message::new(reason.into_values())));
    })
    .detach();
    snd(&same, msg!["only", "one"]);
    assert_eq!(next(&mut rx).await?, ("set_callback", msg!["only", "one"]));
    assert_eq!(next(&mut rx).await?, ("same died", msg![]));

    // my $port; $port = port { snd $otherport, reply => $port; };
    let t = tx.clone();
    let otherport = port(move |msg: Message| {
        let _ = t.send(("otherport", msg));
    });
    let other = otherport.clone();
    let replier = port(move |_msg: Message| {
        snd(&other, msg!["reply", SELF().to_string()]);
    });
    snd(&replier, msg!["anything"]);
    assert_eq!(
        next(&mut rx).await?,
        ("otherport", msg!["reply", replier.to_string()])
    );

    println!("miniport: all assertions passed");
    Ok(())
}
