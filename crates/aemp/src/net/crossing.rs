//! The crossed-dial rule: which of two connections between the same nodes survives.

use std::net::SocketAddr;
use std::sync::Arc;

use aemp_proto::NodeId;

use super::conn::Conn;
use super::connection::Direction;
use crate::node::Shared;

/// A handshake past its greeting, registered so crossed dials can be resolved.
pub(super) struct Attempt {
    pub(super) id: u64,
    pub(super) direction: Direction,
    /// Set when a crossing connection won: this one must not come up.
    pub(super) lost: bool,
}

/// Unregisters a handshake attempt however the connection ends.
pub(super) struct AttemptGuard {
    pub(super) shared: Arc<Shared>,
    pub(super) node: Option<NodeId>,
    pub(super) id: u64,
}

impl Drop for AttemptGuard {
    fn drop(&mut self) {
        if let Some(node) = &self.node
            && let Some(link) = self.shared.net.table().links.get_mut(node)
        {
            link.attempts.retain(|a| a.id != self.id);
        }
    }
}

/// What the crossed-dial rule says about a handshake that reached its greeting.
pub(super) enum Verdict {
    /// Go on.
    Go,
    /// A crossing handshake that wins is under way: wait until it is up (then refuse) or
    /// gone (then go on). Winners never wait, so two sides cannot wait for each other.
    Wait,
    /// Refuse the peer.
    Refuse(&'static str),
}

/// Decides whether a handshake with `node` may go on (reference §4.12, without Perl's
/// "switched connections" flapping). A connected node is refused. When dials cross, both
/// sides keep the connection dialled by the node with the smaller ID, a rule each side
/// computes the same way.
pub(super) fn approve(
    shared: &Arc<Shared>,
    node: &NodeId,
    id: u64,
    direction: Direction,
) -> Verdict {
    if shared.net.is_closing() {
        return Verdict::Refuse("node shutting down");
    }
    let mut table = shared.net.table();
    let link = table.link(node);
    if link.up.is_some() {
        // "a node with that ID already has an established transport" (§4.2).
        return Verdict::Refuse("already connected");
    }
    let ours = shared.id();
    let wins = match direction {
        Direction::Dial => ours < node,
        Direction::Accept => node < ours,
    };
    // Only a handshake in the other direction crosses this one; another in the same
    // direction is a leftover of an earlier attempt that is still being torn down.
    let crossing = |a: &Attempt| a.direction != direction;
    if link.attempts.iter().any(crossing) {
        if !wins {
            return Verdict::Wait;
        }
        for other in link.attempts.iter_mut().filter(|a| crossing(a)) {
            other.lost = true;
        }
    }
    link.attempts.push(Attempt {
        id,
        direction,
        lost: false,
    });
    Verdict::Go
}

/// What [`register`] decided about an established connection.
pub(super) enum Registration {
    /// It is the node's connection now.
    Up(Arc<Conn>),
    /// It lost to a crossing connection that is still being set up: ask again shortly.
    Wait,
    /// Refuse the peer.
    Refuse(&'static str),
}

/// Makes an established connection the node's connection, unless another one came up
/// meanwhile, or a crossing connection won ([`approve`]).
///
/// A connection that lost is not refused while the winner is still being set up, because the
/// winner may yet fail: the peer refuses it when this connection came up on the peer's side
/// before the winner's greeting arrived there. Refusing both would close every connection
/// between the two nodes (the race that made them flap). So a loser waits: when the winner
/// comes up, the loser is refused ("already connected"); when the winner is gone, the loser
/// is kept, as the peer already keeps it.
pub(super) fn register(
    shared: &Arc<Shared>,
    peer: &NodeId,
    attempt: &AttemptGuard,
    direction: Direction,
    session: &aemp_proto::handshake::Session,
    dialled: Option<SocketAddr>,
) -> Registration {
    if shared.net.is_closing() {
        return Registration::Refuse("node shutting down");
    }
    let max_queue = shared.net.limits.max_queue;
    let mut table = shared.net.table();
    let link = table.link(peer);
    if link.up.is_some() {
        return Registration::Refuse("already connected");
    }
    let lost = link.attempts.iter().any(|a| a.id == attempt.id && a.lost);
    if lost && link.attempts.iter().any(|a| a.direction != direction) {
        return Registration::Wait;
    }
    link.attempts.retain(|a| a.id != attempt.id);
    let conn = Arc::new(Conn::new(
        session.send_framing,
        link.drained.clone(),
        max_queue,
    ));
    link.generation += 1;
    link.queued_bytes = 0;
    for (port, msg) in std::mem::take(&mut link.queue) {
        conn.push(port.name(), &msg);
    }
    link.up = Some(conn.clone());
    link.dialing = false;
    if let Some(addr) = dialled {
        link.addrs.retain(|a| *a != addr);
        link.addrs.insert(0, addr);
    }
    Registration::Up(conn)
}
