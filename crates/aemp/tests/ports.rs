//! Ports: miniports and what their callbacks return, failing callbacks, kills (also while
//! messages are queued), and the node port's protection (SPEC §1 `port`, `kil`, `SELF`;
//! reference §1.3, §2.3, §2.10).

#![allow(clippy::unwrap_used, reason = "test code: a failure is a test failure")]

#[path = "common/support.rs"]
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use aemp::{Flow, KillError, Message, PortId, Reason, Value, msg};
use support::{death, died, flush, next, sink, start, start_on_task, within};
use tokio::sync::mpsc;

/// Drains what a sink has received so far.
fn drain(rx: &mut mpsc::UnboundedReceiver<Message>) -> Vec<Message> {
    let mut got = Vec::new();
    while let Ok(m) = rx.try_recv() {
        got.push(m);
    }
    got
}

#[tokio::test]
async fn a_miniport_gets_every_message_unchanged() {
    let node = start();
    let (port, mut rx) = sink(&node);
    node.send(&port, msg!["ping", 1, 2.5, true]);
    node.send(&port, Message::empty());
    node.send(&port, msg![Value::Null, "x"]);
    assert_eq!(next(&mut rx).await, msg!["ping", 1, 2.5, true]);
    assert_eq!(next(&mut rx).await, Message::empty());
    assert_eq!(next(&mut rx).await, msg![Value::Null, "x"]);
}

#[tokio::test]
async fn every_kind_of_value_passes_through_unchanged() {
    let node = start();
    let (port, mut rx) = sink(&node);
    let all = msg![
        Value::Null,
        false,
        i64::MIN,
        Value::from_u64(u64::MAX),
        -0.5,
        "text ü",
        Value::Bytes(vec![0, 255, 10]),
        Value::Array(vec![1.into(), Value::Array(vec![]), "x".into()]),
        Value::Map(vec![("k".into(), 1.into()), (2.into(), Value::Null)])
    ];
    node.send(&port, all.clone());
    assert_eq!(next(&mut rx).await, all);
}

#[derive(Debug, PartialEq, serde::Deserialize, serde::Serialize)]
struct Point {
    x: i32,
    y: i32,
}

#[tokio::test]
async fn messages_built_from_serde_tuples_decode_to_typed_values() {
    let node = start();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let mut tx = Some(tx);
    let port = node.port(move |m: Message| {
        let decoded: (String, Point, Vec<u8>, Option<bool>) = m.decode()?;
        let second: Point = m.decode_element(1)?;
        assert_eq!(decoded.1, second);
        drop(tx.take().unwrap().send(decoded));
        Ok::<_, aemp::ValueError>(())
    });
    let msg =
        Message::from_serialize(&("move", Point { x: 1, y: -2 }, vec![3_u8, 4], None::<bool>))
            .unwrap();
    node.send(&port, msg);
    assert_eq!(
        within("the decoded message", rx).await.unwrap(),
        ("move".to_owned(), Point { x: 1, y: -2 }, vec![3, 4], None)
    );
    // A value that is not a sequence is no message.
    assert!(Message::from_serialize(&Point { x: 0, y: 0 }).is_err());
}

#[tokio::test]
async fn a_port_id_parsed_from_text_reaches_the_port() {
    let node = start();
    let (port, mut rx) = sink(&node);
    let parsed: PortId = port.to_string().parse().unwrap();
    assert_eq!(parsed, port);
    assert!(node.port_is_local(&parsed));
    node.send(&parsed, msg!["via text"]);
    assert_eq!(next(&mut rx).await, msg!["via text"]);
}

#[tokio::test]
async fn self_port_is_the_running_port_and_none_outside() {
    let node = start();
    assert_eq!(aemp::self_port(), None);
    let (out, mut rx) = sink(&node);
    let n2 = node.clone();
    let port = node.port(move |_: Message| {
        let me = aemp::self_port().map(|p| p.to_string());
        n2.send(&out, msg![me]);
    });
    node.send(&port, msg!["who"]);
    assert_eq!(next(&mut rx).await, msg![port.to_string()]);
}

/// A miniport whose callback ends it with `done` after counting its calls.
async fn finishes_normally<R: aemp::IntoFlow + Send + 'static>(done: R) {
    let node = start();
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let mut done = Some(done);
    let port = node.port(move |m: Message| {
        c.fetch_add(1, Ordering::SeqCst);
        assert_eq!(m, msg!["last"]);
        done.take().unwrap()
    });
    let dead = death(&node, &port);
    node.send(&port, msg!["last"]);
    node.send(&port, msg!["too late"]);
    let reason = died(dead).await;
    assert!(reason.is_normal(), "{reason}");
    assert_eq!(reason.values(), &[] as &[Value]);
    flush(&node).await;
    assert_eq!(calls.load(Ordering::SeqCst), 1, "no call after done");
}

