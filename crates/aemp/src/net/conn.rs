//! The outbound side of an established connection: the outbox senders encode into, bounded
//! by `max_queue`.
//!
//! Bytes waiting for one node (in the outbox, plus what the writer has taken and not yet
//! written) never exceed `max_queue`: the message that would pass it closes the link
//! instead ([`Cause::Overflow`]), and the connection task reports
//! `["transport_error", node, "send queue overflow"]` to every monitor of that node. So a
//! peer that stops reading costs at most `max_queue` of memory, and nothing is lost
//! without a monitor hearing of it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use aemp_proto::Message;
use aemp_proto::framing::Framing;
use tokio::sync::Notify;

/// The outbound side of an established connection.
pub(crate) struct Conn {
    /// The framing we send in (chosen in the handshake).
    pub(super) framing: Framing,
    /// Messages encoded by their senders, waiting for the writer.
    out: Mutex<Outbox>,
    /// Wakes the writer when the outbox becomes non-empty.
    pub(super) notify: Notify,
    /// Shared with the link: signalled after every write.
    pub(super) drained: Arc<Notify>,
    /// Set when the connection task ends: the writer stops.
    closed: AtomicBool,
    /// Why this side is closing the connection, once it is.
    cause: Mutex<Option<Cause>>,
    /// Wakes the connection task when this side closes the connection.
    pub(super) hang_up: Notify,
    /// The socket, for senders that find the connection idle (plain TCP only; set once the
    /// connection is registered).
    pub(super) direct: OnceLock<Arc<tokio::net::tcp::OwnedWriteHalf>>,
    /// The most bytes that may wait for this peer.
    max_queue: usize,
    /// The last heartbeat round trip in microseconds (0: none yet).
    rtt_micros: AtomicU64,
    /// The peer takes heartbeat frames (an aemp node), so it understands a goodbye.
    heartbeats: AtomicBool,
}

/// Why this side closes a connection.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub(crate) enum Cause {
    /// [`Node::disconnect`](crate::Node::disconnect).
    Local,
    /// More than `max_queue` bytes waited for the peer.
    Overflow,
    /// The node is shutting down.
    Shutdown,
}

/// What became of a message pushed onto a connection.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub(super) enum Pushed {
    /// It waits in the outbox (or was written).
    Queued,
    /// It would have passed `max_queue`: dropped, and the connection is closing.
    Overflow,
    /// The connection is closing: dropped (the link's monitors fire).
    Closing,
}

/// Encoded messages waiting to be written.
///
/// Senders encode on their own thread, so the writer only swaps the buffer out and writes
/// it: the message (and its strings) is freed where it was allocated, the destination's
/// `PortId` is never cloned, and the writer's thread stays free for the reader.
///
/// The bytes are kept in chunks of about [`CHUNK`]: a contiguous buffer growing by doubling
/// would, behind a stalled peer, hold about twice `max_queue` at its last reallocation (and
/// the allocator may keep the smaller old copies mapped a while longer).
#[derive(Default)]
pub(super) struct Outbox {
    /// The chunk being filled.
    pub(super) bytes: Vec<u8>,
    /// Full chunks, oldest first, written before `bytes`.
    pub(super) full: Vec<Vec<u8>>,
    /// Bytes in `full`.
    pub(super) full_bytes: usize,
    /// Empty chunks the writer gave back, for reuse.
    pub(super) spare: Vec<Vec<u8>>,
    /// How many messages `bytes` holds (for flow control).
    pub(super) messages: usize,
    /// The writer task is writing bytes it took from here: nobody else may write.
    pub(super) writer_busy: bool,
    /// Bytes the writer took and has not finished writing (they count against `max_queue`).
    pub(super) in_flight: usize,
    /// When bytes last went to the socket.
    pub(super) last_write: Option<Instant>,
    /// The connection is closing: later messages are dropped.
    refusing: bool,
}

/// The size of an outbox chunk: a new one is started when the current one holds this much.
pub(super) const CHUNK: usize = 1 << 20;

/// Room a chunk has beyond [`CHUNK`], so the message that fills it does not make it grow
/// (a reallocation would copy it and leave the old block to the allocator).
const CHUNK_HEADROOM: usize = 64 * 1024;

/// A sender writes its message to the socket itself (saving the writer task's wake-up, the
/// latency of a request–reply exchange) only if the connection was idle this long: a
/// streaming sender keeps going through the writer, which coalesces many messages per write.
const DIRECT_AFTER_IDLE: Duration = Duration::from_micros(20);

impl Conn {
    pub(super) fn new(framing: Framing, drained: Arc<Notify>, max_queue: usize) -> Self {
        Self {
            framing,
            out: Mutex::new(Outbox::default()),
            notify: Notify::new(),
            drained,
            closed: AtomicBool::new(false),
            cause: Mutex::new(None),
            hang_up: Notify::new(),
            direct: OnceLock::new(),
            max_queue,
            rtt_micros: AtomicU64::new(0),
            heartbeats: AtomicBool::new(false),
        }
    }

