//! The node table forgets nodes nobody needs, and a node that shuts down closes its links,
//! so its peers see it down at once. Nodes in this process, on 127.0.0.1.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failure is a test failure"
)]

#[path = "common/support.rs"]
mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use aemp::{CallError, Message, Node, PortId, Value, msg};
use support::{WAIT, death, died, next, sink, within};

fn node(monitor_timeout: Duration) -> Node {
    Node::builder()
        .secret("lifecycle")
        .bind("127.0.0.1:0".parse::<SocketAddr>().unwrap())
        .monitor_timeout(monitor_timeout)
        .start()
        .unwrap()
}

/// Waits until `f` holds, checking every 20 ms, at most [`WAIT`].
async fn until(what: &str, mut f: impl FnMut() -> bool) {
    within(what, async {
        while !f() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_only_named_are_forgotten_after_monitor_timeout() {
    let a = node(Duration::from_millis(300));
    for i in 0..50 {
        let p: PortId = format!("ghost{i}#x.1").parse().unwrap();
        a.send(&p, msg!["hello"]);
    }
    assert_eq!(a.known_nodes().len(), 51);
    // Unable to connect after monitor_timeout, then forgotten after another.
    until("the ghosts to be forgotten", || {
        a.known_nodes() == vec![a.id().clone()]
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_left_is_forgotten_and_not_announced_but_a_seed_is_kept() {
    let timeout = Duration::from_millis(300);
    let seed = node(timeout);
    let seed_addr = seed.listen_addrs()[0];
    // A short-lived client, as `aemp cal` makes: connects, is announced, leaves.
    let client = Node::builder()
        .secret("lifecycle")
        .seed(seed_addr)
        .start()
        .unwrap();
    let client_id = client.id().clone();
    until("the client at the seed", || seed.node_is_up(&client_id)).await;
    until("the client's addr at the seed", || {
        seed.node_addresses().iter().any(|(n, _)| *n == client_id)
    })
    .await;
    // A worker whose seed is that seed: the seed going away must not make it forget it.
    let worker = Node::builder()
        .secret("lifecycle")
        .seed(seed_addr)
        .monitor_timeout(timeout)
        .start()
        .unwrap();
    until("the worker at the seed", || worker.node_is_up(seed.id())).await;

    client.shutdown().await;
    until("the client to be forgotten by the seed", || {
        !seed.known_nodes().contains(&client_id)
    })
    .await;
    assert!(!seed.node_addresses().iter().any(|(n, _)| *n == client_id));

    // A newcomer hears of nobody who left.
    let newcomer = Node::builder()
        .secret("lifecycle")
        .seed(seed_addr)
        .start()
        .unwrap();
    until("the newcomer to learn the worker", || {
        newcomer
            .node_addresses()
            .iter()
            .any(|(n, _)| n == worker.id())
    })
    .await;
    assert!(
        !newcomer
            .node_addresses()
            .iter()
            .any(|(n, _)| *n == client_id)
    );

    // The seed goes; a ghost named at the same time is forgotten, the seed is not.
    let seed_id = seed.id().clone();
    seed.shutdown().await;
    let ghost: PortId = "ghost-w#x.1".parse().unwrap();
    worker.send(&ghost, msg!["hello"]);
    until("the worker to see the seed down", || {
        !worker.node_is_up(&seed_id)
    })
    .await;
    until("the ghost to be forgotten", || {
        !worker.known_nodes().contains(ghost.node())
    })
    .await;
    assert!(
        worker.known_nodes().contains(&seed_id),
        "{:?}",
        worker.known_nodes()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_every_link_so_peers_see_the_node_down_at_once() {
    // monitor_timeout is long: only the closed link can make the monitor fire quickly.
    let a = node(Duration::from_secs(30));
    let b = node(Duration::from_secs(30));
    within("connect", a.connect(b.listen_addrs()[0]))
        .await
        .unwrap();
    let (p, _rx) = sink(&b);
    let dead = death(&a, &p);
    let reply = a
        .call(&b.node_port(), msg!["info"], Some(WAIT))
        .await
        .unwrap();
    assert_eq!(reply[0], Value::from(b.id().as_str()));
    // b has a call pending to a port of a that never answers.
    let silent = a.port(|_: Message| ());
    let pending = b.call(&silent, msg!["hello?"], None);
    let b_addr = b.listen_addrs()[0];

    let start = Instant::now();
    within("shutdown", b.shutdown()).await;
    let reason = died(dead).await;
    eprintln!("peer saw the shutdown after {:?}", start.elapsed());
    assert_eq!(reason.tag(), Some("transport_error"));
    assert!(start.elapsed() < Duration::from_secs(5));
    until("b down at a", || !a.up_nodes().contains(b.id())).await;
    assert_eq!(
        within("the pending call", pending).await,
        Err(CallError::Shutdown)
    );
    assert!(b.listen_addrs().is_empty());
    assert!(
        tokio::net::TcpStream::connect(b_addr).await.is_err(),
        "still listening"
    );
    // Shutting down again only waits.
    within("a second shutdown", b.shutdown()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_writes_what_was_sent_before_it() {
    let a = node(Duration::from_secs(30));
    let b = node(Duration::from_secs(30));
    within("connect", b.connect(a.listen_addrs()[0]))
        .await
        .unwrap();
    let (p, mut rx) = sink(&a);
    for n in 0..20_000_u64 {
        b.send(&p, msg!["n", n]);
    }
    let done = b.shutdown();
    for n in 0..20_000_u64 {
        assert_eq!(next(&mut rx).await[1].as_u64(), Some(n));
    }
    within("shutdown", done).await;
    // And nothing is sent or connected after it.
    let q: PortId = format!("{}#late.1", a.id()).parse().unwrap();
    b.send(&q, msg!["late"]);
    assert!(b.up_nodes().is_empty());
    let err = b.connect(a.listen_addrs()[0]).await.unwrap_err();
    assert!(err.to_string().contains("shutting down"), "{err}");
}
