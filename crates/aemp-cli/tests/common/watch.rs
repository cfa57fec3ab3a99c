//! The watcher's side of the failure tests: echo ports spawned on a peer process and
//! monitored, numbered streams through them, and the check that a monitor fired because of
//! heartbeats in time. Included with `#[path = "common/watch.rs"] mod watch;`.

#![allow(dead_code, reason = "each test file uses a different subset")]
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failure is a test failure"
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aemp::{Message, Node, NodeId, PortId, Reason, Value, msg};
use tokio::sync::{mpsc, oneshot};

/// How long a test waits for what must happen.
pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// An `info` round trip through `peer`'s node port (and a connection, if there was none).
pub(crate) async fn info(node: &Node, peer: &NodeId) {
    let reply = node
        .call(&PortId::node_port(peer.clone()), msg!["info"], Some(WAIT))
        .await
        .unwrap();
    assert_eq!(reply[0], Value::from(peer.as_str()));
}

/// Spawns `aemp::echo` on `peer` and monitors it (and kills `linked` with it, if given); the
/// monitor is in place when this returns (a round trip through the peer after `mon1`).
pub(crate) async fn monitored_echo(
    node: &Node,
    peer: &NodeId,
    linked: Option<&PortId>,
) -> (PortId, oneshot::Receiver<Reason>) {
    let echo = node.spawn(peer, "aemp::echo", Message::empty()).unwrap();
    let (tx, rx) = oneshot::channel();
    node.monitor(&echo, move |r| drop(tx.send(r))).detach();
    if let Some(linked) = linked {
        node.monitor_link(&echo, linked).detach();
    }
    info(node, peer).await;
    (echo, rx)
}

/// Waits for `dead` and checks it fired with `heartbeat timeout` within `timeout` + 1 s of
/// `since`; prints how long it took, as `what`.
pub(crate) async fn heartbeat_death(
    dead: oneshot::Receiver<Reason>,
    since: Instant,
    timeout: Duration,
    what: &str,
) -> Reason {
    let reason = tokio::time::timeout(timeout + WAIT, dead)
        .await
        .unwrap()
        .unwrap();
    let took = since.elapsed();
    eprintln!("{what}: monitor fired after {took:?}");
    assert_eq!(
        reason.values()[2],
        Value::from("heartbeat timeout"),
        "{reason}"
    );
    assert!(
        took <= timeout + Duration::from_secs(1),
        "fired after {took:?}"
    );
    reason
}

/// 500 numbered messages a second through an echo port, back to a port of ours.
pub(crate) struct Stream {
    pub(crate) replies: mpsc::UnboundedReceiver<u64>,
    /// The next number to send.
    sent: Arc<AtomicU64>,
    /// What `sent` was when the echo's monitor fired.
    fired_at: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
    pub(crate) count: u64,
}

impl Stream {
    /// Starts sending `count` messages `[back, n]` to `echo` (which sends `[n]` to `back`);
    /// `back` comes from [`numbers`].
    pub(crate) fn start(
        node: &Node,
        echo: &PortId,
        count: u64,
        (back, replies): (PortId, mpsc::UnboundedReceiver<u64>),
    ) -> Self {
        let sent = Arc::new(AtomicU64::new(0));
        let fired_at = Arc::new(AtomicU64::new(u64::MAX));
        {
            let (sent, fired_at) = (sent.clone(), fired_at.clone());
            node.monitor(echo, move |_| {
                fired_at.store(sent.load(Ordering::SeqCst), Ordering::SeqCst);
            })
            .detach();
        }
        let task = {
            let (node, echo, sent) = (node.clone(), echo.clone(), sent.clone());
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(2));
                for _ in 0..count {
                    tick.tick().await;
                    let n = sent.fetch_add(1, Ordering::SeqCst);
                    node.send(&echo, msg![back.to_string(), n]);
                }
            })
        };
        Self {
            replies,
            sent,
            fired_at,
            task,
            count,
        }
    }

    /// Waits for the first reply.
    pub(crate) async fn flowing(&mut self) {
        assert_eq!(
            tokio::time::timeout(WAIT, self.replies.recv())
                .await
                .unwrap(),
            Some(0)
        );
    }

    /// Waits until everything was sent; returns the number the monitor fired at.
    pub(crate) async fn sent(&mut self) -> u64 {
        (&mut self.task).await.unwrap();
        let limit = self.fired_at.load(Ordering::SeqCst);
        assert!(
            limit < self.count,
            "the monitor fired after the stream ended"
        );
        limit
    }
}

/// A port that forwards the number in every message it gets to the returned receiver.
pub(crate) fn numbers(node: &Node) -> (PortId, mpsc::UnboundedReceiver<u64>) {
    let (tx, rx) = mpsc::unbounded_channel::<u64>();
    let back = node.port(move |m: Message| {
        let _ = tx.send(m[0].as_u64().unwrap());
    });
    (back, rx)
}
