//! `rcv` on full ports: tag matches, prefix ("smart") matches with `_any_`, callbacks that
//! unregister themselves by returning `Flow::Done` (the 2009 API's "return true"), several
//! callbacks matching one message, and the default callback for everything else.
//!
//! Run it with `cargo run -p aemp --example rcv_patterns`.
//!
//! The Perl it translates (AnyEvent::MP 1.38, `rcv`):
//!
//! ```perl
//! rcv $port, tagstring => $callback->(@msg), ...
//! rcv $port, [$smartmatch...] => $callback->(@msg), ...
//!
//! # The callback has to return a true value when its work is done, after
//! # which is will be removed, or a false value in which case it will stay
//! # registered.
//!
//! # Any element in the match that is specified as _any_ (a function
//! # exported by this module) matches any single element of the message.
//!
//! # Example: create a port and bind receivers on it in one go.
//! my $port = rcv port,
//!    msg1 => sub { ...; 0 },
//!    msg2 => sub { ...; 0 },
//! ;
//!
//! # Example: create a port, bind receivers and send it in a message elsewhere
//! # in one go:
//! snd $otherport, reply =>
//!    rcv port,
//!       msg1 => sub { ...; 0 },
//!       ...
//! ;
//! ```
//!
//! Differences from the Perl:
//!
//! - `rcv` takes one pattern and callback per call and returns `Result<(), PortError>`, not
//!   the port, so `rcv port, a => ..., b => ...` becomes `let full = new_port();` and one
//!   `rcv` per pattern.
//! - `_any_` is `Pattern::ANY` inside `Pattern::prefix([...])`.
//! - The default callback (`Node::receive_default`, no prelude name) comes from later AEMP
//!   versions: 1.38 ignores messages no callback matches. Without a default callback this
//!   library drops them too. Its return value does not unregister it.
//! - A port created with `port` (no callback) that gets a message before any `rcv` dies with
//!   `die` (AEMP 1.30's behaviour; the 1.38 code ignores the message).

use std::error::Error;

use aemp::ValueError;
use aemp::prelude::*;
use tokio::sync::mpsc::unbounded_channel;

