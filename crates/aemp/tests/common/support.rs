//! Helpers shared by the integration tests (included with `#[path]` by each test file).

#![allow(
    dead_code,
    reason = "each test file uses a different subset of these helpers"
)]
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failure is a test failure"
)]

use std::future::Future;
use std::time::Duration;

use aemp::{Message, Node, PortId, Reason, Value};
use tokio::sync::{mpsc, oneshot};

/// How long a test waits for an event that must happen. Generous: the machine is shared.
pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// Starts an anonymous node on the current runtime.
pub(crate) fn start() -> Node {
    Node::builder().start().unwrap()
}

/// Starts an anonymous node whose dispatcher is a task on the current runtime: needed with
/// tokio's paused clock, which advances only while the runtime is idle.
pub(crate) fn start_on_task() -> Node {
    Node::builder()
        .dispatcher(aemp::Dispatcher::Task)
        .start()
        .unwrap()
}

/// Awaits `f`, failing the test if it takes longer than [`WAIT`].
pub(crate) async fn within<F: Future>(what: &str, f: F) -> F::Output {
    match tokio::time::timeout(WAIT, f).await {
        Ok(out) => out,
        Err(_) => panic!("timed out waiting for {what}"),
    }
}

/// A receiver that gets the reason once `port` dies (a detached callback monitor).
pub(crate) fn death(node: &Node, port: &PortId) -> oneshot::Receiver<Reason> {
    let (tx, rx) = oneshot::channel();
    node.monitor(port, move |reason| drop(tx.send(reason)))
        .detach();
    rx
}

/// Waits for the reason sent by [`death`].
pub(crate) async fn died(rx: oneshot::Receiver<Reason>) -> Reason {
    within("a monitor to fire", rx).await.unwrap()
}

/// A port that forwards every message to the returned channel (a callback port, so it is
/// not a `Mailbox` and stays alive until killed).
pub(crate) fn sink(node: &Node) -> (PortId, mpsc::UnboundedReceiver<Message>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let port = node.port(move |msg: Message| drop(tx.send(msg)));
    (port, rx)
}

/// Receives the next message from a [`sink`].
pub(crate) async fn next(rx: &mut mpsc::UnboundedReceiver<Message>) -> Message {
    within("a message", rx.recv()).await.unwrap()
}

/// Asserts that nothing more arrives at a [`sink`] once `node` has handled everything sent
/// to it so far: a round trip through the node port (`["snd", probe, "flush"]`) goes
/// through the dispatcher's FIFO behind all earlier work from this sender.
pub(crate) async fn flush(node: &Node) {
    let (probe, mut rx) = sink(node);
    node.send(
        &node.node_port(),
        Message::new(vec![
            "snd".into(),
            Value::from(probe.to_string()),
            "flush".into(),
        ]),
    );
    let m = next(&mut rx).await;
    assert_eq!(m[0], Value::from("flush"));
    node.kill(&probe, Reason::normal()).unwrap();
}

/// The reason `["no_such_port", "cannot monitor nonexistent port", "<id>"]`.
pub(crate) fn no_such_port(port: &PortId) -> Vec<Value> {
    vec![
        Value::from("no_such_port"),
        Value::from("cannot monitor nonexistent port"),
        Value::from(port.to_string()),
    ]
}

/// The integer in element `i` of `msg`.
pub(crate) fn int(msg: &Message, i: usize) -> i64 {
    msg[i].as_i64().unwrap()
}
