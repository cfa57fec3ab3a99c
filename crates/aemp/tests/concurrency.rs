//! Concurrency: one node's callbacks never overlap, whatever threads feed it; two nodes in one
//! process are independent; ports created on other threads are usable at once (lib docs,
//! `Node` docs, reference §2.15).

#![allow(clippy::unwrap_used, reason = "test code: a failure is a test failure")]

#[path = "common/support.rs"]
mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc as std_mpsc};
use std::time::Duration;

use aemp::{Message, Node, PortId, Reason, Value, msg};
use support::{WAIT, death, died, flush, next, sink, within};
use tokio::sync::oneshot;

/// Marks the time a callback runs; counts overlaps with any other callback of the node.
#[derive(Clone, Default)]
struct Exclusive {
    inside: Arc<AtomicBool>,
    overlaps: Arc<AtomicUsize>,
    runs: Arc<AtomicUsize>,
}

impl Exclusive {
    fn run(&self, work: impl FnOnce()) {
        if self.inside.swap(true, Ordering::SeqCst) {
            self.overlaps.fetch_add(1, Ordering::SeqCst);
        }
        // Long enough for another thread to be caught inside at the same time.
        for _ in 0..50 {
            std::hint::spin_loop();
        }
        work();
        self.inside.store(false, Ordering::SeqCst);
        self.runs.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn callbacks_of_one_node_never_run_concurrently() {
    const PORTS: usize = 16;
    const TASKS: usize = 6;
    const EACH: usize = 5_000;
    let node = support::start();
    let ex = Exclusive::default();
    let (done_tx, done_rx) = oneshot::channel();
    let done_tx = Arc::new(std::sync::Mutex::new(Some(done_tx)));
    // The ports form a ring; half the messages make a port forward one more message to its
    // neighbour, so callbacks also trigger callbacks.
    let total = TASKS * EACH + TASKS * EACH / 2;
    let ports: Vec<PortId> = (0..PORTS).map(|_| node.new_port()).collect();
    for (i, port) in ports.iter().enumerate() {
        let (ex, node2, done) = (ex.clone(), node.clone(), done_tx.clone());
        let neighbour = ports[(i + 1) % PORTS].clone();
        node.set_callback(port, move |m: Message| {
            ex.run(|| {
                if m[0] == Value::from("forward") {
                    node2.send(&neighbour, msg!["forwarded"]);
                }
            });
            if ex.runs.load(Ordering::SeqCst) == total
                && let Some(tx) = done.lock().unwrap().take()
            {
                let _ = tx.send(());
            }
        })
        .unwrap();
    }
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let (node, ports) = (node.clone(), ports.clone());
            tokio::spawn(async move {
                for n in 0..EACH {
                    let tag = if n % 2 == 0 { "forward" } else { "plain" };
                    node.send(&ports[(n + t) % PORTS], msg![tag, n]);
                    if n % 500 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    within("every callback", done_rx).await.unwrap();
    // Monitor callbacks and timers run on the dispatcher too.
    let (tx, rx) = oneshot::channel();
    let ex3 = ex.clone();
    node.monitor(&ports[3], move |_| {
        ex3.run(|| ());
        let _ = tx.send(());
    })
    .detach();
    let ex4 = ex.clone();
    let (ttx, trx) = oneshot::channel();
    node.after_fn(Duration::from_millis(1), move || {
        ex4.run(|| ());
        let _ = ttx.send(());
    });
    node.kill(&ports[3], Reason::normal()).unwrap();
    within("the monitor", rx).await.unwrap();
    within("the timer", trx).await.unwrap();
    assert_eq!(ex.overlaps.load(Ordering::SeqCst), 0);
    assert_eq!(ex.runs.load(Ordering::SeqCst), total + 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_in_one_process_are_independent() {
    let a = Node::builder().id("node-a").start().unwrap();
    let b = Node::builder().id("node-b").start().unwrap();
    assert_ne!(a.id(), b.id());
    let (pa, mut rxa) = sink(&a);
    let (pb, mut rxb) = sink(&b);
    assert!(a.port_is_local(&pa) && !a.port_is_local(&pb));
    assert!(b.port_is_local(&pb) && !b.port_is_local(&pa));
    assert_ne!(pa.name().split('.').next(), pb.name().split('.').next());

    // Names are per node.
    a.register("service", &pa);
    assert_eq!(a.lookup("service"), Some(pa.clone()));
    assert_eq!(b.lookup("service"), None);

    // B's callbacks run while one of A's callbacks is blocked.
    let (release_tx, release_rx) = std_mpsc::channel::<()>();
    let (blocked_tx, blocked_rx) = oneshot::channel();
    let mut blocked_tx = Some(blocked_tx);
    let blocker = a.port(move |_: Message| {
        if let Some(tx) = blocked_tx.take() {
            let _ = tx.send(());
        }
        release_rx.recv_timeout(WAIT).is_ok()
    });
    let blocker_dead = death(&a, &blocker);
    a.send(&blocker, msg!["block"]);
    within("A's callback to block", blocked_rx).await.unwrap();
    let release = b.port(move |_: Message| release_tx.send(()).is_ok());
    b.send(&release, msg!["release"]);
    // The blocker returned `true` (released in time): a normal death.
    assert!(died(blocker_dead).await.is_normal());

    // A failure on A leaves B alone.
    let doomed = a.port(|_: Message| -> () { panic!("a fails") });
    let doomed_dead = death(&a, &doomed);
    a.send(&doomed, msg!["x"]);
    assert_eq!(died(doomed_dead).await, Reason::die("a fails"));
    b.send(&pb, msg!["b fine"]);
    a.send(&pa, msg!["a fine"]);
    assert_eq!(next(&mut rxb).await, msg!["b fine"]);
    assert_eq!(next(&mut rxa).await, msg!["a fine"]);

    // Without a transport, A cannot reach B's ports, even in the same process.
    a.send(&pb, msg!["cross"]);
    flush(&a).await;
    flush(&b).await;
    assert!(rxb.try_recv().is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_created_on_another_thread_is_usable_from_a_running_callback() {
    // A callback learns, while it runs, the ID of a port created outside the dispatcher
    // (through a channel the node does not see). The port exists from the moment its
    // creator has the ID: a send, a monitor and a kill from the callback must all find it.
    let node = support::start();
    let (id_tx, id_rx) = std_mpsc::channel::<PortId>();
    let (running_tx, running_rx) = oneshot::channel();
    let mut running_tx = Some(running_tx);
    let (reason_tx, reason_rx) = oneshot::channel();
    let mut reason_tx = Some(reason_tx);
    let n2 = node.clone();
    let user = node.port(move |_: Message| {
        if let Some(tx) = running_tx.take() {
            let _ = tx.send(());
        }
        let Ok(fresh) = id_rx.recv_timeout(WAIT) else {
            return;
        };
        n2.send(&fresh, msg!["hello from a callback"]);
        let tx = reason_tx.take().unwrap();
        n2.monitor(&fresh, move |r| drop(tx.send(r))).detach();
        n2.kill(&fresh, Reason::new(vec!["killed by the callback".into()]))
            .unwrap();
    });
    node.send(&user, msg!["go"]);
    within("the callback to run", running_rx).await.unwrap();
    let mut mailbox = node.mailbox();
    id_tx.send(mailbox.port().clone()).unwrap();
    assert_eq!(
        within("the message", mailbox.recv()).await,
        Some(msg!["hello from a callback"])
    );
    assert_eq!(
        within("the monitor", reason_rx).await.unwrap(),
        Reason::new(vec!["killed by the callback".into()])
    );
}
