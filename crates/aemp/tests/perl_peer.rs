//! An aemp node against a scripted peer that behaves exactly as a Perl AnyEvent::MP 1.30 node
//! does in the captured session (`test-vectors/json.txt`): Perl's greeting and auth line over
//! the real transcript, then the Global link set-up, node requests, spawn, monitors, kills
//! and plain sends as JSON texts, some separated by `\n`, some split across writes.
//! Both directions: the Perl peer dials the aemp node, and the aemp node dials a Perl peer.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failure is a test failure"
)]

#[path = "common/wire.rs"]
mod wire;

use std::time::Duration;

use aemp::{Message, Node, PortId, Reason, Value, msg};
use aemp_proto::framing::{Frame, Framing};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use wire::{SECRET, WAIT, Wire, json, json_msg, perl_handshake, perl_line1};

const PERL: &str = "perl-client";
/// The Perl node's link-port name (its RUNIQ plus a counter), as in the capture.
const LINK: &str = "McLSAK9YrcDSCk22.b";

fn node() -> Node {
    wire::listening_node(Duration::from_secs(10))
}

/// Registers `test::echo`: its port forwards every message, unchanged, to the port given as
/// the first spawn argument.
fn register_echo(node: &Node) {
    let n = node.clone();
    node.register_init("test::echo", move |args: Message| {
        let me = aemp::self_port().ok_or("no port context")?;
        let reply: PortId = args.decode_element(0).map_err(|e| e.to_string())?;
        let n2 = n.clone();
        n.set_callback(&me, move |m: Message| n2.send(&reply, m))
            .map_err(|e| e.to_string())
    })
    .unwrap();
}

/// A Perl-shaped peer `perl-client` dials `node` and completes the handshake.
async fn perl_dials(node: &Node) -> Wire {
    let addr = node.listen_addrs()[0];
    let stream = TcpStream::connect(addr).await.unwrap();
    let mut wire = Wire::new(stream, Framing::Json);
    let view = perl_handshake(&mut wire, &perl_line1(PERL, addr), SECRET).await;
    assert_eq!(&view.greeting.node, node.id());
    wire
}

