//! Ordering: messages from one sender arrive in order without gaps, and kills, sends and
//! spawn inits take effect in the order they were issued (SPEC promise 1; reference §2.10,
//! §2.11, §2.15).

#![allow(clippy::unwrap_used, reason = "test code: a failure is a test failure")]

#[path = "common/support.rs"]
mod support;

use std::sync::{Arc, Mutex};

use aemp::{Message, Node, PortId, Reason, Value, msg};
use support::{death, died, flush, next, sink, start, within};
use tokio::sync::oneshot;

/// Messages per stream for the large ordering tests: a million, as SPEC §6 asks (about a
/// second in a debug build).
const MANY: i64 = 1_000_000;

/// A port that checks it gets `0..count` in order and reports `(received, first error)`
/// once it has seen `count` messages.
fn counter(node: &Node, count: i64) -> (PortId, oneshot::Receiver<(i64, Option<String>)>) {
    let (tx, rx) = oneshot::channel();
    let mut tx = Some(tx);
    let mut expected = 0_i64;
    let mut error = None;
    let port = node.port(move |m: Message| {
        let n = m[0].as_i64().unwrap_or(-1);
        if n != expected && error.is_none() {
            error = Some(format!("expected {expected}, got {n}"));
        }
        expected = n + 1;
        if expected == count
            && let Some(tx) = tx.take()
        {
            drop(tx.send((count, error.take())));
        }
    });
    (port, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_messages_from_outside_the_node_arrive_in_order() {
    let node = start();
    let (port, done) = counter(&node, MANY);
    for n in 0..MANY {
        node.send(&port, Message::from([Value::from(n)]));
    }
    let (count, error) = within("all messages", done).await.unwrap();
    assert_eq!(error, None);
    assert_eq!(count, MANY);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_messages_from_a_callback_arrive_in_order() {
    let node = start();
    let (port, done) = counter(&node, MANY);
    let n2 = node.clone();
    let sender = node.port(move |_: Message| {
        for n in 0..MANY {
            n2.send(&port, Message::from([Value::from(n)]));
        }
    });
    node.send(&sender, msg!["go"]);
    let (count, error) = within("all messages", done).await.unwrap();
    assert_eq!(error, None);
    assert_eq!(count, MANY);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_sender_keeps_its_order_among_concurrent_senders() {
    const SENDERS: i64 = 4;
    const EACH: i64 = 20_000;
    let node = start();
    let (tx, rx) = oneshot::channel();
    let mut tx = Some(tx);
    let mut next_of = [0_i64; 4];
    let mut errors = Vec::new();
    let mut total = 0;
    let port = node.port(move |m: Message| {
        let (s, n) = (m[0].as_i64().unwrap(), m[1].as_i64().unwrap());
        let slot = &mut next_of[usize::try_from(s).unwrap()];
        if n != *slot {
            errors.push(format!("sender {s}: expected {}, got {n}", *slot));
        }
        *slot = n + 1;
        total += 1;
        if total == SENDERS * EACH {
            drop(tx.take().unwrap().send(std::mem::take(&mut errors)));
        }
    });
    let tasks: Vec<_> = (0..SENDERS)
        .map(|s| {
            let node = node.clone();
            let port = port.clone();
            tokio::spawn(async move {
                for n in 0..EACH {
                    node.send(&port, msg![s, n]);
                    if n % 1000 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let errors = within("all messages", rx).await.unwrap();
    assert!(errors.is_empty(), "{errors:?}");
}

/// Messages sent before the kill in the kill-ordering tests: more than one dispatcher batch.
const BEFORE_KILL: i64 = 10_000;

/// Sends `1..=BEFORE_KILL`, kills the port, sends a few more: exactly the first ones arrive
/// and the monitor sees the kill's reason.
fn send_kill_send(node: &Node, port: &PortId) {
    for n in 1..=BEFORE_KILL {
        node.send(port, msg![n]);
    }
    node.kill(port, Reason::new(vec!["stop".into()])).unwrap();
    for n in BEFORE_KILL + 1..=BEFORE_KILL + 10 {
        node.send(port, msg![n]);
    }
}

fn received(rx: &mut tokio::sync::mpsc::UnboundedReceiver<Message>) -> Vec<i64> {
    let mut got = Vec::new();
    while let Ok(m) = rx.try_recv() {
        got.push(m[0].as_i64().unwrap());
    }
    got
}

#[tokio::test]
async fn kill_from_outside_takes_effect_between_earlier_and_later_sends() {
    let node = start();
    let (port, mut rx) = sink(&node);
    let dead = death(&node, &port);
    send_kill_send(&node, &port);
    assert_eq!(died(dead).await, Reason::new(vec!["stop".into()]));
    flush(&node).await;
    assert_eq!(received(&mut rx), (1..=BEFORE_KILL).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_from_a_callback_takes_effect_between_earlier_and_later_sends() {
    let node = start();
    let (port, mut rx) = sink(&node);
    let dead = death(&node, &port);
    let n2 = node.clone();
    let driver = node.port(move |_: Message| send_kill_send(&n2, &port));
    node.send(&driver, msg!["go"]);
    assert_eq!(died(dead).await, Reason::new(vec!["stop".into()]));
    flush(&node).await;
    assert_eq!(received(&mut rx), (1..=BEFORE_KILL).collect::<Vec<_>>());
}

/// Registers `order::logged`: its init logs `init <arg>` and makes the new port log
/// `<arg> got <msg[0]>` for every message.
fn register_logged(node: &Node) -> Arc<Mutex<Vec<String>>> {
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    let n = node.clone();
    node.register_init("order::logged", move |args: Message| {
        let name = args[0].as_str().unwrap().to_owned();
        l.lock().unwrap().push(format!("init {name}"));
        let l = l.clone();
        n.set_callback(&aemp::self_port().unwrap(), move |m: Message| {
            let what = m[0].to_perl_string().unwrap().into_owned();
            l.lock().unwrap().push(format!("{name} got {what}"));
        })
    })
    .unwrap();
    log
}

/// Spawns two ports and interleaves sends and a kill; returns the two spawned ports.
fn spawn_sequence(node: &Node) -> (PortId, PortId) {
    let a = node.spawn(node.id(), "order::logged", msg!["A"]).unwrap();
    node.send(&a, msg!["a1"]);
    let b = node.spawn(node.id(), "order::logged", msg!["B"]).unwrap();
    node.send(&a, msg!["a2"]);
    node.send(&b, msg!["b1"]);
    node.kill(&a, Reason::new(vec!["enough".into()])).unwrap();
    node.send(&a, msg!["a3"]);
    node.send(&b, msg!["b2"]);
    (a, b)
}

const SPAWN_LOG: [&str; 6] = [
    "init A", "A got a1", "init B", "A got a2", "B got b1", "B got b2",
];

#[tokio::test]
async fn spawn_inits_sends_and_kills_from_outside_run_in_issue_order() {
    let node = start();
    let log = register_logged(&node);
    let (a, b) = spawn_sequence(&node);
    // Monitors placed after the spawn see the port the init created.
    let dead_a = death(&node, &a);
    let dead_b = death(&node, &b);
    node.kill(&b, Reason::normal()).unwrap();
    assert!(died(dead_b).await.is_normal());
    // A was killed before this monitor was added: it was already dead.
    assert_eq!(died(dead_a).await.values(), support::no_such_port(&a));
    assert_eq!(*log.lock().unwrap(), SPAWN_LOG);
}

#[tokio::test]
async fn spawn_inits_sends_and_kills_from_a_callback_run_in_issue_order() {
    let node = start();
    let log = register_logged(&node);
    let (tx, rx) = oneshot::channel();
    let mut tx = Some(tx);
    let n2 = node.clone();
    let driver = node.port(move |_: Message| {
        let (a, b) = spawn_sequence(&n2);
        // From inside a callback, a monitor is in place before the queued kill runs.
        let tx = tx.take().unwrap();
        let n3 = n2.clone();
        n2.monitor(&a, move |reason| {
            n3.kill(&b, Reason::normal()).unwrap();
            drop(tx.send(reason));
        })
        .detach();
    });
    node.send(&driver, msg!["go"]);
    let reason = within("A's monitor", rx).await.unwrap();
    assert_eq!(reason, Reason::new(vec!["enough".into()]));
    flush(&node).await;
    assert_eq!(*log.lock().unwrap(), SPAWN_LOG);
}

#[tokio::test]
async fn a_message_to_a_port_created_in_the_same_callback_is_delivered() {
    let node = start();
    let (out, mut rx) = sink(&node);
    let n2 = node.clone();
    let creator = node.port(move |_: Message| {
        let out = out.clone();
        // The prelude's `snd` acts on the node whose callback runs.
        let fresh = n2.port(move |m: Message| aemp::prelude::snd(&out, m));
        n2.send(&fresh, msg!["hello"]);
    });
    node.send(&creator, msg!["go"]);
    assert_eq!(next(&mut rx).await, msg!["hello"]);
}

#[tokio::test]
async fn a_send_to_the_own_port_runs_after_the_callback_returns() {
    let node = start();
    let (tx, rx) = oneshot::channel();
    let mut tx = Some(tx);
    let n2 = node.clone();
    let mut depth = 0;
    let mut log = Vec::new();
    let port = node.port(move |m: Message| {
        depth += 1;
        let n = m[0].as_i64().unwrap();
        log.push((n, depth));
        if n < 3 {
            n2.send(&aemp::self_port().unwrap(), msg![n + 1]);
            log.push((-n, depth));
        } else if let Some(tx) = tx.take() {
            drop(tx.send(std::mem::take(&mut log)));
        }
        depth -= 1;
    });
    node.send(&port, msg![1]);
    // Never re-entered: every callback finishes (depth 1) before the next starts.
    assert_eq!(
        within("the chain", rx).await.unwrap(),
        vec![(1, 1), (-1, 1), (2, 1), (-2, 1), (3, 1)]
    );
}