#[tokio::test]
async fn a_miniport_returning_flow_done_dies_normally() {
    finishes_normally(Flow::Done).await;
}

#[tokio::test]
async fn a_miniport_returning_true_dies_normally() {
    finishes_normally(true).await;
}

#[tokio::test]
async fn a_miniport_returning_false_or_continue_lives_on() {
    let node = start();
    let (out, mut rx) = sink(&node);
    let n2 = node.clone();
    let mut calls = 0;
    let port = node.port(move |_: Message| {
        calls += 1;
        n2.send(&out, msg![calls]);
        Flow::Continue
    });
    let o2 = node.clone();
    let (out2, mut rx2) = sink(&node);
    let port2 = node.port(move |_: Message| {
        o2.send(&out2, msg!["called"]);
        false
    });
    for _ in 0..3 {
        node.send(&port, msg!["x"]);
        node.send(&port2, msg!["x"]);
    }
    for n in 1..=3 {
        assert_eq!(next(&mut rx).await, msg![n]);
        assert_eq!(next(&mut rx2).await, msg!["called"]);
    }
}

#[tokio::test]
async fn a_panic_kills_only_that_port_with_die() {
    let node = start();
    let (bystander, mut by_rx) = sink(&node);
    let (out, mut rx) = sink(&node);
    let n2 = node.clone();
    let port = node.port(move |m: Message| {
        if m[0] == Value::from("boom") {
            panic!("kaboom");
        }
        n2.send(&out, m);
    });
    let dead = death(&node, &port);
    node.send(&port, msg!["1"]);
    node.send(&port, msg!["boom"]);
    node.send(&port, msg!["2"]);
    assert_eq!(died(dead).await, Reason::die("kaboom"));
    flush(&node).await;
    assert_eq!(drain(&mut rx), vec![msg!["1"]], "nothing after the panic");
    // The node and its other ports carry on.
    node.send(&bystander, msg!["still here"]);
    assert_eq!(next(&mut by_rx).await, msg!["still here"]);
}

#[tokio::test]
async fn a_formatted_panic_message_is_the_die_text() {
    let node = start();
    let port = node.port(|m: Message| -> () { panic!("bad element {}", m[0]) });
    let dead = death(&node, &port);
    node.send(&port, msg![7]);
    assert_eq!(died(dead).await, Reason::die("bad element 7"));
}

#[tokio::test]
async fn an_err_from_a_callback_kills_the_port_with_die() {
    let node = start();
    let port = node.port(|m: Message| {
        if m[0] == Value::from("bad") {
            Err("bad input")
        } else {
            Ok(())
        }
    });
    let dead = death(&node, &port);
    node.send(&port, msg!["good"]);
    node.send(&port, msg!["bad"]);
    assert_eq!(died(dead).await, Reason::die("bad input"));

    // `?` on a decode error works the same, with the error's text.
    let typed = node.port(|m: Message| {
        let n: i64 = m.decode_element(0)?;
        let _ = n;
        Ok::<_, aemp::ValueError>(())
    });
    let dead = death(&node, &typed);
    node.send(&typed, msg!["not a number"]);
    let reason = died(dead).await;
    assert_eq!(reason.tag(), Some("die"));
    assert_eq!(reason.values().len(), 2);
    assert!(!reason.values()[1].as_str().unwrap().is_empty());
}

#[tokio::test]
async fn new_port_without_callback_dies_on_its_first_message() {
    let node = start();
    let port = node.new_port();
    let dead = death(&node, &port);
    node.send(&port, msg!["hello"]);
    let reason = died(dead).await;
    assert_eq!(
        reason,
        Reason::die("received message on port without callback")
    );
}

#[tokio::test]
async fn killing_a_node_port_is_refused() {
    let node = start();
    let own = node.node_port();
    assert_eq!(
        node.kill(&own, Reason::normal()),
        Err(KillError::NodePort(own.clone()))
    );
    let other: PortId = "elsewhere".parse().unwrap();
    assert_eq!(
        node.kill(&other, Reason::die("x")),
        Err(KillError::NodePort(other.clone()))
    );
    // The node still answers.
    let reply = within("info", node.call(&own, msg!["info"], Some(support::WAIT)))
        .await
        .unwrap();
    assert_eq!(reply, msg![node.id().as_str()]);
}

