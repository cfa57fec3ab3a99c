//! The network: listeners, dialling, and one task per connection that drives the sans-IO
//! handshake and then the data phase (reference §4), with failure detection and bounds on
//! everything a peer can make this node hold.
//!
//! Every node has a [`Net`]. A message for another node goes to that node's [`Link`](link::Link): onto
//! the connection's outbox when it is up (the sender encodes it; one writer task coalesces
//! everything queued into one write), or into the link's queue while it is down (flushed in
//! order when a connection comes up, dropped after `monitor_timeout`, when the node's
//! monitors fire with `["transport_error", node, "unable to connect"]`).
//!
//! # Layout
//!
//! - `link`: the link table and [`send`]; what happens when a link is lost.
//! - `dead`: the record of remote ports reported dead (no false death).
//! - `monitors`: our monitors on remote ports (`mon1`/`mon0`).
//! - `conn`: a connection's outbox, bounded by `max_queue`.
//! - `connection`: the task per connection (handshake, then reader and writer).
//! - `crossing`: the crossed-dial rule.
//! - `reader`, `writer`, `inbox`: the data phase.
//! - `heartbeat`: heartbeats between aemp nodes, keepalives for Perl peers, socket options.
//! - `dial`, `listener`, `admission`: making connections, and the cap on unauthenticated
//!   inbound ones.
//! - `sweep`: forgetting nodes nobody needs any more.
//! - `shutdown`: closing every link when the node stops.
//! - `tls`: certificates, the bundle verifier, TLS streams.
//!
//! TLS (reference §4.5, module `tls`): a node with a certificate ([`NodeBuilder::cert_pem`])
//! announces `tls=1.0`; when both sides do, the handshake machine asks for TLS after the nonce
//! lines, the connection task runs it in the role the nonces decide (the bytes already read
//! are fed to TLS first), and the auth line and the data phase go through TLS. Both sides
//! present their certificate; a peer is trusted iff its certificate is one of those in our
//! PEM or chains to one of them. Names are never checked.
//!
//! [`NodeBuilder::cert_pem`]: crate::NodeBuilder::cert_pem

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use aemp_proto::handshake::{HandshakeConfig, HandshakeError};
use aemp_proto::{Message, NodeId, PortId};
use tokio::sync::Notify;

use crate::node::Shared;

mod admission;
mod conn;
mod connection;
mod crossing;
mod dead;
mod dial;
mod heartbeat;
mod inbox;
mod link;
mod listener;
mod monitors;
mod reader;
mod shutdown;
mod sweep;
mod tls;
mod writer;

use admission::Admission;
use conn::Cause;
pub(crate) use dial::connect;
pub(crate) use inbox::Inbox;
use link::Table;
pub(crate) use link::{add_address, port_died, send};
pub(crate) use listener::listen;
pub(crate) use monitors::{add_monitor, remove_monitor};
pub(crate) use shutdown::shutdown;
pub(crate) use sweep::start_sweeper;
pub(crate) use tls::{Tls, TlsConfig};

/// One message for another node: its destination and elements.
pub(crate) type Out = (PortId, Message);

/// How the transport bounds and times what it does (set through the [`NodeBuilder`]).
///
/// [`NodeBuilder`]: crate::NodeBuilder
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    /// Largest message accepted from a peer, in bytes.
    pub(crate) max_message: usize,
    /// How long queued messages wait for a connection (Perl's `monitor_timeout`); also
    /// `TCP_USER_TIMEOUT` and how long an unused node stays in the table.
    pub(crate) monitor_timeout: Duration,
    /// Spacing of connection attempts (Perl's `connect_interval`, default 2 s).
    pub(crate) connect_interval: Duration,
    /// How often we send a heartbeat to an aemp peer, or `[]` to an idle Perl peer.
    pub(crate) heartbeat_interval: Duration,
    /// A link to an aemp peer that sent nothing for this long is closed.
    pub(crate) heartbeat_timeout: Duration,
    /// Bytes that may wait to be sent to one node before its link is closed.
    pub(crate) max_queue: usize,
    /// Inbound connections that may be in their handshake at once.
    pub(crate) max_unauthenticated: usize,
    /// Entries the dead-port record holds ([`dead`]).
    pub(crate) max_dead_ports: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message: 64 << 20,
            monitor_timeout: Duration::from_secs(30),
            connect_interval: Duration::from_secs(2),
            heartbeat_interval: Duration::from_secs(1),
            heartbeat_timeout: Duration::from_secs(10),
            max_queue: 64 << 20,
            max_unauthenticated: 512,
            max_dead_ports: dead::DEFAULT_LIMIT,
        }
    }
}

