//! The link table: what this node knows about each other node (its connection when up, the
//! messages waiting while it is down, where it listens, our monitors on its ports), sending
//! to a remote port, and what happens when a link is lost.
//!
//! A lost link (connection broken, heartbeat timeout, queue overflow, unable to connect)
//! is handled in one step under the table's lock: the connection leaves the table, what was
//! queued for the node is dropped, and every port our monitors watched on that node is
//! recorded as dead ([`dead`](super::dead)). Only then are the monitors fired, on the
//! dispatcher. So no message sent after the loss reaches a port whose monitor fired, even
//! if a new connection comes up at once: a stream to a monitored port is never continued
//! past a gap.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use aemp_proto::{Message, NodeId, PortId, Value};
use tokio::sync::Notify;

use super::Out;
use super::conn::{Conn, Pushed};
use super::crossing::Attempt;
use super::dead::DeadPorts;
use super::dial::dial;
use super::monitors::PortMonitors;
use crate::dispatch::Job;
use crate::monitor::{Action, Reason};
use crate::node::Shared;

/// Every node we know of, and the ports we reported dead.
pub(crate) struct Table {
    pub(super) links: HashMap<NodeId, Link, BuildHasherDefault<IdHasher>>,
    pub(super) dead: DeadPorts,
}

/// What we know about one other node.
#[derive(Default)]
pub(crate) struct Link {
    /// The connection, when up.
    pub(super) up: Option<Arc<Conn>>,
    /// Messages waiting for a connection, in order.
    pub(super) queue: Vec<Out>,
    /// Roughly how many bytes `queue` holds (bounded by `max_queue` too).
    pub(super) queued_bytes: usize,
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
    /// Our monitors on this node's ports, by port name ("" for the node port). Kept here,
    /// not on the dispatcher, so `mon1`/`mon0` go out in issue order with the sender's other
    /// messages to that node, and a loss takes them with the connection.
    pub(super) monitors: PortMonitors,
    /// The node has ports on the dead-port record (saves the lookup for every other node).
    pub(super) has_dead: bool,
    /// Since when the link has been unused (see [`sweep`](super::sweep)).
    pub(super) idle_since: Option<Instant>,
}

impl Table {
    pub(super) fn new(max_dead_ports: usize) -> Self {
        Self {
            links: HashMap::default(),
            dead: DeadPorts::new(max_dead_ports),
        }
    }

    /// The link of `node`, created if it is new.
    pub(super) fn link(&mut self, node: &NodeId) -> &mut Link {
        let dead = &self.dead;
        self.links.entry(node.clone()).or_insert_with(|| Link {
            has_dead: dead.has_node(node),
            ..Link::default()
        })
    }

    /// The reason `port` was reported dead, if it was.
    pub(super) fn dead_reason(&self, port: &PortId) -> Option<Reason> {
        let link = self.links.get(port.node());
        if link.is_some_and(|l| !l.has_dead) {
            return None;
        }
        self.dead.reason(port)
    }

    /// Records the death of port `name` of `node`.
    fn record_dead(&mut self, node: &NodeId, name: &str, reason: &Reason) {
        if name.is_empty() {
            return;
        }
        self.dead.record(node, name, reason);
        if let Some(link) = self.links.get_mut(node) {
            link.has_dead = true;
        }
    }

    /// The link to `node` is gone: takes its monitors, records their ports as dead, drops
    /// what was queued. Returns the monitors to fire and how many messages were dropped.
    fn lose(&mut self, node: &NodeId, reason: &Reason) -> (Vec<Action>, usize) {
        let Some(link) = self.links.get_mut(node) else {
            return (Vec::new(), 0);
        };
        link.up = None;
        link.generation += 1;
        link.queued_bytes = 0;
        let dropped = std::mem::take(&mut link.queue).len();
        link.drained.notify_waiters();
        let monitors = std::mem::take(&mut link.monitors);
        let mut actions = Vec::new();
        for (name, list) in monitors {
            self.record_dead(node, &name, reason);
            actions.extend(list.into_iter().map(|(_, a)| a));
        }
        (actions, dropped)
    }
}

