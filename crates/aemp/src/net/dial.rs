//! Dialling: known addresses tried round robin until a connection comes up, and
//! [`Node::connect`](crate::Node::connect).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use aemp_proto::NodeId;
use tokio::net::TcpStream;

use super::connection::{Direction, connection, connection_with};
use super::{Net, NetError};
use crate::node::Shared;

/// Dials the known addresses of `node` until it is connected, round robin, spaced as
/// reference §4.12 describes, giving up with the queue (after `monitor_timeout`).
pub(super) async fn dial(weak: std::sync::Weak<Shared>, node: NodeId) {
    // "First attempt after a random 0–50 ms" (§4.12): spreads simultaneous dials.
    let mut jitter = [0_u8; 1];
    let _ = getrandom::fill(&mut jitter);
    tokio::time::sleep(Duration::from_millis(u64::from(jitter[0]) % 50)).await;
    let mut next = 0_usize;
    loop {
        let Some(shared) = weak.upgrade() else {
            return;
        };
        let (addr, interval) = {
            let mut table = shared.net.table();
            let Some(link) = table.links.get_mut(&node) else {
                return;
            };
            if link.up.is_some()
                || link.queue.is_empty()
                || link.addrs.is_empty()
                || shared.net.is_closing()
            {
                link.dialing = false;
                return;
            }
            let addr = link.addrs[next % link.addrs.len()];
            next += 1;
            (addr, attempt_interval(&shared.net, link.addrs.len()))
        };
        let shared2 = shared.clone();
        tokio::spawn(async move {
            match TcpStream::connect(addr).await {
                Ok(stream) => {
                    if let Err(e) = connection(shared2, stream, Direction::Dial, None).await {
                        tracing::debug!(%addr, error = %e, "dial ended");
                    }
                }
                Err(e) => tracing::debug!(%addr, error = %e, "connect failed"),
            }
        });
        drop(shared);
        tokio::time::sleep(interval).await;
    }
}

/// `interval = connect_interval`, shortened so every address is tried within
/// `monitor_timeout`; at least 0.4 s (reference §4.12).
pub(super) fn attempt_interval(net: &Net, addresses: usize) -> Duration {
    let mut interval = net.limits.connect_interval;
    let spare = net.limits.monitor_timeout.saturating_sub(interval);
    let per_address = spare / u32::try_from(addresses.max(1)).unwrap_or(u32::MAX);
    if per_address < interval {
        interval = per_address;
    }
    interval.max(Duration::from_millis(400))
}

/// Dials `addr`; resolves with the peer's node ID once the connection is up.
///
/// # Errors
///
/// [`NetError::ShuttingDown`] once the node is shutting down; any failure to connect or
/// authenticate.
pub(crate) async fn connect(shared: Arc<Shared>, addr: SocketAddr) -> Result<NodeId, NetError> {
    if shared.net.is_closing() {
        return Err(NetError::ShuttingDown);
    }
    let stream = TcpStream::connect(addr).await?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let mut tx = Some(tx);
        let result = connection_with(shared, stream, Direction::Dial, None, &mut tx).await;
        match tx.take() {
            // Never established: the caller learns why.
            Some(tx) => {
                let _ = tx.send(Err(result.err().unwrap_or(NetError::ClosedDuringHandshake)));
            }
            None => {
                if let Err(e) = result {
                    tracing::debug!(%addr, error = %e, "connection ended");
                }
            }
        }
    });
    rx.await.unwrap_or(Err(NetError::ClosedDuringHandshake))
}