    pub(super) fn outbox(&self) -> MutexGuard<'_, Outbox> {
        self.out.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Encodes a message for port `name` onto the outbox, unless that would put more than
    /// `max_queue` bytes in wait (then the connection closes).
    pub(super) fn push(&self, name: &str, msg: &Message) -> Pushed {
        self.push_with(self.max_queue, |framing, out| {
            framing.encode(name, msg, out)
        })
    }

    /// As [`push`](Self::push) for the connection's own small frames (heartbeats), which
    /// never overflow it.
    pub(super) fn push_control(&self, name: &str, msg: &Message) -> Pushed {
        self.push_with(usize::MAX, |framing, out| framing.encode(name, msg, out))
    }

    /// Queues the empty keepalive frame `[]`.
    pub(super) fn push_keepalive(&self) -> Pushed {
        self.push_with(usize::MAX, |framing, out| framing.encode_keepalive(out))
    }

    /// Encodes one frame onto the outbox and wakes the writer if it was empty. On an idle
    /// plain connection the sender writes the frame itself, in order: nothing else is
    /// queued or being written, and the outbox lock keeps the writer out meanwhile.
    fn push_with(&self, limit: usize, encode: impl FnOnce(Framing, &mut Vec<u8>)) -> Pushed {
        let mut q = self.outbox();
        if q.refusing {
            return Pushed::Closing;
        }
        if q.bytes.len() + q.full_bytes + q.in_flight >= limit {
            q.refusing = true;
            drop(q);
            self.set_cause(Cause::Overflow);
            return Pushed::Overflow;
        }
        if q.bytes.len() >= CHUNK {
            let next = q
                .spare
                .pop()
                .unwrap_or_else(|| Vec::with_capacity(CHUNK + CHUNK_HEADROOM));
            let full = std::mem::replace(&mut q.bytes, next);
            q.full_bytes += full.len();
            q.full.push(full);
        }
        let idle = q.bytes.is_empty() && q.full.is_empty() && !q.writer_busy;
        encode(self.framing, &mut q.bytes);
        q.messages += 1;
        if idle
            && let Some(socket) = self.direct.get()
            && q.last_write
                .is_none_or(|t| t.elapsed() >= DIRECT_AFTER_IDLE)
        {
            match socket.try_write(&q.bytes) {
                Ok(n) if n == q.bytes.len() => {
                    q.bytes.clear();
                    q.messages = 0;
                    q.last_write = Some(Instant::now());
                    drop(q);
                    self.drained.notify_waiters();
                    return Pushed::Queued;
                }
                // The rest (or all of it, or the error) is the writer's.
                Ok(n) => drop(q.bytes.drain(..n)),
                Err(_) => {}
            }
        }
        if q.messages == 1 {
            self.notify.notify_one();
        }
        Pushed::Queued
    }

    /// Closes the connection from this side: later messages are dropped, and the
    /// connection task ends the link with `cause` (the first cause given wins).
    pub(super) fn close_with(&self, cause: Cause) {
        self.outbox().refusing = true;
        self.set_cause(cause);
    }

    fn set_cause(&self, cause: Cause) {
        self.cause
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_or_insert(cause);
        self.hang_up.notify_one();
    }

    /// Why this side closed the connection, if it did.
    pub(super) fn cause(&self) -> Option<Cause> {
        *self.cause.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Tells the writer to stop (the connection task is ending).
    pub(super) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.notify.notify_one();
    }

    /// `true` once the connection task has ended.
    pub(super) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// `true` if nothing waits to be written.
    pub(super) fn is_flushed(&self) -> bool {
        let q = self.outbox();
        q.bytes.is_empty() && q.full.is_empty() && !q.writer_busy
    }

    /// Notes that the peer takes heartbeat frames.
    pub(super) fn set_heartbeats(&self) {
        self.heartbeats.store(true, Ordering::Release);
    }

    /// Queues the goodbye after everything queued so far, if the peer understands it.
    pub(super) fn say_goodbye(&self) {
        if self.heartbeats.load(Ordering::Acquire) {
            self.push_control("", &super::heartbeat::bye());
        }
    }

    /// Remembers a heartbeat round trip.
    pub(super) fn record_round_trip(&self, rtt: Duration) {
        let micros = u64::try_from(rtt.as_micros()).unwrap_or(u64::MAX).max(1);
        self.rtt_micros.store(micros, Ordering::Relaxed);
    }

    /// The last heartbeat round trip, if one was measured.
    pub(super) fn round_trip(&self) -> Option<Duration> {
        match self.rtt_micros.load(Ordering::Relaxed) {
            0 => None,
            us => Some(Duration::from_micros(us)),
        }
    }
}
