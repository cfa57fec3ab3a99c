//! `aemp bench serve` (hidden): the child side of the network benchmarks.
//!
//! Starts a node on 127.0.0.1:0 with the secret from the environment, a sink port, an echo
//! port and a plain TCP echo listener, announces them in one stdout line, and runs until its
//! stdin closes (or it is killed).

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};

use aemp::{Message, Node, PortId, Value};
use anyhow::{Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::FramingArg;
use super::child::{FAILED, READY, SECRET_ENV};

/// Runs the child until stdin closes. A startup failure is announced on stdout (where the
/// parent reads it) and ends the process with status 1.
pub(super) fn run(framing: FramingArg) -> Result<()> {
    let runtime = crate::cmd::runtime(None)?;
    runtime.block_on(async {
        let served = match start(framing).await {
            Ok(s) => s,
            Err(e) => {
                println!("{FAILED} {e:#}");
                let _ = std::io::stdout().flush();
                std::process::exit(1);
            }
        };
        println!(
            "{READY} addr={} node={} sink={} echo={} tcp={}",
            served.addr,
            served.node.id(),
            served.sink,
            served.echo,
            served.tcp
        );
        std::io::stdout()
            .flush()
            .context("announcing the child's addresses")?;
        // Until the parent closes our stdin (or exits, which closes it too).
        tokio::task::spawn_blocking(|| std::io::copy(&mut std::io::stdin(), &mut std::io::sink()))
            .await
            .context("watching stdin")?
            .context("reading stdin")?;
        served.node.shutdown();
        Ok(())
    })
}

struct Started {
    node: Node,
    addr: SocketAddr,
    sink: PortId,
    echo: PortId,
    tcp: SocketAddr,
}

async fn start(framing: FramingArg) -> Result<Started> {
    let secret = std::env::var(SECRET_ENV).with_context(|| format!("{SECRET_ENV} is not set"))?;
    let node = Node::builder()
        .id("anon/")
        .secret(secret)
        .framings(vec![framing.framing()])
        .bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .start()?;
    let addr = *node
        .listen_addrs()
        .first()
        .context("the node has no listener")?;

    // The sink counts everything but `["done", reply]`, which it answers with `[count]` (and
    // starts counting again), and `["ack", reply]`, which it answers with `["ack", count]`.
    let sink_node = node.clone();
    let mut count = 0_u64;
    let sink = node.port(move |msg: Message| {
        if msg.len() != 2 {
            count += 1;
            return;
        }
        let reply = msg.decode_element::<PortId>(1);
        match (msg[0].as_str(), reply) {
            (Some("done"), Ok(reply)) => {
                sink_node.send(&reply, Message::from([Value::from_u64(count)]));
                count = 0;
            }
            (Some("ack"), Ok(reply)) => {
                sink_node.send(
                    &reply,
                    Message::from([Value::from("ack"), Value::from_u64(count)]),
                );
            }
            _ => count += 1,
        }
    });

    // The echo port answers `[reply, payload]` with `[payload]`.
    let echo_node = node.clone();
    let echo = node.port(move |msg: Message| {
        let mut elements = msg.into_inner().into_iter();
        let reply = elements.next().and_then(|r| r.decode::<PortId>().ok());
        if let (Some(reply), Some(payload)) = (reply, elements.next()) {
            echo_node.send(&reply, Message::from([payload]));
        }
    });

    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .context("binding the TCP echo listener")?;
    let tcp = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(tcp_echo(stream));
        }
    });
    Ok(Started {
        node,
        addr,
        sink,
        echo,
        tcp,
    })
}

/// Writes back everything it reads, until the peer closes.
async fn tcp_echo(mut stream: tokio::net::TcpStream) {
    if stream.set_nodelay(true).is_err() {
        return;
    }
    let mut buf = vec![0_u8; 64 * 1024];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if stream.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}
