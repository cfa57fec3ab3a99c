//! `reg` and `lookup`: well-known port names on a node, found directly, through the node
//! port's `lookup` request, and with `cal`.
//!
//! Run it with `cargo run -p aemp --example reg_lookup`.
//!
//! The Perl it translates (AnyEvent::MP 1.38, `reg` and the node message `lookup`):
//!
//! ```perl
//! reg $port, $name
//! reg $name
//!
//! # Registers the given port (or $SELF if missing) under the name
//! # $name. If the name already exists it is replaced.
//! # A port automatically becomes unregistered when it is killed.
//!
//! # node message:
//! lookup => $name, @reply
//! # Replies with the port ID of the specified well-known port, or undef.
//!
//! snd $NODE, lookup => "chat", $myport, "found";
//! # => snd $myport, found => <port id or undef>
//! ```
//!
//! Differences from the Perl:
//!
//! - The prelude has no `reg` or `lookup`; they are `Node::register(name, &port)` and
//!   `Node::lookup(name)` on the current node (`node()`). `reg $name` is
//!   `node().register(name, &SELF())` inside a port's code.
//! - `cal $NODE, lookup => $name, $cb` appends the reply port last, so the reply is just
//!   `[<port id or null>]`.
//! - There is no network transport yet: the requests go to this node's own node port, as a
//!   remote node's would.

use std::error::Error;
use std::time::Duration;

use aemp::prelude::*;
use tokio::sync::mpsc::unbounded_channel;

#[path = "common/events.rs"]
mod events;
use events::{Event, forward, next, report};

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let node = Node::builder().id("reg-lookup").start()?;
    let (tx, mut rx) = unbounded_channel::<Event>();

    // reg $port, $name
    let chat = port(forward(&tx, "chat"));
    node.register("chat", &chat);
    let found = node.lookup("chat");
    println!("lookup chat = {found:?}");
    assert_eq!(found.as_ref(), Some(&chat));
    assert_eq!(node.lookup("nobody"), None);
    if let Some(chat) = found {
        snd(&chat, msg!["hello", "chat"]);
    }
    assert_eq!(next(&mut rx).await?, ("chat", msg!["hello", "chat"]));

    // snd $NODE, lookup => "chat", $myport, "found";
    // The node port answers with @reply (port, then extra elements) and the result.
    let myport = port(forward(&tx, "myport"));
    let node_port = PortId::from(NODE());
    snd(
        &node_port,
        msg!["lookup", "chat", myport.to_string(), "found"],
    );
    assert_eq!(
        next(&mut rx).await?,
        ("myport", msg!["found", chat.to_string()])
    );
    // An unknown name is answered with undef (null).
    snd(
        &node_port,
        msg!["lookup", "nobody", myport.to_string(), "found"],
    );
    assert_eq!(next(&mut rx).await?, ("myport", msg!["found", Value::Null]));

    // cal $NODE, lookup => "chat", $cb;  -- the reply port goes last.
    let reply = node
        .call(
            &node_port,
            msg!["lookup", "chat"],
            Some(Duration::from_secs(1)),
        )
        .await?;
    println!("cal lookup chat = {}", Value::Array(reply.to_vec()));
    let via_cal: PortId = reply.decode_element(0)?;
    assert_eq!(via_cal, chat);

    // reg $name  -- inside a port's code, registers $SELF.
    let worker = port(|msg: Message| -> Result<(), aemp::ValueError> {
        let name: String = msg.decode_element(1)?;
        aemp::prelude::node().register(&name, &SELF());
        snd(&msg.decode_element::<PortId>(2)?, msg!["registered", name]);
        Ok(())
    });
    snd(&worker, msg!["register_me", "worker", myport.to_string()]);
    assert_eq!(
        next(&mut rx).await?,
        ("myport", msg!["registered", "worker"])
    );
    assert_eq!(node.lookup("worker"), Some(worker.clone()));

    // If the name already exists it is replaced.
    let chat2 = port(forward(&tx, "chat2"));
    node.register("chat", &chat2);
    assert_eq!(node.lookup("chat"), Some(chat2.clone()));
    println!("chat re-registered: {chat2}");

    // A port automatically becomes unregistered when it is killed.
    mon(&chat2, report(&tx, "chat2 died")).detach();
    kil(&chat2, Reason::normal())?;
    assert_eq!(next(&mut rx).await?, ("chat2 died", msg![]));
    assert_eq!(node.lookup("chat"), None);
    let reply = node
        .call(
            &node_port,
            msg!["lookup", "chat"],
            Some(Duration::from_secs(1)),
        )
        .await?;
    assert_eq!(reply, msg![Value::Null]);
    println!(
        "after the kill: lookup chat = {}",
        Value::Array(reply.to_vec())
    );
    // Other names are untouched.
    assert_eq!(node.lookup("worker"), Some(worker));

    println!("reg_lookup: all assertions passed");
    Ok(())
}
