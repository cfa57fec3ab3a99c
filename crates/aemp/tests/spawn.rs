//! Local spawn: registered init functions run later, in the new port's context, in order
//! with other work; failed or unknown inits leave no port (SPEC §1 `spawn`; reference §2.11).

#![allow(clippy::unwrap_used, reason = "test code: a failure is a test failure")]

#[path = "common/support.rs"]
mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use aemp::{Message, Node, PortId, Reason, SpawnError, Value, msg};
use support::{death, died, flush, next, no_such_port, sink, start, within};
use tokio::sync::oneshot;

/// Registers `test::echo`: the new port sends `[SELF, args...]` to the port in args[0], then
/// echoes every message it gets to that port.
fn register_echo(node: &Node) {
    let n = node.clone();
    node.register_init("test::echo", move |args: Message| {
        let me = aemp::self_port().ok_or("no SELF in init")?;
        let to: PortId = args.decode_element(0).map_err(|e| e.to_string())?;
        let mut hello = msg![me.to_string()];
        hello.extend(args.iter().skip(1).cloned());
        n.send(&to, hello);
        let n2 = n.clone();
        n.set_callback(&me, move |m: Message| n2.send(&to, m))
            .map_err(|e| e.to_string())
    })
    .unwrap();
}

#[tokio::test]
async fn spawn_runs_the_init_in_the_new_ports_context_before_later_messages() {
    let node = start();
    register_echo(&node);
    let (out, mut rx) = sink(&node);
    let port = node
        .spawn(node.id(), "test::echo", msg![out.to_string(), "arg", 2])
        .unwrap();
    assert_eq!(port.node(), node.id());
    assert!(node.port_is_local(&port));
    node.send(&port, msg!["right after spawn"]);
    assert_eq!(next(&mut rx).await, msg![port.to_string(), "arg", 2]);
    assert_eq!(next(&mut rx).await, msg!["right after spawn"]);
}

#[tokio::test]
async fn a_local_spawn_from_a_callback_is_deferred() {
    let node = start();
    let ran = Arc::new(AtomicBool::new(false));
    let r = ran.clone();
    let n = node.clone();
    node.register_init("test::flag", move |_: Message| {
        r.store(true, Ordering::SeqCst);
        n.set_callback(&aemp::self_port().unwrap(), |_: Message| ())
    })
    .unwrap();
    let (tx, rx) = oneshot::channel();
    let mut tx = Some(tx);
    let (n2, r2) = (node.clone(), ran.clone());
    let driver = node.port(move |_: Message| {
        let port = n2.spawn(n2.id(), "test::flag", Message::empty()).unwrap();
        // Still inside the callback: the init has not run.
        drop(tx.take().unwrap().send((port, r2.load(Ordering::SeqCst))));
    });
    node.send(&driver, msg!["go"]);
    let (port, ran_before_return) = within("spawn", rx).await.unwrap();
    assert!(!ran_before_return);
    flush(&node).await;
    assert!(ran.load(Ordering::SeqCst));
    // The init created the port: a monitor now sees it alive until killed.
    let dead = death(&node, &port);
    node.kill(&port, Reason::new(vec!["done".into()])).unwrap();
    assert_eq!(died(dead).await, Reason::new(vec!["done".into()]));
}

#[tokio::test]
async fn an_init_can_build_a_full_port_with_receive() {
    let node = start();
    let n = node.clone();
    node.register_init("test::tagged", move |args: Message| {
        let me = aemp::prelude::SELF();
        let to: PortId = args.decode_element(0)?;
        let n2 = n.clone();
        n.receive(&me, "ping", move |m: Message| {
            n2.send(&to, msg!["pong", m[1].clone()]);
        })
        .map_err(|e| aemp::ValueError::Custom(e.to_string()))?;
        Ok::<_, aemp::ValueError>(())
    })
    .unwrap();
    let (out, mut rx) = sink(&node);
    let port = node
        .spawn(node.id(), "test::tagged", msg![out.to_string()])
        .unwrap();
    node.send(&port, msg!["ping", 1]);
    node.send(&port, msg!["ignored"]);
    node.send(&port, msg!["ping", 2]);
    assert_eq!(next(&mut rx).await, msg!["pong", 1]);
    assert_eq!(next(&mut rx).await, msg!["pong", 2]);
}

#[tokio::test]
async fn an_unknown_init_leaves_no_port() {
    let node = start();
    let port = node.spawn(node.id(), "no::such::init", msg![1]).unwrap();
    assert_eq!(
        died(death(&node, &port)).await.values(),
        no_such_port(&port)
    );
}

#[tokio::test]
async fn an_init_that_fails_before_creating_the_port_leaves_no_port() {
    let node = start();
    node.register_init("test::fails", |_: Message| Err::<(), _>("init failed"))
        .unwrap();
    node.register_init("test::panics", |_: Message| -> () {
        panic!("init panicked")
    })
    .unwrap();
    for init in ["test::fails", "test::panics"] {
        let port = node.spawn(node.id(), init, Message::empty()).unwrap();
        let dead = death(&node, &port);
        assert_eq!(died(dead).await.values(), no_such_port(&port), "{init}");
    }
}

#[tokio::test]
async fn init_names_must_contain_double_colons() {
    let node = start();
    assert_eq!(
        node.register_init("plain", |_: Message| ()),
        Err(SpawnError::InvalidName("plain".into()))
    );
    assert_eq!(
        node.spawn(node.id(), "plain", Message::empty()),
        Err(SpawnError::InvalidName("plain".into()))
    );
    assert!(node.register_init("::main_style", |_: Message| ()).is_ok());
}

