//! Monitors: the four forms of `mon`, one-shot firing, guards (dropped before death, dropped
//! while the kill is in flight, detached), `monitor_guard`, and missing or dead ports
//! (SPEC §1 `mon`, `mon_guard`, promise 2; reference §1.4, §2.8, §2.9).

#![allow(clippy::unwrap_used, reason = "test code: a failure is a test failure")]

#[path = "common/support.rs"]
mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use aemp::{Message, MonitorGuard, Origin, PortError, PortId, Reason, Value, msg};
use support::{death, died, flush, next, no_such_port, sink, start, within};
use tokio::sync::{mpsc, oneshot};

fn drain(rx: &mut mpsc::UnboundedReceiver<Message>) -> Vec<Message> {
    let mut got = Vec::new();
    while let Ok(m) = rx.try_recv() {
        got.push(m);
    }
    got
}

fn reason(values: &[&str]) -> Reason {
    Reason::new(values.iter().map(|&v| Value::from(v)).collect())
}

#[tokio::test]
async fn a_callback_monitor_gets_the_reason_of_an_abnormal_kill() {
    let node = start();
    let (port, _rx) = sink(&node);
    let dead = death(&node, &port);
    node.kill(&port, reason(&["custom", "why"])).unwrap();
    let got = died(dead).await;
    assert_eq!(got, reason(&["custom", "why"]));
    assert_eq!(got.origin(), Origin::Local);
}

#[tokio::test]
async fn a_callback_monitor_fires_on_a_normal_kill_too() {
    let node = start();
    let (port, _rx) = sink(&node);
    let dead = death(&node, &port);
    node.kill(&port, Reason::normal()).unwrap();
    assert!(died(dead).await.is_normal());
}

#[tokio::test]
async fn monitor_link_kills_the_linked_port_on_abnormal_death_only() {
    let node = start();
    // Abnormal: the linked port dies with the same reason.
    let (port, _rx) = sink(&node);
    let (linked, _lrx) = sink(&node);
    node.monitor_link(&port, &linked).detach();
    let linked_dead = death(&node, &linked);
    node.kill(&port, Reason::die("crash")).unwrap();
    assert_eq!(died(linked_dead).await, Reason::die("crash"));

    // Normal: the linked port lives on.
    let (port, _rx) = sink(&node);
    let (linked, mut lrx) = sink(&node);
    node.monitor_link(&port, &linked).detach();
    let port_dead = death(&node, &port);
    node.kill(&port, Reason::normal()).unwrap();
    assert!(died(port_dead).await.is_normal());
    node.send(&linked, msg!["alive"]);
    assert_eq!(next(&mut lrx).await, msg!["alive"]);
}

#[tokio::test]
async fn monitor_link_on_a_missing_port_kills_the_linked_port_with_no_such_port() {
    let node = start();
    let missing: PortId = format!("{}#no.such", node.id()).parse().unwrap();
    let (linked, _rx) = sink(&node);
    let linked_dead = death(&node, &linked);
    node.monitor_link(&missing, &linked).detach();
    assert_eq!(died(linked_dead).await.values(), no_such_port(&missing));
}

#[tokio::test]
async fn mon_self_links_the_running_port() {
    let node = start();
    let (watched, _rx) = sink(&node);
    let (tx, rx) = oneshot::channel();
    let mut tx = Some(tx);
    let w2 = watched.clone();
    let watcher = node.port(move |_: Message| {
        let guard = aemp::prelude::mon_self(&w2);
        drop(tx.take().unwrap().send(guard.map(MonitorGuard::detach)));
    });
    let watcher_dead = death(&node, &watcher);
    node.send(&watcher, msg!["watch"]);
    within("mon_self", rx).await.unwrap().unwrap();
    node.kill(&watched, reason(&["gone"])).unwrap();
    assert_eq!(died(watcher_dead).await, reason(&["gone"]));

    // Outside a port there is no SELF to link.
    assert_eq!(
        aemp::prelude::mon_self(&watched).err(),
        Some(PortError::NoCurrentPort)
    );
}

#[tokio::test]
async fn monitor_send_appends_the_reason_and_fires_on_normal_kills_too() {
    let node = start();
    let (out, mut rx) = sink(&node);
    let (a, _ra) = sink(&node);
    let (b, _rb) = sink(&node);
    node.monitor_send(&a, &out, msg!["a died", 1]).detach();
    node.monitor_send(&b, &out, msg!["b died"]).detach();
    node.kill(&a, Reason::die("oops")).unwrap();
    assert_eq!(next(&mut rx).await, msg!["a died", 1, "die", "oops"]);
    node.kill(&b, Reason::normal()).unwrap();
    assert_eq!(next(&mut rx).await, msg!["b died"]);
}

