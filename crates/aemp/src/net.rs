//! The network: listeners, dialling, and one task per connection that drives the sans-IO
//! handshake and then the data phase (reference §4).
//!
//! Every node has a [`Net`]. A message for another node goes to that node's [`Link`]: onto
//! the connection's outbound queue when it is up (one writer task coalesces everything queued
//! into one write), or into the link's queue while it is down (flushed in order when a
//! connection comes up, dropped after `monitor_timeout`, when the node's monitors fire with
//! `["transport_error", node, "unable to connect"]`).
//!
//! TLS (reference §4.5, module `tls`): a node with a certificate ([`NodeBuilder::cert_pem`])
//! announces `tls=1.0`; when both sides do, the handshake machine asks for TLS after the nonce
//! lines, the connection task runs it in the role the nonces decide (the bytes already read
//! are fed to TLS first), and the auth line and the data phase go through TLS. Both sides
//! present their certificate; a peer is trusted iff its certificate is one of those in our
//! PEM or chains to one of them. Names are never checked.
//!
//! Not yet here: dialling learnt addresses, Global.
//!
//! [`NodeBuilder::cert_pem`]: crate::NodeBuilder::cert_pem

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use aemp_proto::handshake::{HandshakeConfig, HandshakeError};
use aemp_proto::{Message, NodeId, PortId};
use tokio::sync::Notify;

mod conn;
mod connection;
mod crossing;
mod dial;
mod inbox;
mod link;
mod listener;
mod monitors;
mod reader;
mod tls;
mod writer;

pub(crate) use dial::connect;
pub(crate) use inbox::Inbox;
use link::Link;
pub(crate) use link::{IdHasher, add_address, send};
pub(crate) use listener::listen;
use monitors::PortMonitors;
pub(crate) use monitors::{add_monitor, remove_monitor, take_monitors};
pub(crate) use tls::{Tls, TlsConfig};

/// One message for another node: its destination and elements.
pub(crate) type Out = (PortId, Message);

/// Network state of a node.
pub(crate) struct Net {
    /// Our side of every handshake.
    pub(crate) config: HandshakeConfig,
    /// Largest message accepted from a peer, in bytes.
    max_message: usize,
    /// How long queued messages wait for a connection (Perl's `monitor_timeout`).
    monitor_timeout: Duration,
    /// Spacing of connection attempts (Perl's `connect_interval`, default 2 s).
    connect_interval: Duration,
    links: Mutex<HashMap<NodeId, Link, BuildHasherDefault<IdHasher>>>,
    /// Our monitors on ports of other nodes, by node and port name ("" for a node port).
    /// Kept here, not on the dispatcher, so `mon1`/`mon0` go out in issue order with the
    /// sender's other messages to that node.
    remote_monitors: Mutex<HashMap<NodeId, PortMonitors>>,
    /// Addresses our listeners are bound to.
    listening: Mutex<Vec<SocketAddr>>,
    /// Our certificate, if any, and the sessions established so far.
    pub(crate) tls: Tls,
    /// Whether connections set `TCP_NODELAY` (AEMP's `nodelay`).
    pub(crate) nodelay: bool,
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
    /// This node closed the connection.
    #[error("connection closed by this node")]
    ClosedLocally,
    /// A peer sent bytes that are not a valid message stream.
    #[error("{0}")]
    Decode(#[from] aemp_proto::DecodeError),
}

impl Net {
    pub(crate) fn new(
        config: HandshakeConfig,
        monitor_timeout: Duration,
        connect_interval: Duration,
    ) -> Self {
        Self {
            config,
            max_message: 64 << 20,
            monitor_timeout,
            connect_interval,
            links: Mutex::new(HashMap::default()),
            remote_monitors: Mutex::new(HashMap::new()),
            listening: Mutex::new(Vec::new()),
            tls: Tls::default(),
            nodelay: true,
        }
    }

    /// Uses TLS with every peer that has a certificate too.
    pub(crate) fn with_tls(mut self, config: TlsConfig) -> Self {
        self.tls = Tls::new(Some(config));
        self
    }

    /// Spacing of connection attempts.
    pub(crate) fn connect_interval(&self) -> Duration {
        self.connect_interval
    }

    fn links(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<NodeId, Link, BuildHasherDefault<IdHasher>>> {
        self.links.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn listening(&self) -> Vec<SocketAddr> {
        self.listening
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Nodes with an established connection.
    pub(crate) fn up_nodes(&self) -> Vec<NodeId> {
        let mut v: Vec<NodeId> = self
            .links()
            .iter()
            .filter(|(_, l)| l.up.is_some())
            .map(|(n, _)| n.clone())
            .collect();
        v.sort();
        v
    }

    /// `true` if `node` has an established connection.
    pub(crate) fn is_up(&self, node: &NodeId) -> bool {
        self.links().get(node).is_some_and(|l| l.up.is_some())
    }

    /// Messages waiting to be written to `node` (queued while connecting, or not yet taken
    /// by the writer), and the notifier signalled when that number shrinks.
    pub(crate) fn queued(&self, node: &NodeId) -> (usize, Option<Arc<Notify>>) {
        let links = self.links();
        match links.get(node) {
            Some(link) => {
                let out = link.up.as_ref().map_or(0, |c| c.outbox().messages);
                (link.queue.len() + out, Some(link.drained.clone()))
            }
            None => (0, None),
        }
    }

    /// Closes the connection to `node`, if any; its monitors fire with `transport_error`.
    pub(crate) fn disconnect(&self, node: &NodeId) {
        if let Some(conn) = self.links().get(node).and_then(|l| l.up.clone()) {
            conn.hang_up.notify_one();
        }
    }

    /// Nodes we have a link for (connected or with queued messages).
    pub(crate) fn known_nodes(&self) -> Vec<NodeId> {
        let mut v: Vec<NodeId> = self.links().keys().cloned().collect();
        v.sort();
        v
    }
}