/// Network state of a node.
pub(crate) struct Net {
    /// Our side of every handshake.
    pub(crate) config: HandshakeConfig,
    pub(crate) limits: Limits,
    /// Every other node we know of, and the ports we reported dead; one lock, so a link's
    /// loss and the record of its ports' deaths are one step for every sender.
    table: Mutex<Table>,
    /// Addresses our listeners are bound to.
    listening: Mutex<Vec<SocketAddr>>,
    /// The accept loops, stopped by shutdown.
    listeners: Mutex<Vec<tokio::task::AbortHandle>>,
    /// Inbound connections still in their handshake (the cap on unauthenticated ones).
    pub(crate) admission: Admission,
    /// Our certificate, if any, and the sessions established so far.
    pub(crate) tls: Tls,
    /// Whether connections set `TCP_NODELAY` (AEMP's `nodelay`).
    pub(crate) nodelay: bool,
    /// Set by shutdown: no new connections, no dialling.
    closing: AtomicBool,
    /// Connection tasks running (so shutdown can wait for them), and their wake-up.
    connections: AtomicUsize,
    connections_done: Notify,
    /// Set once shutdown has finished.
    pub(crate) shut_down: tokio::sync::watch::Sender<bool>,
    /// The zero of heartbeat timestamps.
    pub(crate) epoch: Instant,
}