#[tokio::test]
async fn monitors_are_one_shot() {
    let node = start();
    let (out, mut rx) = sink(&node);
    let (port, _r) = sink(&node);
    node.monitor_send(&port, &out, msg!["died"]).detach();
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    node.monitor(&port, move |_| {
        c.fetch_add(1, Ordering::SeqCst);
    })
    .detach();
    node.kill(&port, reason(&["first"])).unwrap();
    node.kill(&port, reason(&["second"])).unwrap();
    assert_eq!(next(&mut rx).await, msg!["died", "first"]);
    flush(&node).await;
    assert!(drain(&mut rx).is_empty());
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_guard_dropped_before_death_means_the_monitor_never_fires() {
    let node = start();
    let (out, mut rx) = sink(&node);
    let (port, _r) = sink(&node);
    let (linked, mut lrx) = sink(&node);
    let fired = Arc::new(AtomicBool::new(false));
    let f = fired.clone();
    let callback = node.monitor(&port, move |_| f.store(true, Ordering::SeqCst));
    let send = node.monitor_send(&port, &out, msg!["died"]);
    let link = node.monitor_link(&port, &linked);
    assert_eq!(callback.port(), &port);
    drop((callback, send, link));
    let dead = death(&node, &port);
    node.kill(&port, Reason::die("x")).unwrap();
    assert_eq!(died(dead).await, Reason::die("x"));
    node.send(&linked, msg!["linked still alive"]);
    assert_eq!(next(&mut lrx).await, msg!["linked still alive"]);
    flush(&node).await;
    assert!(!fired.load(Ordering::SeqCst));
    assert!(drain(&mut rx).is_empty());
}

#[tokio::test]
async fn a_guard_dropped_while_the_kill_is_queued_stops_the_monitor() {
    // The kill is already in the node's queue when another port's callback drops the guard.
    let node = start();
    let (out, mut rx) = sink(&node);
    let (port, _r) = sink(&node);
    let guard = Arc::new(Mutex::new(Some(node.monitor_send(
        &port,
        &out,
        msg!["should not fire"],
    ))));
    let g = guard.clone();
    let dropper = node.port(move |_: Message| drop(g.lock().unwrap().take()));
    let dead = death(&node, &port);
    node.send(&dropper, msg!["drop it"]);
    node.kill(&port, Reason::die("x")).unwrap();
    assert_eq!(died(dead).await, Reason::die("x"));
    flush(&node).await;
    assert!(guard.lock().unwrap().is_none(), "the dropper ran");
    assert!(drain(&mut rx).is_empty());
}

#[tokio::test]
async fn a_port_that_kills_itself_and_drops_its_guard_is_not_reported() {
    let node = start();
    let (out, mut rx) = sink(&node);
    let guard: Arc<Mutex<Option<MonitorGuard>>> = Arc::new(Mutex::new(None));
    let g = guard.clone();
    let n2 = node.clone();
    let port = node.port(move |_: Message| {
        n2.kill(&aemp::self_port().unwrap(), Reason::die("self"))
            .unwrap();
        drop(g.lock().unwrap().take());
    });
    *guard.lock().unwrap() = Some(node.monitor_send(&port, &out, msg!["should not fire"]));
    let dead = death(&node, &port);
    node.send(&port, msg!["go"]);
    assert_eq!(died(dead).await, Reason::die("self"));
    flush(&node).await;
    assert!(drain(&mut rx).is_empty());
}

#[tokio::test]
async fn a_guard_dropped_by_another_monitor_of_the_dying_port_stops_it() {
    // Both monitors are on the same port; the first to fire drops the second's guard.
    let node = start();
    let (out, mut rx) = sink(&node);
    let (port, _r) = sink(&node);
    let second: Arc<Mutex<Option<MonitorGuard>>> = Arc::new(Mutex::new(None));
    let s = second.clone();
    let (n2, o2) = (node.clone(), out.clone());
    node.monitor(&port, move |_| {
        drop(s.lock().unwrap().take());
        n2.send(&o2, msg!["first fired"]);
    })
    .detach();
    *second.lock().unwrap() = Some(node.monitor_send(&port, &out, msg!["second fired"]));
    node.kill(&port, Reason::die("x")).unwrap();
    assert_eq!(next(&mut rx).await, msg!["first fired"]);
    flush(&node).await;
    assert!(drain(&mut rx).is_empty());
}

#[tokio::test]
async fn a_detached_monitor_fires() {
    let node = start();
    let (port, _r) = sink(&node);
    let (tx, rx) = oneshot::channel();
    node.monitor(&port, move |r| drop(tx.send(r))).detach();
    node.kill(&port, reason(&["bye"])).unwrap();
    assert_eq!(within("monitor", rx).await.unwrap(), reason(&["bye"]));
}

/// Reports on a channel when it is dropped.
struct DropFlag(Option<oneshot::Sender<()>>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(());
        }
    }
}

#[tokio::test]
async fn monitor_guard_keeps_the_value_until_the_port_dies() {
    let node = start();
    let (port, _r) = sink(&node);
    let (tx, mut dropped) = oneshot::channel();
    let value = Arc::new(DropFlag(Some(tx)));
    node.monitor_guard(&port, value.clone()).detach();
    drop(value);
    flush(&node).await;
    assert!(dropped.try_recv().is_err(), "kept while the port lives");
    node.kill(&port, Reason::normal()).unwrap();
    within("the value to be dropped", &mut dropped)
        .await
        .unwrap();
}

