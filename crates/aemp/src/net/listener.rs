//! Listeners: accepting connections, surviving hostile load.
//!
//! An accept error never makes the loop spin: errors that mean the process or the system is
//! out of a resource (file descriptors, buffers, memory) first try to free a descriptor by
//! evicting the oldest unauthenticated connection ([`Admission`]), and
//! otherwise back off, 5 ms doubling to 1 s, with a warning at most every 10 s. Every accepted
//! connection must get a place among the `max_unauthenticated` handshakes, or it is closed
//! at once.

use std::net::SocketAddr;
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;

use super::admission::Admission;
use super::connection::{Direction, connection};
use crate::node::Shared;

/// Binds a listener and accepts connections until the node shuts down.
pub(crate) fn listen(shared: &Arc<Shared>, addr: SocketAddr) -> std::io::Result<SocketAddr> {
    let _context = shared.runtime.enter();
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    // A deep accept queue: with the usual 128, a burst of connections (a flood, or many
    // nodes starting at once) makes every further connect wait for SYN retransmits.
    let listener = socket.listen(BACKLOG)?;
    let local = listener.local_addr()?;
    shared
        .net
        .listening
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(local);
    let weak = Arc::downgrade(shared);
    let task = shared.runtime.spawn(accept_loop(listener, local, weak));
    shared
        .net
        .listeners
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(task.abort_handle());
    Ok(local)
}

async fn accept_loop(listener: TcpListener, local: SocketAddr, weak: std::sync::Weak<Shared>) {
    let mut backoff = MIN_BACKOFF;
    let mut failures: u64 = 0;
    let mut last_warning: Option<Instant> = None;
    loop {
        let accepted = listener.accept().await;
        let Some(shared) = weak.upgrade() else {
            return;
        };
        if shared.net.is_closing() {
            return;
        }
        match accepted {
            Ok((stream, peer)) => {
                backoff = MIN_BACKOFF;
                let Some(ticket) = Admission::admit(&shared) else {
                    tracing::debug!(%peer, "unauthenticated connection closed at once (cap)");
                    continue;
                };
                tokio::spawn(async move {
                    if let Err(e) =
                        connection(shared, stream, Direction::Accept, Some(ticket)).await
                    {
                        tracing::debug!(%peer, error = %e, "inbound connection ended");
                    }
                });
            }
            Err(e) if transient(&e) => {}
            Err(e) => {
                failures += 1;
                if out_of_resources(&e) && shared.net.admission.evict_one() {
                    // A descriptor is free again (or soon): try at once.
                    tokio::task::yield_now().await;
                    continue;
                }
                if last_warning.is_none_or(|t| t.elapsed() >= WARN_EVERY) {
                    tracing::warn!(
                        listener = %local,
                        error = %e,
                        failures,
                        retry_in = ?backoff,
                        "accept failed; backing off"
                    );
                    failures = 0;
                    last_warning = Some(Instant::now());
                }
                drop(shared);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Errors about one connection that died in the queue: accept the next one at once.
fn transient(e: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(
        e.kind(),
        ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset | ErrorKind::Interrupted
    )
}

/// EMFILE, ENFILE, ENOBUFS, ENOMEM: the process or the system is out of something.
fn out_of_resources(e: &std::io::Error) -> bool {
    // Linux, macOS and the BSDs agree on these numbers.
    const ENOMEM: i32 = 12;
    const ENFILE: i32 = 23;
    const EMFILE: i32 = 24;
    #[cfg(target_os = "linux")]
    const ENOBUFS: i32 = 105;
    #[cfg(not(target_os = "linux"))]
    const ENOBUFS: i32 = 55;
    matches!(e.raw_os_error(), Some(ENOMEM | ENFILE | EMFILE | ENOBUFS))
        || e.kind() == std::io::ErrorKind::OutOfMemory
}

/// The accept queue's length (the kernel caps it at `net.core.somaxconn`).
const BACKLOG: u32 = 4096;

/// The first pause after an accept error.
const MIN_BACKOFF: Duration = Duration::from_millis(5);

/// The longest pause between accept attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Accept errors are logged at most this often.
const WARN_EVERY: Duration = Duration::from_secs(10);