/// Why a connection could not be made or ended.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetError {
    /// A socket operation failed.
    #[error("{0}")]
    Io(std::io::Error),
    /// The handshake failed (wrong secret, version, ...).
    #[error("handshake failed: {0}")]
    Handshake(#[from] HandshakeError),
    /// The peer closed the connection during the handshake.
    #[error("connection closed by the peer during the handshake")]
    ClosedDuringHandshake,
    /// TLS failed: the peer's certificate is not trusted, the peer does not trust ours, or
    /// the TLS stream broke during the handshake.
    #[error("TLS: {0}")]
    Tls(String),
    /// This node closed the connection ([`Node::disconnect`](crate::Node::disconnect)).
    #[error("connection closed by this node")]
    ClosedLocally,
    /// The peer said it is shutting down (an aemp peer's last frame).
    #[error("peer shut down")]
    PeerShutDown,
    /// This node is shutting down ([`Node::shutdown`](crate::Node::shutdown)).
    #[error("node shutting down")]
    ShuttingDown,
    /// The peer sent nothing, not even a heartbeat, for `heartbeat_timeout`: it hangs, or
    /// the network between us is cut.
    #[error("heartbeat timeout")]
    HeartbeatTimeout,
    /// More than `max_queue` bytes waited to be sent to the peer: it reads too slowly or
    /// not at all. Queued messages were dropped and the link's monitors fired.
    #[error("send queue overflow")]
    QueueOverflow,
    /// An inbound connection that had not finished its handshake was closed to make room
    /// for a newer one (more than `max_unauthenticated` at once).
    #[error("closed to make room for other unauthenticated connections")]
    Evicted,
    /// A peer sent bytes that are not a valid message stream.
    #[error("{0}")]
    Decode(#[from] aemp_proto::DecodeError),
}

impl Net {
    pub(crate) fn new(mut config: HandshakeConfig, limits: Limits) -> Self {
        heartbeat::offer(&mut config, &limits);
        Self {
            config,
            limits,
            table: Mutex::new(Table::new(limits.max_dead_ports)),
            listening: Mutex::new(Vec::new()),
            listeners: Mutex::new(Vec::new()),
            admission: Admission::new(limits.max_unauthenticated),
            tls: Tls::default(),
            nodelay: true,
            closing: AtomicBool::new(false),
            connections: AtomicUsize::new(0),
            connections_done: Notify::new(),
            shut_down: tokio::sync::watch::Sender::new(false),
            epoch: Instant::now(),
        }
    }

    /// Uses TLS with every peer that has a certificate too.
    pub(crate) fn with_tls(mut self, config: TlsConfig) -> Self {
        self.tls = Tls::new(Some(config));
        self
    }

    /// Spacing of connection attempts.
    pub(crate) fn connect_interval(&self) -> Duration {
        self.limits.connect_interval
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn listening(&self) -> Vec<SocketAddr> {
        self.listening
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Begins the shutdown: listeners close, no connection or dial starts from now on.
    /// `false` if it had begun already.
    pub(crate) fn begin_close(&self) -> bool {
        if self.closing.swap(true, Ordering::AcqRel) {
            return false;
        }
        for listener in self
            .listeners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
        {
            listener.abort();
        }
        self.listening
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        true
    }

    /// `true` once shutdown has begun.
    pub(crate) fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }

    /// Nodes with an established connection.
    pub(crate) fn up_nodes(&self) -> Vec<NodeId> {
        let mut v: Vec<NodeId> = self
            .table()
            .links
            .iter()
            .filter(|(_, l)| l.up.is_some())
            .map(|(n, _)| n.clone())
            .collect();
        v.sort();
        v
    }

    /// `true` if `node` has an established connection.
    pub(crate) fn is_up(&self, node: &NodeId) -> bool {
        self.table().links.get(node).is_some_and(|l| l.up.is_some())
    }

    /// `true` if `node` is in the link table (see [`known_nodes`](Self::known_nodes)).
    pub(crate) fn knows(&self, node: &NodeId) -> bool {
        self.table().links.contains_key(node)
    }

    /// Puts `node` in the link table (it was heard of), where it stays until it has been
    /// unused for `monitor_timeout`.
    pub(crate) fn note(&self, node: &NodeId) {
        self.table().link(node);
    }

    /// Messages waiting to be written to `node` (queued while connecting, or not yet taken
    /// by the writer), and the notifier signalled when that number shrinks.
    pub(crate) fn queued(&self, node: &NodeId) -> (usize, Option<Arc<Notify>>) {
        let table = self.table();
        match table.links.get(node) {
            Some(link) => {
                let out = link.up.as_ref().map_or(0, |c| c.outbox().messages);
                (link.queue.len() + out, Some(link.drained.clone()))
            }
            None => (0, None),
        }
    }

    /// The last heartbeat round trip to `node`, if it is connected and answers heartbeats.
    pub(crate) fn round_trip(&self, node: &NodeId) -> Option<Duration> {
        self.table()
            .links
            .get(node)
            .and_then(|l| l.up.as_ref())
            .and_then(|c| c.round_trip())
    }

    /// Closes the connection to `node`, if any; its monitors fire with `transport_error`.
    pub(crate) fn disconnect(&self, node: &NodeId) {
        if let Some(conn) = self.table().links.get(node).and_then(|l| l.up.clone()) {
            conn.close_with(Cause::Local);
        }
    }

    /// Nodes in the link table: connected, being dialled, with queued messages or monitors,
    /// or down for less than `monitor_timeout` (then they are forgotten, see [`sweep`]).
    pub(crate) fn known_nodes(&self) -> Vec<NodeId> {
        let mut v: Vec<NodeId> = self.table().links.keys().cloned().collect();
        v.sort();
        v
    }
}

/// Counts a running connection task until dropped (shutdown waits for them all).
pub(crate) struct ConnectionCount(Arc<Shared>);

impl ConnectionCount {
    pub(crate) fn new(shared: &Arc<Shared>) -> Self {
        shared.net.connections.fetch_add(1, Ordering::AcqRel);
        Self(shared.clone())
    }
}

impl Drop for ConnectionCount {
    fn drop(&mut self) {
        if self.0.net.connections.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.net.connections_done.notify_waiters();
        }
    }
}
