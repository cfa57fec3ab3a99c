//! The network side of [`Node`]: other nodes, connections, flow control, shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use aemp_proto::NodeId;
use aemp_proto::auth::AuthMethod;
use aemp_proto::handshake::TlsRole;

use super::Node;
use crate::dispatch::{self, Job};
use crate::monitor::Reason;
use crate::net::NetError;

impl Node {
    /// Nodes this node knows of, itself first.
    pub fn known_nodes(&self) -> Vec<NodeId> {
        let mut nodes = vec![self.id().clone()];
        nodes.extend(self.shared.net.known_nodes());
        nodes
    }

    /// Nodes connected to this node (never itself).
    pub fn up_nodes(&self) -> Vec<NodeId> {
        self.shared.net.up_nodes()
    }

    /// `true` if `node` is connected (and `true` for this node itself).
    pub fn node_is_up(&self, node: &NodeId) -> bool {
        node == self.id() || self.shared.net.is_up(node)
    }

    /// Tells this node where `node` listens: messages for it are then sent by dialling these
    /// addresses (round robin, every `connect_interval`) until a connection comes up.
    pub fn add_address(&self, node: &NodeId, addr: SocketAddr) {
        crate::net::add_address(&self.shared, node, addr);
    }

    /// How many messages wait to be written to `node` (queued while connecting, or not yet
    /// written). `send` never blocks; a program that streams can watch this or use
    /// [`wait_queue_below`](Self::wait_queue_below).
    pub fn queued_to(&self, node: &NodeId) -> usize {
        self.shared.net.queued(node).0
    }

    /// Waits until fewer than `limit` messages wait to be written to `node` (flow control for
    /// bulk senders; AEMP itself has none).
    pub async fn wait_queue_below(&self, node: &NodeId, limit: usize) {
        loop {
            let (queued, drained) = self.shared.net.queued(node);
            let Some(drained) = drained else {
                return;
            };
            if queued < limit {
                return;
            }
            let notified = drained.notified();
            // Re-check after registering, so a drain in between is not missed.
            if self.shared.net.queued(node).0 < limit {
                return;
            }
            let _ = tokio::time::timeout(Duration::from_millis(50), notified).await;
        }
    }

    /// Calls `f` whenever a node comes up or goes down ([`NodeEvent`]); for each node, up and
    /// down strictly alternate (AEMP's `mon_nodes`). `f` runs on the dispatcher; a panic in it
    /// is logged. Dropping the guard removes it.
    pub fn monitor_nodes(&self, f: impl FnMut(&NodeEvent) + Send + 'static) -> NodeMonitorGuard {
        let id = self.shared.next_monitor_id();
        let watcher: dispatch::NodeWatcher = Box::new(f);
        self.exec(move |core| core.watch_nodes(id, Some(watcher)));
        NodeMonitorGuard {
            node: Some(self.clone()),
            id,
        }
    }

    /// Closes the connection to `node` (if connected). Monitors on its ports fire with
    /// `["transport_error", node, "connection closed by this node"]` here, and with a
    /// transport error on the other side; either side may connect again later.
    pub fn disconnect(&self, node: &NodeId) {
        self.shared.net.disconnect(node);
    }

    /// The seed addresses this node was built with ([`NodeBuilder::seed`](crate::NodeBuilder::seed)).
    pub fn seeds(&self) -> Vec<SocketAddr> {
        self.shared.global.seeds().to_vec()
    }

    /// Where other nodes listen, as announced over Global links (`addr`, `nodes`): node ID
    /// and its listeners as written, sorted by node ID.
    pub fn node_addresses(&self) -> Vec<(NodeId, Vec<String>)> {
        let mut known = self.shared.global.addresses();
        known.retain(|(node, _)| self.shared.net.knows(node));
        known
    }

    /// The addresses this node listens on.
    pub fn listen_addrs(&self) -> Vec<SocketAddr> {
        self.shared.net.listening()
    }