/// Sends what a Perl 1.30 node sends right after the handshake: its Global link port.
async fn send_global_link(wire: &mut Wire) {
    wire.send(format!(
        r#"["","AnyEvent::MP::_spawn","{LINK}","AnyEvent::MP::Global::connect",0,"{PERL}"]"#
    ))
    .await;
    wire.send(format!(r#"["","mon1","{LINK}"]"#)).await;
    wire.send(format!(
        r#"["{LINK}","addr",["127.0.0.1:4040"]]["{LINK}","setup"]"#
    ))
    .await;
    wire.send_split(&format!(r#"["{LINK}","seedme1"]"#)).await;
}

/// A `time` round trip: every request sent before it has been handled once it returns.
async fn round_trip(wire: &mut Wire, tag: &str) -> Frame {
    wire.send(format!(r#"["","time","{PERL}#{tag}"]"#)).await;
    let reply = wire.frame_to(tag).await;
    assert_eq!(reply.message.len(), 1, "{reply:?}");
    assert!(
        matches!(reply.message[0], Value::Float(t) if t > 1.6e9),
        "time reply {reply:?}"
    );
    reply
}

/// Takes the Global link set-up the aemp node sends to a new peer, as a Perl 1.30 node does
/// (reference §6.4): `_spawn` of its link port, `mon1` of it, `addr` with its listeners,
/// `setup`, in this order. Returns the link port's name.
async fn take_global_link(wire: &mut Wire, node: &Node) -> String {
    let tag_is = |f: &Frame, tag: &str| {
        f.port.is_empty() && f.message.first().and_then(Value::as_str) == Some(tag)
    };
    let spawn = wire
        .frame_where(|f| tag_is(f, "AnyEvent::MP::_spawn"))
        .await;
    let link = spawn.message[1].as_str().unwrap().to_owned();
    assert_eq!(
        spawn.message[2..],
        [
            Value::from("AnyEvent::MP::Global::connect"),
            Value::from(0),
            Value::from(node.id().as_str())
        ]
    );
    let mon1 = wire.frame_where(|f| tag_is(f, "mon1")).await;
    assert_eq!(mon1.message, msg!["mon1", link.as_str()]);
    let addr = wire.frame_to(&link).await;
    let listeners: Vec<Value> = node
        .listen_addrs()
        .iter()
        .map(|a| Value::from(a.to_string()))
        .collect();
    assert_eq!(addr.message, msg!["addr", listeners]);
    let setup = wire.frame_to(&link).await;
    assert_eq!(setup.message, msg!["setup"]);
    let at = |f: &Frame| wire.log.iter().position(|g| g == f).unwrap();
    assert!(at(&spawn) < at(&mon1) && at(&mon1) < at(&addr) && at(&addr) < at(&setup));
    link
}

fn is_kil0_for(frame: &Frame, name: &str) -> bool {
    frame.port.is_empty()
        && frame.message.first().and_then(Value::as_str) == Some("kil0")
        && frame.message.get(1).and_then(Value::as_str) == Some(name)
}

fn count(wire: &Wire, text: &str) -> usize {
    let want = Frame::new("", json_msg(text));
    wire.log.iter().filter(|f| **f == want).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn perl_peer_global_link_and_node_requests() {
    let node = node();
    let mut wire = perl_dials(&node).await;
    send_global_link(&mut wire).await;

    // `time` → ["r1", <float>]. Handled after the link set-up, so a `kil0` for the link port
    // (spawn refused, or the port died on its first message) would already be here.
    round_trip(&mut wire, "r1").await;
    assert!(
        !wire.log.iter().any(|f| is_kil0_for(f, LINK)),
        "the Global link port was not kept: {:?}",
        wire.log
    );
    // The aemp node links to the Perl node the same way.
    take_global_link(&mut wire, &node).await;

    // info, with an extra reply element.
    wire.send_split(&format!(r#"["","info","{PERL}#r2","x"]"#))
        .await;
    let info = wire.frame_to("r2").await;
    assert_eq!(info.message, msg!["x", node.id().as_str()]);

    // known_nodes and up_nodes, separated by a newline as Perl's reader allows.
    wire.send(format!(
        "[\"\",\"known_nodes\",\"{PERL}#r3\"]\n[\"\",\"up_nodes\",\"{PERL}#r4\"]\n"
    ))
    .await;
    let known = wire.frame_to("r3").await;
    assert!(known.message.contains(&Value::from(PERL)), "{known:?}");
    assert!(
        known.message.contains(&Value::from(node.id().as_str())),
        "{known:?}"
    );
    let up = wire.frame_to("r4").await;
    assert_eq!(up.message, msg![PERL], "up_nodes");
    assert!(node.up_nodes().iter().any(|n| n.as_str() == PERL));

    // eval is answered with a non-empty error instead of running code.
    wire.send(format!(r#"["","eval","1+1","{PERL}#ev"]"#)).await;
    let ev = wire.frame_to("ev").await;
    assert_eq!(ev.message.len(), 1, "{ev:?}");
    assert!(
        ev.message[0].as_str().is_some_and(|s| !s.is_empty()),
        "eval must answer a non-empty $@: {ev:?}"
    );

    // Keepalives `[]` and `[""]` are ignored: the next frame is the round trip's answer.
    assert_eq!(wire.pending().count(), 0, "unexpected frames");
    wire.send("[]").await;
    wire.send("[\"\"]\n[]").await;
    wire.send_split("[\"\"]").await;
    wire.send(format!(r#"["","time","{PERL}#r5"]"#)).await;
    let next = wire.next_frame().await;
    assert_eq!(next.port, "r5", "a keepalive was answered: {next:?}");

    // Still connected, still no kil0 for the link port.
    round_trip(&mut wire, "r6").await;
    assert!(!wire.log.iter().any(|f| is_kil0_for(f, LINK)));
    assert!(node.up_nodes().iter().any(|n| n.as_str() == PERL));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn perl_peer_spawn_echo_monitor_and_kill() {
    let node = node();
    register_echo(&node);
    let mut wire = perl_dials(&node).await;
    send_global_link(&mut wire).await;

    // Spawn an echo port named by the Perl side, monitor it, send to it (split mid-text).
    wire.send(format!(
        r#"["","AnyEvent::MP::_spawn","PYUNIQ.a","test::echo","{PERL}#e"]"#
    ))
    .await;
    wire.send(r#"["","mon1","PYUNIQ.a"]"#).await;
    wire.send_split(r#"["PYUNIQ.a","x",1,{"k":[null,1.5,"ä"]}]"#)
        .await;
    let echo = wire.frame_to("e").await;
    assert_eq!(echo.message, json_msg(r#"["x",1,{"k":[null,1.5,"ä"]}]"#));

    // Monitoring a port that does not exist.
    wire.send(r#"["","mon1","nope.1"]"#).await;
    let nope = wire.frame_where(|f| is_kil0_for(f, "nope.1")).await;
    let full = format!("{}#nope.1", node.id());
    assert_eq!(
        nope.message,
        msg![
            "kil0",
            "nope.1",
            "no_such_port",
            "cannot monitor nonexistent port",
            full.as_str()
        ]
    );

    // Killing the monitored port reports the reason back with kil0.
    wire.send(r#"["","kil","PYUNIQ.a","bye","now"]"#).await;
    let kil0 = wire.frame_where(|f| is_kil0_for(f, "PYUNIQ.a")).await;
    assert_eq!(kil0.message, msg!["kil0", "PYUNIQ.a", "bye", "now"]);

    // Reference-counted peer monitors: mon1, mon1, mon0 leaves one, so kil0 still comes.
    wire.send(format!(
        r#"["","AnyEvent::MP::_spawn","PYUNIQ.c","test::echo","{PERL}#e"]"#
    ))
    .await;
    wire.send("[\"\",\"mon1\",\"PYUNIQ.c\"]\n[\"\",\"mon1\",\"PYUNIQ.c\"]")
        .await;
    wire.send(r#"["","mon0","PYUNIQ.c"]"#).await;
    wire.send(r#"["","kil","PYUNIQ.c","refcount"]"#).await;
    let kil0 = wire.frame_where(|f| is_kil0_for(f, "PYUNIQ.c")).await;
    assert_eq!(kil0.message, msg!["kil0", "PYUNIQ.c", "refcount"]);

    // ... and mon1, mon0 leaves none: the kill reports nothing. Proven by a later mon1 on
    // the dead port, whose no_such_port is then the first kil0 for it.
    wire.send(format!(
        r#"["","AnyEvent::MP::_spawn","PYUNIQ.d","test::echo","{PERL}#e"]"#
    ))
    .await;
    wire.send(r#"["","mon1","PYUNIQ.d"]["","mon0","PYUNIQ.d"]"#)
        .await;
    wire.send(r#"["","kil","PYUNIQ.d","unwatched"]"#).await;
    round_trip(&mut wire, "r1").await;
    wire.send(r#"["","mon1","PYUNIQ.d"]"#).await;
    let kil0 = wire.frame_where(|f| is_kil0_for(f, "PYUNIQ.d")).await;
    assert_eq!(
        kil0.message.get(2).and_then(Value::as_str),
        Some("no_such_port"),
        "mon0 did not remove the peer's monitor: {kil0:?}"
    );

    // The link port survived all of this, and the connection is up.
    round_trip(&mut wire, "r2").await;
    assert!(!wire.log.iter().any(|f| is_kil0_for(f, LINK)));
    assert!(node.up_nodes().iter().any(|n| n.as_str() == PERL));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn perl_peer_plain_sends_both_ways() {
    let node = node();
    let mut wire = perl_dials(&node).await;
    send_global_link(&mut wire).await;

    // The aemp node tells the Perl side about one of its ports...
    let mut mb = node.mailbox();
    let perl_port: PortId = format!("{PERL}#q").parse().unwrap();
    node.send(&perl_port, msg!["your port", mb.port().to_string()]);
    let told = wire.frame_to("q").await;
    // On the wire the destination is the port NAME, the node being implied.
    assert_eq!(told.port, "q");
    assert_eq!(told.message[0], Value::from("your port"));
    let full = told.message[1].as_str().unwrap().to_owned();
    assert_eq!(full, mb.port().to_string());
    let (node_part, name) = full.split_once('#').unwrap();
    assert_eq!(node_part, node.id().as_str());

    // ... and the Perl side sends to it by name, values intact.
    wire.send_split(&format!(r#"["{name}","hi",2,null,[1.5,"ä"],{{"a":"b"}}]"#))
        .await;
    let got = mb.recv_timeout(WAIT).await.unwrap();
    assert_eq!(got, json_msg(r#"["hi",2,null,[1.5,"ä"],{"a":"b"}]"#));

    // Many sends from the aemp side arrive in order, each with the name first.
    for i in 0..100_i64 {
        node.send(&perl_port, msg!["n", i]);
    }
    for i in 0..100_i64 {
        let f = wire.frame_to("q").await;
        assert_eq!(f.message, msg!["n", i]);
    }

    // A send to a port that does not exist is dropped silently; the link stays up.
    wire.send(r#"["nosuch.port","lost"]"#).await;
    round_trip(&mut wire, "r1").await;
    assert!(node.up_nodes().iter().any(|n| n.as_str() == PERL));

    // Relays through the node port: snd and snd_multiple.
    let me = mb.port().to_string();
    wire.send(format!(r#"["","snd","{me}","relayed",1]"#)).await;
    wire.send(format!(
        r#"["","snd_multiple",["{me}","multi",1],["{me}","multi",2]]"#
    ))
    .await;
    assert_eq!(mb.recv_timeout(WAIT).await.unwrap(), msg!["relayed", 1]);
    assert_eq!(mb.recv_timeout(WAIT).await.unwrap(), msg!["multi", 1]);
    assert_eq!(mb.recv_timeout(WAIT).await.unwrap(), msg!["multi", 2]);

    // Refused and unknown requests change nothing: no kill of the node port, no function
    // call by name, no disconnect.
    wire.send(r#"["","kil",""]["","kil","","x"]["","Some::Perl::function","arg"]"#)
        .await;
    round_trip(&mut wire, "r2").await;
    assert!(node.up_nodes().iter().any(|n| n.as_str() == PERL));
    node.send(mb.port(), msg!["local"]);
    assert_eq!(mb.recv_timeout(WAIT).await.unwrap(), msg!["local"]);

    // The Perl side monitors the aemp port it was told about; killing it locally reports
    // the reason with kil0 (by the port's name).
    wire.send(format!(r#"["","mon1","{name}"]"#)).await;
    round_trip(&mut wire, "r3").await;
    node.kill(
        mb.port(),
        Reason::new(vec![Value::from("gone"), Value::Int(7)]),
    )
    .unwrap();
    let kil0 = wire.frame_where(|f| is_kil0_for(f, name)).await;
    assert_eq!(kil0.message, msg!["kil0", name, "gone", 7]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_connection_from_a_connected_perl_node_is_refused() {
    let node = node();
    let mut first = perl_dials(&node).await;
    round_trip(&mut first, "r1").await;
    let (tx, rx) = oneshot::channel::<Reason>();
    node.monitor(&format!("{PERL}#m").parse().unwrap(), move |r| {
        drop(tx.send(r));
    })
    .detach();
    first
        .frame_where(|f| *f == Frame::new("", json_msg(r#"["mon1","m"]"#)))
        .await;

    // Same node ID again: refused at the greeting, no auth line.
    let addr = node.listen_addrs()[0];
    let mut second = TcpStream::connect(addr).await.unwrap();
    let nonce = wire::random_nonce();
    tokio::io::AsyncWriteExt::write_all(
        &mut second,
        format!(
            "{}
{}
",
            perl_line1(PERL, addr),
            nonce.as_str()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let (got, _) = wire::collect_until_closed(&mut second, WAIT).await;
    let text = String::from_utf8_lossy(&got);
    assert_eq!(text.split_terminator('\n').count(), 2, "{text:?}");

    // The first connection is untouched: its monitor did not fire, it still works.
    round_trip(&mut first, "r2").await;
    node.send(&format!("{PERL}#after").parse().unwrap(), msg![1]);
    first.frame_to("after").await;
    drop(first);
    let reason = tokio::time::timeout(WAIT, rx).await.unwrap().unwrap();
    assert_eq!(reason.tag(), Some("transport_error"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_perl_node_that_reconnects_gets_what_was_queued_meanwhile() {
    let node = node();
    let (tx, rx) = oneshot::channel::<Reason>();
    let mut wire = perl_dials(&node).await;
    node.monitor(&PortId::node_port(PERL.parse().unwrap()), move |r| {
        drop(tx.send(r));
    })
    .detach();
    round_trip(&mut wire, "r1").await;
    drop(wire);
    let reason = tokio::time::timeout(WAIT, rx).await.unwrap().unwrap();
    assert_eq!(reason.tag(), Some("transport_error"));
    assert!(!node.up_nodes().iter().any(|n| n.as_str() == PERL));

    // Sent while the Perl node is away: queued (monitor_timeout is 10 s) ...
    let q: PortId = format!("{PERL}#q").parse().unwrap();
    node.send(&q, msg!["queued", 1]);
    node.send(&q, msg!["queued", 2]);
    // ... and delivered, in order, when it is back.
    let mut wire = perl_dials(&node).await;
    assert_eq!(wire.frame_to("q").await.message, msg!["queued", 1]);
    assert_eq!(wire.frame_to("q").await.message, msg!["queued", 2]);
    round_trip(&mut wire, "r2").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_sending_its_whole_handshake_and_data_in_one_write() {
    let node = node();
    let addr = node.listen_addrs()[0];
    let stream = TcpStream::connect(addr).await.unwrap();
    let mut wire = Wire::new(stream, Framing::Json);
    // Read the aemp greeting first, then send greeting, nonce, auth line and the first
    // messages in one write.
    let peer1 = wire.line().await;
    let peer2 = wire.line().await;
    let line1 = perl_line1(PERL, addr);
    let nonce = wire::random_nonce();
    let transcript = aemp_proto::auth::Transcript::new(&line1, nonce.as_str(), &peer1, &peer2);
    let token = aemp_proto::auth::AuthMethod::HmacMd6
        .token(
            transcript.own(),
            Some(&aemp_proto::auth::Secret::new(SECRET)),
            false,
        )
        .unwrap();
    wire.send(format!(
        "{line1}\n{}\nhmac_md6_64_256;{token};json\n[\"\",\"info\",\"{PERL}#i\"][\"\",\"time\",\"{PERL}#t\"]",
        nonce.as_str()
    ))
    .await;
    let auth = wire.line().await;
    assert!(
        auth.starts_with("hmac_md6_64_256;") && auth.ends_with(";json"),
        "{auth}"
    );
    assert_eq!(wire.frame_to("i").await.message, msg![node.id().as_str()]);
    wire.frame_to("t").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aemp_monitors_on_perl_ports_send_one_mon1_and_one_mon0() {
    let node = node();
    let mut wire = perl_dials(&node).await;
    send_global_link(&mut wire).await;
    let p: PortId = format!("{PERL}#p").parse().unwrap();
    let sync = |n: u32| -> PortId { format!("{PERL}#sync{n}").parse().unwrap() };

    let (tx1, rx1) = oneshot::channel::<Reason>();
    let (tx2, rx2) = oneshot::channel::<Reason>();
    let g1 = node.monitor(&p, move |r| drop(tx1.send(r)));
    let g2 = node.monitor(&p, move |r| drop(tx2.send(r)));
    node.send(&sync(1), msg![1]);
    wire.frame_to("sync1").await;
    assert_eq!(count(&wire, r#"["mon1","p"]"#), 1, "{:?}", wire.log);

    drop(g1);
    node.send(&sync(2), msg![2]);
    wire.frame_to("sync2").await;
    assert_eq!(count(&wire, r#"["mon0","p"]"#), 0, "{:?}", wire.log);

    drop(g2);
    node.send(&sync(3), msg![3]);
    wire.frame_to("sync3").await;
    assert_eq!(count(&wire, r#"["mon0","p"]"#), 1, "{:?}", wire.log);
    assert_eq!(count(&wire, r#"["mon1","p"]"#), 1, "{:?}", wire.log);
    // Removed monitors never fire: their callbacks are dropped.
    assert!(tokio::time::timeout(WAIT, rx1).await.unwrap().is_err());
    assert!(tokio::time::timeout(WAIT, rx2).await.unwrap().is_err());

    // A new monitor (a new 0→1 transition) sends mon1 again; the peer's kil0 fires it.
    let (tx3, rx3) = oneshot::channel::<Reason>();
    node.monitor(&p, move |r| drop(tx3.send(r))).detach();
    node.send(&sync(4), msg![4]);
    wire.frame_to("sync4").await;
    assert_eq!(count(&wire, r#"["mon1","p"]"#), 2, "{:?}", wire.log);
    wire.send_split(r#"["","kil0","p","die","boom"]"#).await;
    let reason = tokio::time::timeout(WAIT, rx3).await.unwrap().unwrap();
    assert_eq!(reason.values(), &[Value::from("die"), Value::from("boom")]);

    // Once reported dead, p stays dead for this node: a later monitor fires at once with
    // the reason reported, without asking the peer again, and messages to p are dropped.
    let (tx4, rx4) = oneshot::channel::<Reason>();
    node.monitor(&p, move |r| drop(tx4.send(r))).detach();
    let reason = tokio::time::timeout(WAIT, rx4).await.unwrap().unwrap();
    assert_eq!(reason.values(), &[Value::from("die"), Value::from("boom")]);
    node.send(&p, msg!["after", "death"]);
    node.send(&sync(5), msg![5]);
    wire.frame_to("sync5").await;
    assert_eq!(count(&wire, r#"["mon1","p"]"#), 2, "{:?}", wire.log);
    assert!(!wire.log.iter().any(|f| f.port == "p"), "{:?}", wire.log);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn perl_peer_closing_fires_transport_error() {
    let node = node();
    let mut wire = perl_dials(&node).await;
    send_global_link(&mut wire).await;
    round_trip(&mut wire, "r1").await;
    assert!(node.up_nodes().iter().any(|n| n.as_str() == PERL));

    let z: PortId = format!("{PERL}#z").parse().unwrap();
    let (tx, rx) = oneshot::channel::<Reason>();
    node.monitor(&z, move |r| drop(tx.send(r))).detach();
    let (txn, rxn) = oneshot::channel::<Reason>();
    node.monitor(&PortId::node_port(PERL.parse().unwrap()), move |r| {
        drop(txn.send(r));
    })
    .detach();
    wire.frame_where(|f| *f == Frame::new("", json_msg(r#"["mon1","z"]"#)))
        .await;

    drop(wire);
    for rx in [rx, rxn] {
        let reason = tokio::time::timeout(WAIT, rx).await.unwrap().unwrap();
        let v = reason.values();
        assert_eq!(v.len(), 3, "{reason}");
        assert_eq!(v[0], Value::from("transport_error"));
        assert_eq!(v[1], Value::from(PERL));
        assert!(v[2].as_str().is_some_and(|s| !s.is_empty()), "{reason}");
    }
    assert!(!node.up_nodes().iter().any(|n| n.as_str() == PERL));
    wire::node_still_works(&node).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aemp_dials_a_perl_listener() {
    let node = node();
    register_echo(&node);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let dialler = node.clone();
    let connect = tokio::spawn(async move { dialler.connect(addr).await });
    let (stream, remote) = tokio::time::timeout(WAIT, listener.accept())
        .await
        .unwrap()
        .unwrap();
    let mut wire = Wire::new(stream, Framing::Json);
    // A Perl listener's greeting (its pairs in another order, as Perl's hash order varies).
    let line1 = format!(
        "aemp;1;perl-seed;{};provider=AE-1.30;peeraddr={remote}",
        wire::PERL_LISTS
    );
    let view = perl_handshake(&mut wire, &line1, SECRET).await;
    assert_eq!(&view.greeting.node, node.id());
    // The dialler announces the address it dialled.
    assert_eq!(
        view.greeting.pair("peeraddr"),
        Some(Some(addr.to_string().as_str()))
    );
    let peer = tokio::time::timeout(WAIT, connect)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(peer.as_str(), "perl-seed");
    assert!(node.up_nodes().contains(&peer));

    // The listener side sends its Global link and requests, as the Perl seed does.
    let link = "k1XG8x2ZXLu790F0J.a";
    wire.send(format!(
        r#"["","AnyEvent::MP::_spawn","{link}","AnyEvent::MP::Global::connect",0,"perl-seed"]["","mon1","{link}"]"#
    ))
    .await;
    wire.send(format!(
        r#"["{link}","addr",["127.0.0.1:4040"]]["{link}","set",{{"aemp_harness_echo":["perl-seed#echo"]}}]["{link}","setup"]"#
    ))
    .await;
    wire.send(format!(r#"["{link}","seedme1"]"#)).await;
    wire.send(r#"["","time","perl-seed#t"]"#).await;
    let t = wire.frame_to("t").await;
    assert!(matches!(t.message[0], Value::Float(_)), "{t:?}");
    assert!(!wire.log.iter().any(|f| is_kil0_for(f, link)));

    wire.send(r#"["","AnyEvent::MP::_spawn","S.e","test::echo","perl-seed#back"]"#)
        .await;
    wire.send_split(r#"["S.e","ping",[1,2,3]]"#).await;
    let back = wire.frame_to("back").await;
    assert_eq!(back.message, Message::new(json(r#"["ping",[1,2,3]]"#)));

    // A plain send from the aemp side.
    node.send(&"perl-seed#sink".parse().unwrap(), msg!["log", 1]);
    let sink = wire.frame_to("sink").await;
    assert_eq!(sink.message, msg!["log", 1]);

    // The listener goes away: the aemp side notices.
    let (tx, rx) = oneshot::channel::<Reason>();
    node.monitor(&"perl-seed#w".parse().unwrap(), move |r| drop(tx.send(r)))
        .detach();
    wire.frame_where(|f| *f == Frame::new("", json_msg(r#"["mon1","w"]"#)))
        .await;
    drop(wire);
    let reason = tokio::time::timeout(WAIT, rx).await.unwrap().unwrap();
    assert_eq!(reason.tag(), Some("transport_error"));
    assert_eq!(reason.values()[1], Value::from("perl-seed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crlf_lines_an_empty_nonce_and_extra_auth_fields_are_accepted() {
    // Reference §4.1, §4.3, §4.8: a CR before the LF is stripped, a nonce may be any line
    // (even empty), and fields after the third of the auth line are ignored.
    let node = node();
    let addr = node.listen_addrs()[0];
    let stream = TcpStream::connect(addr).await.unwrap();
    let mut wire = Wire::new(stream, Framing::Json);
    let line1 = perl_line1(PERL, addr);
    wire.send(format!("{line1}\r\n\r\n")).await;
    let peer1 = wire.line().await;
    let peer2 = wire.line().await;
    let transcript = aemp_proto::auth::Transcript::new(&line1, "", &peer1, &peer2);
    let secret = aemp_proto::auth::Secret::new(SECRET);
    let token = aemp_proto::auth::AuthMethod::HmacMd6
        .token(transcript.own(), Some(&secret), false)
        .unwrap();
    wire.send(format!("hmac_md6_64_256;{token};json;extra=1\r\n"))
        .await;
    let auth: aemp_proto::greeting::AuthLine = wire.line().await.parse().unwrap();
    assert!(aemp_proto::auth::AuthMethod::HmacMd6.verify(
        &auth.token,
        transcript.peer(),
        Some(&secret),
        false
    ));
    // Integers at the edges of 64 bits, escapes and a float survive an echo round trip.
    register_echo(&node);
    wire.send(format!(
        r#"["","AnyEvent::MP::_spawn","E.1","test::echo","{PERL}#e"]"#
    ))
    .await;
    let text = r#"["big",18446744073709551615,-9223372036854775808,"\u0000\n\"\\/é€𝄞",1.25e-7,true,false]"#;
    wire.send(format!(r#"["E.1",{}"#, &text[1..])).await;
    let echo = wire.frame_to("e").await;
    assert_eq!(echo.message, json_msg(text));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_perl_peer_gets_no_heartbeats_but_keepalives_on_an_idle_link() {
    let node = Node::builder()
        .id(wire::unique("rust"))
        .secret(SECRET)
        .heartbeat_interval(Duration::from_millis(200))
        .heartbeat_timeout(Duration::from_secs(2))
        .bind("127.0.0.1:0".parse::<std::net::SocketAddr>().unwrap())
        .start()
        .unwrap();
    let addr = node.listen_addrs()[0];
    let stream = TcpStream::connect(addr).await.unwrap();
    let mut wire = Wire::new(stream, Framing::Json);
    let view = perl_handshake(&mut wire, &perl_line1(PERL, addr), SECRET).await;
    // Offered in the greeting (Perl ignores key=value pairs it does not know)...
    assert_eq!(view.greeting.pair("heartbeat"), Some(Some("200,2000")));
    send_global_link(&mut wire).await;
    round_trip(&mut wire, "k1").await;
    // ... but a Perl peer did not offer them back: `[]` when idle, never a ping.
    let keepalive = wire
        .frame_where(|f| f.port.is_empty() && f.message.is_empty())
        .await;
    assert_eq!(keepalive.message.len(), 0);
    // A Perl node that is silent for longer than our heartbeat_timeout is not cut off:
    // only TCP decides for Perl peers.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    round_trip(&mut wire, "k2").await;
    assert!(node.up_nodes().iter().any(|n| n.as_str() == PERL));
    assert!(
        !wire.log.iter().any(|f| f
            .message
            .first()
            .and_then(Value::as_str)
            .is_some_and(|t| t.starts_with("aemp_"))),
        "{:?}",
        wire.log
    );
}
