//! A connection's reader: decodes frames into dispatcher jobs.

use std::sync::Arc;

use aemp_proto::framing::{Frame, FrameDecoder, Framing};
use aemp_proto::{NodeId, PortId};
use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt};

use super::NetError;
use super::inbox::Inbox;
use crate::dispatch::Job;
use crate::kernel;
use crate::node::{LocalKey, Shared};

/// Reads and dispatches messages until the connection ends.
pub(super) async fn read_loop(
    shared: &Arc<Shared>,
    peer: &NodeId,
    mut rd: impl AsyncRead + Unpin,
    mut buf: BytesMut,
    framing: Framing,
) -> Result<(), NetError> {
    let mut decoder = FrameDecoder::new(framing, shared.net.max_message);
    let inbox = Arc::new(Inbox::default());
    // The jobs of one read, kept for its allocation.
    let mut jobs = Vec::new();
    loop {
        let before = buf.len();
        while let Some(frame) = decoder.decode(&mut buf)? {
            if let Some(job) = inbound(shared, peer, frame) {
                jobs.push(job);
            }
        }
        if !jobs.is_empty() {
            inbox
                .hand_over(shared, &mut jobs, before - buf.len())
                .await?;
        }
        if buf.capacity() - buf.len() < READ_SPARE {
            // Read in large chunks: one read carries many messages.
            buf.reserve(READ_CHUNK);
        }
        if rd.read_buf(&mut buf).await? == 0 {
            return Ok(());
        }
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

/// Room kept free in a connection's read buffer before each read.
pub(super) const READ_SPARE: usize = 16 * 1024;

/// How much the read buffer grows by when it runs short.
pub(super) const READ_CHUNK: usize = 64 * 1024;
