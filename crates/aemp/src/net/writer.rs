//! A connection's writer task: writes whatever the senders encoded since its last write, and
//! keeps the link alive (heartbeats to aemp peers, `[]` to idle Perl peers).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;

use super::conn::{Conn, Pushed};
use super::heartbeat::{self, Keepalive};
use super::tls;

/// Writes everything queued on the connection, many messages per write, until the
/// connection closes (`Ok`) or a write fails (the connection task then ends the link).
pub(super) async fn write_loop(
    mut wr: tls::Writer,
    conn: Arc<Conn>,
    keepalive: Keepalive,
) -> std::io::Result<()> {
    let mut bytes: Vec<u8> = Vec::with_capacity(WRITE_CHUNK);
    // Full chunks taken with `bytes` (written before it), and emptied ones to give back.
    let mut full: Vec<Vec<u8>> = Vec::new();
    let mut next_ping = Instant::now();
    // One timer for the whole connection, moved only when it fires or a ping goes out (a
    // timer per idle wait would cost a registration for every burst).
    let timer = tokio::time::sleep_until(next_ping.into());
    tokio::pin!(timer);
    loop {
        if let Keepalive::Heartbeat { every, epoch } = keepalive {
            // Due pings go out with whatever is queued, busy or not: they measure the round
            // trip and show the peer we are alive.
            let now = Instant::now();
            if now >= next_ping {
                conn.push_control("", &heartbeat::ping(epoch));
                next_ping = now + every;
                timer.as_mut().reset(next_ping.into());
            }
        }
        {
            let mut q = conn.outbox();
            std::mem::swap(&mut q.full, &mut full);
            std::mem::swap(&mut q.bytes, &mut bytes);
            q.messages = 0;
            q.in_flight = q.full_bytes + bytes.len();
            q.full_bytes = 0;
            q.writer_busy = q.in_flight > 0;
        }
        if bytes.is_empty() && full.is_empty() {
            if conn.is_closed() {
                return Ok(());
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
                q.spare = Vec::new();
            }
            tokio::select! {
                biased;
                () = conn.notify.notified() => {}
                () = &mut timer => {
                    // Heartbeats: the ping is due, the top of the loop sends it.
                    if let Keepalive::Idle(idle) = keepalive {
                        let last = conn.outbox().last_write;
                        match last.map(|t| t + idle).filter(|due| *due > Instant::now()) {
                            // Written meanwhile: wait for the rest of the idle time.
                            Some(due) => timer.as_mut().reset(due.into()),
                            None => {
                                // "listener-less node: write timeout monitor_timeout; on
                                // expiry writes []" (reference §4.11), and we do it for every
                                // Perl peer, more often, so TCP always has recent data to
                                // time out on when the peer is gone.
                                timer.as_mut().reset((Instant::now() + idle).into());
                                if conn.push_keepalive() != Pushed::Queued {
                                    // Closing: wait for the connection task to stop us.
                                    conn.notify.notified().await;
                                }
                            }
                        }
                    }
                }
            }
            continue;
        }
        // Everything the senders queued since the last write, in one write per chunk. A
        // failed write ends the connection, never leaving a half-open one behind.
        for chunk in &full {
            write_bytes(&mut wr, chunk).await?;
        }
        write_bytes(&mut wr, &bytes).await?;
        {
            let mut q = conn.outbox();
            q.writer_busy = false;
            q.in_flight = 0;
            q.last_write = Some(Instant::now());
            for mut chunk in full.drain(..) {
                if q.spare.len() < SPARE_CHUNKS && chunk.capacity() <= 2 * super::conn::CHUNK {
                    chunk.clear();
                    q.spare.push(chunk);
                }
            }
        }
        bytes.clear();
        conn.drained.notify_waiters();
    }
}

/// Writes all of `bytes`.
async fn write_bytes(wr: &mut tls::Writer, bytes: &[u8]) -> std::io::Result<()> {
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

/// Emptied outbox chunks kept for reuse (a streaming sender refills them at once).
const SPARE_CHUNKS: usize = 4;

/// The capacity a connection's write buffer starts with.
const WRITE_CHUNK: usize = 64 * 1024;

/// A write buffer larger than this is given back when the connection has been idle for
/// [`SHRINK_AFTER`].
const MAX_IDLE_BUFFER: usize = 4 << 20;

/// How long a connection must be idle before its grown write buffers are given back.
const SHRINK_AFTER: Duration = Duration::from_millis(500);
