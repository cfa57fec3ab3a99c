//! The chat server of AEMP's `eg/chat_server`: a port registered by name, clients joining,
//! every line relayed to everyone, a client leaving noticed by a monitor.
//!
//! Run it with `cargo run -p aemp --example chat_server [ADDR]` (default `127.0.0.1:4040`),
//! then start clients in other terminals with
//! `cargo run -p aemp --example chat_client NICK [ADDR]`. The nodes share the secret
//! `$AEMP_SECRET` (default `chat-example`). Stop the server with Ctrl-C.
//!
//! The Perl it follows (eg/chat_server, AnyEvent::MP 1.30, with `reg` for the name):
//!
//! ```perl
//! my %clients;
//! sub msg { snd $_, @_ for values %clients }
//! our $server = port;
//! rcv $server, join => sub {
//!    my ($client, $nick) = @_;
//!    $clients{$client} = $client;
//!    mon $client, sub { delete $clients{$client}; msg "$nick (quits, @_)" };
//!    msg "$nick (joins)";
//! };
//! rcv $server, privmsg => sub { my ($nick, $msg) = @_; msg "$nick: $msg" };
//! ```

use std::error::Error;
use std::net::SocketAddr;

use aemp::Node;

#[path = "common/chat.rs"]
mod chat;

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:4040".to_owned())
        .parse()?;
    let node = Node::builder()
        .id("chat-server")
        .secret(chat::secret())
        .bind(addr)
        .start()?;
    let server = chat::serve(&node)?;
    println!(
        "chat server {server} listening on {:?}; clients: cargo run -p aemp --example chat_client NICK {}",
        node.listen_addrs(),
        node.listen_addrs()[0]
    );
    tokio::signal::ctrl_c().await?;
    node.shutdown();
    println!("chat server stopped");
    Ok(())
}