#[tokio::test]
async fn monitor_guard_drops_the_value_when_the_guard_is_dropped() {
    let node = start();
    let (port, _r) = sink(&node);
    let (tx, dropped) = oneshot::channel();
    let guard = node.monitor_guard(&port, DropFlag(Some(tx)));
    drop(guard);
    within("the value to be dropped", dropped).await.unwrap();
}

#[tokio::test]
async fn monitoring_a_missing_port_fires_at_once_with_no_such_port() {
    let node = start();
    let ids = [
        format!("{}#no.such", node.id()),
        format!("{}#never-existed", node.id()),
    ];
    for id in ids {
        let missing: PortId = id.parse().unwrap();
        let got = died(death(&node, &missing)).await;
        assert_eq!(got.values(), no_such_port(&missing));
        assert_eq!(
            got.values(),
            &[
                Value::from("no_such_port"),
                Value::from("cannot monitor nonexistent port"),
                Value::from(id.as_str()),
            ]
        );
        assert_eq!(got.origin(), Origin::Library);
    }
}

#[tokio::test]
async fn a_port_reported_dead_stays_dead() {
    let node = start();
    let (port, mut rx) = sink(&node);
    let (out, mut orx) = sink(&node);
    node.monitor_send(&port, &out, msg!["died"]).detach();
    node.kill(&port, Reason::die("gone")).unwrap();
    assert_eq!(next(&mut orx).await, msg!["died", "die", "gone"]);
    // Later sends are dropped ...
    node.send(&port, msg!["after death"]);
    // ... and new monitors of every form fire at once.
    assert_eq!(
        died(death(&node, &port)).await.values(),
        no_such_port(&port)
    );
    node.monitor_send(&port, &out, msg!["again"]).detach();
    let mut expected = msg!["again"];
    expected.extend(no_such_port(&port));
    assert_eq!(next(&mut orx).await, expected);
    flush(&node).await;
    assert!(drain(&mut rx).is_empty());
}

#[tokio::test]
async fn a_panicking_monitor_callback_harms_no_one() {
    let node = start();
    let (port, _r) = sink(&node);
    node.monitor(&port, |_| panic!("monitor failed")).detach();
    let dead = death(&node, &port);
    node.kill(&port, reason(&["x"])).unwrap();
    assert_eq!(died(dead).await, reason(&["x"]));
    let (other, mut rx) = sink(&node);
    node.send(&other, msg!["node still works"]);
    assert_eq!(next(&mut rx).await, msg!["node still works"]);
}

#[tokio::test]
async fn monitors_added_from_a_callback_see_the_kill_queued_after_them() {
    let node = start();
    let (port, _r) = sink(&node);
    let (tx, rx) = oneshot::channel();
    let mut tx = Some(tx);
    let (n2, p2) = (node.clone(), port.clone());
    let driver = node.port(move |_: Message| {
        let tx = tx.take().unwrap();
        n2.kill(&p2, reason(&["queued"])).unwrap();
        n2.monitor(&p2, move |r| drop(tx.send(r))).detach();
    });
    node.send(&driver, msg!["go"]);
    assert_eq!(within("monitor", rx).await.unwrap(), reason(&["queued"]));
}

#[tokio::test]
async fn monitoring_the_own_node_port_never_fires_and_it_cannot_be_linked_dead() {
    let node = start();
    let fired = Arc::new(AtomicBool::new(false));
    let f = fired.clone();
    node.monitor(&node.node_port(), move |_| f.store(true, Ordering::SeqCst))
        .detach();
    // A link whose target is the node port: the kill it would cause is refused.
    let (port, _r) = sink(&node);
    node.monitor_link(&port, &node.node_port()).detach();
    let dead = death(&node, &port);
    node.kill(&port, Reason::die("x")).unwrap();
    died(dead).await;
    flush(&node).await;
    assert!(!fired.load(Ordering::SeqCst));
    let reply = within("info", node.call(&node.node_port(), msg!["info"], None)).await;
    assert_eq!(reply, Ok(msg![node.id().as_str()]));
}

#[tokio::test]
async fn monitor_callbacks_run_outside_any_port() {
    let node = start();
    let (tx, rx) = oneshot::channel();
    let mut tx = Some(tx);
    let n = node.clone();
    // The port dies by its own panic: the monitor still runs without a SELF.
    let port = node.port(move |_: Message| -> () {
        let tx = tx.take().unwrap();
        n.monitor(&aemp::self_port().unwrap(), move |_| {
            drop(tx.send(aemp::self_port()));
        })
        .detach();
        panic!("die after adding a monitor");
    });
    node.send(&port, msg!["go"]);
    assert_eq!(within("monitor", rx).await.unwrap(), None);
}
