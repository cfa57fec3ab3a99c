//! Links that fail while both nodes live: no false death, heartbeats, a busy dispatcher,
//! queue overflow, round-trip times. Two nodes in this process, on 127.0.0.1, some of them
//! through a proxy the test can cut or black-hole (`common/proxy.rs`).

#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failure is a test failure"
)]

#[path = "common/proxy.rs"]
mod proxy;
#[path = "common/support.rs"]
mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aemp::{Message, Node, PortId, Reason, Value, msg};
use proxy::Proxy;
use support::{WAIT, death, died, next, sink, within};

/// A node on 127.0.0.1 with fast heartbeats (`interval`, `timeout`).
fn node(interval: Duration, timeout: Duration) -> Node {
    Node::builder()
        .secret("failures")
        .bind("127.0.0.1:0".parse::<SocketAddr>().unwrap())
        .heartbeat_interval(interval)
        .heartbeat_timeout(timeout)
        .monitor_timeout(Duration::from_secs(5))
        .start()
        .unwrap()
}

fn fast() -> Node {
    node(Duration::from_millis(100), Duration::from_millis(600))
}

/// Connects `a` to `b` through a proxy, and proves the link with a round trip.
async fn via_proxy(a: &Node, b: &Node) -> Proxy {
    let proxy = Proxy::start(b.listen_addrs()[0]).await;
    let peer = within("the connection", a.connect(proxy.addr()))
        .await
        .unwrap();
    assert_eq!(&peer, b.id());
    proxy
}

/// A sink on `b` that a monitors, proven in place (a round trip through b after `mon1`).
async fn monitored_sink(
    a: &Node,
    b: &Node,
) -> (
    PortId,
    tokio::sync::mpsc::UnboundedReceiver<Message>,
    tokio::sync::oneshot::Receiver<Reason>,
) {
    let (p, rx) = sink(b);
    let dead = death(a, &p);
    let reply = a
        .call(&b.node_port(), msg!["info"], Some(WAIT))
        .await
        .unwrap();
    assert_eq!(reply[0], Value::from(b.id().as_str()));
    (p, rx, dead)
}