#[path = "common/events.rs"]
mod events;
use events::{Event, next};

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let node = Node::builder().id("rcv-patterns").start()?;
    let (tx, mut rx) = unbounded_channel::<Event>();

    // my $port = rcv port, msg1 => sub { ...; 0 }, msg2 => sub { ...; 0 };
    let full = new_port();
    let t = tx.clone();
    rcv(&full, "msg1", move |msg: Message| {
        let _ = t.send(("msg1", msg));
        false
    })?;
    let t = tx.clone();
    rcv(&full, "msg2", move |msg: Message| {
        let _ = t.send(("msg2", msg));
        false
    })?;
    snd(&full, msg!["msg2", "b"]);
    snd(&full, msg!["msg1", "a"]);
    // The callback gets the whole message, tag included.
    assert_eq!(next(&mut rx).await?, ("msg2", msg!["msg2", "b"]));
    assert_eq!(next(&mut rx).await?, ("msg1", msg!["msg1", "a"]));

    // Tags compare as Perl strings: the number 1 matches the tag "1".
    let t = tx.clone();
    rcv(&full, "1", move |msg: Message| {
        let _ = t.send(("tag 1", msg));
        false
    })?;
    snd(&full, msg![1, "numeric tag"]);
    assert_eq!(next(&mut rx).await?, ("tag 1", msg![1, "numeric tag"]));

    // rcv $port, [$smartmatch...] => ...: the pattern matches the first elements.
    // [job => _any_, "done"] matches ["job", <anything>, "done", ...].
    let t = tx.clone();
    rcv(
        &full,
        Pattern::prefix([Value::from("job"), Pattern::ANY, Value::from("done")]),
        move |msg: Message| {
            let _ = t.send(("job _any_ done", msg));
            false
        },
    )?;
    snd(&full, msg!["job", 1, "running"]); // no match: dropped
    snd(&full, msg!["job"]); // too short: dropped
    snd(&full, msg!["job", 2, "done", "exit code", 0]);
    assert_eq!(
        next(&mut rx).await?,
        ("job _any_ done", msg!["job", 2, "done", "exit code", 0])
    );

    // Returning true (Flow::Done) unregisters the callback: "its work is done".
    let t = tx.clone();
    let mut left = 2;
    rcv(&full, "twice", move |msg: Message| {
        left -= 1;
        let _ = t.send(("twice", msg));
        if left == 0 {
            Flow::Done
        } else {
            Flow::Continue
        }
    })?;
    for i in 1..=3 {
        snd(&full, msg!["twice", i]);
    }
    snd(&full, msg!["msg1", "after the third twice"]);
    assert_eq!(next(&mut rx).await?, ("twice", msg!["twice", 1]));
    assert_eq!(next(&mut rx).await?, ("twice", msg!["twice", 2]));
    // The third "twice" found no callback (and no default yet), so it was dropped.
    assert_eq!(
        next(&mut rx).await?,
        ("msg1", msg!["msg1", "after the third twice"])
    );

    // Several callbacks may match one message: each gets it, in registration order.
    let t = tx.clone();
    rcv(&full, "multi", move |msg: Message| {
        let _ = t.send(("multi tag", msg));
        true // once only
    })?;
    let t = tx.clone();
    rcv(
        &full,
        Pattern::prefix([Pattern::ANY, Value::from(3)]),
        move |msg: Message| {
            let _ = t.send(("_any_ 3", msg));
            false
        },
    )?;
    snd(&full, msg!["multi", 3]);
    assert_eq!(next(&mut rx).await?, ("multi tag", msg!["multi", 3]));
    assert_eq!(next(&mut rx).await?, ("_any_ 3", msg!["multi", 3]));
    // The tag callback is gone; the prefix callback still matches.
    snd(&full, msg!["multi", 3]);
    assert_eq!(next(&mut rx).await?, ("_any_ 3", msg!["multi", 3]));

    // The default callback gets what nothing else matches.
    let t = tx.clone();
    node.receive_default(&full, move |msg: Message| {
        let _ = t.send(("default", msg));
    })?;
    snd(&full, msg!["unknown", "tag"]);
    snd(&full, msg!["twice", "again"]); // its callback was unregistered above
    assert_eq!(next(&mut rx).await?, ("default", msg!["unknown", "tag"]));
    assert_eq!(next(&mut rx).await?, ("default", msg!["twice", "again"]));

    // unreceive removes the callbacks of one pattern; their messages go to the default.
    node.unreceive(&full, "msg2")?;
    snd(&full, msg!["msg2", "unreceived"]);
    assert_eq!(
        next(&mut rx).await?,
        ("default", msg!["msg2", "unreceived"])
    );

    // snd $otherport, reply => rcv port, msg1 => sub { ...; 0 };
    // A request carrying a fresh reply port with its callbacks already bound.
    let t = tx.clone();
    let otherport = port(move |msg: Message| -> Result<(), ValueError> {
        let (tag, reply): (String, PortId) = msg.decode()?;
        let _ = t.send(("otherport", msg![tag]));
        snd(&reply, msg!["msg1", "answer"]);
        Ok(())
    });
    let reply = new_port();
    let t = tx.clone();
    rcv(&reply, "msg1", move |msg: Message| {
        let _ = t.send(("reply msg1", msg));
        true
    })?;
    snd(&otherport, msg!["reply", reply.to_string()]);
    assert_eq!(next(&mut rx).await?, ("otherport", msg!["reply"]));
    assert_eq!(next(&mut rx).await?, ("reply msg1", msg!["msg1", "answer"]));

    // rcv on a miniport makes it a full port; the miniport's callback becomes the default.
    let t = tx.clone();
    let mini = port(move |msg: Message| {
        let _ = t.send(("mini -> default", msg));
    });
    let t = tx.clone();
    rcv(&mini, "special", move |msg: Message| {
        let _ = t.send(("mini special", msg));
    })?;
    snd(&mini, msg!["special", 1]);
    snd(&mini, msg!["plain", 2]);
    assert_eq!(next(&mut rx).await?, ("mini special", msg!["special", 1]));
    assert_eq!(next(&mut rx).await?, ("mini -> default", msg!["plain", 2]));

    // rcv only works on ports of this node.
    let remote: PortId = "elsewhere#some.port".parse()?;
    let refused = rcv(&remote, "x", |_: Message| ());
    println!("rcv on {remote}: {refused:?}");
    assert_eq!(refused, Err(PortError::NotLocal(remote)));

    // A port without callbacks dies on its first message (AEMP 1.30).
    let bare = new_port();
    let t = tx.clone();
    mon(&bare, move |reason: Reason| {
        let _ = t.send(("bare died", Message::new(reason.into_values())));
    })
    .detach();
    snd(&bare, msg!["too", "early"]);
    let (who, reason) = next(&mut rx).await?;
    assert_eq!(who, "bare died");
    assert_eq!(reason[0], Value::from("die"));

    println!("rcv_patterns: all assertions passed");
    Ok(())
}
