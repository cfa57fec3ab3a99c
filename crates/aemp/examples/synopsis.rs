//! The SYNOPSIS of AnyEvent::MP 1.38, translated line by line: node and port IDs, `snd`,
//! miniports, full ports with `rcv` (a ping/pong on one port), smart matches, `spawn` and the
//! three forms of `mon` the synopsis lists.
//!
//! Run it with `cargo run -p aemp --example synopsis`.
//!
//! The Perl it translates (AnyEvent::MP 1.38, SYNOPSIS):
//!
//! ```perl
//! $NODE      # contains this node's noderef
//! NODE       # returns this node's noderef
//! NODE $port # returns the noderef of the port
//!
//! $SELF      # receiving/own port id in rcv callbacks
//!
//! # sending messages
//! snd $port, type => data...;
//! snd $port, @msg;
//! snd @msg_with_first_element_being_a_port;
//!
//! # miniports
//! my $miniport = port { my @msg = @_; 0 };
//!
//! # full ports
//! my $port = port;
//! rcv $port, smartmatch => $cb->(@msg);
//! rcv $port, ping => sub { snd $_[0], "pong"; 0 };
//! rcv $port, pong => sub { warn "pong received\n"; 0 };
//!
//! # remote ports
//! my $port = spawn $node, $initfunc, @initdata;
//!
//! # more, smarter, matches (_any_ is exported by this module)
//! rcv $port, [child_died => $pid] => sub { ...
//! rcv $port, [_any_, _any_, 3] => sub { .. $_[2] is 3
//!
//! # monitoring
//! mon $port, $cb->(@msg)      # callback is invoked on death
//! mon $port, $otherport       # kill otherport on abnormal death
//! mon $port, $otherport, @msg # send message on death
//! ```
//!
//! Differences from the Perl, all deliberate:
//!
//! - A callback gets the whole message, tag included (as the 1.38 code does: `rcv` calls the
//!   callback with all of `@_`). So the ping's reply port is `msg[1]`; the synopsis's
//!   `$_[0]` would be the tag itself.
//! - A port ID travels in a message as its string form (`port.to_string()`); there is no
//!   `From<PortId> for Value`. The receiver decodes it with `msg.decode_element::<PortId>(i)`.
//! - `snd @msg_with_first_element_being_a_port` has no prelude function; [`snd_msg`] below is
//!   the three-line equivalent.
//! - There is no network transport yet, so `spawn` targets this node.

use std::error::Error;
use std::time::Duration;

use aemp::ValueError;
use aemp::prelude::*;
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

