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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeds_that_list_each_other_and_themselves_settle() {
    // As in a typical Perl setup: every node's seed list holds every seed, itself included.
    let first = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let second = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addrs = [first.local_addr().unwrap(), second.local_addr().unwrap()];
    drop((first, second));
    let start = |id: &str, bind: SocketAddr| {
        builder(id)
            .bind(bind)
            .seed(addrs[0])
            .seed(addrs[1])
            .start()
            .unwrap()
    };
    let s1 = start(&unique("s1"), addrs[0]);
    let s2 = start(&unique("s2"), addrs[1]);
    eventually("the seeds to connect", || {
        s1.node_is_up(s2.id()) && s2.node_is_up(s1.id())
    })
    .await;
    // Each knows the other's listener, and messages flow both ways.
    let mut at_s2 = s2.mailbox();
    s1.send(at_s2.port(), msg!["one"]);
    assert_eq!(within("s1 → s2", at_s2.recv()).await.unwrap(), msg!["one"]);
    let mut at_s1 = s1.mailbox();
    s2.send(at_s1.port(), msg!["two"]);
    assert_eq!(within("s2 → s1", at_s1.recv()).await.unwrap(), msg!["two"]);
    // A few dial rounds later the connection is still the first one (no churn, no flapping).
    let (tx, mut downs) = tokio::sync::mpsc::unbounded_channel();
    s1.monitor_nodes(move |e| {
        if matches!(e, aemp::NodeEvent::Down(..)) {
            let _ = tx.send(());
        }
    })
    .detach();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(downs.try_recv().is_err(), "the seeds' connection went down");
    assert_eq!(s1.up_nodes(), [s2.id().clone()]);
    for n in [s1, s2] {
        n.shutdown();
    }
}
