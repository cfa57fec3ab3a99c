//! Two nodes in one process, connected over TCP on 127.0.0.1: a remote spawn, a message
//! round trip, and a monitor that fires when the remote port is killed.
//!
//! Run it with `cargo run -p aemp --example two_nodes`. (The README's tour shows this file.)

use std::error::Error;
use std::time::Duration;

use aemp::{Message, Node, PortId, Reason, msg};

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    // Two nodes sharing a secret; `b` listens, `a` dials it.
    let a = Node::builder().id("a").secret("s3cret").start()?;
    let b = Node::builder()
        .id("b")
        .secret("s3cret")
        .bind("127.0.0.1:0".parse()?)
        .start()?;

    // `b` offers an init function other nodes may spawn by name: an echo port.
    let node = b.clone();
    b.register_init("demo::echo", move |_args: Message| {
        let me = aemp::self_port().ok_or("no port context")?;
        let n = node.clone();
        node.set_callback(&me, move |mut m: Message| {
            // [reply_port, rest...] → rest to reply_port
            if let Some(Ok(reply)) = m.take_first().map(|p| p.decode::<PortId>()) {
                n.send(&reply, m);
            }
        })
        .map_err(|e| e.to_string())
    })?;

    a.connect(b.listen_addrs()[0]).await?;
    let echo = a.spawn(b.id(), "demo::echo", msg![])?; // runs on b
    println!("spawned {echo}");

    let mut inbox = a.mailbox();
    a.send(&echo, msg![inbox.port(), "hello", 42]);
    let reply = inbox.recv_timeout(Duration::from_secs(5)).await?;
    assert_eq!(reply, msg!["hello", 42]);
    println!("echoed {reply}");

    let (tx, died) = tokio::sync::oneshot::channel();
    a.monitor(&echo, move |reason| {
        let _ = tx.send(reason);
    })
    .detach();
    a.kill(&echo, Reason::new(vec!["enough".into()]))?;
    let reason = tokio::time::timeout(Duration::from_secs(5), died).await??;
    assert_eq!(reason, Reason::new(vec!["enough".into()]));
    println!("{echo} died with {reason}");
    Ok(())
}
