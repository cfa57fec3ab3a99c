//! Misbehaving peers against a listening aemp node. Every case must end in a clean
//! disconnect (the aemp side closes the socket within a few seconds), without a panic or an
//! unbounded allocation, and the node must keep working: its monitors on the peer fire with
//! `transport_error`, and a local round trip (and a new, well-behaved peer) still works.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failure is a test failure"
)]

#[path = "common/wire.rs"]
mod wire;

use std::time::Duration;

use aemp::{Node, NodeId, PortId, Reason, Value};
use aemp_proto::auth::{AuthMethod, Secret, Transcript};
use aemp_proto::framing::{Frame, Framing};
use aemp_proto::greeting::AuthLine;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::oneshot;
use wire::{
    SECRET, WAIT, Wire, collect_until_closed, expect_closed, json_msg, node_still_works,
    proto_handshake, random_nonce, unique,
};

/// How soon the aemp side must close a connection it has reason to drop.
const CLOSE: Duration = Duration::from_secs(5);
const MIB: usize = 1 << 20;

fn node() -> Node {
    wire::listening_node(Duration::from_secs(10))
}

async fn dial(node: &Node) -> TcpStream {
    let stream = TcpStream::connect(node.listen_addrs()[0]).await.unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

/// Monitors the node port of `peer` on `node`: fires when the connection to it breaks.
fn watch_node(node: &Node, peer: &NodeId) -> oneshot::Receiver<Reason> {
    let (tx, rx) = oneshot::channel();
    node.monitor(&PortId::node_port(peer.clone()), move |r| drop(tx.send(r)))
        .detach();
    rx
}

async fn assert_transport_error(rx: oneshot::Receiver<Reason>, peer: &NodeId) {
    let reason = tokio::time::timeout(WAIT, rx)
        .await
        .expect("the monitor on the bad peer did not fire")
        .unwrap();
    let v = reason.values();
    assert_eq!(v.first(), Some(&Value::from("transport_error")), "{reason}");
    assert_eq!(v.get(1), Some(&Value::from(peer.as_str())), "{reason}");
    assert!(
        v.get(2)
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty()),
        "{reason}"
    );
}

