//! `receive` (AEMP's `rcv`): tag and prefix patterns, several callbacks per tag, `Flow::Done`,
//! the default callback, miniport conversion and changes from inside a callback (SPEC §1
//! `rcv`; reference §2.4; 2009 API `rcv`).

#![allow(clippy::unwrap_used, reason = "test code: a failure is a test failure")]

#[path = "common/support.rs"]
mod support;

use aemp::{Flow, Message, Node, Pattern, PortError, PortId, Reason, Value, msg};
use support::{death, died, flush, next, sink, start};
use tokio::sync::mpsc;

fn drain(rx: &mut mpsc::UnboundedReceiver<Message>) -> Vec<Message> {
    let mut got = Vec::new();
    while let Ok(m) = rx.try_recv() {
        got.push(m);
    }
    got
}

/// A callback that forwards `[label, msg...]` to `out`, then returns `flow`.
fn tell(
    node: &Node,
    out: &PortId,
    label: &'static str,
    flow: Flow,
) -> impl FnMut(Message) -> Flow + Send + 'static {
    let node = node.clone();
    let out = out.clone();
    move |m: Message| {
        let mut reply = msg![label];
        reply.extend(m);
        node.send(&out, reply);
        flow
    }
}

#[tokio::test]
async fn callbacks_get_the_whole_message_by_tag() {
    let node = start();
    let (out, mut rx) = sink(&node);
    let port = node.new_port();
    node.receive(&port, "ping", tell(&node, &out, "ping", Flow::Continue))
        .unwrap();
    node.receive(&port, "pong", tell(&node, &out, "pong", Flow::Continue))
        .unwrap();
    node.send(&port, msg!["pong", 2]);
    node.send(&port, msg!["ping", 1]);
    assert_eq!(next(&mut rx).await, msg!["pong", "pong", 2]);
    assert_eq!(next(&mut rx).await, msg!["ping", "ping", 1]);
}

#[tokio::test]
async fn every_callback_of_a_tag_gets_the_message_in_registration_order() {
    let node = start();
    let (out, mut rx) = sink(&node);
    let port = node.new_port();
    for label in ["first", "second", "third"] {
        node.receive(&port, "t", tell(&node, &out, label, Flow::Continue))
            .unwrap();
    }
    node.send(&port, msg!["t", 1]);
    node.send(&port, msg!["t", 2]);
    let got: Vec<Message> = [
        next(&mut rx).await,
        next(&mut rx).await,
        next(&mut rx).await,
        next(&mut rx).await,
        next(&mut rx).await,
        next(&mut rx).await,
    ]
    .into();
    assert_eq!(
        got,
        vec![
            msg!["first", "t", 1],
            msg!["second", "t", 1],
            msg!["third", "t", 1],
            msg!["first", "t", 2],
            msg!["second", "t", 2],
            msg!["third", "t", 2],
        ]
    );
}

#[tokio::test]
async fn flow_done_unregisters_just_that_callback() {
    let node = start();
    let (out, mut rx) = sink(&node);
    let port = node.new_port();
    node.receive(&port, "t", tell(&node, &out, "keep", Flow::Continue))
        .unwrap();
    node.receive(&port, "t", tell(&node, &out, "once", Flow::Done))
        .unwrap();
    node.receive(&port, "t", tell(&node, &out, "also", Flow::Continue))
        .unwrap();
    let dead = death(&node, &port);
    node.send(&port, msg!["t", 1]);
    node.send(&port, msg!["t", 2]);
    flush(&node).await;
    assert_eq!(
        drain(&mut rx),
        vec![
            msg!["keep", "t", 1],
            msg!["once", "t", 1],
            msg!["also", "t", 1],
            msg!["keep", "t", 2],
            msg!["also", "t", 2],
        ]
    );
    // Unregistering a callback never kills the port.
    node.kill(&port, Reason::new(vec!["end".into()])).unwrap();
    assert_eq!(died(dead).await, Reason::new(vec!["end".into()]));
}

#[tokio::test]
async fn returning_true_unregisters_and_false_keeps() {
    let node = start();
    let (out, mut rx) = sink(&node);
    let port = node.new_port();
    let (n1, o1) = (node.clone(), out.clone());
    node.receive(&port, "t", move |m: Message| {
        n1.send(&o1, msg!["true", m[1].clone()]);
        true
    })
    .unwrap();
    let (n2, o2) = (node.clone(), out.clone());
    node.receive(&port, "t", move |m: Message| {
        n2.send(&o2, msg!["false", m[1].clone()]);
        false
    })
    .unwrap();
    node.send(&port, msg!["t", 1]);
    node.send(&port, msg!["t", 2]);
    flush(&node).await;
    assert_eq!(
        drain(&mut rx),
        vec![msg!["true", 1], msg!["false", 1], msg!["false", 2]]
    );
}

