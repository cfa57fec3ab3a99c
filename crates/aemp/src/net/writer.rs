//! A connection's writer task: writes whatever the senders encoded since its last write.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::conn::Conn;
use super::tls;
use tokio::io::AsyncWriteExt;

/// Writes everything queued on the connection, many messages per write.
pub(super) async fn write_loop(mut wr: tls::Writer, conn: Arc<Conn>, keepalive: Option<Duration>) {
    let mut bytes: Vec<u8> = Vec::with_capacity(WRITE_CHUNK);
    loop {
        {
            let mut q = conn.outbox();
            std::mem::swap(&mut q.bytes, &mut bytes);
            q.messages = 0;
            q.writer_busy = !bytes.is_empty();
        }
        if bytes.is_empty() {
            if conn.closed.load(std::sync::atomic::Ordering::Acquire) {
                return;
            }
            // A burst may have grown both buffers: give that memory back once the connection
            // has been idle a while (not at once: a streaming sender would regrow them).
            if bytes.capacity() > MAX_IDLE_BUFFER {
                if tokio::time::timeout(SHRINK_AFTER, conn.notify.notified())
                    .await
                    .is_ok()
                {
                    continue;
                }
                bytes = Vec::with_capacity(WRITE_CHUNK);
                let mut q = conn.outbox();
                if q.bytes.is_empty() {
                    q.bytes = Vec::new();
                }
            }
            match keepalive {
                // "listener-less node: write timeout monitor_timeout; on expiry writes []"
                // (reference §4.11), so TCP notices a dead peer on an idle link.
                Some(idle) => {
                    if tokio::time::timeout(idle, conn.notify.notified())
                        .await
                        .is_err()
                    {
                        let mut q = conn.outbox();
                        if !q.bytes.is_empty() {
                            // A sender queued something meanwhile: that is traffic enough.
                            continue;
                        }
                        q.writer_busy = true;
                        drop(q);
                        conn.framing.encode_keepalive(&mut bytes);
                    } else {
                        continue;
                    }
                }
                None => {
                    conn.notify.notified().await;
                    continue;
                }
            }
        }
        // Everything the senders queued since the last write, in one write.
        if let Err(e) = write_bytes(&mut wr, &bytes).await {
            // A dead writer must end the connection, not leave a half-open one behind.
            tracing::info!(error = %e, "write failed");
            conn.hang_up.notify_one();
            return;
        }
        {
            let mut q = conn.outbox();
            q.writer_busy = false;
            q.last_write = Some(Instant::now());
        }
        bytes.clear();
        conn.drained.notify_waiters();
    }
}

/// Writes all of `bytes`.
pub(super) async fn write_bytes(wr: &mut tls::Writer, bytes: &[u8]) -> std::io::Result<()> {
    match wr {
        tls::Writer::Plain(socket) => {
            let mut done = 0;
            while done < bytes.len() {
                socket.writable().await?;
                match socket.try_write(&bytes[done..]) {
                    Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
                    Ok(n) => done += n,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        }
        // A TLS stream may keep written bytes until flushed.
        tls::Writer::Tls(stream) => {
            stream.write_all(bytes).await?;
            stream.flush().await
        }
    }
}

/// The capacity a connection's write buffer starts with.
pub(super) const WRITE_CHUNK: usize = 64 * 1024;

/// A write buffer larger than this is given back when the connection has been idle for
/// [`SHRINK_AFTER`].
pub(super) const MAX_IDLE_BUFFER: usize = 4 << 20;

/// How long a connection must be idle before its grown write buffers are given back.
pub(super) const SHRINK_AFTER: Duration = Duration::from_millis(500);
