//! `kil`: killing a port normally or with a reason, and `die` inside a callback, which kills
//! only the port whose callback failed.
//!
//! Run it with `cargo run -p aemp --example kil_and_die`.
//!
//! The Perl it translates (AnyEvent::MP 1.38, `kil` and the `rcv` callback rules):
//!
//! ```perl
//! kil $port[, @reason]
//!
//! # If no @reason is specified, then the port is killed "normally" (linked
//! # ports will not be kileld, or even notified).
//! # Otherwise, linked ports get killed with the same reason (second form of
//! # mon, see below).
//! # Runtime errors while evaluating rcv callbacks or inside psub blocks
//! # will be reported as reason die => $@.
//!
//! rcv $port, work => sub { die "cannot work today\n" };   # port is kil'ed: die => ...
//!
//! sub _self_die() {
//!    my $msg = $@;
//!    $msg =~ s/\n+$// unless ref $msg;
//!    kil $SELF, die => $msg;
//! }
//! ```
//!
//! Differences from the Perl:
//!
//! - `die` in a callback is returning an `Err` (its `Display` text becomes the reason) or a
//!   panic (its message becomes the reason). The panic's message is also printed by the
//!   panic hook, so expect one "panic hook: ... division by zero" line on stderr.
//! - A reason is a `Vec<Value>` or `Reason::normal()`; `kil $port, die => "x"` is
//!   `kil(&worker, vec![Value::from("die"), Value::from("x")])` (there is no `From<Message>`
//!   for `Reason`, so `msg![...]` does not work there).
//! - `transport_error` needs a network transport, which does not exist yet.

use std::error::Error;

use aemp::KillError;
use aemp::prelude::*;
use tokio::sync::mpsc::unbounded_channel;

#[path = "common/events.rs"]
mod events;
use events::{Event, forward, next, report};

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let node = Node::builder().id("kil-and-die").start()?;
    let (tx, mut rx) = unbounded_channel::<Event>();

    // kil $port;  -- ($port is `worker` here: `port` is the prelude function.) A normal kill: no reason, linked ports are left alone.
    let (worker, linked) = (new_port(), new_port());
    rcv(&worker, "work", forward(&tx, "port"))?;
    rcv(&linked, "ping", forward(&tx, "linked"))?;
    mon_link(&worker, &linked).detach();
    mon(&worker, report(&tx, "port died")).detach();
    mon(&linked, report(&tx, "linked died")).detach();
    // The kill is queued behind the messages already sent: both arrive first.
    snd(&worker, msg!["work", 1]);
    snd(&worker, msg!["work", 2]);
    kil(&worker, Reason::normal())?;
    snd(&worker, msg!["work", 3]); // too late: dropped
    assert_eq!(next(&mut rx).await?, ("port", msg!["work", 1]));
    assert_eq!(next(&mut rx).await?, ("port", msg!["work", 2]));
    assert_eq!(next(&mut rx).await?, ("port died", msg![]));
    snd(&linked, msg!["ping"]);
    assert_eq!(next(&mut rx).await?, ("linked", msg!["ping"]));

    // kil $port, @reason;  -- linked ports die with the same reason.
    let worker = new_port();
    rcv(&worker, "work", forward(&tx, "port"))?;
    mon_link(&worker, &linked).detach();
    mon(&worker, report(&tx, "port died")).detach();
    kil(
        &worker,
        vec![Value::from("shutdown"), Value::from("maintenance")],
    )?;
    assert_eq!(
        next(&mut rx).await?,
        ("port died", msg!["shutdown", "maintenance"])
    );
    assert_eq!(
        next(&mut rx).await?,
        ("linked died", msg!["shutdown", "maintenance"])
    );

    // rcv $port, work => sub { die "cannot work today\n" };
    // A failing callback kills its port with die => $@ ...
    let (failing, bystander) = (new_port(), new_port());
    rcv(&failing, "work", |_: Message| -> Result<(), String> {
        Err("cannot work today".to_owned())
    })?;
    rcv(&bystander, "work", forward(&tx, "bystander"))?;
    mon(&failing, report(&tx, "failing died")).detach();
    snd(&failing, msg!["work"]);
    assert_eq!(
        next(&mut rx).await?,
        ("failing died", msg!["die", "cannot work today"])
    );
    // ... and only that port: the other ports of the node carry on.
    snd(&bystander, msg!["work", "as usual"]);
    assert_eq!(
        next(&mut rx).await?,
        ("bystander", msg!["work", "as usual"])
    );

    // A panic is a die too.
    // A one-line panic hook, so the panic on purpose does not print a backtrace.
    std::panic::set_hook(Box::new(|info| eprintln!("panic hook: {info}")));
    let panicking = port(|msg: Message| {
        let divisor = msg.decode_element::<i64>(1).unwrap_or(0);
        if divisor == 0 {
            panic!("division by zero");
        }
    });
    mon(&panicking, report(&tx, "panicking died")).detach();
    snd(&panicking, msg!["divide", 0]);
    assert_eq!(
        next(&mut rx).await?,
        ("panicking died", msg!["die", "division by zero"])
    );
    snd(&bystander, msg!["work", "still"]);
    assert_eq!(next(&mut rx).await?, ("bystander", msg!["work", "still"]));

    // kil $SELF, die => $msg;  -- a port may kill itself, with any reason.
    let quitter = port(|msg: Message| kil(&SELF(), vec![Value::from("quit"), msg[0].clone()]));
    mon(&quitter, report(&tx, "quitter died")).detach();
    snd(&quitter, msg!["enough"]);
    assert_eq!(
        next(&mut rx).await?,
        ("quitter died", msg!["quit", "enough"])
    );

    // Killing a port that does not exist is not an error (it is like sending to it).
    kil(&quitter, Reason::normal())?;

    // The node port cannot be killed.
    let refused = kil(&node.node_port(), Reason::normal());
    println!("kil of the node port: {refused:?}");
    assert_eq!(refused, Err(KillError::NodePort(node.node_port())));

    println!("kil_and_die: all assertions passed");
    Ok(())
}
