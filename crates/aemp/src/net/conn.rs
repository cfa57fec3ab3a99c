//! The outbound side of an established connection: the outbox senders encode into.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use aemp_proto::framing::Framing;
use aemp_proto::{Message, PortId};
use tokio::sync::Notify;

/// The outbound side of an established connection.
pub(crate) struct Conn {
    /// The framing we send in (chosen in the handshake).
    pub(super) framing: Framing,
    /// Messages encoded by their senders, waiting for the writer.
    pub(super) out: Mutex<Outbox>,
    pub(super) notify: Notify,
    /// Shared with the link: signalled after every write.
    pub(super) drained: Arc<Notify>,
    pub(super) closed: std::sync::atomic::AtomicBool,
    /// Wakes the reader when this side closes the connection.
    pub(super) hang_up: Notify,
    /// The socket, for senders that find the connection idle (plain TCP only; set once the
    /// connection is registered).
    pub(super) direct: std::sync::OnceLock<Arc<tokio::net::tcp::OwnedWriteHalf>>,
}

/// Encoded messages waiting to be written.
///
/// Senders encode on their own thread, so the writer only swaps the buffer out and writes
/// it: the message (and its strings) is freed where it was allocated, the destination's
/// `PortId` is never cloned, and the writer's thread stays free for the reader.
#[derive(Default)]
pub(super) struct Outbox {
    pub(super) bytes: Vec<u8>,
    /// How many messages `bytes` holds (for flow control).
    pub(super) messages: usize,
    /// The writer task is writing bytes it took from here: nobody else may write.
    pub(super) writer_busy: bool,
    /// When bytes last went to the socket.
    pub(super) last_write: Option<Instant>,
}

/// A sender writes its message to the socket itself (saving the writer task's wake-up, the
/// latency of a request–reply exchange) only if the connection was idle this long: a
/// streaming sender keeps going through the writer, which coalesces many messages per write.
pub(super) const DIRECT_AFTER_IDLE: Duration = Duration::from_micros(20);

impl Conn {
    pub(super) fn new(framing: Framing, drained: Arc<Notify>) -> Self {
        Self {
            framing,
            out: Mutex::new(Outbox::default()),
            notify: Notify::new(),
            drained,
            closed: std::sync::atomic::AtomicBool::new(false),
            hang_up: Notify::new(),
            direct: std::sync::OnceLock::new(),
        }
    }

    pub(super) fn outbox(&self) -> std::sync::MutexGuard<'_, Outbox> {
        self.out.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Encodes one message onto the outbox and wakes the writer if it was empty. On an idle
    /// plain connection the sender writes the message itself, in order: nothing else is
    /// queued or being written, and the outbox lock keeps the writer out meanwhile.
    pub(super) fn push(&self, port: &PortId, msg: &Message) {
        let mut q = self.outbox();
        let idle = q.bytes.is_empty() && !q.writer_busy;
        self.framing.encode(port.name(), msg, &mut q.bytes);
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
                    return;
                }
                // The rest (or all of it, or the error) is the writer's.
                Ok(n) => drop(q.bytes.drain(..n)),
                Err(_) => {}
            }
        }
        if q.messages == 1 {
            self.notify.notify_one();
        }
    }

    pub(super) fn close(&self) {
        self.closed
            .store(true, std::sync::atomic::Ordering::Release);
        self.notify.notify_one();
    }
}
