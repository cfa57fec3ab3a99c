//! The bounded hand-off between a connection's reader and the node's dispatcher.

use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::Notify;

use super::NetError;
use crate::dispatch::Job;
use crate::node::Shared;

/// What a connection's reader has decoded, waiting for the node's dispatcher.
///
/// A bounded hand-off: the reader appends the jobs of each read and injects one wake-up (a
/// [`Job::Run`] that calls [`Core::take_inbox`](crate::dispatch::Core::take_inbox)) when the
/// inbox goes from empty to non-empty; the dispatcher takes everything at once, swapping in
/// an empty vector, so the vectors are reused rather than allocated per read. While the
/// dispatcher is [`INBOX_JOBS`] jobs or [`INBOX_BYTES`] bytes behind, the reader stops
/// reading, so TCP slows the sender down instead of memory growing without bound.
#[derive(Default)]
pub(crate) struct Inbox {
    pub(super) state: Mutex<InboxState>,
    /// Signalled when the dispatcher has taken the jobs.
    pub(super) space: Notify,
    /// An empty vector the dispatcher swaps in when it takes the jobs, so the two vectors'
    /// allocations are reused. Only the dispatcher locks it.
    pub(super) spare: Mutex<Vec<Job>>,
}

#[derive(Default)]
pub(super) struct InboxState {
    pub(super) jobs: Vec<Job>,
    /// Wire bytes of the messages in `jobs`.
    pub(super) bytes: usize,
    /// A wake-up for this inbox is on its way to the dispatcher (set iff `jobs` is not
    /// empty), so a later hand-over need not send another.
    pub(super) scheduled: bool,
}

impl Inbox {
    pub(super) fn state(&self) -> std::sync::MutexGuard<'_, InboxState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Moves `jobs` (the messages of `bytes` wire bytes) into the inbox, waiting while it is
    /// full; wakes the dispatcher if the inbox was empty.
    pub(super) async fn hand_over(
        self: &Arc<Self>,
        shared: &Arc<Shared>,
        jobs: &mut Vec<Job>,
        bytes: usize,
    ) -> Result<(), NetError> {
        loop {
            let wake = {
                let mut state = self.state();
                if state.jobs.len() < INBOX_JOBS && state.bytes < INBOX_BYTES {
                    state.jobs.append(jobs);
                    state.bytes += bytes;
                    Some(!std::mem::replace(&mut state.scheduled, true))
                } else {
                    None
                }
            };
            match wake {
                Some(true) => {
                    let inbox = self.clone();
                    shared.inject(Job::Run(Box::new(move |core| core.take_inbox(&inbox))));
                    return Ok(());
                }
                Some(false) => return Ok(()),
                // Full: a wake-up is pending, so the dispatcher will make room, unless it
                // has stopped.
                None => tokio::select! {
                    () = self.space.notified() => {}
                    () = shared.dispatcher_stopped() => return Err(NetError::ClosedLocally),
                },
            }
        }
    }

    /// Gives every waiting job to `push`, in order (the dispatcher's side).
    pub(crate) fn take(&self, push: impl FnMut(Job)) {
        let mut jobs = self.spare.lock().unwrap_or_else(PoisonError::into_inner);
        {
            let mut state = self.state();
            std::mem::swap(&mut state.jobs, &mut jobs);
            state.bytes = 0;
            state.scheduled = false;
        }
        self.space.notify_one();
        jobs.drain(..).for_each(push);
    }
}

/// A reader waits while this many of its jobs wait for the dispatcher.
pub(super) const INBOX_JOBS: usize = 16 * 1024;

/// A reader waits while messages of this many wire bytes wait for the dispatcher.
pub(super) const INBOX_BYTES: usize = 4 << 20;
