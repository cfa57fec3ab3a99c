//! Forgetting nodes nobody needs any more.
//!
//! A link that is down, has no monitors, queues nothing, is not being dialled or set up,
//! and does not lead to a seed, is forgotten once it has been so for `monitor_timeout`.
//! Otherwise every node ever named (a message to `ghost#p`, every short-lived anonymous
//! client) would stay in the table, in `known_nodes` and in what Global tells new peers,
//! for the life of the node. What this node recorded about a node's dead ports is kept
//! (it lives apart from the links, bounded on its own).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::link::Link;
use crate::node::Shared;

/// Starts the node's sweeper: a task that looks for unused links every so often.
pub(crate) fn start_sweeper(shared: &Arc<Shared>) {
    let weak = Arc::downgrade(shared);
    let every = (shared.net.limits.monitor_timeout / 4).clamp(MIN_PERIOD, MAX_PERIOD);
    shared.runtime.spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let Some(shared) = weak.upgrade() else {
                return;
            };
            if shared.net.is_closing() || shared.injector_closed() {
                return;
            }
            sweep(&shared, Instant::now());
        }
    });
}

/// Forgets links that have been unused for `monitor_timeout`; returns how many.
fn sweep(shared: &Arc<Shared>, now: Instant) -> usize {
    let after = shared.net.limits.monitor_timeout;
    let seeds = shared.global.seeds();
    let mut table = shared.net.table();
    let before = table.links.len();
    table.links.retain(|node, link| {
        if !unused(link, seeds) {
            link.idle_since = None;
            return true;
        }
        let since = *link.idle_since.get_or_insert(now);
        let keep = now.duration_since(since) < after;
        if !keep {
            tracing::debug!(%node, "unused node forgotten");
        }
        keep
    });
    before - table.links.len()
}

/// `true` if nothing needs the link.
fn unused(link: &Link, seeds: &[SocketAddr]) -> bool {
    link.up.is_none()
        && link.queue.is_empty()
        && link.monitors.is_empty()
        && link.attempts.is_empty()
        && !link.dialing
        && !link.addrs.iter().any(|a| seeds.contains(a))
}

/// The sweeper looks at least this often (`monitor_timeout / 4`, within these bounds).
const MIN_PERIOD: Duration = Duration::from_millis(250);
const MAX_PERIOD: Duration = Duration::from_secs(10);