#[tokio::test]
async fn prefix_patterns_match_the_first_elements_with_wildcards() {
    let node = start();
    let (out, mut rx) = sink(&node);
    let port = node.new_port();
    let pattern = Pattern::prefix([Value::from("child_died"), Pattern::ANY, Value::from(3)]);
    node.receive(&port, pattern, tell(&node, &out, "matched", Flow::Continue))
        .unwrap();
    node.receive_default(&port, tell(&node, &out, "default", Flow::Continue))
        .unwrap();
    node.send(&port, msg!["child_died", 7, 3, "extra"]);
    node.send(&port, msg!["child_died", "anything", 3]);
    node.send(&port, msg!["child_died", 7, 4]);
    node.send(&port, msg!["child_died", 7]);
    node.send(&port, msg!["other", 7, 3]);
    flush(&node).await;
    assert_eq!(
        drain(&mut rx),
        vec![
            msg!["matched", "child_died", 7, 3, "extra"],
            msg!["matched", "child_died", "anything", 3],
            msg!["default", "child_died", 7, 4],
            msg!["default", "child_died", 7],
            msg!["default", "other", 7, 3],
        ]
    );
}

#[tokio::test]
async fn a_literal_null_in_a_prefix_pattern_matches_only_null() {
    let node = start();
    let (out, mut rx) = sink(&node);
    let port = node.new_port();
    let pattern = Pattern::Prefix(vec![Some(Value::from("t")), Some(Value::Null)]);
    node.receive(&port, pattern, tell(&node, &out, "null", Flow::Continue))
        .unwrap();
    node.send(&port, msg!["t", 1]);
    node.send(&port, msg!["t", Value::Null]);
    flush(&node).await;
    assert_eq!(drain(&mut rx), vec![msg!["null", "t", Value::Null]]);
}

#[tokio::test]
async fn a_numeric_first_element_matches_its_string_tag() {
    let node = start();
    let (out, mut rx) = sink(&node);
    let port = node.new_port();
    node.receive(&port, "1", tell(&node, &out, "one", Flow::Continue))
        .unwrap();
    node.send(&port, msg![1, "int"]);
    node.send(&port, msg!["1", "string"]);
    node.send(&port, msg![true, "bool is 1 in Perl"]);
    node.send(&port, msg![2, "no"]);
    flush(&node).await;
    assert_eq!(
        drain(&mut rx),
        vec![
            msg!["one", 1, "int"],
            msg!["one", "1", "string"],
            msg!["one", true, "bool is 1 in Perl"],
        ]
    );
}

#[tokio::test]
async fn unmatched_messages_go_to_the_default_callback() {
    let node = start();
    let (out, mut rx) = sink(&node);
    let port = node.new_port();
    node.receive(&port, "known", tell(&node, &out, "known", Flow::Continue))
        .unwrap();
    node.receive_default(&port, tell(&node, &out, "default", Flow::Continue))
        .unwrap();
    node.send(&port, msg!["unknown", 1]);
    node.send(&port, msg!["known", 2]);
    node.send(&port, Message::empty());
    flush(&node).await;
    assert_eq!(
        drain(&mut rx),
        vec![
            msg!["default", "unknown", 1],
            msg!["known", "known", 2],
            msg!["default"],
        ]
    );
}

#[tokio::test]
async fn unmatched_messages_without_a_default_are_dropped_and_the_port_lives() {
    let node = start();
    let (out, mut rx) = sink(&node);
    let port = node.new_port();
    node.receive(&port, "known", tell(&node, &out, "known", Flow::Continue))
        .unwrap();
    let dead = death(&node, &port);
    node.send(&port, msg!["unknown"]);
    node.send(&port, msg!["known"]);
    assert_eq!(next(&mut rx).await, msg!["known", "known"]);
    node.kill(&port, Reason::new(vec!["by test".into()]))
        .unwrap();
    assert_eq!(died(dead).await, Reason::new(vec!["by test".into()]));
}

#[tokio::test]
async fn receive_on_a_miniport_keeps_its_callback_as_the_default() {
    let node = start();
    let (out, mut rx) = sink(&node);
    let port = node.port(tell(&node, &out, "old", Flow::Continue));
    node.receive(&port, "new", tell(&node, &out, "new", Flow::Continue))
        .unwrap();
    node.send(&port, msg!["new", 1]);
    node.send(&port, msg!["other", 2]);
    flush(&node).await;
    assert_eq!(
        drain(&mut rx),
        vec![msg!["new", "new", 1], msg!["old", "other", 2]]
    );
}

