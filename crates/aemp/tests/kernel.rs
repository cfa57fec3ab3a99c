//! The node port's requests: `time`, `info`, `snd`/`relay`, `snd_multiple`, `lookup`, `kil`,
//! `eval` (refused), `known_nodes`, `up_nodes`, `devnull`, the empty keepalive and unknown
//! tags (SPEC §1 "node port requests"; reference §3; 2009 API "NODE MESSAGES").

#![allow(clippy::unwrap_used, reason = "test code: a failure is a test failure")]

#[path = "common/support.rs"]
mod support;

use std::time::{SystemTime, UNIX_EPOCH};

use aemp::{EVAL_REFUSED, Message, Node, Origin, Reason, Value, msg};
use support::{WAIT, death, died, flush, next, sink, start, within};
use tokio::sync::mpsc;

fn drain(rx: &mut mpsc::UnboundedReceiver<Message>) -> Vec<Message> {
    let mut got = Vec::new();
    while let Ok(m) = rx.try_recv() {
        got.push(m);
    }
    got
}

/// Sends a request to the node port and returns the single reply.
async fn ask(node: &Node, request: Message) -> Message {
    within(
        "the reply",
        node.call(&node.node_port(), request, Some(WAIT)),
    )
    .await
    .unwrap()
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[tokio::test]
async fn time_answers_the_unix_time_after_the_reply_elements() {
    let node = start();
    let before = now();
    let reply = ask(&node, msg!["time"]).await;
    let after = now();
    assert_eq!(reply.len(), 1);
    let t = reply[0].as_f64().unwrap();
    assert!(
        before - 1.0 <= t && t <= after + 1.0,
        "{before} <= {t} <= {after}"
    );

    // `snd $NODE, time => $myport, timereply => 1, 2` gives `timereply, 1, 2, <time>`.
    let (out, mut rx) = sink(&node);
    node.send(
        &node.node_port(),
        msg!["time", out.to_string(), "timereply", 1, 2],
    );
    let m = next(&mut rx).await;
    assert_eq!(m[..3], [Value::from("timereply"), 1.into(), 2.into()]);
    assert!(m[3].as_f64().is_some());
    assert_eq!(m.len(), 4);
}

#[tokio::test]
async fn info_answers_the_node_id() {
    let node = Node::builder().id("kernel-info").start().unwrap();
    assert_eq!(ask(&node, msg!["info"]).await, msg!["kernel-info"]);
}

#[tokio::test]
async fn known_nodes_and_up_nodes_answer_what_the_node_knows() {
    let node = start();
    assert_eq!(node.known_nodes(), vec![node.id().clone()]);
    assert!(node.up_nodes().is_empty());
    assert_eq!(
        ask(&node, msg!["known_nodes"]).await,
        msg![node.id().as_str()]
    );
    assert_eq!(ask(&node, msg!["up_nodes"]).await, Message::empty());
}

#[tokio::test]
async fn snd_and_relay_forward_the_rest_to_a_port() {
    let node = start();
    let (out, mut rx) = sink(&node);
    node.send(&node.node_port(), msg!["snd", out.to_string(), "a", 1]);
    node.send(&node.node_port(), msg!["relay", out.to_string(), "b", 2]);
    // Relayed to the node port itself: a request in a request.
    node.send(
        &node.node_port(),
        msg!["snd", node.id().as_str(), "snd", out.to_string(), "nested"],
    );
    assert_eq!(next(&mut rx).await, msg!["a", 1]);
    assert_eq!(next(&mut rx).await, msg!["b", 2]);
    assert_eq!(next(&mut rx).await, msg!["nested"]);
}

#[tokio::test]
async fn snd_multiple_forwards_each_message() {
    let node = start();
    let (a, mut rx_a) = sink(&node);
    let (b, mut rx_b) = sink(&node);
    node.send(
        &node.node_port(),
        msg![
            "snd_multiple",
            Value::Array(vec![a.to_string().into(), "to a".into(), 1.into()]),
            Value::Array(vec![b.to_string().into(), "to b".into()]),
            "not an array: skipped",
            Value::Array(vec![a.to_string().into(), "again".into()])
        ],
    );
    assert_eq!(next(&mut rx_a).await, msg!["to a", 1]);
    assert_eq!(next(&mut rx_a).await, msg!["again"]);
    assert_eq!(next(&mut rx_b).await, msg!["to b"]);
}

#[tokio::test]
async fn eval_is_answered_with_the_refusal_as_the_error() {
    let node = start();
    // `eval => $code, @reply` answers `@reply, $@, @results`: here `$@` is the refusal.
    let (out, mut rx) = sink(&node);
    node.send(
        &node.node_port(),
        msg!["eval", "exit", out.to_string(), "evalreply"],
    );
    assert_eq!(next(&mut rx).await, msg!["evalreply", EVAL_REFUSED]);
    assert!(!EVAL_REFUSED.is_empty());
    assert_eq!(ask(&node, msg!["eval", "1+1"]).await, msg![EVAL_REFUSED]);
    // Without @reply nothing is answered, and nothing happens.
    node.send(&node.node_port(), msg!["eval", "die"]);
    assert_eq!(ask(&node, msg!["info"]).await, msg![node.id().as_str()]);
}

#[tokio::test]
async fn kil_kills_a_local_port_with_the_given_reason() {
    let node = start();
    let (port, _rx) = sink(&node);
    let dead = death(&node, &port);
    node.send(
        &node.node_port(),
        msg!["kil", port.name(), "remote", "reason"],
    );
    let reason = died(dead).await;
    assert_eq!(reason, Reason::new(vec!["remote".into(), "reason".into()]));
    assert_eq!(reason.origin(), Origin::Remote);

    // With no reason: a normal kill.
    let (port, _rx) = sink(&node);
    let dead = death(&node, &port);
    node.send(&node.node_port(), msg!["kil", port.name()]);
    assert!(died(dead).await.is_normal());
}

#[tokio::test]
async fn kil_of_the_node_port_or_without_a_name_is_ignored() {
    let node = start();
    let (port, mut rx) = sink(&node);
    node.send(&node.node_port(), msg!["kil", "", "die", "nope"]);
    node.send(&node.node_port(), msg!["kil", Value::Null]);
    node.send(&node.node_port(), msg!["kil"]);
    node.send(&node.node_port(), msg!["kil", "no-such-port"]);
    // The node port still answers, and other ports are untouched.
    assert_eq!(ask(&node, msg!["info"]).await, msg![node.id().as_str()]);
    node.send(&port, msg!["alive"]);
    assert_eq!(next(&mut rx).await, msg!["alive"]);
}

#[tokio::test]
async fn devnull_keepalives_and_unknown_tags_are_ignored() {
    let node = start();
    let (out, mut rx) = sink(&node);
    let me = out.to_string();
    for request in [
        msg!["devnull", me.as_str(), "x"],
        Message::empty(),
        msg![""],
        msg!["", me.as_str()],
        msg!["no_such_request", me.as_str(), "x"],
        msg!["AnyEvent::MP::Kernel::snd", me.as_str(), "x"],
        msg!["system", "rm -rf /", me.as_str()],
        msg![Value::Array(vec![]), me.as_str()],
        msg!["snd"],
        msg!["snd", "not a port id#\u{1}"],
    ] {
        node.send(&node.node_port(), request);
    }
    assert_eq!(ask(&node, msg!["info"]).await, msg![node.id().as_str()]);
    flush(&node).await;
    assert!(drain(&mut rx).is_empty());
}

#[tokio::test]
async fn requests_from_inside_a_callback_are_answered_in_order() {
    let node = start();
    let (out, mut rx) = sink(&node);
    let n = node.clone();
    let o = out.to_string();
    let client = node.port(move |_: Message| {
        let np = n.node_port();
        n.send(&np, msg!["info", o.as_str(), 1]);
        n.send(&np, msg!["snd", o.as_str(), 2]);
        n.send(&np, msg!["known_nodes", o.as_str(), 3]);
    });
    node.send(&client, msg!["go"]);
    assert_eq!(next(&mut rx).await, msg![1, node.id().as_str()]);
    assert_eq!(next(&mut rx).await, msg![2]);
    assert_eq!(next(&mut rx).await, msg![3, node.id().as_str()]);
}

#[tokio::test]
async fn a_numeric_tag_is_compared_as_a_string() {
    // The tag is stringified like Perl's hash lookup: `1` is the tag "1", unknown here.
    let node = start();
    let (out, mut rx) = sink(&node);
    node.send(&node.node_port(), msg![1, out.to_string()]);
    assert_eq!(ask(&node, msg!["info"]).await, msg![node.id().as_str()]);
    flush(&node).await;
    assert!(drain(&mut rx).is_empty());
}
