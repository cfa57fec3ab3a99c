//! Nodes: IDs, the builder, port IDs (format, locality, never reused), the node port, and
//! shutdown (SPEC §1 "node ID", "port ID"; reference §1.1, §1.2).

#![allow(clippy::unwrap_used, reason = "test code: a failure is a test failure")]

#[path = "common/support.rs"]
mod support;

use std::collections::HashSet;

use aemp::{Message, Node, NodeError, PortId, Reason, msg};
use support::{death, next, sink, start, within};
use tokio::sync::oneshot;

#[tokio::test]
async fn the_builder_takes_a_node_id() {
    let node = Node::builder().id("my-node.example/1").start().unwrap();
    assert_eq!(node.id().as_str(), "my-node.example/1");
    assert_eq!(node.node_port().to_string(), "my-node.example/1");
    assert!(node.node_port().is_node_port());
    assert!(node.port_is_local(&node.node_port()));
}

#[tokio::test]
async fn the_default_node_id_is_a_random_anon_id() {
    let a = start();
    let b = start();
    let c = Node::builder().id("anon/").start().unwrap();
    for node in [&a, &b, &c] {
        let id = node.id().as_str();
        assert!(id.starts_with("anon/") && id.len() > "anon/".len(), "{id}");
    }
    assert_ne!(a.id(), b.id());
    assert_ne!(a.id(), c.id());
}

#[tokio::test]
async fn invalid_node_ids_are_refused() {
    for id in ["", "a b", "a#b", "a;b", "a,b", "a\nb", "a\tb", "0"] {
        assert!(
            matches!(Node::builder().id(id).start(), Err(NodeError::InvalidId(_))),
            "{id:?}"
        );
    }
}

#[test]
fn a_node_needs_a_tokio_runtime() {
    assert!(matches!(Node::builder().start(), Err(NodeError::NoRuntime)));
}

/// `<base62 of 96 random bits>.<base62 counter>`.
fn split_name(port: &PortId) -> (&str, &str) {
    let (prefix, counter) = port.name().split_once('.').unwrap();
    let base62 = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric());
    assert!(base62(prefix) && base62(counter), "{port}");
    // 96 bits need up to 17 base-62 digits; fewer only with leading zero bits.
    assert!((10..=17).contains(&prefix.len()), "{port}");
    (prefix, counter)
}

#[tokio::test]
async fn port_names_are_a_random_prefix_and_a_counter_never_reused() {
    let node = start();
    let mut seen = HashSet::new();
    let mut prefixes = HashSet::new();
    for round in 0..4 {
        let ports: Vec<PortId> = (0..2_500).map(|_| node.port(|_: Message| ())).collect();
        for p in &ports {
            assert_eq!(p.node(), node.id());
            prefixes.insert(split_name(p).0.to_owned());
            assert!(seen.insert(p.to_string()), "reused {p} in round {round}");
        }
        // Killing them frees nothing for reuse.
        for p in &ports {
            node.kill(p, Reason::normal()).unwrap();
        }
    }
    // Mailboxes and spawned ports draw from the same sequence.
    node.register_init("node::idle", |_: Message| ()).unwrap();
    let spawned = node
        .spawn(node.id(), "node::idle", Message::empty())
        .unwrap();
    let mailbox = node.mailbox();
    for p in [&spawned, mailbox.port(), &node.new_port()] {
        prefixes.insert(split_name(p).0.to_owned());
        assert!(seen.insert(p.to_string()), "reused {p}");
    }
    assert_eq!(prefixes.len(), 1, "one prefix per node");

    // Another node has another prefix.
    let other = start();
    let (theirs, _rx) = sink(&other);
    assert!(!prefixes.contains(split_name(&theirs).0));
}

#[tokio::test]
async fn locality_is_by_node_id() {
    let node = Node::builder().id("here").start().unwrap();
    let (mine, _rx) = sink(&node);
    assert!(node.port_is_local(&mine));
    let parsed: PortId = "here#whatever".parse().unwrap();
    assert!(node.port_is_local(&parsed));
    let remote: PortId = "there#x.1".parse().unwrap();
    assert!(!node.port_is_local(&remote));
    assert!(!node.port_is_local(&"there".parse().unwrap()));
}

#[tokio::test]
async fn sending_to_a_port_of_another_node_never_fails_visibly() {
    let node = start();
    let remote: PortId = "unreachable-node#x.1".parse().unwrap();
    node.send(&remote, msg!["dropped"]);
    node.kill(&remote, Reason::die("x")).unwrap();
    // The node goes on.
    let (p, mut rx) = sink(&node);
    node.send(&p, msg!["fine"]);
    assert_eq!(next(&mut rx).await, msg!["fine"]);
}

#[tokio::test]
async fn shutdown_finishes_earlier_work_then_drops_every_port_silently() {
    let node = start();
    let (p, mut rx) = sink(&node);
    let (tx, monitor_rx) = oneshot::channel();
    node.monitor(&p, move |r| drop(tx.send(r))).detach();
    let mut mailbox = node.mailbox();
    node.send(&p, msg!["before"]);
    node.send(mailbox.port(), msg!["queued"]);
    node.shutdown();
    node.send(&p, msg!["after"]);
    assert_eq!(next(&mut rx).await, msg!["before"]);
    // The port's callback was dropped with the node: the channel closes, nothing more.
    assert_eq!(within("the port to go", rx.recv()).await, None);
    assert_eq!(mailbox.recv().await, Some(msg!["queued"]));
    assert_eq!(within("the mailbox to close", mailbox.recv()).await, None);
    // The monitor did not fire: it was dropped unfired.
    assert!(
        within("the monitor to be dropped", monitor_rx)
            .await
            .is_err()
    );
    // Using the node afterwards is harmless.
    let late = node.port(|_: Message| ());
    node.send(&late, msg!["ignored"]);
    assert!(node.kill(&late, Reason::normal()).is_ok());
}

#[tokio::test]
async fn shutdown_from_a_callback() {
    let node = start();
    let (_p, mut rx) = sink(&node);
    let n = node.clone();
    let stopper = node.port(move |_: Message| drop(n.shutdown()));
    let monitor = death(&node, &stopper);
    node.send(&stopper, msg!["stop"]);
    assert_eq!(within("the node to stop", rx.recv()).await, None);
    // The stopper's monitor was dropped unfired too.
    assert!(within("the monitor", monitor).await.is_err());
}