#[tokio::test]
async fn receive_from_inside_the_ports_callback_applies_to_the_next_message() {
    let node = start();
    let (out, mut rx) = sink(&node);
    let port = node.new_port();
    let (n2, o2) = (node.clone(), out.clone());
    node.receive(&port, "arm", move |_: Message| {
        let me = aemp::self_port().unwrap();
        n2.receive(&me, "armed", tell(&n2, &o2, "armed", Flow::Continue))
            .unwrap();
        n2.send(&o2, msg!["arming"]);
    })
    .unwrap();
    node.receive_default(&port, tell(&node, &out, "default", Flow::Continue))
        .unwrap();
    // Queued together: the first "armed" arrives before the callback exists.
    node.send(&port, msg!["armed", 1]);
    node.send(&port, msg!["arm"]);
    node.send(&port, msg!["armed", 2]);
    flush(&node).await;
    assert_eq!(
        drain(&mut rx),
        vec![
            msg!["default", "armed", 1],
            msg!["arming"],
            msg!["armed", "armed", 2],
        ]
    );
}

#[tokio::test]
async fn unreceive_removes_the_callbacks_of_a_pattern() {
    let node = start();
    let (out, mut rx) = sink(&node);
    let port = node.new_port();
    node.receive(&port, "a", tell(&node, &out, "a1", Flow::Continue))
        .unwrap();
    node.receive(&port, "a", tell(&node, &out, "a2", Flow::Continue))
        .unwrap();
    node.receive(&port, "b", tell(&node, &out, "b", Flow::Continue))
        .unwrap();
    node.send(&port, msg!["a"]);
    node.unreceive(&port, "a").unwrap();
    node.send(&port, msg!["a"]);
    node.send(&port, msg!["b"]);
    flush(&node).await;
    assert_eq!(
        drain(&mut rx),
        vec![msg!["a1", "a"], msg!["a2", "a"], msg!["b", "b"]]
    );
}

#[tokio::test]
async fn a_failing_rcv_callback_kills_the_port_and_stops_the_others() {
    let node = start();
    let (out, mut rx) = sink(&node);
    let port = node.new_port();
    node.receive(&port, "t", tell(&node, &out, "before", Flow::Continue))
        .unwrap();
    node.receive(&port, "t", |_: Message| Err::<(), _>("rcv failed"))
        .unwrap();
    node.receive(&port, "t", tell(&node, &out, "after", Flow::Continue))
        .unwrap();
    let dead = death(&node, &port);
    node.send(&port, msg!["t"]);
    assert_eq!(died(dead).await, Reason::die("rcv failed"));
    flush(&node).await;
    assert_eq!(drain(&mut rx), vec![msg!["before", "t"]]);
}

#[tokio::test]
async fn a_panicking_default_callback_kills_the_port_with_die() {
    let node = start();
    let port = node.new_port();
    node.receive_default(&port, |_: Message| -> () { panic!("default failed") })
        .unwrap();
    let dead = death(&node, &port);
    node.send(&port, msg!["x"]);
    assert_eq!(died(dead).await, Reason::die("default failed"));
}

#[tokio::test]
async fn receive_is_refused_on_ports_of_other_nodes_and_node_ports() {
    let node = start();
    let remote: PortId = "elsewhere#abc.1".parse().unwrap();
    assert_eq!(
        node.receive(&remote, "t", |_: Message| ()),
        Err(PortError::NotLocal(remote.clone()))
    );
    let own = node.node_port();
    assert_eq!(
        node.receive_default(&own, |_: Message| ()),
        Err(PortError::NotLocal(own.clone()))
    );
    // On a dead local port it is accepted and has no effect.
    let (port, _rx) = sink(&node);
    let dead = death(&node, &port);
    node.kill(&port, Reason::normal()).unwrap();
    died(dead).await;
    assert_eq!(node.receive(&port, "t", |_: Message| ()), Ok(()));
}

#[tokio::test]
async fn a_default_callback_returning_done_is_unregistered() {
    let node = start();
    let (out, mut rx) = sink(&node);
    let port = node.new_port();
    node.receive(&port, "known", tell(&node, &out, "known", Flow::Continue))
        .unwrap();
    node.receive_default(&port, tell(&node, &out, "default", Flow::Done))
        .unwrap();
    let dead = death(&node, &port);
    node.send(&port, msg!["x", 1]);
    node.send(&port, msg!["x", 2]);
    node.send(&port, msg!["known"]);
    flush(&node).await;
    assert_eq!(
        drain(&mut rx),
        vec![msg!["default", "x", 1], msg!["known", "known"]]
    );
    // Unregistering the default callback does not end the port.
    node.kill(&port, Reason::new(vec!["end".into()])).unwrap();
    assert_eq!(died(dead).await, Reason::new(vec!["end".into()]));
}
