//! Seeds and the address part of Global: nodes that only know a seed's address find each
//! other through it (reference §6.3–6.5).

#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failure is a test failure"
)]

#[path = "common/support.rs"]
mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use aemp::{Node, NodeId, msg};
use support::{WAIT, within};

const SECRET: &str = "seeds-test";

fn unique(prefix: &str) -> String {
    let mut r = [0_u8; 6];
    getrandom::fill(&mut r).unwrap();
    format!(
        "{prefix}-{}",
        r.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

fn builder(id: &str) -> aemp::NodeBuilder {
    Node::builder()
        .id(id)
        .secret(SECRET)
        .monitor_timeout(Duration::from_secs(5))
        .connect_interval(Duration::from_millis(200))
}

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// Polls `f` until it holds (bounded by [`WAIT`]).
async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < WAIT, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_find_each_other_through_a_seed() {
    let seed = builder(&unique("seed")).bind(loopback()).start().unwrap();
    let seed_addr = seed.listen_addrs()[0];
    let a = builder(&unique("a"))
        .bind(loopback())
        .seed(seed_addr)
        .start()
        .unwrap();
    let b = builder(&unique("b"))
        .bind(loopback())
        .seed(seed_addr)
        .start()
        .unwrap();
    assert_eq!(a.seeds(), [seed_addr]);

    // Both dial the seed by themselves.
    eventually("a and b to reach the seed", || {
        a.node_is_up(seed.id()) && b.node_is_up(seed.id())
    })
    .await;
    // The seed learned where they listen from their `addr`; each learns the other's through
    // `seedme1`/`nodes`.
    let b_listens: Vec<String> = b.listen_addrs().iter().map(ToString::to_string).collect();
    eventually("a to learn b's address", || {
        a.node_addresses()
            .iter()
            .any(|(id, addrs)| id == b.id() && *addrs == b_listens)
    })
    .await;
    assert!(
        seed.node_addresses().iter().any(|(id, _)| id == a.id()),
        "{:?}",
        seed.node_addresses()
    );

    // So a can send to b although nobody told it b's address.
    let mut inbox = b.mailbox();
    a.send(inbox.port(), msg!["via", "seed"]);
    let got = within("a's message to b", inbox.recv()).await.unwrap();
    assert_eq!(got, msg!["via", "seed"]);
    assert!(a.node_is_up(b.id()));
    for n in [a, b, seed] {
        n.shutdown();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listenerless_node_reaches_others_and_redials_a_lost_seed() {
    let seed_id = unique("seed");
    let seed = builder(&seed_id).bind(loopback()).start().unwrap();
    let seed_addr = seed.listen_addrs()[0];
    let worker = builder(&unique("w"))
        .bind(loopback())
        .seed(seed_addr)
        .start()
        .unwrap();
    // A client without listeners, as the `aemp` tool's nodes are.
    let client = builder(&unique("c")).seed(seed_addr).start().unwrap();
    assert!(client.listen_addrs().is_empty());

    let mut inbox = worker.mailbox();
    let worker_id: NodeId = worker.id().clone();
    eventually("the client to learn the worker's address", || {
        client
            .node_addresses()
            .iter()
            .any(|(id, _)| *id == worker_id)
    })
    .await;
    client.send(inbox.port(), msg!["hello"]);
    assert_eq!(
        within("the client's message", inbox.recv()).await.unwrap(),
        msg!["hello"]
    );
    // The seed knows the client has no listeners (an empty `addr`).
    assert!(
        seed.node_addresses()
            .iter()
            .any(|(id, addrs)| id == client.id() && addrs.is_empty())
    );

    // The seed drops the client: the client dials it again by itself.
    seed.disconnect(client.id());
    eventually("the client to notice", || !client.node_is_up(seed.id())).await;
    eventually("the client to re-dial the seed", || {
        client.node_is_up(seed.id())
    })
    .await;
    for n in [client, worker, seed] {
        n.shutdown();
    }
}
