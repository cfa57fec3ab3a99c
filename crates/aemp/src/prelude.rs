//! AEMP's short names as free functions on the current node, so AEMP code and its
//! documentation translate line by line.
//!
//! The current node is the node whose callback is running; outside callbacks it is the
//! process's default node: the first node started (AEMP has one node per process).
//!
//! ```
//! use aemp::prelude::*;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! aemp::Node::builder().id("prelude-doc").start()?;
//! let (tx, rx) = tokio::sync::oneshot::channel();
//! let mut tx = Some(tx);
//! // my $port = port { my @msg = @_; ... };
//! let port = port(move |msg: Message| {
//!     if let Some(tx) = tx.take() {
//!         let _ = tx.send(msg);
//!     }
//!     Flow::Done // the 2009 API's "return true": the miniport is done
//! });
//! // snd $port, ping => 1;
//! snd(&port, msg!["ping", 1]);
//! assert_eq!(rx.await?, msg!["ping", 1]);
//! # Ok(())
//! # }
//! ```

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

pub use aemp_proto::{Message, NodeId, PortId, Value};

pub use crate::error::{CallError, KillError, PortError, SpawnError};
pub use crate::monitor::{MonitorGuard, Reason};
pub use crate::msg;
pub use crate::node::Node;
pub use crate::port::{Flow, IntoFlow, Pattern};
pub use crate::time::{CallResult, Timer};

use crate::dispatch;

/// The process's default node: the first one started.
static DEFAULT: Mutex<Option<Node>> = Mutex::new(None);

/// Makes `node` the default node if there is none yet.
pub(crate) fn offer_default(node: &Node) {
    let mut default = DEFAULT.lock().unwrap_or_else(PoisonError::into_inner);
    if default.is_none() {
        *default = Some(node.clone());
    }
}

/// The current node: the one whose code is running, else the default node.
///
/// # Panics
///
/// If no node has been started in this process.
pub fn node() -> Node {
    dispatch::with_any_active(|a| a.node())
        .or_else(|| {
            DEFAULT
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()
        })
        .expect("no aemp node has been started in this process (use Node::builder().start())")
}

/// This node's ID (AEMP's `NODE`/`$NODE`).
///
/// # Panics
///
/// If no node has been started.
#[allow(non_snake_case)]
pub fn NODE() -> NodeId {
    node().id().clone()
}

/// The port whose code is running (AEMP's `$SELF`).
///
/// # Panics
///
/// Outside a port's code (a callback, a spawn init, a `psub`), as AEMP croaks.
#[allow(non_snake_case)]
pub fn SELF() -> PortId {
    crate::self_port().expect("SELF used outside a port's code")
}

/// The node part of a port ID (AEMP's `node_of`).
pub fn node_of(port: &PortId) -> NodeId {
    port.node().clone()
}

/// `snd $port, @msg`: see [`Node::send`].
pub fn snd(port: &PortId, msg: impl Into<Message>) {
    node().send(port, msg);
}

/// `port { ... }`: see [`Node::port`].
pub fn port<R: IntoFlow>(f: impl FnMut(Message) -> R + Send + 'static) -> PortId {
    node().port(f)
}

/// `port` without a callback: see [`Node::new_port`].
pub fn new_port() -> PortId {
    node().new_port()
}

/// `rcv $port, tag => $cb`: see [`Node::receive`].
///
/// # Errors
///
/// [`PortError::NotLocal`] for a port of another node.
pub fn rcv<R: IntoFlow>(
    port: &PortId,
    pattern: impl Into<Pattern>,
    f: impl FnMut(Message) -> R + Send + 'static,
) -> Result<(), PortError> {
    node().receive(port, pattern, f)
}

/// `rcv $port, $cb` (the default callback): see [`Node::receive_default`].
///
/// # Errors
///
/// [`PortError::NotLocal`] for a port of another node.
pub fn rcv_default<R: IntoFlow>(
    port: &PortId,
    f: impl FnMut(Message) -> R + Send + 'static,
) -> Result<(), PortError> {
    node().receive_default(port, f)
}

/// `reg $port, $name` (2009 API): see [`Node::register`].
pub fn reg(port: &PortId, name: &str) {
    node().register(name, port);
}

/// The 2009 API's `lookup`: see [`Node::lookup`].
pub fn lookup(name: &str) -> Option<PortId> {
    node().lookup(name)
}

/// `kil $port, @reason`: see [`Node::kill`].
///
/// # Errors
///
/// [`KillError::NodePort`] for a node port.
pub fn kil(port: &PortId, reason: impl Into<Reason>) -> Result<(), KillError> {
    node().kill(port, reason.into())
}

/// `mon $port, $cb`: see [`Node::monitor`].
pub fn mon(port: &PortId, f: impl FnOnce(Reason) + Send + 'static) -> MonitorGuard {
    node().monitor(port, f)
}

/// `mon $port, $rcvport`: see [`Node::monitor_link`].
pub fn mon_link(port: &PortId, linked: &PortId) -> MonitorGuard {
    node().monitor_link(port, linked)
}

/// `mon $port` (kill `SELF` on abnormal death).
///
/// # Errors
///
/// [`PortError::NoCurrentPort`] outside a port's code.
pub fn mon_self(port: &PortId) -> Result<MonitorGuard, PortError> {
    let me = crate::self_port().ok_or(PortError::NoCurrentPort)?;
    Ok(node().monitor_link(port, &me))
}

/// `mon $port, $rcvport, @msg`: see [`Node::monitor_send`].
pub fn mon_send(port: &PortId, to: &PortId, msg: impl Into<Message>) -> MonitorGuard {
    node().monitor_send(port, to, msg)
}

/// `mon_guard $port, @refs`: see [`Node::monitor_guard`].
pub fn mon_guard<T: Send + 'static>(port: &PortId, value: T) -> MonitorGuard {
    node().monitor_guard(port, value)
}

/// `spawn $node, $initfunc, @initdata`: see [`Node::spawn`].
///
/// # Errors
///
/// [`SpawnError::InvalidName`] if `init` has no `::`.
pub fn spawn(on: &NodeId, init: &str, args: impl Into<Message>) -> Result<PortId, SpawnError> {
    node().spawn(on, init, args)
}

/// `psub { ... }`: see [`Node::psub`].
///
/// # Errors
///
/// [`PortError::NoCurrentPort`] outside a port's code.
pub fn psub<A, R, F>(f: F) -> Result<impl FnMut(A) + Send + use<A, R, F>, PortError>
where
    A: Send + 'static,
    R: IntoFlow,
    F: FnMut(A) -> R + Send + 'static,
{
    node().psub(f)
}

/// `after $timeout, @msg`: see [`Node::after`].
pub fn after(delay: Duration, port: &PortId, msg: impl Into<Message>) -> Timer {
    node().after(delay, port, msg)
}

/// `cal $port, @msg, $cb, $timeout`: see [`Node::call_with`].
pub fn cal(
    port: &PortId,
    msg: impl Into<Message>,
    timeout: Option<Duration>,
    f: impl FnOnce(CallResult) + Send + 'static,
) -> PortId {
    node().call_with(port, msg, timeout, f)
}

/// Builds a [`Message`] from values that convert into [`Value`]:
/// `msg!["ping", 1, 2.5]`.
#[macro_export]
macro_rules! msg {
    () => { $crate::Message::empty() };
    ($($v:expr),+ $(,)?) => {
        $crate::Message::from([$($crate::Value::from($v)),+])
    };
}