#[tokio::test]
async fn a_callback_killing_its_own_port_gets_what_was_queued_before_the_kill() {
    // The dispatcher is a task on this current-thread runtime, so everything below is
    // queued before it runs (a dispatcher thread could run "stop" before "2" is sent).
    let node = start_on_task();
    let (out, mut rx) = sink(&node);
    let n2 = node.clone();
    let port = node.port(move |m: Message| {
        if m[0] == Value::from("stop") {
            let me = aemp::self_port().unwrap();
            n2.kill(&me, Reason::new(vec!["stopped".into()])).unwrap();
            // Sent after the kill: never delivered.
            n2.send(&me, msg!["after kill"]);
        }
        n2.send(&out, m);
    });
    let dead = death(&node, &port);
    for m in [msg!["1"], msg!["stop"], msg!["2"], msg!["3"]] {
        node.send(&port, m);
    }
    assert_eq!(died(dead).await, Reason::new(vec!["stopped".into()]));
    node.send(&port, msg!["4"]);
    flush(&node).await;
    assert_eq!(
        drain(&mut rx),
        vec![msg!["1"], msg!["stop"], msg!["2"], msg!["3"]]
    );
}

#[tokio::test]
async fn a_callback_killing_another_port_with_queued_messages() {
    let node = start();
    let (victim, mut rx) = sink(&node);
    let dead = death(&node, &victim);
    let n2 = node.clone();
    let v2 = victim.clone();
    let killer = node.port(move |_: Message| {
        n2.kill(&v2, Reason::die("killed")).unwrap();
        n2.send(&v2, msg!["after kill"]);
    });
    // Queued before the kill is issued (the dispatcher runs concurrently with this thread,
    // so only messages sent before "go" are certainly ahead of the kill).
    node.send(&victim, msg!["queued 1"]);
    node.send(&victim, msg!["queued 2"]);
    node.send(&killer, msg!["go"]);
    assert_eq!(died(dead).await, Reason::die("killed"));
    flush(&node).await;
    assert_eq!(drain(&mut rx), vec![msg!["queued 1"], msg!["queued 2"]]);
}

#[tokio::test]
async fn a_dead_port_stays_dead() {
    let node = start();
    let (port, mut rx) = sink(&node);
    let dead = death(&node, &port);
    node.kill(&port, Reason::normal()).unwrap();
    assert!(died(dead).await.is_normal());
    node.send(&port, msg!["hello?"]);
    // A new port never reuses the dead one's ID.
    let (fresh, mut fresh_rx) = sink(&node);
    assert_ne!(fresh, port);
    node.send(&fresh, msg!["fresh"]);
    assert_eq!(next(&mut fresh_rx).await, msg!["fresh"]);
    flush(&node).await;
    assert!(drain(&mut rx).is_empty());
    // Killing it again is harmless.
    node.kill(&port, Reason::die("again")).unwrap();
    let again = death(&node, &port);
    assert_eq!(died(again).await.values(), support::no_such_port(&port));
}

#[tokio::test]
async fn set_callback_replaces_what_a_port_does() {
    let node = start();
    let (a, mut rx_a) = sink(&node);
    let (b, mut rx_b) = sink(&node);
    let n2 = node.clone();
    let port = node.port(move |m: Message| n2.send(&a, m));
    node.send(&port, msg!["first"]);
    let n3 = node.clone();
    node.set_callback(&port, move |m: Message| n3.send(&b, m))
        .unwrap();
    node.send(&port, msg!["second"]);
    assert_eq!(next(&mut rx_a).await, msg!["first"]);
    assert_eq!(next(&mut rx_b).await, msg!["second"]);
    flush(&node).await;
    assert!(drain(&mut rx_a).is_empty());
}

#[tokio::test]
async fn a_failed_port_takes_no_more_messages_and_its_kill_is_queued() {
    // The failure stops deliveries at once; the kill itself is queued like any `kill`, so a
    // monitor issued after the fatal message (but before the kill ran) sees the real reason.
    let node = start();
    let (out, mut rx) = sink(&node);
    let n2 = node.clone();
    let port = node.port(move |m: Message| {
        if m[0] == Value::from("boom") {
            return Err("failed");
        }
        n2.send(&out, m);
        Ok(())
    });
    node.send(&port, msg!["boom"]);
    let late_monitor = death(&node, &port);
    node.send(&port, msg!["dropped"]);
    assert_eq!(died(late_monitor).await, Reason::die("failed"));
    flush(&node).await;
    assert!(drain(&mut rx).is_empty());
}
