//! Timers and calls: `after` (message and function forms, `Timer::cancel`), `call` (future and
//! callback forms: reply, timeout, target death, exactly one callback) and `psub` (SPEC §1
//! `after`, `cal`, `psub`; reference §2.7, §2.12, §2.13).

#![allow(clippy::unwrap_used, reason = "test code: a failure is a test failure")]

#[path = "common/support.rs"]
mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aemp::{CallError, CallResult, Message, Node, PortError, PortId, Reason, RecvError, msg};
use support::{WAIT, death, died, flush, next, no_such_port, sink, start, start_on_task, within};
use tokio::sync::oneshot;
use tokio::time::Instant;

/// A port that answers `[tag, args..., reply]` with `["re", args...]` to `reply`.
fn echo(node: &Node) -> PortId {
    let n = node.clone();
    node.port(move |mut m: Message| {
        let reply: PortId = m.last().unwrap().decode().unwrap();
        let len = m.len();
        let mut answer = msg!["re"];
        answer.extend(m.iter_mut().take(len - 1).skip(1).map(std::mem::take));
        n.send(&reply, answer);
    })
}

// ---- after ----

#[tokio::test(start_paused = true)]
async fn after_sends_the_message_once_the_delay_has_passed() {
    let node = start_on_task();
    let mut mailbox = node.mailbox();
    let start = Instant::now();
    let _timer = node.after(Duration::from_secs(60), mailbox.port(), msg!["tick", 1]);
    assert_eq!(mailbox.recv().await, Some(msg!["tick", 1]));
    assert!(start.elapsed() >= Duration::from_secs(60));
    // One-shot.
    assert_eq!(
        mailbox.recv_timeout(Duration::from_secs(600)).await,
        Err(RecvError::Timeout)
    );
}

