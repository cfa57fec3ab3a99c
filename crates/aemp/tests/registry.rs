//! Well-known names: `register`, `lookup`, `unregister`, and the node request `lookup`
//! (SPEC §1 `reg`/`lookup`; 2009 API `reg` and `lookup => $name, @reply`).

#![allow(clippy::unwrap_used, reason = "test code: a failure is a test failure")]

#[path = "common/support.rs"]
mod support;

use aemp::{Message, Reason, Value, msg};
use support::{WAIT, death, died, flush, next, sink, start, within};
use tokio::sync::oneshot;

#[tokio::test]
async fn a_registered_port_is_found_by_name() {
    let node = start();
    let (port, mut rx) = sink(&node);
    assert_eq!(node.lookup("service"), None);
    node.register("service", &port);
    let found = node.lookup("service").unwrap();
    assert_eq!(found, port);
    node.send(&found, msg!["via name"]);
    assert_eq!(next(&mut rx).await, msg!["via name"]);
    assert_eq!(node.lookup("other"), None);
}

#[tokio::test]
async fn a_name_is_removed_when_its_port_dies() {
    let node = start();
    let (port, _rx) = sink(&node);
    node.register("service", &port);
    // Already gone when the monitors run.
    let (tx, rx) = oneshot::channel();
    let n2 = node.clone();
    node.monitor(&port, move |_| drop(tx.send(n2.lookup("service"))))
        .detach();
    node.kill(&port, Reason::die("x")).unwrap();
    assert_eq!(within("monitor", rx).await.unwrap(), None);
    assert_eq!(node.lookup("service"), None);
}

#[tokio::test]
async fn a_name_is_removed_when_its_port_fails() {
    let node = start();
    let port = node.port(|_: Message| -> () { panic!("failed") });
    node.register("fragile", &port);
    let dead = death(&node, &port);
    node.send(&port, msg!["x"]);
    assert_eq!(died(dead).await, Reason::die("failed"));
    assert_eq!(node.lookup("fragile"), None);
}

#[tokio::test]
async fn registering_again_replaces_and_the_old_ports_death_keeps_the_new_name() {
    let node = start();
    let (old, _r1) = sink(&node);
    let (new, _r2) = sink(&node);
    node.register("service", &old);
    node.register("service", &new);
    assert_eq!(node.lookup("service"), Some(new.clone()));
    let dead = death(&node, &old);
    node.kill(&old, Reason::normal()).unwrap();
    died(dead).await;
    assert_eq!(node.lookup("service"), Some(new));
}

#[tokio::test]
async fn unregister_removes_a_name() {
    let node = start();
    let (port, _rx) = sink(&node);
    node.register("service", &port);
    assert_eq!(node.unregister("service"), Some(port.clone()));
    assert_eq!(node.lookup("service"), None);
    assert_eq!(node.unregister("service"), None);
    // The port itself lives on.
    let dead = death(&node, &port);
    node.kill(&port, Reason::new(vec!["end".into()])).unwrap();
    assert_eq!(died(dead).await, Reason::new(vec!["end".into()]));
}

#[tokio::test]
async fn registering_a_dead_port_does_not_keep_the_name() {
    let node = start();
    let (port, _rx) = sink(&node);
    let dead = death(&node, &port);
    node.kill(&port, Reason::normal()).unwrap();
    died(dead).await;
    node.register("ghost", &port);
    flush(&node).await;
    assert_eq!(node.lookup("ghost"), None);
}

#[tokio::test]
async fn a_callback_can_register_its_own_port() {
    let node = start();
    let (tx, rx) = oneshot::channel();
    let mut tx = Some(tx);
    let n2 = node.clone();
    let port = node.port(move |_: Message| {
        n2.register("me", &aemp::self_port().unwrap());
        drop(tx.take().unwrap().send(n2.lookup("me")));
    });
    node.send(&port, msg!["register"]);
    assert_eq!(within("register", rx).await.unwrap(), Some(port.clone()));
    let dead = death(&node, &port);
    node.kill(&port, Reason::normal()).unwrap();
    died(dead).await;
    assert_eq!(node.lookup("me"), None);
}

#[tokio::test]
async fn the_lookup_node_request_answers_the_port_id_or_null() {
    let node = start();
    let (port, _rx) = sink(&node);
    node.register("service", &port);
    let reply = node
        .call(&node.node_port(), msg!["lookup", "service"], Some(WAIT))
        .await
        .unwrap();
    assert_eq!(reply, msg![port.to_string()]);
    // The answered ID is usable as it is.
    let parsed: aemp::PortId = reply[0].as_str().unwrap().parse().unwrap();
    assert_eq!(parsed, port);

    let reply = node
        .call(&node.node_port(), msg!["lookup", "missing"], Some(WAIT))
        .await
        .unwrap();
    assert_eq!(reply, msg![Value::Null]);

    // With extra reply elements: `lookup => $name, $port, @extra`.
    let (out, mut rx) = sink(&node);
    node.send(
        &node.node_port(),
        msg!["lookup", "service", out.to_string(), "found", 7],
    );
    assert_eq!(next(&mut rx).await, msg!["found", 7, port.to_string()]);
}
