//! A chat client for `chat_server` (AEMP's `eg/chat_client`): joins under a nick, sends every
//! line typed on stdin, prints every line the server relays. End with Ctrl-D or `/quit`: the
//! client's port dies and the server's monitor tells the others.
//!
//! Run `cargo run -p aemp --example chat_server` first, then
//! `cargo run -p aemp --example chat_client NICK [ADDR]` (default `127.0.0.1:4040`), with the
//! same `$AEMP_SECRET` as the server (default `chat-example`).

use std::error::Error;
use std::net::SocketAddr;

use aemp::{Node, Reason};
use tokio::io::{AsyncBufReadExt, BufReader};

#[path = "common/chat.rs"]
mod chat;

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let nick = args.next().ok_or("usage: chat_client NICK [ADDR]")?;
    let addr: SocketAddr = args
        .next()
        .unwrap_or_else(|| "127.0.0.1:4040".to_owned())
        .parse()?;
    // No listener: this node reaches the server by dialling it.
    let node = Node::builder().secret(chat::secret()).start()?;
    let server_node = node.connect(addr).await?;
    let server = chat::find_server(&node, &server_node).await?;
    let mut inbox = chat::join(&node, &server, &nick);
    println!("joined {server} as {nick}; type lines, /quit to leave");

    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    loop {
        tokio::select! {
            line = inbox.recv() => match line {
                Some(line) => println!("{}", chat::text(&line)),
                None => break,
            },
            typed = lines.next_line() => match typed? {
                Some(t) if t.trim() == "/quit" => break,
                Some(t) => chat::say(&node, &server, &nick, &t),
                None => break,
            },
        }
    }
    // Our port dies with a reason; the server's monitor tells everyone. Wait until the kill
    // has happened and its notice has left for the server before the process ends.
    let (tx, dead) = tokio::sync::oneshot::channel();
    node.monitor(inbox.port(), move |_| {
        let _ = tx.send(());
    })
    .detach();
    node.kill(inbox.port(), Reason::new(vec!["left".into()]))?;
    dead.await?;
    node.wait_queue_below(&server_node, 1).await;
    Ok(())
}
