//! One task per connection: the handshake driver, then the data phase until it breaks.
//!
//! The handshake is the sans-IO machine of `aemp-proto` fed from the socket; no protocol
//! decision is made here. It must finish within `handshake_timeout`, and an inbound one may
//! be evicted by newer connections ([`Ticket`]). Once established, a writer task and the
//! reader run until the peer closes, a read or write fails, heartbeats stop, this side closes
//! the connection ([`Cause`]) or the node shuts down; then the link is lost
//! ([`link::lost`](super::link::lost)) with a reason every monitor of that node receives.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aemp_proto::NodeId;
use aemp_proto::greeting::Nonce;
use aemp_proto::handshake::{Event, Handshake, HandshakeError, Session, TlsRole};
use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

use super::admission::Ticket;
use super::conn::Cause;
use super::crossing::{AttemptGuard, Registration, Verdict, approve, register};
use super::heartbeat;
use super::link::{lost, node_up};
use super::reader::{ReadSide, read_loop};
use super::writer::write_loop;
use super::{ConnectionCount, NetError, tls};
use crate::node::Shared;

/// Who opened a connection.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub(super) enum Direction {
    /// We dialled.
    Dial,
    /// The peer dialled us.
    Accept,
}

/// Runs one connection to its end (see [`connection_with`]).
pub(super) async fn connection(
    shared: Arc<Shared>,
    stream: TcpStream,
    direction: Direction,
    ticket: Option<Ticket>,
) -> Result<(), NetError> {
    let mut none = None;
    connection_with(shared, stream, direction, ticket, &mut none).await
}

/// Runs one connection: the handshake, then the data phase until it breaks. `ticket` is an
/// inbound connection's place among the unauthenticated ones; `up` is told the peer's ID
/// once the connection is established. Handshake failures are logged here.
pub(super) async fn connection_with(
    shared: Arc<Shared>,
    stream: TcpStream,
    direction: Direction,
    ticket: Option<Ticket>,
    up: &mut Option<oneshot::Sender<Result<NodeId, NetError>>>,
) -> Result<(), NetError> {
    let _count = ConnectionCount::new(&shared);
    let peer_addr = stream.peer_addr().ok();
    // Our own dials remember the address that worked.
    let dialled = if up.is_some() { peer_addr } else { None };
    let mut claimed = None;
    let handshake = handshake(&shared, stream, direction, peer_addr, &mut claimed);
    let outcome = match &ticket {
        Some(ticket) => tokio::select! {
            r = handshake => r,
            () = ticket.evicted() => Err(NetError::Evicted),
        },
        None => handshake.await,
    };
    drop(ticket);
    let established = match outcome {
        Ok(established) => established,
        Err(e) => {
            log_handshake_failure(&e, direction, peer_addr, claimed.as_ref());
            return Err(e);
        }
    };
    data_phase(&shared, established, direction, dialled, peer_addr, up).await
}

/// A connection whose handshake succeeded.
struct Established {
    stream: tls::Stream,
    hs: Handshake,
    session: Box<Session>,
    tls_role: Option<TlsRole>,
    attempt: AttemptGuard,
}

/// Greeting, authentication and TLS, within the handshake timeout. `claimed` is set to the
/// node ID the peer's greeting names.
async fn handshake(
    shared: &Arc<Shared>,
    stream: TcpStream,
    direction: Direction,
    peer_addr: Option<SocketAddr>,
    claimed: &mut Option<NodeId>,
) -> Result<Established, NetError> {
    stream.set_nodelay(shared.net.nodelay)?;
    heartbeat::set_socket_options(&stream, &shared.net.limits)?;
    let mut stream = tls::Stream::Plain(stream);
    let mut tls_role = None;
    let mut nonce = [0_u8; 66];
    getrandom::fill(&mut nonce).map_err(|e| std::io::Error::other(e.to_string()))?;
    let mut hs = Handshake::new(
        &shared.net.config,
        Nonce::from_random(&nonce),
        peer_addr,
        Instant::now(),
    );
    let mut buf = BytesMut::with_capacity(8192);
    let mut attempt = AttemptGuard {
        shared: shared.clone(),
        node: None,
        id: shared.next_monitor_id(),
    };
    let session = loop {
        let mut established = None;
        loop {
            while let Some(bytes) = hs.poll_transmit() {
                stream.write_all(&bytes).await?;
            }
            stream.flush().await?;
            let Some(event) = hs.poll_event() else {
                break;
            };
            match event {
                Event::PeerGreeting { node } => {
                    *claimed = Some(node.clone());
                    loop {
                        match approve(shared, &node, attempt.id, direction) {
                            Verdict::Go => break,
                            Verdict::Refuse(reason) => {
                                return Err(hs.refuse_peer(reason).into());
                            }
                            Verdict::Wait => {
                                // The handshake timeout still bounds the wait.
                                tokio::time::sleep(Duration::from_millis(5)).await;
                                hs.handle_timeout(Instant::now())?;
                            }
                        }
                    }
                    attempt.node = Some(node);
                    if let Err(e) = hs.accept_peer(Instant::now()) {
                        // Our auth line may be queued: send it, as Perl does, so the peer
                        // learns the secrets differ rather than seeing the line drop.
                        while let Some(bytes) = hs.poll_transmit() {
                            stream.write_all(&bytes).await?;
                        }
                        return Err(e.into());
                    }
                }
                Event::StartTls { role } => {
                    stream = tls::start(stream, &mut hs, shared.net.tls.config(), role).await?;
                    tls_role = Some(role);
                }
                Event::Established(session) => established = Some(session),
                _ => {}
            }
        }
        if let Some(session) = established {
            break session;
        }
        let deadline = hs
            .poll_timeout()
            .map_or_else(tokio::time::Instant::now, tokio::time::Instant::from_std);
        match tokio::time::timeout_at(deadline, stream.read_buf(&mut buf)).await {
            Ok(Ok(0)) => return Err(NetError::ClosedDuringHandshake),
            Ok(Ok(_)) => {
                hs.handle_input(&buf, Instant::now())?;
                buf.clear();
            }
            Ok(Err(e)) => return Err(e.into()),
            Err(_) => hs.handle_timeout(Instant::now())?,
        }
    };
    Ok(Established {
        stream,
        hs,
        session,
        tls_role,
        attempt,
    })
}

