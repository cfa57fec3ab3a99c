//! `psub`: wrap a closure so that, when some other event source calls it later (a timer, a
//! thread), it runs in the context of the port that created it: `SELF` is that port, and an
//! error kills that port with `die`.
//!
//! Run it with `cargo run -p aemp --example psub`.
//!
//! The Perl it translates (AnyEvent::MP 1.38, `psub`):
//!
//! ```perl
//! $closure = psub { BLOCK }
//!
//! # Remembers $SELF and creates a closure out of the BLOCK. When the
//! # closure is executed, sets up the environment in the same way as in rcv
//! # callbacks, i.e. runtime errors will cause the port to get kil'ed.
//!
//! rcv delayed_reply => sub {
//!    my ($delay, @reply) = @_;
//!    my $timer = AE::timer $delay, 0, psub {
//!       snd @reply, $SELF;
//!    };
//! };
//! ```
//!
//! Differences from the Perl:
//!
//! - The example's `rcv` lacks its port; here it is `rcv $server, delayed_reply => ...`, and
//!   (as everywhere in this library) the callback gets the tag too: `[tag, $delay, @reply]`.
//! - `AE::timer` becomes a spawned tokio task that sleeps (in the Perl, `my $timer` going
//!   out of scope would cancel the timer at once; the task here is simply detached).
//! - The Rust `psub` returns an `FnMut(A)` that *queues* the block on the node's dispatcher
//!   and returns nothing: it can be called from any thread or task, but it cannot hand back
//!   the block's value as Perl's `psub` does (the block runs later, on the dispatcher).
//! - `snd @reply, $SELF` (a message whose first element is the port) is written out with
//!   `take_first`.

use std::error::Error;
use std::time::Duration;

use aemp::ValueError;
use aemp::prelude::*;
use tokio::sync::mpsc::unbounded_channel;

#[path = "common/events.rs"]
mod events;
use events::{Event, forward, next, report};

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    Node::builder().id("psub").start()?;
    let (tx, mut rx) = unbounded_channel::<Event>();

    // rcv $server, delayed_reply => sub {
    //    my ($delay, @reply) = @_;
    //    my $timer = AE::timer $delay, 0, psub { snd @reply, $SELF };
    // };
    let server = new_port();
    rcv(
        &server,
        "delayed_reply",
        |mut msg: Message| -> Result<(), Box<dyn Error>> {
            let _tag = msg.take_first();
            let delay: f64 = msg.take_first().unwrap_or_default().decode()?;
            let mut reply = msg;
            let mut block = psub(move |()| -> Result<(), ValueError> {
                // snd @reply, $SELF;
                let to: PortId = reply.take_first().unwrap_or_default().decode()?;
                reply.push(Value::from(SELF().to_string()));
                snd(&to, std::mem::take(&mut reply));
                Ok(())
            })?;
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs_f64(delay)).await;
                block(());
            });
            Ok(())
        },
    )?;

    let client = port(forward(&tx, "client"));
    // Two requests: the later one has the shorter delay, so its reply comes first.
    snd(
        &server,
        msg!["delayed_reply", 0.2, client.to_string(), "slow"],
    );
    snd(
        &server,
        msg!["delayed_reply", 0.05, client.to_string(), "fast", 1],
    );
    // The block ran with $SELF = the server port, long after the rcv callback returned.
    assert_eq!(
        next(&mut rx).await?,
        ("client", msg!["fast", 1, server.to_string()])
    );
    assert_eq!(
        next(&mut rx).await?,
        ("client", msg!["slow", server.to_string()])
    );

    // The block can be called from any thread: here a thread computes, and the psub brings
    // the result back into the port's context.
    let summer = new_port();
    rcv(
        &summer,
        "sum",
        |msg: Message| -> Result<(), Box<dyn Error>> {
            let (_, n, reply): (String, u64, PortId) = msg.decode()?;
            let mut done = psub(move |sum: u64| {
                snd(&reply, msg!["sum", sum, SELF().to_string()]);
            })?;
            std::thread::spawn(move || done((1..=n).sum()));
            Ok(())
        },
    )?;
    snd(&summer, msg!["sum", 1000, client.to_string()]);
    assert_eq!(
        next(&mut rx).await?,
        ("client", msg!["sum", 500_500, summer.to_string()])
    );

    // Runtime errors in the block kill the port that created it, with die => $@.
    let fragile = new_port();
    rcv(&fragile, "later", |_: Message| -> Result<(), PortError> {
        let mut block = psub(|()| -> Result<(), String> { Err("failed later".into()) })?;
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            block(());
        });
        Ok(())
    })?;
    mon(&fragile, report(&tx, "fragile died")).detach();
    snd(&fragile, msg!["later"]);
    assert_eq!(
        next(&mut rx).await?,
        ("fragile died", msg!["die", "failed later"])
    );

    // psub remembers $SELF, so it needs one: outside a port's code it is refused (Perl croaks).
    let refused = psub(|()| ()).map(|_| ());
    println!("psub outside a port: {refused:?}");
    assert_eq!(refused, Err(PortError::NoCurrentPort));

    println!("psub: all assertions passed");
    Ok(())
}