#[tokio::test(start_paused = true)]
async fn timers_fire_in_deadline_order() {
    let node = start_on_task();
    let mut mailbox = node.mailbox();
    node.after(Duration::from_secs(3), mailbox.port(), msg![3]);
    node.after(Duration::from_secs(1), mailbox.port(), msg![1]);
    node.after(Duration::from_secs(2), mailbox.port(), msg![2]);
    for n in 1..=3 {
        assert_eq!(mailbox.recv().await, Some(msg![n]));
    }
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_timer_never_fires_and_dropping_one_does_not_cancel() {
    let node = start_on_task();
    let mut mailbox = node.mailbox();
    let cancelled = node.after(Duration::from_secs(5), mailbox.port(), msg!["cancelled"]);
    let dropped = node.after(Duration::from_secs(10), mailbox.port(), msg!["dropped"]);
    cancelled.cancel();
    drop(dropped);
    let fn_count = Arc::new(AtomicUsize::new(0));
    let c = fn_count.clone();
    node.after_fn(Duration::from_secs(5), move || {
        c.fetch_add(1, Ordering::SeqCst);
    })
    .cancel();
    assert_eq!(mailbox.recv().await, Some(msg!["dropped"]));
    assert_eq!(
        mailbox.recv_timeout(Duration::from_secs(600)).await,
        Err(RecvError::Timeout)
    );
    assert_eq!(fn_count.load(Ordering::SeqCst), 0);
    // Cancelling a timer that already fired is harmless.
    let fired = node.after(Duration::from_secs(1), mailbox.port(), msg!["fired"]);
    assert_eq!(mailbox.recv().await, Some(msg!["fired"]));
    fired.cancel();
}

#[tokio::test(start_paused = true)]
async fn after_fn_runs_on_the_node_outside_any_port() {
    let node = start_on_task();
    let (tx, rx) = oneshot::channel();
    let start = Instant::now();
    node.after_fn(Duration::from_secs(7), move || {
        // On the dispatcher (the prelude finds the node) but not in a port's context.
        let _ = tx.send((aemp::self_port(), aemp::prelude::node().id().clone()));
    });
    let (me, on) = within("the timer", rx).await.unwrap();
    assert!(start.elapsed() >= Duration::from_secs(7));
    assert_eq!(me, None);
    assert_eq!(&on, node.id());
}

#[tokio::test(start_paused = true)]
async fn a_panicking_after_fn_harms_no_one() {
    let node = start_on_task();
    node.after_fn(Duration::from_secs(1), || panic!("timer failed"));
    let mut mailbox = node.mailbox();
    node.after(
        Duration::from_secs(2),
        mailbox.port(),
        msg!["still running"],
    );
    assert_eq!(mailbox.recv().await, Some(msg!["still running"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timers_and_calls_can_be_started_from_a_thread_outside_tokio() {
    // "Methods may be called from anywhere" (the `Node` docs): also from a plain thread.
    let node = start();
    let mut mailbox = node.mailbox();
    let port = mailbox.port().clone();
    let server = echo(&node);
    let (tx, rx) = oneshot::channel();
    let n = node.clone();
    std::thread::spawn(move || {
        let _timer = n.after(Duration::from_millis(1), &port, msg!["after"]);
        n.call_with(&server, msg!["q", 1], Some(WAIT), move |r| drop(tx.send(r)));
    })
    .join()
    .unwrap();
    assert_eq!(within("after", mailbox.recv()).await, Some(msg!["after"]));
    assert_eq!(within("the call", rx).await.unwrap(), Ok(msg!["re", 1]));
}

// ---- call ----

#[tokio::test]
async fn call_resolves_with_the_reply() {
    let node = start();
    let server = echo(&node);
    let reply = node.call(&server, msg!["req", 1, "two"], None).await;
    assert_eq!(reply, Ok(msg!["re", 1, "two"]));
    let reply = node.call(&server, msg!["req"], Some(WAIT)).await;
    assert_eq!(reply, Ok(msg!["re"]));
}

#[tokio::test]
async fn the_reply_port_is_the_last_element_and_dies_normally_after_the_reply() {
    let node = start();
    let (seen_tx, seen_rx) = oneshot::channel();
    let mut seen_tx = Some(seen_tx);
    let n = node.clone();
    let mut reply = None;
    // The server answers twice, but only when told to: the test's monitor on the reply
    // port goes through the same queue before that.
    let server = node.port(move |m: Message| {
        if m[0] == aemp::Value::from("go") {
            if let Some(reply) = reply.take() {
                n.send(&reply, msg!["first"]);
                n.send(&reply, msg!["second"]);
            }
            return;
        }
        reply = Some(m.last().unwrap().decode::<PortId>().unwrap());
        drop(seen_tx.take().map(|tx| tx.send(m.clone())));
    });
    let (tx, rx) = oneshot::channel();
    let reply_port = node.call_with(&server, msg!["q", 5], Some(WAIT), move |r| {
        drop(tx.send(r));
    });
    let reply_dead = death(&node, &reply_port);
    let seen = within("the request", seen_rx).await.unwrap();
    assert_eq!(seen, msg!["q", 5, reply_port.to_string()]);
    node.send(&server, msg!["go"]);
    assert_eq!(within("the reply", rx).await.unwrap(), Ok(msg!["first"]));
    let reason = died(reply_dead).await;
    assert!(reason.is_normal(), "{reason}");
}

#[tokio::test(start_paused = true)]
async fn call_times_out_without_a_reply() {
    let node = start_on_task();
    let (silent, _rx) = sink(&node);
    let start = Instant::now();
    let result = node
        .call(&silent, msg!["anyone?"], Some(Duration::from_secs(30)))
        .await;
    assert_eq!(result, Err(CallError::Timeout));
    assert!(start.elapsed() >= Duration::from_secs(30));
}

#[tokio::test]
async fn call_reports_the_targets_death() {
    let node = start();
    let n = node.clone();
    let dying = node.port(move |_: Message| {
        n.kill(
            &aemp::self_port().unwrap(),
            Reason::new(vec!["no".into(), "thanks".into()]),
        )
        .unwrap();
    });
    let result = within("call", node.call(&dying, msg!["req"], None)).await;
    assert_eq!(
        result,
        Err(CallError::PortDied(Reason::new(vec![
            "no".into(),
            "thanks".into()
        ])))
    );
    // A panic, and a normal kill, end the call too.
    let panicking = node.port(|_: Message| -> () { panic!("server failed") });
    let result = within("call", node.call(&panicking, msg!["req"], Some(WAIT))).await;
    assert_eq!(
        result,
        Err(CallError::PortDied(Reason::die("server failed")))
    );
    let done = node.port(|_: Message| aemp::Flow::Done);
    let result = within("call", node.call(&done, msg!["req"], None)).await;
    assert_eq!(result, Err(CallError::PortDied(Reason::normal())));
}

#[tokio::test]
async fn calling_a_missing_port_fails_at_once_with_no_such_port() {
    let node = start();
    let missing: PortId = format!("{}#missing.1", node.id()).parse().unwrap();
    let result = within("call", node.call(&missing, msg!["req"], None)).await;
    let Err(CallError::PortDied(reason)) = result else {
        panic!("expected PortDied, got {result:?}");
    };
    assert_eq!(reason.values(), no_such_port(&missing));
}

#[tokio::test(start_paused = true)]
async fn the_callback_runs_once_even_if_the_target_dies_after_replying() {
    // Without a timeout (where 1.30 called back a second time) and with one.
    for timeout in [None, Some(Duration::from_secs(5))] {
        let node = start_on_task();
        let n = node.clone();
        let server = node.port(move |m: Message| {
            let reply: PortId = m.last().unwrap().decode().unwrap();
            n.send(&reply, msg!["answer"]);
            n.kill(&aemp::self_port().unwrap(), Reason::die("after reply"))
                .unwrap();
        });
        let server_dead = death(&node, &server);
        let results: Arc<Mutex<Vec<CallResult>>> = Arc::default();
        let r = results.clone();
        node.call_with(&server, msg!["q"], timeout, move |result| {
            r.lock().unwrap().push(result);
        });
        assert_eq!(died(server_dead).await, Reason::die("after reply"));
        // Virtual time: past the timeout, so a timer that was not stopped would fire.
        tokio::time::sleep(Duration::from_secs(10)).await;
        flush(&node).await;
        assert_eq!(
            *results.lock().unwrap(),
            vec![Ok(msg!["answer"])],
            "{timeout:?}"
        );
    }
}

#[tokio::test]
async fn cal_from_a_callback_calls_back_on_the_node() {
    let node = start();
    let server = echo(&node);
    let (out, mut rx) = sink(&node);
    let n = node.clone();
    let client = node.port(move |_: Message| {
        let (n2, out) = (n.clone(), out.clone());
        aemp::prelude::cal(&server, msg!["req", 42], Some(WAIT), move |r| {
            // Runs on the node's dispatcher: the prelude's current node is this one.
            let on_node = aemp::prelude::node().id() == n2.id();
            let mut report = msg![on_node];
            report.extend(r.unwrap_or_else(|e| msg![e.to_string()]));
            n2.send(&out, report);
        });
    });
    node.send(&client, msg!["go"]);
    assert_eq!(next(&mut rx).await, msg![true, "re", 42]);
}

// ---- psub ----

type Psub = Box<dyn FnMut(&'static str) + Send>;

/// A port whose first message makes a `psub` that reports `SELF` and fails on `"fail"` /
/// panics on `"panic"`; the closure is handed out.
fn psub_port(node: &Node, out: &PortId) -> (PortId, oneshot::Receiver<Psub>) {
    let (tx, rx) = oneshot::channel();
    let mut tx = Some(tx);
    let (n, out) = (node.clone(), out.clone());
    let port = node.port(move |_: Message| {
        let (n2, out) = (n.clone(), out.clone());
        let f = n
            .psub(move |arg: &'static str| {
                match arg {
                    "fail" => return Err(format!("psub failed on {arg}")),
                    "panic" => panic!("psub panicked"),
                    _ => {}
                }
                let me = aemp::self_port().map(|p| p.to_string());
                n2.send(&out, msg![arg, me]);
                Ok(())
            })
            .unwrap();
        drop(tx.take().unwrap().send(Box::new(f) as Psub));
    });
    (port, rx)
}

#[tokio::test]
async fn psub_runs_in_the_captured_ports_context_in_call_order() {
    let node = start();
    let (out, mut rx) = sink(&node);
    let (port, made) = psub_port(&node, &out);
    node.send(&port, msg!["make"]);
    let mut f = within("psub", made).await.unwrap();
    // Called from outside the node: runs on the dispatcher, as the port.
    f("one");
    f("two");
    let who = port.to_string();
    assert_eq!(next(&mut rx).await, msg!["one", who.as_str()]);
    assert_eq!(next(&mut rx).await, msg!["two", who.as_str()]);
    // From a thread outside tokio too.
    std::thread::spawn(move || f("three")).join().unwrap();
    assert_eq!(next(&mut rx).await, msg!["three", who.as_str()]);
}

#[tokio::test]
async fn an_error_in_a_psub_kills_its_port() {
    let node = start();
    let (out, _rx) = sink(&node);
    for (arg, reason) in [
        ("fail", Reason::die("psub failed on fail")),
        ("panic", Reason::die("psub panicked")),
    ] {
        let (port, made) = psub_port(&node, &out);
        node.send(&port, msg!["make"]);
        let mut f = within("psub", made).await.unwrap();
        let dead = death(&node, &port);
        f(arg);
        assert_eq!(died(dead).await, reason);
    }
    // The node carries on.
    let (probe, mut prx) = sink(&node);
    node.send(&probe, msg!["ok"]);
    assert_eq!(next(&mut prx).await, msg!["ok"]);
}

#[tokio::test]
async fn psub_outside_a_port_is_refused() {
    let node = start();
    assert_eq!(node.psub(|(): ()| ()).err(), Some(PortError::NoCurrentPort));
    // Also on the dispatcher but outside a port (a timer function).
    let (tx, rx) = oneshot::channel();
    let n = node.clone();
    node.after_fn(Duration::from_millis(1), move || {
        let _ = tx.send(n.psub(|(): ()| ()).err());
    });
    assert_eq!(
        within("the timer", rx).await.unwrap(),
        Some(PortError::NoCurrentPort)
    );
}

#[tokio::test]
async fn psub_is_refused_for_another_nodes_callback() {
    let a = start();
    let b = start();
    let (tx, rx) = oneshot::channel();
    let mut tx = Some(tx);
    let b2 = b.clone();
    let port = a.port(move |_: Message| {
        // Running on A: B has no current port here.
        drop(tx.take().unwrap().send(b2.psub(|(): ()| ()).err()));
    });
    a.send(&port, msg!["go"]);
    assert_eq!(
        within("the callback", rx).await.unwrap(),
        Some(PortError::NoCurrentPort)
    );
}