#[tokio::test]
async fn spawned_ports_get_fresh_ids() {
    let node = start();
    node.register_init("test::idle", |_: Message| ()).unwrap();
    let a = node
        .spawn(node.id(), "test::idle", Message::empty())
        .unwrap();
    let b = node
        .spawn(node.id(), "test::idle", Message::empty())
        .unwrap();
    let (c, _rx) = sink(&node);
    assert_ne!(a, b);
    assert_ne!(a, c);
    assert_ne!(b, c);
}

/// The 2009 API's idiom, run from inside a port: spawn, monitor the new port at once, and
/// let the init monitor its spawner.
#[tokio::test]
async fn spawn_then_monitor_from_a_callback_sees_the_spawned_port() {
    let node = start();
    let n = node.clone();
    node.register_init("test::linked", move |args: Message| {
        let spawner: PortId = args.decode_element(0)?;
        // `mon $srcport` in the init: die with the spawner.
        aemp::prelude::mon_self(&spawner)
            .map_err(|e| aemp::ValueError::Custom(e.to_string()))?
            .detach();
        n.set_callback(&aemp::prelude::SELF(), |_: Message| ())
            .map_err(|e| aemp::ValueError::Custom(e.to_string()))?;
        Ok::<_, aemp::ValueError>(())
    })
    .unwrap();
    let (tx, rx) = oneshot::channel();
    let mut tx = Some(tx);
    let n2 = node.clone();
    let reasons = Arc::new(Mutex::new(Vec::new()));
    let r = reasons.clone();
    let spawner = node.port(move |_: Message| {
        let me = aemp::self_port().unwrap();
        let server = n2
            .spawn(n2.id(), "test::linked", msg![me.to_string()])
            .unwrap();
        let r = r.clone();
        let tx = tx.take().unwrap();
        n2.monitor(&server, move |reason| {
            r.lock().unwrap().push(reason);
            let _ = tx.send(());
        })
        .detach();
    });
    let spawner_dead = death(&node, &spawner);
    node.send(&spawner, msg!["go"]);
    flush(&node).await;
    // The spawned port is alive: its monitor has not fired. Killing the spawner takes it
    // down through the init's link, and the spawner's monitor reports that.
    assert!(
        reasons.lock().unwrap().is_empty(),
        "{:?}",
        reasons.lock().unwrap()
    );
    node.kill(&spawner, Reason::die("spawner crashed")).unwrap();
    assert_eq!(died(spawner_dead).await, Reason::die("spawner crashed"));
    within("the spawned port's monitor", rx).await.unwrap();
    assert_eq!(
        *reasons.lock().unwrap(),
        vec![Reason::die("spawner crashed")]
    );
}

#[tokio::test]
async fn an_init_that_fails_after_creating_its_port_kills_it_with_die() {
    let node = start();
    let n = node.clone();
    node.register_init("test::late_failure", move |_: Message| {
        n.set_callback(&aemp::self_port().unwrap(), |_: Message| ())
            .unwrap();
        Err::<(), _>("failed after rcv")
    })
    .unwrap();
    let (tx, rx) = oneshot::channel();
    let mut tx = Some(tx);
    let n2 = node.clone();
    let driver = node.port(move |_: Message| {
        let port = n2
            .spawn(n2.id(), "test::late_failure", Message::empty())
            .unwrap();
        let tx = tx.take().unwrap();
        n2.monitor(&port, move |r| drop(tx.send(r))).detach();
    });
    node.send(&driver, msg!["go"]);
    assert_eq!(
        within("monitor", rx).await.unwrap(),
        Reason::die("failed after rcv")
    );
}

#[tokio::test]
async fn spawn_arguments_arrive_unchanged() {
    let node = start();
    let (tx, rx) = oneshot::channel();
    let tx = Mutex::new(Some(tx));
    node.register_init("test::args", move |args: Message| {
        if let Some(tx) = tx.lock().unwrap().take() {
            drop(tx.send(args));
        }
    })
    .unwrap();
    let args = msg![
        Value::Null,
        true,
        -3,
        1.5,
        "text",
        Value::Array(vec![1.into(), "two".into()])
    ];
    node.spawn(node.id(), "test::args", args.clone()).unwrap();
    assert_eq!(within("the init", rx).await.unwrap(), args);
}

#[tokio::test]
async fn spawn_then_register_from_a_callback_keeps_the_name() {
    let node = start();
    let n = node.clone();
    node.register_init("test::named", move |_: Message| {
        n.set_callback(&aemp::self_port().unwrap(), |_: Message| ())
    })
    .unwrap();
    node.register_init("test::unnamed", |_: Message| ())
        .unwrap();
    let (tx, rx) = oneshot::channel();
    let mut tx = Some(tx);
    let n2 = node.clone();
    let driver = node.port(move |_: Message| {
        let named = n2.spawn(n2.id(), "test::named", Message::empty()).unwrap();
        n2.register("server", &named);
        // An init that never creates its port: the name must go.
        let unnamed = n2
            .spawn(n2.id(), "test::unnamed", Message::empty())
            .unwrap();
        n2.register("ghost", &unnamed);
        drop(tx.take().unwrap().send(named));
    });
    node.send(&driver, msg!["go"]);
    let named = within("spawn", rx).await.unwrap();
    flush(&node).await;
    assert_eq!(node.lookup("server"), Some(named.clone()));
    assert_eq!(node.lookup("ghost"), None);
    // And it is removed when that port dies.
    let dead = death(&node, &named);
    node.kill(&named, Reason::normal()).unwrap();
    died(dead).await;
    assert_eq!(node.lookup("server"), None);
}
