//! One task per connection: the handshake driver, then the data phase until it breaks.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aemp_proto::NodeId;
use aemp_proto::greeting::Nonce;
use aemp_proto::handshake::{Event, Handshake};
use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::crossing::{AttemptGuard, Registration, Verdict, approve, register};
use super::link::{node_down, node_up};
use super::reader::read_loop;
use super::writer::write_loop;
use super::{NetError, tls};
use crate::node::Shared;

pub(super) async fn connection(
    shared: Arc<Shared>,
    stream: TcpStream,
    direction: Direction,
) -> Result<(), NetError> {
    let mut none = None;
    connection_with(shared, stream, direction, &mut none).await
}

/// Who opened a connection.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub(super) enum Direction {
    /// We dialled.
    Dial,
    /// The peer dialled us.
    Accept,
}

/// Runs one connection: the handshake, then the data phase until it breaks. `up` is told the
/// peer's ID once the connection is established.
pub(super) async fn connection_with(
    shared: Arc<Shared>,
    stream: TcpStream,
    direction: Direction,
    up: &mut Option<tokio::sync::oneshot::Sender<Result<NodeId, NetError>>>,
) -> Result<(), NetError> {
    stream.set_nodelay(shared.net.nodelay)?;
    let peer_addr = stream.peer_addr().ok();
    // Our own dials remember the address that worked.
    let dialled = if up.is_some() { peer_addr } else { None };
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
                    loop {
                        match approve(&shared, &node, attempt.id, direction) {
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
    let peer = session.peer.clone();
    let (rd, wr) = stream.into_split();
    // Register the connection; a connection that came up meanwhile wins.
    let conn = loop {
        match register(&shared, &peer, &attempt, direction, &session, dialled) {
            Registration::Up(conn) => break conn,
            Registration::Refuse(reason) => return Err(hs.refuse_peer(reason).into()),
            // The handshake timeout bounds the winner, so this wait ends.
            Registration::Wait => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    };
    if let tls::Writer::Plain(socket) = &wr {
        let _ = conn.direct.set(socket.clone());
    }
    conn.notify.notify_one();
    node_up(&shared, &peer);
    shared.net.tls.record(tls_role, session.auth);
    tracing::info!(node = %peer, framing = %session.send_framing, auth = %session.auth, "connected");
    if let Some(tx) = up.take() {
        let _ = tx.send(Ok(peer.clone()));
    }
    let keepalive = shared
        .net
        .listening()
        .is_empty()
        .then_some(shared.net.monitor_timeout);
    let writer = tokio::spawn(write_loop(wr, conn.clone(), keepalive));
    let leftover = hs.take_buffered();
    let result = tokio::select! {
        r = read_loop(&shared, &peer, rd, leftover, session.recv_framing) => r,
        () = conn.hang_up.notified() => Err(NetError::ClosedLocally),
    };
    conn.close();
    writer.abort();
    {
        let mut links = shared.net.links();
        if let Some(link) = links.get_mut(&peer)
            && link.up.as_ref().is_some_and(|c| Arc::ptr_eq(c, &conn))
        {
            link.up = None;
        }
    }
    let text = match &result {
        Ok(()) => "Unexpected end-of-file".to_owned(),
        Err(e) => e.to_string(),
    };
    tracing::info!(node = %peer, reason = text, "disconnected");
    node_down(&shared, &peer, &text);
    result
}
