//! The node port: the bare node ID is a port too, and answers requests (`time`, `relay`,
//! `devnull`, `eval`, `lookup`; see also the `reg_lookup` example).
//!
//! Run it with `cargo run -p aemp --example node_messages`.
//!
//! The Perl it translates (AnyEvent::MP 1.38, NODE MESSAGES):
//!
//! ```perl
//! # Many of them take arguments called @reply, which will simply be used to compose a
//! # reply message - $reply[0] is the port to reply to, $reply[1] the type and
//! # the remaining arguments are simply the message data.
//!
//! lookup => $name, @reply   # the port ID of a well-known port, or undef
//! devnull => ...            # Generic data sink/CPU heat conversion.
//! relay => $port, @msg      # Simply forwards the message to the given port.
//! eval => $string[ @reply]  # a message of the form @reply, $@, @evalres is sent.
//!
//! # Example: crash another node.
//! snd $othernode, eval => "exit";
//!
//! time => @reply            # Replies the the current node time to @reply.
//!
//! # Example: tell the current node to send the current time to $myport in a
//! # timereply message.
//! snd $NODE, time => $myport, timereply => 1, 2;
//! # => snd $myport, timereply => 1, 2, <time>
//! ```
//!
//! Differences from the Perl:
//!
//! - `eval` is refused: a Rust node never evaluates code. With `@reply` it answers
//!   `@reply, aemp::EVAL_REFUSED` (the error in the place of `$@`, and no results).
//! - There is no network transport yet, so `$othernode` is this node.

use std::error::Error;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aemp::prelude::*;
use tokio::sync::mpsc::unbounded_channel;

#[path = "common/events.rs"]
mod events;
use events::{Event, forward, next};

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let node = Node::builder().id("node-messages").start()?;
    let (tx, mut rx) = unbounded_channel::<Event>();
    let myport = port(forward(&tx, "myport"));

    // $NODE is a port ID: the node port.
    let node_port = PortId::from(NODE());
    assert!(node_port.is_node_port());
    assert_eq!(node_port, node.node_port());
    println!("node port = {node_port}");

    // snd $NODE, time => $myport, timereply => 1, 2;
    // => snd $myport, timereply => 1, 2, <time>
    let before = unix_now();
    snd(
        &node_port,
        msg!["time", myport.to_string(), "timereply", 1, 2],
    );
    let (who, reply) = next(&mut rx).await?;
    assert_eq!(who, "myport");
    assert_eq!(&reply[..3], &msg!["timereply", 1, 2][..]);
    let time = reply
        .get(3)
        .and_then(Value::as_f64)
        .ok_or("no time in the reply")?;
    assert!(
        (before - 1.0..=unix_now() + 1.0).contains(&time),
        "time {time}"
    );

    // relay => $port, @msg: simply forwards the message to the given port.
    snd(
        &node_port,
        msg!["relay", myport.to_string(), "relayed", "hello"],
    );
    assert_eq!(next(&mut rx).await?, ("myport", msg!["relayed", "hello"]));

    // devnull => ...: swallowed without an answer. The node port handles requests in order,
    // so when the time request sent after it is answered, the devnull was swallowed.
    snd(&node_port, msg!["devnull", "heat", "conversion"]);
    snd(
        &node_port,
        msg!["time", myport.to_string(), "after devnull"],
    );
    let (who, reply) = next(&mut rx).await?;
    assert_eq!((who, &reply[0]), ("myport", &Value::from("after devnull")));

    // snd $othernode, eval => "exit";  -- refused, and the node lives on.
    snd(&node_port, msg!["eval", "exit"]);
    // eval => $string, @reply: the answer is @reply and the error.
    snd(
        &node_port,
        msg!["eval", "exit", myport.to_string(), "evalreply"],
    );
    assert_eq!(
        next(&mut rx).await?,
        ("myport", msg!["evalreply", aemp::EVAL_REFUSED])
    );

    // An unknown request is logged and ignored, never executed.
    snd(&node_port, msg!["Some::function", 1, 2, 3]);

    // The node port answers `cal` too: the reply port is appended as the last element.
    let reply = node
        .call(&node_port, msg!["time"], Some(Duration::from_secs(1)))
        .await?;
    println!("cal time = {}", Value::Array(reply.to_vec()));
    assert!(reply[0].as_f64().is_some());

    // A node port cannot be killed.
    assert!(kil(&node_port, Reason::normal()).is_err());

    println!("node_messages: all assertions passed");
    Ok(())
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}
