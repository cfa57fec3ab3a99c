//! Listeners: accepting connections.

use std::net::SocketAddr;
use std::sync::{Arc, PoisonError};

use tokio::net::TcpListener;

use super::connection::{Direction, connection};
use crate::node::Shared;

/// Binds a listener and accepts connections until the node is dropped.
pub(crate) fn listen(shared: &Arc<Shared>, addr: SocketAddr) -> std::io::Result<SocketAddr> {
    let std_listener = std::net::TcpListener::bind(addr)?;
    std_listener.set_nonblocking(true)?;
    let local = std_listener.local_addr()?;
    let _context = shared.runtime.enter();
    let listener = TcpListener::from_std(std_listener)?;
    shared
        .net
        .listening
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(local);
    let weak = Arc::downgrade(shared);
    shared.runtime.spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let Some(shared) = weak.upgrade() else {
                return;
            };
            tokio::spawn(async move {
                if let Err(e) = connection(shared, stream, Direction::Accept).await {
                    tracing::info!(error = %e, "inbound connection ended");
                }
            });
        }
    });
    Ok(local)
}