/// What the callbacks report to `main`: who saw it, and the message (or kill reason).
type Event = (&'static str, Message);

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let node = Node::builder().id("synopsis").start()?;
    let (tx, mut rx) = unbounded_channel::<Event>();

    // $NODE / NODE: this node's ID.
    let me = NODE();
    println!("NODE = {me}");
    assert_eq!(me.as_str(), "synopsis");
    assert_eq!(&me, node.id());

    // my $miniport = port { my @msg = @_; 0 };
    // (`0`: not finished, the port stays.)
    let t = tx.clone();
    let miniport = port(move |msg: Message| {
        let _ = t.send(("miniport", msg));
        false
    });
    println!("miniport = {miniport}");

    // NODE $port: the node part of a port ID.
    assert_eq!(node_of(&miniport), me);

    // snd $port, type => data...;
    snd(&miniport, msg!["type", "data", 1, 2.5]);
    assert_eq!(
        next(&mut rx).await?,
        ("miniport", msg!["type", "data", 1, 2.5])
    );

    // snd $port, @msg;
    let msg = msg!["any", "list", "of", "values"];
    snd(&miniport, msg.clone());
    assert_eq!(next(&mut rx).await?, ("miniport", msg));

    // snd @msg_with_first_element_being_a_port;
    snd_msg(msg![miniport.to_string(), "hello", "from", "snd @msg"])?;
    assert_eq!(
        next(&mut rx).await?,
        ("miniport", msg!["hello", "from", "snd @msg"])
    );

    // my $port = port;
    let port = new_port();

    // $SELF: the receiving port's own ID inside its callbacks.
    let t = tx.clone();
    rcv(&port, "whoami", move |_msg: Message| {
        let _ = t.send(("whoami", msg![SELF().to_string()]));
        false
    })?;
    snd(&port, msg!["whoami"]);
    assert_eq!(next(&mut rx).await?, ("whoami", msg![port.to_string()]));

    // rcv $port, smartmatch => $cb->(@msg);
    let t = tx.clone();
    let cb = move |msg: Message| {
        let _ = t.send(("smartmatch", msg));
        false
    };
    rcv(&port, "smartmatch", cb)?;
    snd(&port, msg!["smartmatch", 42]);
    assert_eq!(next(&mut rx).await?, ("smartmatch", msg!["smartmatch", 42]));

    // rcv $port, ping => sub { snd $_[0], "pong"; 0 };
    rcv(&port, "ping", |msg: Message| -> Result<bool, ValueError> {
        let reply: PortId = msg.decode_element(1)?;
        snd(&reply, msg!["pong"]);
        Ok(false)
    })?;
    // rcv $port, pong => sub { warn "pong received\n"; 0 };
    let t = tx.clone();
    rcv(&port, "pong", move |msg: Message| {
        eprintln!("pong received");
        let _ = t.send(("pong", msg));
        false
    })?;
    // The port pings itself: the ping callback answers to the port in the message.
    snd(&port, msg!["ping", port.to_string()]);
    assert_eq!(next(&mut rx).await?, ("pong", msg!["pong"]));

    // rcv $port, [child_died => $pid] => sub { ...
    let pid = 4711;
    let t = tx.clone();
    rcv(
        &port,
        Pattern::prefix([Value::from("child_died"), Value::from(pid)]),
        move |msg: Message| {
            let _ = t.send(("child_died", msg));
            false
        },
    )?;
    snd(&port, msg!["child_died", 1234, "not our child"]);
    snd(&port, msg!["child_died", pid, "exit 0"]);
    // The first message matched no callback and was dropped: the next event is our child's.
    assert_eq!(
        next(&mut rx).await?,
        ("child_died", msg!["child_died", pid, "exit 0"])
    );

    // rcv $port, [_any_, _any_, 3] => sub { .. $_[2] is 3
    let t = tx.clone();
    rcv(
        &port,
        Pattern::prefix([Pattern::ANY, Pattern::ANY, Value::from(3)]),
        move |msg: Message| {
            assert_eq!(msg[2], Value::from(3), "$_[2] is 3");
            let _ = t.send(("any_any_3", msg));
            false
        },
    )?;
    snd(&port, msg!["x", "y", 2]);
    snd(&port, msg!["x", "y", 3, "z"]);
    assert_eq!(next(&mut rx).await?, ("any_any_3", msg!["x", "y", 3, "z"]));

    // my $port = spawn $node, $initfunc, @initdata;
    // The init function runs with $SELF set to the new port and the init data as arguments.
    node.register_init("Synopsis::greeter", |initdata: Message| {
        let greeting: String = initdata.decode_element(0)?;
        rcv(
            &SELF(),
            "greet",
            move |msg: Message| -> Result<(), ValueError> {
                let (_, name, reply): (String, String, PortId) = msg.decode()?;
                snd(&reply, msg![format!("{greeting}, {name}")]);
                Ok(())
            },
        )?;
        Ok::<_, Box<dyn Error>>(())
    })?;
    let greeter = spawn(&NODE(), "Synopsis::greeter", msg!["Hello"])?;
    // Sending right away is fine: the message arrives after the init ran.
    snd(&greeter, msg!["greet", "world", miniport.to_string()]);
    assert_eq!(next(&mut rx).await?, ("miniport", msg!["Hello, world"]));

    // mon $port, $cb->(@msg) # callback is invoked on death
    let t = tx.clone();
    mon(&greeter, move |reason: Reason| {
        let _ = t.send(("mon callback", Message::new(reason.into_values())));
    })
    .detach();
    kil(
        &greeter,
        vec![Value::from("shutdown"), Value::from("by synopsis")],
    )?;
    assert_eq!(
        next(&mut rx).await?,
        ("mon callback", msg!["shutdown", "by synopsis"])
    );

    // mon $port, $otherport # kill otherport on abnormal death
    let (worker, helper) = (new_port(), new_port());
    rcv(&worker, "work", |_: Message| ())?;
    rcv(&helper, "help", |_: Message| ())?;
    mon_link(&worker, &helper).detach();
    let t = tx.clone();
    mon(&helper, move |reason: Reason| {
        let _ = t.send(("helper died", Message::new(reason.into_values())));
    })
    .detach();
    kil(&worker, vec![Value::from("crashed")])?;
    assert_eq!(next(&mut rx).await?, ("helper died", msg!["crashed"]));

    // mon $port, $otherport, @msg # send message on death
    // (@msg, then the reason's values: nothing more for a normal kill.)
    let job = new_port();
    rcv(&job, "run", |_: Message| ())?;
    mon_send(&job, &miniport, msg!["restart", "job"]).detach();
    kil(&job, Reason::normal())?;
    assert_eq!(next(&mut rx).await?, ("miniport", msg!["restart", "job"]));

    println!("synopsis: all assertions passed");
    Ok(())
}

/// `snd @msg_with_first_element_being_a_port`: the first element is the destination.
fn snd_msg(mut msg: Message) -> Result<(), ValueError> {
    let port: PortId = msg.take_first().unwrap_or_default().decode()?;
    snd(&port, msg);
    Ok(())
}

/// The next event, or an error after two seconds (nothing here should take that long).
async fn next(rx: &mut UnboundedReceiver<Event>) -> Result<Event, Box<dyn Error>> {
    let (who, msg) = tokio::time::timeout(Duration::from_secs(2), rx.recv())
        .await
        .map_err(|_| "timed out waiting for an event")?
        .ok_or("event channel closed")?;
    println!("{who:>14}: {}", show(&msg));
    Ok((who, msg))
}

/// A message as JSON, for printing.
fn show(msg: &Message) -> String {
    Value::Array(msg.to_vec()).to_string()
}