    /// Connects to the node listening at `addr`; resolves with its node ID once both sides
    /// have authenticated. Messages queued for that node are then sent, in order.
    ///
    /// # Errors
    ///
    /// [`NetError`] if the connection or the handshake fails (wrong secret, ...).
    pub async fn connect(&self, addr: SocketAddr) -> Result<NodeId, NetError> {
        crate::net::connect(self.shared.clone(), addr).await
    }

    /// Connections established so far, counted by our TLS role (`None`: no TLS) and the
    /// method the peer authenticated with. A diagnostic for tests; not a stable API.
    #[doc(hidden)]
    pub fn session_counts(&self) -> Vec<(Option<TlsRole>, AuthMethod, u64)> {
        self.shared.net.tls.sessions()
    }

    /// Stops the node gracefully and resolves when it is done:
    ///
    /// 1. its listeners close, and it dials and accepts nothing more;
    /// 2. the work sent before this call runs (later work is discarded), then its ports are
    ///    dropped (their monitors on this node do not fire);
    /// 3. calls still waiting for a reply fail with [`CallError::Shutdown`];
    /// 4. what is queued for connected nodes is written, for up to 3 s
    ///    ([`shutdown_within`](Self::shutdown_within) sets another deadline);
    /// 5. every connection is closed, so the peers see this node down at once (their
    ///    monitors on its ports fire with `transport_error`).
    ///
    /// The shutdown goes on if the future is dropped; calling it again only waits for it.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), aemp::NodeError> {
    /// let node = aemp::Node::builder().start()?;
    /// node.shutdown().await;
    /// assert!(node.listen_addrs().is_empty());
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// [`CallError::Shutdown`]: crate::CallError::Shutdown
    pub fn shutdown(&self) -> Shutdown {
        self.shutdown_within(DEFAULT_FLUSH)
    }

    /// [`shutdown`](Self::shutdown), allowing `flush` for the work sent before it and the
    /// writing of queued messages.
    pub fn shutdown_within(&self, flush: Duration) -> Shutdown {
        if self.shared.net.begin_close() {
            self.enqueue(Job::Shutdown);
            let shared = self.shared.clone();
            self.shared.runtime.spawn(async move {
                crate::net::shutdown(shared.clone(), flush).await;
                shared.net.shut_down.send_replace(true);
            });
        }
        let mut done = self.shared.net.shut_down.subscribe();
        Shutdown(Box::pin(async move {
            // An error means the node is gone, which is done too.
            let _ = done.wait_for(|done| *done).await;
        }))
    }

    /// The last heartbeat round-trip time to `node`: `None` if it is not connected or does
    /// not answer heartbeats (a Perl node), or none was measured yet.
    pub fn round_trip(&self, node: &NodeId) -> Option<Duration> {
        self.shared.net.round_trip(node)
    }
}

/// Resolves when a node's shutdown is done ([`Node::shutdown`]). The shutdown runs whether
/// or not this is awaited: drop it to shut down in the background.
pub struct Shutdown(Pin<Box<dyn Future<Output = ()> + Send + 'static>>);

impl Future for Shutdown {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.0.as_mut().poll(cx)
    }
}

impl std::fmt::Debug for Shutdown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Shutdown(..)")
    }
}

/// How long [`Node::shutdown`] waits for queued work to be done and written.
const DEFAULT_FLUSH: Duration = Duration::from_secs(3);

/// A node came up or went down (see [`Node::monitor_nodes`]).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum NodeEvent {
    /// A connection to this node was established.
    Up(NodeId),
    /// The connection to this node was lost, with the transport reason.
    Down(NodeId, Reason),
}

/// Removes a [`Node::monitor_nodes`] callback when dropped; [`detach`](Self::detach) keeps it.
#[must_use = "dropping the guard removes the callback at once"]
#[derive(Debug)]
pub struct NodeMonitorGuard {
    node: Option<Node>,
    id: u64,
}

impl NodeMonitorGuard {
    /// Keeps the callback for the node's lifetime.
    pub fn detach(mut self) {
        self.node = None;
    }
}

impl Drop for NodeMonitorGuard {
    fn drop(&mut self) {
        if let Some(node) = self.node.take() {
            let id = self.id;
            node.exec(move |core| core.watch_nodes(id, None));
        }
    }
}