/// Registers an established connection and runs it until it ends.
async fn data_phase(
    shared: &Arc<Shared>,
    established: Established,
    direction: Direction,
    dialled: Option<SocketAddr>,
    peer_addr: Option<SocketAddr>,
    up: &mut Option<oneshot::Sender<Result<NodeId, NetError>>>,
) -> Result<(), NetError> {
    let Established {
        stream,
        mut hs,
        session,
        tls_role,
        attempt,
    } = established;
    let peer = session.peer.clone();
    let (rd, wr) = stream.into_split();
    // Register the connection; a connection that came up meanwhile wins.
    let conn = loop {
        match register(shared, &peer, &attempt, direction, &session, dialled) {
            Registration::Up(conn) => break conn,
            Registration::Refuse(reason) => {
                tracing::debug!(node = %peer, addr = %shown(peer_addr), reason, "second connection refused");
                return Err(hs.refuse_peer(reason).into());
            }
            // The handshake timeout bounds the winner, so this wait ends.
            Registration::Wait => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    };
    drop(attempt);
    if let tls::Writer::Plain(socket) = &wr {
        let _ = conn.direct.set(socket.clone());
    }
    conn.notify.notify_one();
    node_up(shared, &peer);
    shared.net.tls.record(tls_role, session.auth);
    let limits = shared.net.limits;
    let heartbeat = heartbeat::negotiate(&session.peer_greeting, &limits);
    if heartbeat.is_some() {
        conn.set_heartbeats();
    }
    tracing::info!(
        node = %peer,
        addr = %shown(peer_addr),
        framing = %session.send_framing,
        auth = %session.auth,
        heartbeat = heartbeat.is_some(),
        "connected"
    );
    if let Some(tx) = up.take() {
        let _ = tx.send(Ok(peer.clone()));
    }
    let keepalive = heartbeat::keepalive(heartbeat, &limits, shared.net.epoch);
    let mut writer = tokio::spawn(write_loop(wr, conn.clone(), keepalive));
    let side = ReadSide {
        shared,
        peer: &peer,
        conn: &conn,
        framing: session.recv_framing,
        heartbeat,
    };
    let leftover = hs.take_buffered();
    let result = tokio::select! {
        r = read_loop(side, rd, leftover) => r,
        w = &mut writer => match w {
            Ok(Err(e)) => Err(NetError::Io(e)),
            // The writer only stops by itself when it fails.
            Ok(Ok(())) | Err(_) => Err(NetError::ClosedLocally),
        },
        () = conn.hang_up.notified() => Err(match conn.cause() {
            Some(Cause::Overflow) => NetError::QueueOverflow,
            Some(Cause::Shutdown) => NetError::ShuttingDown,
            Some(Cause::Local) | None => NetError::ClosedLocally,
        }),
    };
    conn.close();
    writer.abort();
    let text = match &result {
        Ok(()) => "Unexpected end-of-file".to_owned(),
        Err(e) => e.to_string(),
    };
    match &result {
        Err(NetError::ClosedLocally | NetError::ShuttingDown | NetError::PeerShutDown) => {
            tracing::info!(node = %peer, addr = %shown(peer_addr), reason = text, "link closed");
        }
        Err(NetError::QueueOverflow) => tracing::warn!(
            node = %peer,
            addr = %shown(peer_addr),
            max_queue = limits.max_queue,
            "link closed: send queue overflow (the peer reads too slowly or not at all)"
        ),
        _ => tracing::warn!(node = %peer, addr = %shown(peer_addr), reason = text, "link lost"),
    }
    lost(shared, &peer, Some(&conn), &text);
    result
}

/// Logs why a handshake failed: refusals of the peer at WARN (an operator must see a
/// wrong secret or a version mismatch), our own bookkeeping and silent peers at DEBUG.
fn log_handshake_failure(
    e: &NetError,
    direction: Direction,
    peer_addr: Option<SocketAddr>,
    node: Option<&NodeId>,
) {
    let node = node.map_or("unknown", NodeId::as_str);
    let routine = match e {
        NetError::Handshake(
            HandshakeError::Refused { .. }
            | HandshakeError::SelfConnection
            | HandshakeError::EchoAttack,
        )
        | NetError::ClosedDuringHandshake
        | NetError::Evicted
        | NetError::ShuttingDown
        | NetError::Io(_) => true,
        // A silent inbound connection is one of a flood or a scanner: the admission cap
        // warns about those. Our own dial timing out is worth a warning.
        NetError::Handshake(HandshakeError::Timeout) => direction == Direction::Accept,
        _ => false,
    };
    if routine {
        tracing::debug!(addr = %shown(peer_addr), node, ?direction, error = %e, "handshake ended");
    } else {
        tracing::warn!(addr = %shown(peer_addr), node, ?direction, error = %e, "handshake refused");
    }
}

/// A peer address for the log.
fn shown(addr: Option<SocketAddr>) -> String {
    addr.map_or_else(|| "unknown".to_owned(), |a| a.to_string())
}