/// Sends to a port on another node: onto its connection, or queued until one comes up.
/// A message to a port this node reported dead is dropped.
pub(crate) fn send(shared: &Arc<Shared>, port: &PortId, msg: Message) {
    let net = &shared.net;
    let mut table = net.table();
    // The common case: connected. The connection is taken out of the table so the message
    // is encoded without holding the table's lock.
    if let Some(link) = table.links.get(port.node())
        && !link.has_dead
        && let Some(conn) = link.up.clone()
    {
        drop(table);
        push(&conn, port, &msg);
        return;
    }
    if let Some(reason) = table.dead_reason(port) {
        drop(table);
        tracing::debug!(%port, %reason, "message to a port reported dead; dropped");
        return;
    }
    let limits = net.limits;
    let node = port.node().clone();
    let link = table.link(&node);
    if let Some(conn) = link.up.clone() {
        drop(table);
        push(&conn, port, &msg);
        return;
    }
    link.queued_bytes = link
        .queued_bytes
        .saturating_add(values_size(&msg) + port.name().len());
    link.queue.push((port.clone(), msg));
    if link.queued_bytes > limits.max_queue {
        drop(table);
        tracing::warn!(%node, max_queue = limits.max_queue, "send queue overflow while connecting; queued messages dropped");
        lost(shared, &node, None, "send queue overflow");
        return;
    }
    if link.queue.len() == 1 {
        // The first queued message starts the give-up timer (reference §4.11).
        let generation = link.generation;
        let weak = Arc::downgrade(shared);
        let node = node.clone();
        shared.runtime.spawn(async move {
            tokio::time::sleep(limits.monitor_timeout).await;
            if let Some(shared) = weak.upgrade() {
                give_up(&shared, &node, generation);
            }
        });
    }
    if !link.dialing && !link.addrs.is_empty() && !net.is_closing() {
        link.dialing = true;
        let weak = Arc::downgrade(shared);
        shared.runtime.spawn(dial(weak, node));
    }
}

/// Pushes onto a connection; an overflow closes it (the connection task reports it).
fn push(conn: &Conn, port: &PortId, msg: &Message) {
    match conn.push(port.name(), msg) {
        Pushed::Queued => {}
        Pushed::Overflow => {
            tracing::debug!(node = %port.node(), "send queue overflow; closing the link");
        }
        Pushed::Closing => {
            tracing::debug!(%port, "message to a link being closed; dropped (monitors fire)");
        }
    }
}

/// Records where `node` listens (tried first from now on). Messages already waiting for it
/// make this start dialling at once: the address may arrive after them (learned from a seed).
pub(crate) fn add_address(shared: &Arc<Shared>, node: &NodeId, addr: SocketAddr) {
    let mut table = shared.net.table();
    let link = table.link(node);
    link.addrs.retain(|a| *a != addr);
    link.addrs.insert(0, addr);
    if link.up.is_none() && !link.queue.is_empty() && !link.dialing && !shared.net.is_closing() {
        link.dialing = true;
        let weak = Arc::downgrade(shared);
        shared.runtime.spawn(dial(weak, node.clone()));
    }
}

/// Drops what waited for `node` too long and tells its monitors.
fn give_up(shared: &Arc<Shared>, node: &NodeId, generation: u64) {
    {
        let table = shared.net.table();
        match table.links.get(node) {
            Some(link) if link.up.is_none() && link.generation == generation => {}
            _ => return,
        }
    }
    lost(shared, node, None, "unable to connect");
}

/// The link to `node` is lost with `text` (`conn`: that connection, if it was up; `None`:
/// it never came up). Drops what was queued, records the monitored ports as dead and fires
/// their monitors, all in one step for senders (see the module docs).
pub(super) fn lost(shared: &Arc<Shared>, node: &NodeId, conn: Option<&Arc<Conn>>, text: &str) {
    let reason = Reason::transport_error(node, text);
    let (actions, dropped) = {
        let mut table = shared.net.table();
        let current = table.links.get(node).and_then(|l| l.up.as_ref());
        let ours = match (conn, current) {
            (Some(conn), Some(up)) => Arc::ptr_eq(conn, up),
            // A connection that never became the node's (refused, crossed): nothing is lost.
            (Some(_), None) => false,
            (None, up) => up.is_none(),
        };
        if !ours {
            return;
        }
        table.lose(node, &reason)
    };
    if dropped > 0 {
        tracing::warn!(%node, dropped, reason = text, "queued messages dropped");
    }
    let node = node.clone();
    shared.inject(Job::Run(Box::new(move |core| {
        core.node_down(&node, &reason, actions);
    })));
}

/// `kil0` from `node`: its port `name` died with `reason`. Records it and returns our
/// monitors on it, to fire.
pub(crate) fn port_died(
    shared: &Arc<Shared>,
    node: &NodeId,
    name: &str,
    reason: &Reason,
) -> Vec<Action> {
    let mut table = shared.net.table();
    table.record_dead(node, name, reason);
    table
        .links
        .get_mut(node)
        .and_then(|l| l.monitors.remove(name))
        .map(|list| list.into_iter().map(|(_, a)| a).collect())
        .unwrap_or_default()
}

/// Tells the dispatcher that `node` is up (`mon_nodes` callbacks).
pub(super) fn node_up(shared: &Arc<Shared>, node: &NodeId) {
    let node = node.clone();
    shared.inject(Job::Run(Box::new(move |core| core.node_up(&node))));
}

/// Roughly how many bytes `values` take on the wire (for limits on what is queued).
pub(super) fn values_size(values: &[Value]) -> usize {
    values.iter().map(value_size).sum()
}

fn value_size(v: &Value) -> usize {
    match v {
        Value::String(s) => s.len() + 2,
        Value::Bytes(b) => b.len() + 2,
        Value::Array(a) => values_size(a) + 2,
        Value::Map(m) => {
            m.iter()
                .map(|(k, v)| value_size(k) + value_size(v))
                .sum::<usize>()
                + 2
        }
        _ => 9,
    }
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
