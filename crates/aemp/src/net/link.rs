//! The link table: what this node knows about each other node (its connection when up, the
//! messages waiting while it is down, where it listens), and sending to a remote port.

use std::hash::Hasher;
use std::net::SocketAddr;
use std::sync::Arc;

use aemp_proto::{Message, NodeId, PortId};
use tokio::sync::Notify;

use super::Out;
use super::conn::Conn;
use super::crossing::Attempt;
use super::dial::dial;
use crate::dispatch::Job;
use crate::monitor::Reason;
use crate::node::Shared;

/// What we know about one other node.
#[derive(Default)]
pub(super) struct Link {
    /// The connection, when up.
    pub(super) up: Option<Arc<Conn>>,
    /// Messages waiting for a connection, in order.
    pub(super) queue: Vec<Out>,
    /// Bumped whenever the queue is flushed or dropped, so a stale give-up timer does nothing.
    pub(super) generation: u64,
    /// Addresses the node may be reached at (given in code or learnt), tried round robin.
    pub(super) addrs: Vec<SocketAddr>,
    /// Whether a dialling task for this node is running.
    pub(super) dialing: bool,
    /// Wakes tasks waiting for the outbound queue to shrink (flow control).
    pub(super) drained: Arc<Notify>,
    /// Handshakes with this node past their greeting.
    pub(super) attempts: Vec<Attempt>,
}

/// Sends to a port on another node: onto its connection, or queued until one comes up.
pub(crate) fn send(shared: &Arc<Shared>, port: &PortId, msg: Message) {
    let net = &shared.net;
    let mut links = net.links();
    // The common case: connected. The connection is taken out of the table so the message
    // is encoded without holding the table's lock.
    if let Some(conn) = links.get(port.node()).and_then(|l| l.up.clone()) {
        drop(links);
        conn.push(port, &msg);
        return;
    }
    let node = port.node().clone();
    let link = links.entry(node.clone()).or_default();
    if let Some(conn) = &link.up {
        conn.push(port, &msg);
        return;
    }
    let port = port.clone();
    link.queue.push((port, msg));
    if link.queue.len() == 1 {
        // The first queued message starts the give-up timer (reference §4.11).
        let generation = link.generation;
        let weak = Arc::downgrade(shared);
        let timeout = net.monitor_timeout;
        let node = node.clone();
        shared.runtime.spawn(async move {
            tokio::time::sleep(timeout).await;
            if let Some(shared) = weak.upgrade() {
                give_up(&shared, &node, generation);
            }
        });
    }
    if !link.dialing && !link.addrs.is_empty() {
        link.dialing = true;
        let weak = Arc::downgrade(shared);
        shared.runtime.spawn(dial(weak, node));
    }
}

/// Records where `node` listens (tried first from now on). Messages already waiting for it
/// make this start dialling at once: the address may arrive after them (learned from a seed).
pub(crate) fn add_address(shared: &Arc<Shared>, node: &NodeId, addr: SocketAddr) {
    let mut links = shared.net.links();
    let link = links.entry(node.clone()).or_default();
    link.addrs.retain(|a| *a != addr);
    link.addrs.insert(0, addr);
    if link.up.is_none() && !link.queue.is_empty() && !link.dialing {
        link.dialing = true;
        let weak = Arc::downgrade(shared);
        shared.runtime.spawn(dial(weak, node.clone()));
    }
}

/// Drops what waited for `node` too long and tells its monitors.
pub(super) fn give_up(shared: &Arc<Shared>, node: &NodeId, generation: u64) {
    let dropped = {
        let mut links = shared.net.links();
        match links.get_mut(node) {
            Some(link) if link.up.is_none() && link.generation == generation => {
                link.generation += 1;
                std::mem::take(&mut link.queue).len()
            }
            _ => return,
        }
    };
    tracing::info!(%node, dropped, "unable to connect; queued messages dropped");
    node_down(shared, node, "unable to connect");
}

/// Tells the dispatcher that `node` is gone: its monitors fire.
pub(super) fn node_down(shared: &Arc<Shared>, node: &NodeId, text: &str) {
    let reason = Reason::transport_error(node, text);
    let node = node.clone();
    shared.inject(Job::Run(Box::new(move |core| {
        core.node_down(&node, reason)
    })));
}

/// Tells the dispatcher that `node` is up (`mon_nodes` callbacks).
pub(super) fn node_up(shared: &Arc<Shared>, node: &NodeId) {
    let node = node.clone();
    shared.inject(Job::Run(Box::new(move |core| core.node_up(&node))));
}

/// A fast hasher for node IDs (short strings, not attacker-chosen in a way that matters:
/// only authenticated peers and our own code create links), eight bytes per step.
#[derive(Default)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut word = [0_u8; 8];
            word.copy_from_slice(c);
            self.add(u64::from_le_bytes(word));
        }
        for &b in chunks.remainder() {
            self.add(u64::from(b));
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }
}

impl IdHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}
