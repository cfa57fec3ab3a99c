//! The cap on inbound connections that have not authenticated yet.
//!
//! At most `max_unauthenticated` accepted connections may be in their handshake at once
//! (each must finish within `handshake_timeout`). When the cap is reached, a new connection
//! takes the place of the oldest one if that one has been waiting for at least
//! [`EVICT_AFTER`] (a legitimate peer authenticates in about a millisecond; a connection
//! that has said nothing for a second is most likely one of a flood), and is closed at once
//! otherwise. So thousands of silent or trickling connections cannot lock legitimate peers
//! out for the whole handshake timeout: an attacker would have to open connections faster
//! than a peer completes its handshake. The same eviction frees a file descriptor when
//! `accept` fails because the process has none left.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::node::Shared;

/// Inbound connections in their handshake.
pub(crate) struct Admission {
    max: usize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Oldest first.
    pending: VecDeque<Pending>,
    next_id: u64,
    /// Connections closed at once or evicted since the last warning, and when that was.
    turned_away: u64,
    evicted: u64,
    last_warning: Option<Instant>,
}

struct Pending {
    id: u64,
    since: Instant,
    evict: Arc<Notify>,
}

/// An admitted connection's place; dropping it (the handshake ended) frees the place.
pub(super) struct Ticket {
    shared: Arc<Shared>,
    id: u64,
    evict: Arc<Notify>,
}

impl Admission {
    pub(super) fn new(max: usize) -> Self {
        Self {
            max: max.max(1),
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Admits a new connection, evicting the oldest waiting one if the cap is reached and it
    /// has waited long enough; `None` if it must be closed at once.
    pub(super) fn admit(shared: &Arc<Shared>) -> Option<Ticket> {
        let admission = &shared.net.admission;
        let mut state = admission.state();
        if state.pending.len() >= admission.max && !evict_oldest(&mut state, EVICT_AFTER) {
            state.turned_away += 1;
            warn_now_and_then(&mut state);
            return None;
        }
        let id = state.next_id;
        state.next_id += 1;
        let evict = Arc::new(Notify::new());
        state.pending.push_back(Pending {
            id,
            since: Instant::now(),
            evict: evict.clone(),
        });
        Some(Ticket {
            shared: shared.clone(),
            id,
            evict,
        })
    }

    /// Closes the oldest connection still in its handshake, if it has waited at least
    /// [`EVICT_AFTER`] (to free a file descriptor). `false` if there was none.
    pub(super) fn evict_one(&self) -> bool {
        let mut state = self.state();
        let evicted = evict_oldest(&mut state, EVICT_AFTER);
        if evicted {
            warn_now_and_then(&mut state);
        }
        evicted
    }
}

impl Ticket {
    /// Resolves when this connection is evicted to make room for a newer one.
    pub(super) async fn evicted(&self) {
        self.evict.notified().await;
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut state = self.shared.net.admission.state();
        if let Some(i) = state.pending.iter().position(|p| p.id == self.id) {
            state.pending.remove(i);
        }
    }
}

/// Evicts the oldest pending connection if it has waited at least `min_age`.
fn evict_oldest(state: &mut State, min_age: Duration) -> bool {
    match state.pending.front() {
        Some(oldest) if oldest.since.elapsed() >= min_age => {}
        _ => return false,
    }
    let Some(oldest) = state.pending.pop_front() else {
        return false;
    };
    // A stored permit: the connection task sees it even if it is not waiting yet.
    oldest.evict.notify_one();
    state.evicted += 1;
    true
}

/// Logs at most one warning per [`WARN_EVERY`], with the counts since the last one.
fn warn_now_and_then(state: &mut State) {
    if state.last_warning.is_some_and(|t| t.elapsed() < WARN_EVERY) {
        return;
    }
    tracing::warn!(
        pending = state.pending.len(),
        closed_at_once = state.turned_away,
        evicted = state.evicted,
        "too many unauthenticated connections (max_unauthenticated): closing some"
    );
    state.turned_away = 0;
    state.evicted = 0;
    state.last_warning = Some(Instant::now());
}

/// A pending connection this old gives way to a new one when the cap is reached.
const EVICT_AFTER: Duration = Duration::from_secs(1);

/// Warnings about the cap are logged at most this often.
const WARN_EVERY: Duration = Duration::from_secs(10);
