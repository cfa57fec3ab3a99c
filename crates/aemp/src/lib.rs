//! aemp: AnyEvent::MP for Rust — nodes, ports, monitors and spawn, speaking the AEMP 1.30
//! wire protocol.
//!
//! A [`Node`] owns ports. A port receives messages through a callback ([`Node::port`],
//! [`Node::receive`]) or a [`Mailbox`]. Messages are arrays of dynamic [`Value`]s
//! ([`Message`]). Ports die by [`Node::kill`] or by a failing callback, and monitors
//! ([`Node::monitor`] and friends) learn why. All callbacks of a node run one at a time on its
//! dispatcher, in message order, so they need no locks.
//!
//! # Getting started
//!
//! ```
//! use aemp::{Message, Node, Reason};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let node = Node::builder().id("example").start()?;
//!
//! // A port that answers pings, found by name.
//! let n = node.clone();
//! let ponger = node.new_port();
//! node.receive(&ponger, "ping", move |msg: Message| {
//!     let reply: aemp::PortId = msg.decode_element(1)?;
//!     n.send(&reply, Message::new(vec!["pong".into()]));
//!     Ok::<_, aemp::ValueError>(())
//! })?;
//! node.register("ponger", &ponger);
//!
//! // Ask it from a mailbox, and watch it die.
//! let mut inbox = node.mailbox();
//! let target = node.lookup("ponger").expect("registered");
//! node.send(&target, Message::from_serialize(&("ping", inbox.port()))?);
//! assert_eq!(inbox.recv().await.expect("reply")[0], "pong".into());
//!
//! let (tx, rx) = tokio::sync::oneshot::channel();
//! node.monitor(&target, move |reason| drop(tx.send(reason))).detach();
//! node.kill(&target, Reason::die("enough"))?;
//! assert_eq!(rx.await?.tag(), Some("die"));
//! # Ok(())
//! # }
//! ```
//!
//! # When things fail
//!
//! aemp keeps two promises when peers fail:
//!
//! - **No silent holes.** Messages from one port to another arrive in order and without
//!   gaps; when the link to the other node breaks, every monitor on that node's ports fires
//!   with `["transport_error", node, text]` instead.
//! - **No false death.** A remote port this node reported dead (its monitor fired for any
//!   reason) stays dead *for this node*: later messages to it are dropped (logged at debug)
//!   and a new monitor on it fires at once with the reason first reported, even if the link
//!   comes back and the port lives on. A lost link records the ports its monitors watched
//!   before they fire, so nothing sent after the loss reaches them. The record is bounded
//!   ([`NodeBuilder::max_dead_ports`]).
//!
//! Failures are detected and bounded:
//!
//! | failure | detected by | how fast (defaults) |
//! |---|---|---|
//! | peer process killed, link reset | the socket | at once |
//! | peer hung (stopped) or network cut, aemp peer | heartbeats | `heartbeat_timeout` (10 s) |
//! | network cut, Perl peer | `[]` keepalives + `TCP_USER_TIMEOUT` | `monitor_timeout` (30 s) |
//! | peer reads too slowly or not at all | `max_queue` (64 MiB) | when it is reached |
//! | node unreachable | the give-up timer | `monitor_timeout` (30 s) |
//! | peer shut down ([`Node::shutdown`]) | its goodbye / EOF | at once |
//!
//! A busy callback never makes a live peer look dead: heartbeats are sent and checked by
//! each connection's reader and writer tasks, not by the dispatcher. The listener caps
//! unauthenticated connections and backs off on accept errors; unused nodes are forgotten
//! after `monitor_timeout`. The repository's `docs/failures.md` has the details.
//!
//! # Layout
//!
//! - `node`: [`Node`], [`NodeBuilder`]: creating ports, sending, killing, monitoring, spawn.
//! - `port`: [`Flow`], [`IntoFlow`], [`Pattern`]: what callbacks return and match.
//! - `monitor`: [`Reason`], [`MonitorGuard`].
//! - `mailbox`: [`Mailbox`].
//! - `dispatch`: the per-node dispatcher (private).
//! - `kernel`: the node port's requests (private).
//! - `time`: [`Node::after`], [`Node::call`], [`Node::psub`], [`Timer`].
//! - [`prelude`]: AEMP's short names (`snd`, `rcv`, `mon`, `kil`, `port`, `psub`, `spawn`,
//!   `cal`, `after`, `SELF`, `NODE`) and the [`msg!`] macro.
//!
//! # Feature flags
//!
//! None yet.

#![warn(missing_docs)]
#![doc(test(attr(deny(warnings))))]

#[doc(hidden)]
pub mod bench;
pub mod config;
mod dispatch;
mod error;
mod global;
mod kernel;
mod mailbox;
mod monitor;
mod net;
mod node;
mod port;
pub mod prelude;
mod time;

pub use aemp_proto::auth::AuthMethod;
pub use aemp_proto::framing::Framing;
pub use aemp_proto::{Message, NodeId, PortId, Value, ValueError};
pub use error::{CallError, KillError, NodeError, PortError, RecvError, SpawnError};
pub use kernel::EVAL_REFUSED;
pub use mailbox::Mailbox;
pub use monitor::{MonitorGuard, Origin, Reason};
pub use net::NetError;
pub use node::{Dispatcher, Node, NodeBuilder, NodeEvent, NodeMonitorGuard, Shutdown};
pub use port::{Flow, IntoFlow, Pattern};
pub use time::{CallResult, Timer};

/// The port whose code is running (AEMP's `$SELF`): inside a callback, a spawn init or a
/// `psub`; `None` elsewhere.
#[allow(non_snake_case)]
pub fn self_port() -> Option<PortId> {
    dispatch::with_any_active(|a| a.current_port()).flatten()
}