/// Asserts that nothing sent to `p` arrives on `rx`, using a marker sent after the same way:
/// messages from one sender to one node keep their order, so a marker to another port of
/// `p`'s node arrives after anything sent to `p` before it.
async fn nothing_arrives(
    a: &Node,
    b: &Node,
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<Message>,
) {
    let (marker, mut marker_rx) = sink(b);
    a.send(&marker, msg!["marker"]);
    assert_eq!(next(&mut marker_rx).await, msg!["marker"]);
    support::flush(b).await;
    assert!(
        rx.try_recv().is_err(),
        "a message reached a port reported dead"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_reported_dead_after_a_disconnect_stays_dead() {
    let (a, b) = (fast(), fast());
    within("connect", a.connect(b.listen_addrs()[0]))
        .await
        .unwrap();
    let (p, mut rx, dead) = monitored_sink(&a, &b).await;
    a.disconnect(b.id());
    let reason = died(dead).await;
    assert_eq!(reason.tag(), Some("transport_error"));
    // Later messages redial b (the node port and other ports are fine) but never reach p.
    for i in 0..10 {
        a.send(&p, msg!["after", i]);
    }
    nothing_arrives(&a, &b, &mut rx).await;
    assert!(a.node_is_up(b.id()), "the marker went over a new link");
    // A new monitor fires at once, with the reason first reported.
    let again = died(death(&a, &p)).await;
    assert_eq!(again, reason);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_reported_dead_after_the_socket_is_destroyed_stays_dead() {
    let (a, b) = (fast(), fast());
    let proxy = via_proxy(&a, &b).await;
    let (p, mut rx, dead) = monitored_sink(&a, &b).await;
    proxy.cut();
    let reason = died(dead).await;
    assert_eq!(reason.tag(), Some("transport_error"));
    // b dials nobody; a reaches b again through the proxy (it is a's known address).
    for i in 0..10 {
        a.send(&p, msg!["after", i]);
    }
    nothing_arrives(&a, &b, &mut rx).await;
    assert_eq!(died(death(&a, &p)).await, reason);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_remote_port_stays_dead_with_its_reason() {
    let (a, b) = (fast(), fast());
    within("connect", a.connect(b.listen_addrs()[0]))
        .await
        .unwrap();
    let (p, _rx, dead) = monitored_sink(&a, &b).await;
    a.kill(&p, Reason::new(vec!["stopped".into(), "by hand".into()]))
        .unwrap();
    let reason = died(dead).await;
    assert_eq!(
        reason.values(),
        &[Value::from("stopped"), Value::from("by hand")]
    );
    // Not no_such_port (what b would answer): the reason this node reported.
    assert_eq!(died(death(&a, &p)).await, reason);
    // A port that never existed is reported dead with no_such_port, and stays so.
    let ghost: PortId = format!("{}#nothing.1", b.id()).parse().unwrap();
    let first = died(death(&a, &ghost)).await;
    assert_eq!(first.tag(), Some("no_such_port"));
    assert_eq!(died(death(&a, &ghost)).await, first);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_peer_is_detected_by_heartbeats_on_an_idle_link() {
    let timeout = Duration::from_millis(600);
    let (a, b) = (node(Duration::from_millis(100), timeout), fast());
    let proxy = via_proxy(&a, &b).await;
    let (_p, _rx, dead) = monitored_sink(&a, &b).await;
    let (tx, mut downs) = tokio::sync::mpsc::unbounded_channel();
    a.monitor_nodes(move |e| drop(tx.send(e.clone()))).detach();
    let hung = Instant::now();
    proxy.black_hole();
    let reason = died(dead).await;
    let took = hung.elapsed();
    eprintln!("idle link, hung peer: monitor fired after {took:?} (heartbeat_timeout {timeout:?})");
    assert_eq!(
        reason.values(),
        &[
            Value::from("transport_error"),
            Value::from(b.id().as_str()),
            Value::from("heartbeat timeout")
        ]
    );
    assert!(
        took >= timeout - Duration::from_millis(150),
        "fired after {took:?}"
    );
    assert!(
        took <= timeout + Duration::from_secs(1),
        "fired after {took:?}"
    );
    assert!(!a.up_nodes().contains(b.id()));
    match within("node down", downs.recv()).await.unwrap() {
        aemp::NodeEvent::Down(node, r) => {
            assert_eq!(&node, b.id());
            assert_eq!(r, reason);
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_peer_is_detected_under_load_and_later_messages_are_dropped() {
    let timeout = Duration::from_millis(600);
    let (a, b) = (node(Duration::from_millis(100), timeout), fast());
    let proxy = via_proxy(&a, &b).await;
    let (p, mut rx, dead) = monitored_sink(&a, &b).await;
    let sent = Arc::new(AtomicU64::new(0));
    let fired_at = Arc::new(AtomicU64::new(u64::MAX));
    {
        let (sent, fired_at) = (sent.clone(), fired_at.clone());
        a.monitor(&p, move |_| {
            fired_at.store(sent.load(Ordering::SeqCst), Ordering::SeqCst)
        })
        .detach();
    }
    // 500 messages a second, numbered, until well after the monitor fired.
    let streamer = {
        let (a, p, sent) = (a.clone(), p.clone(), sent.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(2));
            for _ in 0..1500 {
                tick.tick().await;
                let n = sent.fetch_add(1, Ordering::SeqCst);
                a.send(&p, msg!["n", n]);
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let hung = Instant::now();
    proxy.black_hole();
    let reason = died(dead).await;
    let took = hung.elapsed();
    eprintln!("loaded link, hung peer: monitor fired after {took:?}");
    assert_eq!(reason.values()[2], Value::from("heartbeat timeout"));
    assert!(
        took <= timeout + Duration::from_secs(1),
        "fired after {took:?}"
    );
    within("the stream", streamer).await.unwrap();
    proxy.heal();
    // What arrived is in order, and nothing sent after the monitor fired got through.
    nothing_after(&a, &b, &mut rx, fired_at.load(Ordering::SeqCst)).await;
}

/// Drains `rx` (behind a marker through a fresh link): numbers strictly increasing from 0,
/// none at or above `limit`.
async fn nothing_after(
    a: &Node,
    b: &Node,
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<Message>,
    limit: u64,
) {
    let (marker, mut marker_rx) = sink(b);
    a.send(&marker, msg!["marker"]);
    assert_eq!(next(&mut marker_rx).await, msg!["marker"]);
    support::flush(b).await;
    let mut expected = 0;
    while let Ok(m) = rx.try_recv() {
        let n = m[1].as_u64().unwrap();
        assert_eq!(n, expected, "a hole or reordering in the stream");
        assert!(
            n < limit,
            "message {n} was sent after the monitor fired (at {limit})"
        );
        expected += 1;
    }
    assert!(expected > 0, "nothing arrived before the cut");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_dispatcher_is_not_a_dead_peer() {
    // b's dispatcher is stuck in a callback for five heartbeat timeouts while a floods it:
    // b's reader stops reading, a's writes block. Neither side may declare the other dead.
    let timeout = Duration::from_millis(300);
    let (a, b) = (
        node(Duration::from_millis(50), timeout),
        node(Duration::from_millis(50), timeout),
    );
    within("connect", a.connect(b.listen_addrs()[0]))
        .await
        .unwrap();
    let (p, mut rx, dead) = monitored_sink(&a, &b).await;
    let (_q, _qrx, q_dead) = monitored_sink(&b, &a).await;
    let blocker = b.port(|_: Message| std::thread::sleep(Duration::from_millis(1500)));
    a.send(&blocker, msg!["block"]);
    for n in 0..200_000_u64 {
        a.send(&p, msg!["n", n]);
    }
    for n in 0..200_000_u64 {
        let m = next(&mut rx).await;
        assert_eq!(m[1].as_u64(), Some(n));
    }
    assert!(a.node_is_up(b.id()) && b.node_is_up(a.id()));
    let mut dead = dead;
    let mut q_dead = q_dead;
    assert!(dead.try_recv().is_err(), "a declared b dead");
    assert!(q_dead.try_recv().is_err(), "b declared a dead");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_stops_reading_overflows_the_queue_and_monitors_hear_of_it() {
    // Heartbeats slow enough that the overflow comes first.
    let max_queue = 1 << 20;
    let a = Node::builder()
        .secret("failures")
        .heartbeat_timeout(Duration::from_secs(60))
        .max_queue(max_queue)
        .start()
        .unwrap();
    let b = node(Duration::from_secs(1), Duration::from_secs(60));
    let proxy = via_proxy(&a, &b).await;
    let (p, _rx, dead) = monitored_sink(&a, &b).await;
    proxy.black_hole();
    let payload = "x".repeat(1000);
    let start = Instant::now();
    let mut sent = 0_u64;
    let mut dead = dead;
    let reason = loop {
        for _ in 0..100 {
            a.send(&p, msg![payload.as_str()]);
        }
        sent += 100;
        tokio::task::yield_now().await;
        if let Ok(reason) = dead.try_recv() {
            break reason;
        }
        assert!(start.elapsed() < WAIT, "no overflow after {sent} messages");
    };
    assert_eq!(
        reason.values(),
        &[
            Value::from("transport_error"),
            Value::from(b.id().as_str()),
            Value::from("send queue overflow")
        ]
    );
    assert!(sent >= 500, "overflowed after only {sent} KiB");
    assert!(!a.node_is_up(b.id()));
    assert_eq!(a.queued_to(b.id()), 0, "the queued messages were dropped");
    drop(proxy);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_while_connecting_is_bounded_too() {
    let a = Node::builder()
        .secret("failures")
        .max_queue(64 * 1024)
        .start()
        .unwrap();
    // A node nobody can reach: messages queue while "connecting".
    let p: PortId = "nowhere#x.1".parse().unwrap();
    let dead = death(&a, &p);
    let payload = "y".repeat(1000);
    for _ in 0..100 {
        a.send(&p, msg![payload.as_str()]);
    }
    let reason = died(dead).await;
    assert_eq!(reason.values()[2], Value::from("send queue overflow"));
    assert_eq!(a.queued_to(p.node()), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_measure_the_round_trip() {
    let (a, b) = (fast(), fast());
    within("connect", a.connect(b.listen_addrs()[0]))
        .await
        .unwrap();
    let rtt = within("a heartbeat round trip", async {
        loop {
            if let Some(rtt) = a.round_trip(b.id()) {
                return rtt;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(rtt < Duration::from_secs(1), "{rtt:?}");
    assert!(b.round_trip(a.id()).is_some() || b.node_is_up(a.id()));
}

#[test]
fn impossible_heartbeat_settings_are_refused() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _guard = rt.enter();
    let err = Node::builder()
        .heartbeat_interval(Duration::from_secs(5))
        .heartbeat_timeout(Duration::from_secs(5))
        .start()
        .unwrap_err();
    assert!(err.to_string().contains("heartbeat_timeout"), "{err}");
    let err = Node::builder().max_queue(0).start().unwrap_err();
    assert!(err.to_string().contains("max_queue"), "{err}");
}
