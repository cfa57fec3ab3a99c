//! Two nodes on 127.0.0.1: connect, remote send both ways in both framings, remote monitors,
//! remote kill and spawn, wrong secret, connection loss.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failure is a test failure"
)]

use std::net::SocketAddr;
use std::time::Duration;

use aemp::{Message, Node, NodeId, PortId, Reason, Value, msg};
use aemp_proto::framing::Framing;

const WAIT: Duration = Duration::from_secs(10);
const LOOPBACK: &str = "127.0.0.1:0";

fn node(id: &str, secret: &str, framings: Vec<Framing>) -> Node {
    Node::builder()
        .id(id)
        .secret(secret)
        .framings(framings)
        .bind(LOOPBACK.parse::<SocketAddr>().unwrap())
        .monitor_timeout(Duration::from_secs(2))
        .start()
        .unwrap()
}

async fn pair(framings: Vec<Framing>) -> (Node, Node) {
    let a = node(&format!("a-{}", rand_suffix()), "s3cret", framings.clone());
    let b = node(&format!("b-{}", rand_suffix()), "s3cret", framings);
    let peer = tokio::time::timeout(WAIT, a.connect(b.listen_addrs()[0]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&peer, b.id());
    (a, b)
}

fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

async fn recv(mailbox: &mut aemp::Mailbox) -> Message {
    mailbox.recv_timeout(WAIT).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_send_both_ways_in_both_framings() {
    for framing in [Framing::Cbor, Framing::Json] {
        let (a, b) = pair(vec![framing]).await;
        let mut at_b = b.mailbox();
        let mut at_a = a.mailbox();
        a.send(at_b.port(), msg!["hello", at_a.port()]);
        let m = recv(&mut at_b).await;
        assert_eq!(m[0], Value::from("hello"));
        let reply: PortId = m.decode_element(1).unwrap();
        b.send(&reply, msg!["world", 1.5]);
        assert_eq!(recv(&mut at_a).await, msg!["world", 1.5]);
        assert!(a.up_nodes().contains(b.id()));
        assert!(b.up_nodes().contains(a.id()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_numbered_messages_arrive_in_order_without_gaps() {
    let (a, b) = pair(vec![Framing::Cbor]).await;
    let mut at_b = b.mailbox();
    let n = 1_000_000_i64;
    for i in 0..n {
        a.send(at_b.port(), Message::from([Value::Int(i)]));
    }
    for i in 0..n {
        assert_eq!(recv(&mut at_b).await[0], Value::Int(i));
    }
}

/// Senders write to an idle connection themselves and leave bursts to the writer task:
/// alternating lone messages (written directly) and bursts (coalesced by the writer), from
/// two threads at once, still arrive in order per sender and complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lone_messages_and_bursts_keep_their_order() {
    let (a, b) = pair(vec![Framing::Cbor]).await;
    let mut at_b = b.mailbox();
    let to = at_b.port().clone();
    let senders: Vec<_> = (0..2_i64)
        .map(|sender| {
            let (a, to) = (a.clone(), to.clone());
            std::thread::spawn(move || {
                let mut n = 0_i64;
                for round in 0..40 {
                    let burst = if round % 2 == 0 { 1 } else { 500 };
                    for _ in 0..burst {
                        a.send(&to, msg![sender, n]);
                        n += 1;
                    }
                    std::thread::sleep(Duration::from_micros(200));
                }
                n
            })
        })
        .collect();
    let totals: Vec<i64> = senders.into_iter().map(|t| t.join().unwrap()).collect();
    let mut next = [0_i64; 2];
    for _ in 0..totals.iter().sum::<i64>() {
        let m = recv(&mut at_b).await;
        let sender = usize::try_from(m[0].as_i64().unwrap()).unwrap();
        assert_eq!(
            m[1],
            Value::Int(next[sender]),
            "sender {sender} out of order"
        );
        next[sender] += 1;
    }
    assert_eq!(next.to_vec(), totals);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_monitor_sees_the_kill_reason_and_remote_kill_works() {
    let (a, b) = pair(vec![Framing::Json]).await;
    let target = b.port(|_m: Message| ());
    let (tx, rx) = tokio::sync::oneshot::channel();
    a.monitor(&target, move |r| drop(tx.send(r))).detach();
    // A remote kill from a, after the monitor (same connection, so in order).
    a.kill(
        &target,
        Reason::new(vec![Value::from("bye"), Value::from("now")]),
    )
    .unwrap();
    let reason = tokio::time::timeout(WAIT, rx).await.unwrap().unwrap();
    assert_eq!(reason.values(), &[Value::from("bye"), Value::from("now")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitoring_a_missing_remote_port_gives_no_such_port() {
    let (a, b) = pair(vec![Framing::Cbor]).await;
    let missing = PortId::new(b.id().clone(), "nope.1").unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    a.monitor(&missing, move |r| drop(tx.send(r))).detach();
    let reason = tokio::time::timeout(WAIT, rx).await.unwrap().unwrap();
    assert_eq!(reason, Reason::no_such_port(&missing));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_spawn_runs_the_registered_init() {
    let (a, b) = pair(vec![Framing::Cbor]).await;
    let b2 = b.clone();
    b.register_init("test::echo", move |args: Message| {
        let me = aemp::self_port().ok_or("no self")?;
        let reply: PortId = args.decode_element(0).map_err(|e| e.to_string())?;
        let n = b2.clone();
        b2.set_callback(&me, move |m: Message| n.send(&reply, m))
            .map_err(|e| e.to_string())
    })
    .unwrap();
    let mut at_a = a.mailbox();
    let echo = a.spawn(b.id(), "test::echo", msg![at_a.port()]).unwrap();
    assert_eq!(echo.node(), b.id());
    a.send(&echo, msg!["echo me"]);
    assert_eq!(recv(&mut at_a).await, msg!["echo me"]);
}

/// Regression: after a port with a name another node chose (a spawned port) ran, `SELF` of
/// the next port must not carry that foreign name (replies went to the wrong port).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_port_is_right_after_a_peer_named_port_ran() {
    let (a, b) = pair(vec![Framing::Cbor]).await;
    let n = b.clone();
    b.register_init("test::poke", move |_args: Message| {
        let me = aemp::self_port().ok_or("no port context")?;
        let n2 = n.clone();
        n.set_callback(&me, move |m: Message| {
            let reply: PortId = m.decode_element(0)?;
            n2.send(&reply, msg!["poked"]);
            Ok::<_, aemp::ValueError>(())
        })
        .map_err(|e| e.to_string())
    })
    .unwrap();
    let spawned = a.spawn(b.id(), "test::poke", msg![]).unwrap();
    let mut inbox = a.mailbox();
    a.send(&spawned, msg![inbox.port()]);
    assert_eq!(recv(&mut inbox).await, msg!["poked"]);

    let (tx, rx) = tokio::sync::oneshot::channel();
    let mut tx = Some(tx);
    let plain = b.port(move |_m: Message| {
        if let Some(tx) = tx.take() {
            let _ = tx.send(aemp::self_port());
        }
    });
    b.send(&plain, msg!["who am i"]);
    let seen = tokio::time::timeout(WAIT, rx).await.unwrap().unwrap();
    assert_eq!(seen, Some(plain));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_secret_connects_nothing() {
    let a = node(
        &format!("a-{}", rand_suffix()),
        "one secret",
        vec![Framing::Cbor],
    );
    let b = node(
        &format!("b-{}", rand_suffix()),
        "another",
        vec![Framing::Cbor],
    );
    let result = tokio::time::timeout(WAIT, a.connect(b.listen_addrs()[0]))
        .await
        .unwrap();
    let err = result.unwrap_err().to_string();
    assert!(err.contains("authentication failure"), "{err}");
    assert!(a.up_nodes().is_empty());
    assert!(b.up_nodes().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_loss_fires_transport_error() {
    let (a, b) = pair(vec![Framing::Cbor]).await;
    let target = b.port(|_m: Message| ());
    let (tx, rx) = tokio::sync::oneshot::channel();
    a.monitor(&target, move |r| drop(tx.send(r))).detach();
    // Make sure the monitor is in place on b (a round trip over the link) ...
    let reply = a
        .call(&b.node_port(), msg!["info"], Some(WAIT))
        .await
        .unwrap();
    assert_eq!(reply[0], Value::from(b.id().as_str()));
    // ... then b goes away.
    b.disconnect(a.id());
    let reason = tokio::time::timeout(WAIT, rx).await.unwrap().unwrap();
    assert_eq!(reason.tag(), Some("transport_error"));
    assert_eq!(reason.values()[1], Value::from(b.id().as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_to_an_unknown_node_give_up_with_unable_to_connect() {
    let a = node(&format!("a-{}", rand_suffix()), "s", vec![Framing::Cbor]);
    let ghost = PortId::new(NodeId::new("ghost").unwrap(), "p.1").unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    a.monitor(&ghost, move |r| drop(tx.send(r))).detach();
    a.send(&ghost, msg!["anyone?"]);
    let reason = tokio::time::timeout(WAIT, rx).await.unwrap().unwrap();
    assert_eq!(
        reason.values(),
        &[
            Value::from("transport_error"),
            Value::from("ghost"),
            Value::from("unable to connect")
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_known_address_is_dialled_when_a_message_waits_and_the_queue_flushes_in_order() {
    let a = Node::builder()
        .id(format!("a-{}", rand_suffix()))
        .secret("s")
        .connect_interval(Duration::from_millis(100))
        .monitor_timeout(Duration::from_secs(5))
        .start()
        .unwrap();
    let b = node(&format!("b-{}", rand_suffix()), "s", vec![Framing::Cbor]);
    let mut at_b = b.mailbox();
    a.add_address(b.id(), b.listen_addrs()[0]);
    for i in 0..1000_i64 {
        a.send(at_b.port(), Message::from([Value::Int(i)]));
    }
    for i in 0..1000_i64 {
        assert_eq!(recv(&mut at_b).await[0], Value::Int(i));
    }
    assert!(a.up_nodes().contains(b.id()));
    // Global's link messages follow the node-up; once written, nothing is left queued.
    tokio::time::timeout(WAIT, a.wait_queue_below(b.id(), 1))
        .await
        .unwrap();
    assert_eq!(a.queued_to(b.id()), 0);
}

/// Messages may wait for a node before anyone knows where it listens (the address comes
/// later from a seed): learning the address starts the dial, and they are delivered in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_learned_after_messages_wait_starts_the_dial() {
    let a = Node::builder()
        .id(format!("a-{}", rand_suffix()))
        .secret("s")
        .monitor_timeout(Duration::from_secs(5))
        .start()
        .unwrap();
    let b = node(&format!("b-{}", rand_suffix()), "s", vec![Framing::Cbor]);
    let mut at_b = b.mailbox();
    for i in 0..100_i64 {
        a.send(at_b.port(), Message::from([Value::Int(i)]));
    }
    assert_eq!(a.queued_to(b.id()), 100);
    a.add_address(b.id(), b.listen_addrs()[0]);
    for i in 0..100_i64 {
        assert_eq!(recv(&mut at_b).await[0], Value::Int(i));
    }
    assert!(a.up_nodes().contains(b.id()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_nodes_sees_up_then_down() {
    let a = node(&format!("a-{}", rand_suffix()), "s", vec![Framing::Cbor]);
    let b = node(&format!("b-{}", rand_suffix()), "s", vec![Framing::Cbor]);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let _guard = a.monitor_nodes(move |event| drop(tx.send(event.clone())));
    // Make sure the callback is registered before connecting (a round trip through a).
    a.call(&a.node_port(), msg!["info"], Some(WAIT))
        .await
        .unwrap();
    a.connect(b.listen_addrs()[0]).await.unwrap();
    let up = tokio::time::timeout(WAIT, rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(up, aemp::NodeEvent::Up(b.id().clone()));
    a.disconnect(b.id());
    let down = tokio::time::timeout(WAIT, rx.recv())
        .await
        .unwrap()
        .unwrap();
    let aemp::NodeEvent::Down(node, reason) = down else {
        panic!("expected a down event, got {down:?}");
    };
    assert_eq!(&node, b.id());
    assert_eq!(reason.tag(), Some("transport_error"));
    assert!(!a.node_is_up(b.id()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_sender_can_wait_for_the_queue_to_drain() {
    let (a, b) = pair(vec![Framing::Cbor]).await;
    let mut at_b = b.mailbox();
    let n = 200_000_i64;
    let to = at_b.port().clone();
    let sender = {
        let a = a.clone();
        let peer = b.id().clone();
        tokio::spawn(async move {
            let mut max_seen = 0;
            for i in 0..n {
                a.send(&to, Message::from([Value::Int(i)]));
                if i % 1000 == 0 {
                    a.wait_queue_below(&peer, 10_000).await;
                    max_seen = max_seen.max(a.queued_to(&peer));
                }
            }
            max_seen
        })
    };
    for i in 0..n {
        assert_eq!(recv(&mut at_b).await[0], Value::Int(i));
    }
    let max_seen = sender.await.unwrap();
    assert!(max_seen < 10_000 + 1000, "queue grew to {max_seen}");
}

/// While the receiving callback is blocked, the receiver's reader fills its bounded inbox and
/// stops reading (TCP then holds the rest back); nothing may be lost or reordered on the way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_receiver_holds_the_stream_back_without_loss_or_reordering() {
    let (a, b) = pair(vec![Framing::Cbor]).await;
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel::<i64>();
    let mut release = Some(release_rx);
    let sink = b.port(move |m: Message| {
        // The first message blocks the dispatcher until the test releases it.
        if let Some(rx) = release.take() {
            rx.recv().unwrap();
        }
        let _ = seen_tx.send(m[0].as_i64().unwrap());
    });
    // 40,000 × 1 KiB: ten times the inbox's byte bound.
    let n = 40_000_i64;
    let payload = Value::from("x".repeat(1024));
    for i in 0..n {
        a.send(&sink, Message::from([Value::Int(i), payload.clone()]));
    }
    release_tx.send(()).unwrap();
    for i in 0..n {
        let got = tokio::time::timeout(WAIT, seen_rx.recv()).await.unwrap();
        assert_eq!(got, Some(i));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crossed_dials_end_with_the_nodes_connected() {
    for _ in 0..10 {
        let a = node(&format!("a-{}", rand_suffix()), "s", vec![Framing::Cbor]);
        let b = node(&format!("b-{}", rand_suffix()), "s", vec![Framing::Cbor]);
        // Both know each other's address, so a dropped crossing is redialled on the next send.
        a.add_address(b.id(), b.listen_addrs()[0]);
        b.add_address(a.id(), a.listen_addrs()[0]);
        // Either dial may be refused: what must hold is that the nodes end up connected and
        // messages flow.
        let _ = tokio::join!(
            a.connect(b.listen_addrs()[0]),
            b.connect(a.listen_addrs()[0])
        );
        let mut at_a = a.mailbox();
        let mut at_b = b.mailbox();
        a.send(at_b.port(), msg!["to b"]);
        b.send(at_a.port(), msg!["to a"]);
        assert_eq!(recv(&mut at_b).await, msg!["to b"]);
        assert_eq!(recv(&mut at_a).await, msg!["to a"]);
    }
}

/// Simultaneous dials, ten times: exactly one connection survives and neither side sees the
/// other go down. (It used to fail when one side completed the losing connection before the
/// winner's greeting arrived there while the other side had already marked it lost: both
/// connections closed. A losing connection now waits for the winner's fate.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stress_crossed_dials_keep_one_connection_without_flapping() {
    for _ in 0..10 {
        let a = node(&format!("a-{}", rand_suffix()), "s", vec![Framing::Cbor]);
        let b = node(&format!("b-{}", rand_suffix()), "s", vec![Framing::Cbor]);
        let mut events = Vec::new();
        for n in [&a, &b] {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            n.monitor_nodes(move |e| drop(tx.send(e.clone()))).detach();
            n.call(&n.node_port(), msg!["info"], Some(WAIT))
                .await
                .unwrap();
            events.push(rx);
        }
        let (ra, rb) = tokio::join!(
            a.connect(b.listen_addrs()[0]),
            b.connect(a.listen_addrs()[0])
        );
        assert!(ra.is_ok() || rb.is_ok(), "{ra:?} {rb:?}");
        // Both sides see the other up exactly once ...
        for (rx, other) in events.iter_mut().zip([b.id(), a.id()]) {
            let e = tokio::time::timeout(WAIT, rx.recv())
                .await
                .unwrap()
                .unwrap();
            assert_eq!(e, aemp::NodeEvent::Up(other.clone()));
        }
        // ... and messages flow both ways on the surviving connection.
        let mut at_a = a.mailbox();
        let mut at_b = b.mailbox();
        a.send(at_b.port(), msg!["to b"]);
        b.send(at_a.port(), msg!["to a"]);
        assert_eq!(recv(&mut at_b).await, msg!["to b"]);
        assert_eq!(recv(&mut at_a).await, msg!["to a"]);
        // No down event followed (no flapping).
        for rx in &mut events {
            assert!(rx.try_recv().is_err(), "unexpected node event");
        }
    }
}
