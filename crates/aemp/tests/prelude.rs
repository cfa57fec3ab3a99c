//! The prelude: AEMP's short names on the current node (`snd`, `port`, `rcv`, `kil`, `mon`,
//! `SELF`, `NODE`, `msg!`, ...) inside callbacks and, outside them, on the default node
//! (SPEC §1: "`aemp::prelude` also offers AEMP's short names").
//!
//! Outside callbacks the prelude uses the first node started in the process. Tests in this
//! file run in parallel, so every test first makes sure that node is [`default_node`], which
//! lives on its own runtime for the whole process.

#![allow(clippy::unwrap_used, reason = "test code: a failure is a test failure")]

#[path = "common/support.rs"]
mod support;

use std::sync::LazyLock;

use aemp::prelude::*;
use support::within;
use tokio::sync::oneshot;

/// The process's default node, started before any other node of this test binary.
fn default_node() -> &'static Node {
    static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap()
    });
    static NODE: LazyLock<Node> = LazyLock::new(|| {
        let _guard = RUNTIME.enter();
        Node::builder().id("prelude-default").start().unwrap()
    });
    &NODE
}

/// A port that forwards every message to a tokio channel.
fn forwarder() -> (PortId, tokio::sync::mpsc::UnboundedReceiver<Message>) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    (port(move |m: Message| drop(tx.send(m))), rx)
}

#[test]
fn msg_builds_messages_from_values() {
    assert_eq!(msg![], Message::empty());
    assert_eq!(
        msg!["ping", 1, 2.5, true, Value::Null],
        Message::new(vec![
            Value::from("ping"),
            Value::Int(1),
            Value::Float(2.5),
            Value::Bool(true),
            Value::Null,
        ])
    );
    let s = String::from("owned");
    assert_eq!(msg![s, -1_i8, 7_u64,], msg!["owned", -1, 7]);
}

#[tokio::test]
async fn outside_callbacks_the_prelude_uses_the_default_node() {
    let default = default_node();
    assert_eq!(NODE(), *default.id());
    assert_eq!(node().id(), default.id());
    let (p, mut rx) = forwarder();
    assert_eq!(p.node(), default.id());
    snd(&p, msg!["hello", 1]);
    assert_eq!(
        within("the message", rx.recv()).await,
        Some(msg!["hello", 1])
    );
    assert_eq!(node_of(&p), NODE());
}

#[tokio::test]
async fn self_panics_outside_a_port() {
    default_node();
    let result = std::panic::catch_unwind(SELF);
    assert!(result.is_err());
}

#[tokio::test]
async fn inside_a_callback_the_prelude_uses_the_running_node() {
    default_node();
    // Another node: inside its callbacks, the prelude acts on it, not on the default.
    let other = Node::builder().id("prelude-other").start().unwrap();
    let (tx, rx) = oneshot::channel();
    let mut tx = Some(tx);
    let p = other.port(move |_: Message| {
        let me = SELF();
        // A port made here belongs to the running node.
        let child = port(|_: Message| ());
        drop(tx.take().unwrap().send((NODE(), me, child)));
    });
    other.send(&p, msg!["who"]);
    let (node_id, me, child) = within("the callback", rx).await.unwrap();
    assert_eq!(node_id, *other.id());
    assert_eq!(me, p);
    assert_eq!(child.node(), other.id());
    assert!(other.port_is_local(&child));
}

#[tokio::test]
async fn rcv_snd_kil_and_mon_work_like_aemp() {
    default_node();
    let (out, mut rx) = forwarder();
    // my $port = port; rcv $port, ping => sub { snd $out, pong => $_[1] };
    let p = new_port();
    let o = out.clone();
    rcv(&p, "ping", move |m: Message| {
        snd(&o, msg!["pong", m[1].clone()])
    })
    .unwrap();
    // mon $port, sub { snd $out, died => @_ };
    let o = out.clone();
    mon(&p, move |reason| {
        let mut m = msg!["died"];
        m.extend(reason.into_values());
        snd(&o, m);
    })
    .detach();
    snd(&p, msg!["ping", 7]);
    // kil $port, bye => 1;
    kil(&p, vec![Value::from("bye"), Value::from(1)]).unwrap();
    assert_eq!(within("pong", rx.recv()).await, Some(msg!["pong", 7]));
    assert_eq!(
        within("died", rx.recv()).await,
        Some(msg!["died", "bye", 1])
    );
    // kil on a node port is refused.
    assert_eq!(
        kil(&PortId::from(NODE()), Reason::normal()),
        Err(KillError::NodePort(PortId::from(NODE())))
    );
}

