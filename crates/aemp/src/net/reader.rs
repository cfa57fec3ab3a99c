//! A connection's reader: decodes frames into dispatcher jobs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aemp_proto::framing::{Frame, FrameDecoder, Framing};
use aemp_proto::{NodeId, PortId};
use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt};

use super::NetError;
use super::conn::Conn;
use super::heartbeat::{self, Beat, Heartbeat};
use super::inbox::Inbox;
use crate::dispatch::Job;
use crate::kernel;
use crate::node::{LocalKey, Shared};

/// What a reader needs to know about its connection.
pub(super) struct ReadSide<'a> {
    pub(super) shared: &'a Arc<Shared>,
    pub(super) peer: &'a NodeId,
    /// Where pongs go, and round trips are recorded.
    pub(super) conn: &'a Conn,
    pub(super) framing: Framing,
    /// Heartbeats agreed with the peer: then silence for `timeout` ends the link.
    pub(super) heartbeat: Option<Heartbeat>,
}

/// Reads and dispatches messages until the connection ends: `Ok` at the peer's EOF.
///
/// # Errors
///
/// A read error, a frame that does not decode, [`NetError::HeartbeatTimeout`].
pub(super) async fn read_loop(
    side: ReadSide<'_>,
    mut rd: impl AsyncRead + Unpin,
    mut buf: BytesMut,
) -> Result<(), NetError> {
    let ReadSide {
        shared,
        peer,
        conn,
        framing,
        heartbeat,
    } = side;
    let mut decoder = FrameDecoder::new(framing, shared.net.limits.max_message);
    let inbox = Arc::new(Inbox::default());
    // The jobs of one read, kept for its allocation.
    let mut jobs = Vec::new();
    // When we last heard from the peer (or stopped waiting for our own dispatcher).
    let mut heard = Instant::now();
    // The heartbeat deadline: one timer, moved forward only when it fires early (a timer
    // per read would cost a registration for every read).
    let silence = heartbeat.map_or(Duration::MAX, |hb| hb.timeout);
    let deadline = tokio::time::sleep_until((heard + silence.min(FAR)).into());
    tokio::pin!(deadline);
    loop {
        let before = buf.len();
        while let Some(frame) = decoder.decode(&mut buf)? {
            if heartbeat.is_some()
                && frame.port.is_empty()
                && let Some(beat) = heartbeat::beat_of(&frame)
            {
                match beat {
                    Beat::Ping(t) => {
                        conn.push_control("", &heartbeat::pong(t));
                    }
                    Beat::Pong(t) => {
                        conn.record_round_trip(heartbeat::round_trip(shared.net.epoch, t));
                    }
                    Beat::Bye => {
                        // Everything it sent is decoded; hand it over before ending.
                        if !jobs.is_empty() {
                            inbox
                                .hand_over(shared, &mut jobs, before - buf.len())
                                .await?;
                        }
                        return Err(NetError::PeerShutDown);
                    }
                }
                continue;
            }
            if let Some(job) = inbound(shared, peer, frame) {
                jobs.push(job);
            }
        }
        if !jobs.is_empty() {
            inbox
                .hand_over(shared, &mut jobs, before - buf.len())
                .await?;
            // The wait for a busy dispatcher is not the peer's silence: what it sent
            // meanwhile is in the socket, unread.
            heard = Instant::now();
        }
        if buf.capacity() - buf.len() < READ_SPARE {
            // Read in large chunks: one read carries many messages.
            buf.reserve(READ_CHUNK);
        }
        let read = match heartbeat {
            None => rd.read_buf(&mut buf).await?,
            Some(_) => loop {
                tokio::select! {
                    // Data first: a buffered read always wins over a due deadline.
                    biased;
                    // `read_buf` is cancel safe: losing the race reads nothing.
                    read = rd.read_buf(&mut buf) => break read?,
                    () = &mut deadline => {
                        let due = heard + silence;
                        if Instant::now() >= due {
                            return Err(NetError::HeartbeatTimeout);
                        }
                        deadline.as_mut().reset(due.into());
                    }
                }
            },
        };
        if read == 0 {
            return Ok(());
        }
        heard = Instant::now();
    }
}

/// Turns a received frame into dispatcher work. The source node of every inbound message is
/// the connection's node (reference §10, the 1.28 fix).
pub(super) fn inbound(shared: &Arc<Shared>, peer: &NodeId, frame: Frame) -> Option<Job> {
    if frame.port.is_empty() {
        if frame.message.is_empty() {
            return None; // `[]`: keepalive
        }
        let from = peer.clone();
        let msg = frame.message;
        return Some(Job::Run(Box::new(move |core| {
            kernel::handle_from(core, Some(&from), msg);
        })));
    }
    // Names we generated resolve without building a `PortId` (the common case).
    if let LocalKey::Own(key) = shared.local_key_of_name(&frame.port) {
        return Some(Job::Deliver {
            key,
            msg: frame.message,
        });
    }
    let port = PortId::new(shared.id().clone(), &frame.port).ok()?;
    Some(Job::DeliverNamed(Box::new((port, frame.message))))
}

/// A deadline that never comes (for links without heartbeats; `Instant + Duration::MAX`
/// would overflow).
const FAR: Duration = Duration::from_secs(365 * 24 * 3600);

/// Room kept free in a connection's read buffer before each read.
pub(super) const READ_SPARE: usize = 16 * 1024;

/// How much the read buffer grows by when it runs short.
pub(super) const READ_CHUNK: usize = 64 * 1024;
