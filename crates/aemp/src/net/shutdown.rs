//! Closing every link when the node stops ([`Node::shutdown`](crate::Node::shutdown)).
//!
//! In order: the listeners close and no new connection or dial starts (already done by
//! [`Net::begin_close`](super::Net::begin_close)); the dispatcher finishes the work sent
//! before the shutdown; pending calls fail with [`CallError::Shutdown`]; what is queued on
//! each connection is written (until the flush deadline); then every connection is closed,
//! so each peer sees this node go down at once and its monitors fire. Messages still waiting
//! for a node that never connected are dropped, with a warning.
//!
//! [`CallError::Shutdown`]: crate::CallError::Shutdown

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;

use super::conn::Cause;
use crate::node::Shared;

/// Runs the shutdown of a node whose closing has begun; resolves when it is done.
pub(crate) async fn shutdown(shared: Arc<Shared>, flush: Duration) {
    let deadline = Instant::now() + flush;
    // The work sent before the shutdown runs first (it may send more).
    if tokio::time::timeout_at(deadline, shared.dispatcher_stopped())
        .await
        .is_err()
    {
        tracing::warn!(node = %shared.id(), "shutdown: the dispatcher is still busy; closing the links anyway");
    }
    crate::time::fail_pending_calls(&shared);
    let conns: Vec<_> = {
        let table = shared.net.table();
        table.links.values().filter_map(|l| l.up.clone()).collect()
    };
    // Write what is queued, then a goodbye, while the deadline allows.
    for conn in &conns {
        conn.say_goodbye();
    }
    loop {
        if conns.iter().all(|c| c.is_flushed() || c.is_closed()) {
            break;
        }
        if Instant::now() >= deadline {
            tracing::warn!(node = %shared.id(), "shutdown: not everything queued could be written in time");
            break;
        }
        tokio::time::sleep(FLUSH_POLL).await;
    }
    for conn in &conns {
        conn.close_with(Cause::Shutdown);
    }
    let dropped: usize = {
        let mut table = shared.net.table();
        table
            .links
            .values_mut()
            .map(|l| std::mem::take(&mut l.queue).len())
            .sum()
    };
    if dropped > 0 {
        tracing::warn!(
            node = %shared.id(),
            dropped,
            "shutdown: messages for nodes that never connected dropped"
        );
    }
    // Connection tasks end at once now (handshakes in progress are refused at their next
    // step); do not wait for a stuck one forever.
    let give_up = Instant::now() + CLOSE_WAIT;
    loop {
        let done = shared.net.connections_done.notified();
        if shared.net.connections.load(Ordering::Acquire) == 0 {
            break;
        }
        if tokio::time::timeout_at(give_up, done).await.is_err() {
            tracing::debug!(node = %shared.id(), "shutdown: some connections still closing");
            break;
        }
    }
    tracing::debug!(node = %shared.id(), "node shut down");
}

/// How often the flush is checked.
const FLUSH_POLL: Duration = Duration::from_millis(5);

/// How long shutdown waits for connection tasks after closing them.
const CLOSE_WAIT: Duration = Duration::from_secs(2);