#[tokio::test]
async fn mon_send_mon_link_and_mon_guard_forms() {
    default_node();
    let (out, mut rx) = forwarder();
    let (a, _ra) = forwarder();
    let (linked, _rl) = forwarder();
    // mon $a, $out, "a_died";
    mon_send(&a, &out, msg!["a_died"]).detach();
    // mon $a, $linked;
    mon_link(&a, &linked).detach();
    mon_send(&linked, &out, msg!["linked_died"]).detach();
    // mon_guard $a, $value;
    let (tx, dropped) = oneshot::channel::<()>();
    mon_guard(&a, tx).detach();
    kil(&a, Reason::die("crash")).unwrap();
    let mut got = vec![
        within("a", rx.recv()).await.unwrap(),
        within("linked", rx.recv()).await.unwrap(),
    ];
    got.sort_by_key(|m| m[0].as_str().map(str::to_owned));
    assert_eq!(
        got,
        vec![
            msg!["a_died", "die", "crash"],
            msg!["linked_died", "die", "crash"]
        ]
    );
    // The guarded value was dropped with the port.
    assert!(within("the guard", dropped).await.is_err());
}

#[tokio::test]
async fn spawn_psub_after_and_cal_through_the_prelude() {
    let default = default_node();
    default
        .register_init("prelude::echo", |_: Message| {
            rcv(&SELF(), "q", |m: Message| {
                let reply: PortId = m.last().unwrap().decode().unwrap();
                snd(&reply, msg!["a", m[1].clone()]);
            })
        })
        .unwrap();
    assert_eq!(
        spawn(&NODE(), "no_colons", Message::empty()),
        Err(SpawnError::InvalidName("no_colons".into()))
    );
    let server = spawn(&NODE(), "prelude::echo", Message::empty()).unwrap();
    let (tx, rx) = oneshot::channel();
    let mut tx = Some(tx);
    let s2 = server.clone();
    let client = port(move |_: Message| {
        let tx = tx.take().unwrap();
        cal(&s2, msg!["q", 5], Some(support::WAIT), move |r| {
            drop(tx.send(r))
        });
    });
    snd(&client, msg!["go"]);
    assert_eq!(within("cal", rx).await.unwrap(), Ok(msg!["a", 5]));

    // psub outside a port is refused; inside, it captures SELF.
    assert_eq!(psub(|(): ()| ()).err(), Some(PortError::NoCurrentPort));
    let (tx, rx) = oneshot::channel();
    let mut tx = Some(tx);
    let p = port(move |_: Message| {
        let mut tx = tx.take();
        let mut f = psub(move |(): ()| {
            if let Some(tx) = tx.take() {
                drop(tx.send(SELF()));
            }
        })
        .unwrap();
        f(());
    });
    snd(&p, msg!["go"]);
    assert_eq!(within("psub", rx).await.unwrap(), p);

    // after $delay, $port, @msg
    let (out, mut orx) = forwarder();
    let _timer = after(std::time::Duration::from_millis(1), &out, msg!["timer"]);
    assert_eq!(within("after", orx.recv()).await, Some(msg!["timer"]));
}

#[tokio::test]
async fn reg_lookup_and_rcv_default_through_the_prelude() {
    default_node();
    let (out, mut rx) = forwarder();
    let p = new_port();
    let o = out.clone();
    rcv_default(&p, move |m: Message| snd(&o, m)).unwrap();
    // reg $port, $name; lookup $name
    reg(&p, "prelude-service");
    let found = lookup("prelude-service").unwrap();
    assert_eq!(found, p);
    snd(&found, msg!["by name"]);
    assert_eq!(within("by name", rx.recv()).await, Some(msg!["by name"]));
    let (tx, rx2) = oneshot::channel();
    mon(&p, move |_| drop(tx.send(lookup("prelude-service")))).detach();
    kil(&p, Reason::normal()).unwrap();
    assert_eq!(within("the monitor", rx2).await.unwrap(), None);
}