/// A peer that completes a correct handshake in `framing`, then sends `payload` (and
/// half-closes if `eof`): the aemp node must drop it cleanly and keep working.
async fn bad_data(node: &Node, framing: Framing, payload: &[u8], eof: bool) {
    let id: NodeId = unique("bad").parse().unwrap();
    let mut stream = dial(node).await;
    let (session, _) = proto_handshake(&mut stream, id.as_str(), SECRET, vec![framing])
        .await
        .unwrap();
    assert_eq!(session.send_framing, framing);
    assert_eq!(&session.peer, node.id());
    let down = watch_node(node, &id);
    // Ignore a write error: the node may close before everything is written.
    let _ = stream.write_all(payload).await;
    if eof {
        let _ = stream.shutdown().await;
    }
    expect_closed(&mut stream, CLOSE).await;
    assert_transport_error(down, &id).await;
    assert!(!node.up_nodes().contains(&id));
    node_still_works(node).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_frames_disconnect() {
    let node = node();
    let deep = {
        let mut v = vec![b'['; 10_000];
        v.extend(std::iter::repeat_n(b']', 10_000));
        v
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("not an array", br#"{"a":1}"#.to_vec()),
        ("a string", br#""port""#.to_vec()),
        ("garbage bytes", b"\x00\x01\xff\xfegarbage".to_vec()),
        ("garbage after a good text", br#"["",""]xyz"#.to_vec()),
        ("deep nesting", deep),
        (
            "invalid UTF-8 in a string",
            b"[\"x\",\"\xff\xfe\xc3\"]".to_vec(),
        ),
        ("invalid JSON in an array", br#"["x",1,]"#.to_vec()),
        ("array as destination", br#"[[1],2]"#.to_vec()),
        ("object as destination", br#"[{"a":1},2]"#.to_vec()),
    ];
    for (what, payload) in cases {
        eprintln!("case: {what}");
        bad_data(&node, Framing::Json, &payload, false).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unterminated_huge_json_string_then_eof_disconnects() {
    let node = node();
    let mut payload = br#"["x",""#.to_vec();
    payload.extend(std::iter::repeat_n(b'a', 8 * MIB));
    bad_data(&node, Framing::Json, &payload, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_cbor_frames_disconnect() {
    let node = node();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        // [ "", h'…' ] declaring a byte string of 2^40 bytes.
        (
            "byte string of 2^40 bytes",
            vec![0x82, 0x60, 0x5b, 0, 0, 1, 0, 0, 0, 0, 0],
        ),
        // An array declaring 2^60 elements, at the top and inside a message.
        (
            "array of 2^60 elements",
            vec![0x9b, 0x10, 0, 0, 0, 0, 0, 0, 0],
        ),
        (
            "nested array of 2^60 elements",
            vec![0x82, 0x60, 0x9b, 0x10, 0, 0, 0, 0, 0, 0, 0],
        ),
        // A map declaring 2^62 entries and a text string of 2^63 bytes.
        (
            "map of 2^62 entries",
            vec![0x82, 0x60, 0xbb, 0x40, 0, 0, 0, 0, 0, 0, 0],
        ),
        (
            "text of 2^63 bytes",
            vec![0x82, 0x60, 0x7b, 0x80, 0, 0, 0, 0, 0, 0, 0],
        ),
        ("not an array", vec![0xa1, 0x61, b'a', 0x01]),
        ("garbage", vec![0xff, 0xfe, 0xfd, 0x1c, 0x00]),
        // [ "", "\xff" ]: invalid UTF-8 in a text string.
        ("invalid UTF-8", vec![0x82, 0x60, 0x61, 0xff]),
        ("deep nesting", {
            let mut v = vec![0x82, 0x60];
            v.extend(std::iter::repeat_n(0x81, 10_000));
            v.push(0x00);
            v
        }),
    ];
    for (what, payload) in cases {
        eprintln!("case: {what}");
        bad_data(&node, Framing::Cbor, &payload, false).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_over_64_mib_is_refused_before_it_is_buffered_whole() {
    let node = node();
    let id: NodeId = unique("huge").parse().unwrap();
    let socket = TcpSocket::new_v4().unwrap();
    // A small send buffer, so "sent" means "taken by the aemp side or in flight".
    socket.set_send_buffer_size(64 * 1024).unwrap();
    let mut stream = socket.connect(node.listen_addrs()[0]).await.unwrap();
    proto_handshake(&mut stream, id.as_str(), SECRET, vec![Framing::Json])
        .await
        .unwrap();
    let down = watch_node(&node, &id);
    let before = wire::rss();
    let mut peak = before;
    let mut sent = 0_usize;
    let chunk = vec![b'a'; MIB];
    stream.write_all(br#"["x",""#).await.unwrap();
    let refused = loop {
        assert!(
            sent <= 70 * MIB,
            "the aemp node still accepts bytes after {} MiB of one message",
            sent / MIB
        );
        match tokio::time::timeout(WAIT, stream.write_all(&chunk)).await {
            Ok(Ok(())) => sent += chunk.len(),
            Ok(Err(e)) => break e,
            Err(_) => panic!("the aemp node stopped reading after {} MiB", sent / MIB),
        }
        peak = peak.max(wire::rss());
    };
    eprintln!(
        "refused after {} MiB sent ({refused}); RSS grew by at most {} MiB",
        sent / MIB,
        peak.saturating_sub(before) / MIB
    );
    assert!(sent >= 63 * MIB, "refused too early: {} MiB", sent / MIB);
    expect_closed(&mut stream, CLOSE).await;
    assert_transport_error(down, &id).await;
    // The buffer is bounded by the limit (plus growth slack) and released afterwards.
    assert!(
        peak.saturating_sub(before) < 256 * MIB,
        "RSS grew by {} MiB",
        (peak - before) / MIB
    );
    node_still_works(&node).await;
    let after = wire::rss();
    assert!(
        after.saturating_sub(before) < 48 * MIB,
        "{} MiB still held after the connection closed",
        after.saturating_sub(before) / MIB
    );
}

/// Sends raw handshake bytes; the aemp node must close without sending an auth line (only its
/// own two greeting lines).
async fn refused_greeting(node: &Node, bytes: &[u8]) {
    let mut stream = dial(node).await;
    let _ = stream.write_all(bytes).await;
    let (got, _) = collect_until_closed(&mut stream, CLOSE).await;
    let text = String::from_utf8_lossy(&got);
    let lines: Vec<&str> = text.split_terminator('\n').collect();
    assert_eq!(lines.len(), 2, "expected only the greeting, got {text:?}");
    assert!(
        lines[0].starts_with(&format!("aemp;1;{};", node.id())),
        "{text}"
    );
    assert!(node.up_nodes().is_empty());
    node_still_works(node).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_greetings_are_refused() {
    let node = node();
    let nonce = random_nonce();
    let nonce = nonce.as_str();
    // A line over 4 KiB with no newline.
    refused_greeting(&node, &vec![b'a'; 5000]).await;
    let long = format!("aemp;1;long;hmac_md6_64_256;json;{}", "x".repeat(5000));
    refused_greeting(&node, long.as_bytes()).await;
    // Version 2.
    refused_greeting(
        &node,
        format!("aemp;2;v2;hmac_md6_64_256;json\n{nonce}\n").as_bytes(),
    )
    .await;
    // Another protocol.
    refused_greeting(
        &node,
        format!("http;1;h;hmac_md6_64_256;json\n{nonce}\n").as_bytes(),
    )
    .await;
    // The aemp node's own node ID.
    refused_greeting(
        &node,
        format!(
            "aemp;1;{};hmac_md6_64_256;json;provider=AE-1.30\n{nonce}\n",
            node.id()
        )
        .as_bytes(),
    )
    .await;
    // A greeting that is not UTF-8.
    refused_greeting(&node, b"aemp;1;\xff\xfe;hmac_md6_64_256;json\nnonce\n").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_echo_of_the_nodes_own_greeting_is_refused() {
    let node = node();
    let stream = dial(&node).await;
    let mut wire = Wire::new(stream, Framing::Json);
    let line1 = wire.line().await;
    let line2 = wire.line().await;
    wire.send(format!("{line1}\n{line2}\n")).await;
    let (rest, _) = collect_until_closed(&mut wire.stream, CLOSE).await;
    assert!(
        wire.buf.is_empty() && rest.is_empty(),
        "the node answered an echo: {:?}{:?}",
        wire.buf,
        String::from_utf8_lossy(&rest)
    );
    assert!(node.up_nodes().is_empty());
    node_still_works(&node).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_is_refused() {
    let node = node();
    let addr = node.listen_addrs()[0];
    let stream = dial(&node).await;
    let mut wire = Wire::new(stream, Framing::Json);
    let line1 = wire::perl_line1("wrong-secret", addr);
    let nonce = random_nonce();
    wire.send(format!("{line1}\n{}\n", nonce.as_str())).await;
    let peer1 = wire.line().await;
    let peer2 = wire.line().await;
    let transcript = Transcript::new(&line1, nonce.as_str(), &peer1, &peer2);
    let wrong = Secret::new("not the secret");
    let token = AuthMethod::HmacMd6
        .token(transcript.own(), Some(&wrong), false)
        .unwrap();
    wire.send(format!("hmac_md6_64_256;{token};json\n")).await;
    // The node's own auth line (computed with the real secret) may come before it closes.
    let (rest, _) = collect_until_closed(&mut wire.stream, CLOSE).await;
    wire.buf.extend_from_slice(&rest);
    let text = String::from_utf8_lossy(&wire.buf).into_owned();
    let lines: Vec<&str> = text.split_terminator('\n').collect();
    assert!(lines.len() <= 1, "data after a failed auth: {text:?}");
    if let Some(line) = lines.first() {
        let auth: AuthLine = line.parse().unwrap();
        let secret = Secret::new(SECRET);
        assert!(AuthMethod::HmacMd6.verify(&auth.token, transcript.peer(), Some(&secret), false));
        assert!(!AuthMethod::HmacMd6.verify(&auth.token, transcript.peer(), Some(&wrong), false));
    }
    assert!(node.up_nodes().is_empty());
    node_still_works(&node).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_peer_times_out_after_handshake_timeout() {
    let node = wire::listening_node(Duration::from_millis(500));
    let mut stream = dial(&node).await;
    let (got, took) = collect_until_closed(&mut stream, CLOSE).await;
    let text = String::from_utf8_lossy(&got);
    assert_eq!(text.split_terminator('\n').count(), 2, "{text:?}");
    assert!(
        took >= Duration::from_millis(400),
        "closed after {took:?}, before handshake_timeout"
    );
    assert!(node.up_nodes().is_empty());
    node_still_works(&node).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_connects_and_closes_at_once_does_no_harm() {
    let node = node();
    for _ in 0..20 {
        drop(dial(&node).await);
    }
    // A half-sent greeting, then gone.
    let mut stream = dial(&node).await;
    stream.write_all(b"aemp;1;half").await.unwrap();
    drop(stream);
    node_still_works(&node).await;
    // A well-behaved peer still gets in and is served.
    let mut stream = dial(&node).await;
    let (session, leftover) = proto_handshake(&mut stream, "good", SECRET, vec![Framing::Json])
        .await
        .unwrap();
    assert_eq!(&session.peer, node.id());
    let mut wire = Wire::new(stream, Framing::Json);
    wire.buf = leftover;
    wire.send(r#"["","info","good#r"]"#).await;
    let reply = wire.frame_to("r").await;
    assert_eq!(reply.message[0], Value::from(node.id().as_str()));
    assert!(node.up_nodes().iter().any(|n| n.as_str() == "good"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_from_a_monitored_peer_fires_transport_error() {
    for framing in [Framing::Cbor, Framing::Json] {
        let node = node();
        let id: NodeId = unique("mon").parse().unwrap();
        let mut stream = dial(&node).await;
        let (_, leftover) = proto_handshake(&mut stream, id.as_str(), SECRET, vec![framing])
            .await
            .unwrap();
        let mut wire = Wire::new(stream, framing);
        wire.buf = leftover;
        let p = PortId::new(id.clone(), "p").unwrap();
        let (tx, rx) = oneshot::channel::<Reason>();
        node.monitor(&p, move |r| drop(tx.send(r))).detach();
        let down = watch_node(&node, &id);
        // The monitor is in place on the wire (after the Global link messages every node
        // sends to a new peer)...
        let want = Frame::new("", json_msg(r#"["mon1","p"]"#));
        let mon1 = wire.frame_where(|f| *f == want).await;
        assert_eq!(mon1, want);
        // ... then the peer turns to garbage.
        wire.send(b"\xff\xff{{not a message").await;
        wire.expect_closed(CLOSE).await;
        assert_transport_error(rx, &id).await;
        assert_transport_error(down, &id).await;
        assert!(!node.up_nodes().contains(&id));
        node_still_works(&node).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickling_handshake_still_times_out() {
    // One byte of a valid greeting every 50 ms: the handshake as a whole must still end
    // after handshake_timeout (500 ms), not be kept alive by each byte.
    let node = wire::listening_node(Duration::from_millis(500));
    let mut stream = dial(&node).await;
    let greeting = b"aemp;1;slow;hmac_md6_64_256;json;provider=trickle-trickle-trickle-trickle\n";
    let start = std::time::Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    let mut closed = false;
    for &b in greeting.iter().cycle().take(200) {
        tick.tick().await;
        if stream.write_all(&[b]).await.is_err() {
            closed = true;
            break;
        }
        // The node closing shows up as EOF on a non-blocking read.
        let mut probe = [0_u8; 4096];
        if let Ok(0) = stream.try_read(&mut probe) {
            closed = true;
            break;
        }
    }
    let took = start.elapsed();
    assert!(closed, "still open after {took:?} of trickling");
    assert!(took >= Duration::from_millis(400), "closed after {took:?}");
    assert!(took < CLOSE, "closed only after {took:?}");
    node_still_works(&node).await;
}
