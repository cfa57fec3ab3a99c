//! The network: listeners, dialling, and one task per connection that drives the sans-IO
//! handshake and then the data phase (reference §4).
//!
//! Every node has a [`Net`]. A message for another node goes to that node's [`Link`]: onto
//! the connection's outbound queue when it is up (one writer task coalesces everything queued
//! into one write), or into the link's queue while it is down (flushed in order when a
//! connection comes up, dropped after `monitor_timeout`, when the node's monitors fire with
//! `["transport_error", node, "unable to connect"]`).
//!
//! TLS (reference §4.5, module `tls`): a node with a certificate ([`NodeBuilder::cert_pem`])
//! announces `tls=1.0`; when both sides do, the handshake machine asks for TLS after the nonce
//! lines, the connection task runs it in the role the nonces decide (the bytes already read
//! are fed to TLS first), and the auth line and the data phase go through TLS. Both sides
//! present their certificate; a peer is trusted iff its certificate is one of those in our
//! PEM or chains to one of them. Names are never checked.
//!
//! Not yet here: dialling learnt addresses, Global.
//!
//! [`NodeBuilder::cert_pem`]: crate::NodeBuilder::cert_pem

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use aemp_proto::framing::{Frame, FrameDecoder, Framing};
use aemp_proto::greeting::Nonce;
use aemp_proto::handshake::{Event, Handshake, HandshakeConfig, HandshakeError};
use aemp_proto::{Message, NodeId, PortId};
use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

use crate::dispatch::Job;
use crate::kernel;
use crate::monitor::{Action, Reason};
use crate::node::{LocalKey, Shared};

mod tls;

pub(crate) use tls::{Tls, TlsConfig};

/// One message for another node: its destination and elements.
pub(crate) type Out = (PortId, Message);

/// Network state of a node.
pub(crate) struct Net {
    /// Our side of every handshake.
    pub(crate) config: HandshakeConfig,
    /// Largest message accepted from a peer, in bytes.
    max_message: usize,
    /// How long queued messages wait for a connection (Perl's `monitor_timeout`).
    monitor_timeout: Duration,
    /// Spacing of connection attempts (Perl's `connect_interval`, default 2 s).
    connect_interval: Duration,
    links: Mutex<HashMap<NodeId, Link, BuildHasherDefault<IdHasher>>>,
    /// Our monitors on ports of other nodes, by node and port name ("" for a node port).
    /// Kept here, not on the dispatcher, so `mon1`/`mon0` go out in issue order with the
    /// sender's other messages to that node.
    remote_monitors: Mutex<HashMap<NodeId, PortMonitors>>,
    /// Addresses our listeners are bound to.
    listening: Mutex<Vec<SocketAddr>>,
    /// Our certificate, if any, and the sessions established so far.
    pub(crate) tls: Tls,
    /// Whether connections set `TCP_NODELAY` (AEMP's `nodelay`).
    pub(crate) nodelay: bool,
}

/// Monitors on the ports of one other node, by port name, with their ids.
type PortMonitors = HashMap<String, Vec<(u64, Action)>>;

/// What we know about one other node.
#[derive(Default)]
struct Link {
    /// The connection, when up.
    up: Option<Arc<Conn>>,
    /// Messages waiting for a connection, in order.
    queue: Vec<Out>,
    /// Bumped whenever the queue is flushed or dropped, so a stale give-up timer does nothing.
    generation: u64,
    /// Addresses the node may be reached at (given in code or learnt), tried round robin.
    addrs: Vec<SocketAddr>,
    /// Whether a dialling task for this node is running.
    dialing: bool,
    /// Wakes tasks waiting for the outbound queue to shrink (flow control).
    drained: Arc<Notify>,
    /// Handshakes with this node past their greeting.
    attempts: Vec<Attempt>,
}

/// The outbound side of an established connection.
pub(crate) struct Conn {
    /// The framing we send in (chosen in the handshake).
    framing: Framing,
    /// Messages encoded by their senders, waiting for the writer.
    out: Mutex<Outbox>,
    notify: Notify,
    /// Shared with the link: signalled after every write.
    drained: Arc<Notify>,
    closed: std::sync::atomic::AtomicBool,
    /// Wakes the reader when this side closes the connection.
    hang_up: Notify,
    /// The socket, for senders that find the connection idle (plain TCP only; set once the
    /// connection is registered).
    direct: std::sync::OnceLock<Arc<tokio::net::tcp::OwnedWriteHalf>>,
}

/// Encoded messages waiting to be written.
///
/// Senders encode on their own thread, so the writer only swaps the buffer out and writes
/// it: the message (and its strings) is freed where it was allocated, the destination's
/// `PortId` is never cloned, and the writer's thread stays free for the reader.
#[derive(Default)]
struct Outbox {
    bytes: Vec<u8>,
    /// How many messages `bytes` holds (for flow control).
    messages: usize,
    /// The writer task is writing bytes it took from here: nobody else may write.
    writer_busy: bool,
    /// When bytes last went to the socket.
    last_write: Option<Instant>,
}

/// A sender writes its message to the socket itself (saving the writer task's wake-up, the
/// latency of a request–reply exchange) only if the connection was idle this long: a
/// streaming sender keeps going through the writer, which coalesces many messages per write.
const DIRECT_AFTER_IDLE: Duration = Duration::from_micros(20);

impl Conn {
    fn new(framing: Framing, drained: Arc<Notify>) -> Self {
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

    fn outbox(&self) -> std::sync::MutexGuard<'_, Outbox> {
        self.out.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Encodes one message onto the outbox and wakes the writer if it was empty. On an idle
    /// plain connection the sender writes the message itself, in order: nothing else is
    /// queued or being written, and the outbox lock keeps the writer out meanwhile.
    fn push(&self, port: &PortId, msg: &Message) {
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

    fn close(&self) {
        self.closed
            .store(true, std::sync::atomic::Ordering::Release);
        self.notify.notify_one();
    }
}

/// Why a connection could not be made or ended.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetError {
    /// A socket operation failed.
    #[error("{0}")]
    Io(std::io::Error),
    /// The handshake failed (wrong secret, version, ...).
    #[error("handshake failed: {0}")]
    Handshake(#[from] HandshakeError),
    /// The peer closed the connection during the handshake.
    #[error("connection closed by the peer during the handshake")]
    ClosedDuringHandshake,
    /// TLS failed: the peer's certificate is not trusted, the peer does not trust ours, or
    /// the TLS stream broke during the handshake.
    #[error("TLS: {0}")]
    Tls(String),
    /// This node closed the connection.
    #[error("connection closed by this node")]
    ClosedLocally,
    /// A peer sent bytes that are not a valid message stream.
    #[error("{0}")]
    Decode(#[from] aemp_proto::DecodeError),
}

impl Net {
    pub(crate) fn new(
        config: HandshakeConfig,
        monitor_timeout: Duration,
        connect_interval: Duration,
    ) -> Self {
        Self {
            config,
            max_message: 64 << 20,
            monitor_timeout,
            connect_interval,
            links: Mutex::new(HashMap::default()),
            remote_monitors: Mutex::new(HashMap::new()),
            listening: Mutex::new(Vec::new()),
            tls: Tls::default(),
            nodelay: true,
        }
    }

    /// Uses TLS with every peer that has a certificate too.
    pub(crate) fn with_tls(mut self, config: TlsConfig) -> Self {
        self.tls = Tls::new(Some(config));
        self
    }

    /// Spacing of connection attempts.
    pub(crate) fn connect_interval(&self) -> Duration {
        self.connect_interval
    }

    fn links(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<NodeId, Link, BuildHasherDefault<IdHasher>>> {
        self.links.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn listening(&self) -> Vec<SocketAddr> {
        self.listening
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Nodes with an established connection.
    pub(crate) fn up_nodes(&self) -> Vec<NodeId> {
        let mut v: Vec<NodeId> = self
            .links()
            .iter()
            .filter(|(_, l)| l.up.is_some())
            .map(|(n, _)| n.clone())
            .collect();
        v.sort();
        v
    }

    /// `true` if `node` has an established connection.
    pub(crate) fn is_up(&self, node: &NodeId) -> bool {
        self.links().get(node).is_some_and(|l| l.up.is_some())
    }

    /// Messages waiting to be written to `node` (queued while connecting, or not yet taken
    /// by the writer), and the notifier signalled when that number shrinks.
    pub(crate) fn queued(&self, node: &NodeId) -> (usize, Option<Arc<Notify>>) {
        let links = self.links();
        match links.get(node) {
            Some(link) => {
                let out = link.up.as_ref().map_or(0, |c| c.outbox().messages);
                (link.queue.len() + out, Some(link.drained.clone()))
            }
            None => (0, None),
        }
    }

    /// Closes the connection to `node`, if any; its monitors fire with `transport_error`.
    pub(crate) fn disconnect(&self, node: &NodeId) {
        if let Some(conn) = self.links().get(node).and_then(|l| l.up.clone()) {
            conn.hang_up.notify_one();
        }
    }

    /// Nodes we have a link for (connected or with queued messages).
    pub(crate) fn known_nodes(&self) -> Vec<NodeId> {
        let mut v: Vec<NodeId> = self.links().keys().cloned().collect();
        v.sort();
        v
    }
}

/// Adds a monitor on a port of another node; the first one on that port sends `mon1`
/// ("exactly one mon1 per 0→1 transition", reference §3).
pub(crate) fn add_monitor(shared: &Arc<Shared>, port: &PortId, id: u64, action: Action) {
    let first = {
        let mut all = shared
            .net
            .remote_monitors
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let list = all
            .entry(port.node().clone())
            .or_default()
            .entry(port.name().to_owned())
            .or_default();
        list.push((id, action));
        list.len() == 1
    };
    // A node-port monitor sends nothing: it fires only when the connection fails (§2.8).
    if first && !port.is_node_port() {
        request(shared, port, "mon1");
    }
}

/// Removes a monitor on a port of another node; the last one sends `mon0`.
pub(crate) fn remove_monitor(shared: &Arc<Shared>, port: &PortId, id: u64) -> Option<Action> {
    let (action, last) = {
        let mut all = shared
            .net
            .remote_monitors
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let names = all.get_mut(port.node())?;
        let list = names.get_mut(port.name())?;
        let i = list.iter().position(|(m, _)| *m == id)?;
        let (_, action) = list.remove(i);
        let last = list.is_empty();
        if last {
            names.remove(port.name());
        }
        (action, last)
    };
    if last && !port.is_node_port() {
        request(shared, port, "mon0");
    }
    Some(action)
}

/// Takes the monitors on one remote port (it died), or on all ports of a node (`None`).
pub(crate) fn take_monitors(
    shared: &Arc<Shared>,
    node: &NodeId,
    name: Option<&str>,
) -> Vec<Action> {
    let mut all = shared
        .net
        .remote_monitors
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    match name {
        Some(name) => all
            .get_mut(node)
            .and_then(|names| names.remove(name))
            .map(|list| list.into_iter().map(|(_, a)| a).collect())
            .unwrap_or_default(),
        None => all
            .remove(node)
            .map(|names| names.into_values().flatten().map(|(_, a)| a).collect())
            .unwrap_or_default(),
    }
}

/// Sends `["", tag, port name]` to the port's node.
fn request(shared: &Arc<Shared>, port: &PortId, tag: &str) {
    send(
        shared,
        &PortId::node_port(port.node().clone()),
        Message::from([
            aemp_proto::Value::from(tag),
            aemp_proto::Value::from(port.name()),
        ]),
    );
}

/// Sends to a port on another node: onto its connection, or queued until one comes up.
pub(crate) fn send(shared: &Arc<Shared>, port: &PortId, msg: Message) {
    let net = &shared.net;
    let mut links = net.links();
    // The common case: connected. The connection is taken out of the table so the message
    // is encoded without holding the table's lock.
    if let Some(conn) = links.get(port.node()).and_then(|l| l.up.clone()) {
        drop(links);
        conn.push(port, &msg);
        return;
    }
    let node = port.node().clone();
    let link = links.entry(node.clone()).or_default();
    if let Some(conn) = &link.up {
        conn.push(port, &msg);
        return;
    }
    let port = port.clone();
    link.queue.push((port, msg));
    if link.queue.len() == 1 {
        // The first queued message starts the give-up timer (reference §4.11).
        let generation = link.generation;
        let weak = Arc::downgrade(shared);
        let timeout = net.monitor_timeout;
        let node = node.clone();
        shared.runtime.spawn(async move {
            tokio::time::sleep(timeout).await;
            if let Some(shared) = weak.upgrade() {
                give_up(&shared, &node, generation);
            }
        });
    }
    if !link.dialing && !link.addrs.is_empty() {
        link.dialing = true;
        let weak = Arc::downgrade(shared);
        shared.runtime.spawn(dial(weak, node));
    }
}

/// Records where `node` listens (tried first from now on). Messages already waiting for it
/// make this start dialling at once: the address may arrive after them (learned from a seed).
pub(crate) fn add_address(shared: &Arc<Shared>, node: &NodeId, addr: SocketAddr) {
    let mut links = shared.net.links();
    let link = links.entry(node.clone()).or_default();
    link.addrs.retain(|a| *a != addr);
    link.addrs.insert(0, addr);
    if link.up.is_none() && !link.queue.is_empty() && !link.dialing {
        link.dialing = true;
        let weak = Arc::downgrade(shared);
        shared.runtime.spawn(dial(weak, node.clone()));
    }
}

/// Dials the known addresses of `node` until it is connected, round robin, spaced as
/// reference §4.12 describes, giving up with the queue (after `monitor_timeout`).
async fn dial(weak: std::sync::Weak<Shared>, node: NodeId) {
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
            let mut links = shared.net.links();
            let Some(link) = links.get_mut(&node) else {
                return;
            };
            if link.up.is_some() || link.queue.is_empty() || link.addrs.is_empty() {
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
                    if let Err(e) = connection(shared2, stream, Direction::Dial).await {
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
fn attempt_interval(net: &Net, addresses: usize) -> Duration {
    let mut interval = net.connect_interval;
    let spare = net.monitor_timeout.saturating_sub(interval);
    let per_address = spare / u32::try_from(addresses.max(1)).unwrap_or(u32::MAX);
    if per_address < interval {
        interval = per_address;
    }
    interval.max(Duration::from_millis(400))
}

/// Drops what waited for `node` too long and tells its monitors.
fn give_up(shared: &Arc<Shared>, node: &NodeId, generation: u64) {
    let dropped = {
        let mut links = shared.net.links();
        match links.get_mut(node) {
            Some(link) if link.up.is_none() && link.generation == generation => {
                link.generation += 1;
                std::mem::take(&mut link.queue).len()
            }
            _ => return,
        }
    };
    tracing::info!(%node, dropped, "unable to connect; queued messages dropped");
    node_down(shared, node, "unable to connect");
}

/// Tells the dispatcher that `node` is gone: its monitors fire.
fn node_down(shared: &Arc<Shared>, node: &NodeId, text: &str) {
    let reason = Reason::transport_error(node, text);
    let node = node.clone();
    shared.inject(Job::Run(Box::new(move |core| {
        core.node_down(&node, reason)
    })));
}

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

/// Dials `addr`; resolves with the peer's node ID once the connection is up.
pub(crate) async fn connect(shared: Arc<Shared>, addr: SocketAddr) -> Result<NodeId, NetError> {
    let stream = TcpStream::connect(addr).await?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let mut tx = Some(tx);
        let result = connection_with(shared, stream, Direction::Dial, &mut tx).await;
        match tx.take() {
            // Never established: the caller learns why.
            Some(tx) => {
                let _ = tx.send(Err(result.err().unwrap_or(NetError::ClosedDuringHandshake)));
            }
            None => {
                if let Err(e) = result {
                    tracing::info!(error = %e, "connection ended");
                }
            }
        }
    });
    rx.await.unwrap_or(Err(NetError::ClosedDuringHandshake))
}

async fn connection(
    shared: Arc<Shared>,
    stream: TcpStream,
    direction: Direction,
) -> Result<(), NetError> {
    let mut none = None;
    connection_with(shared, stream, direction, &mut none).await
}

/// Who opened a connection.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
enum Direction {
    /// We dialled.
    Dial,
    /// The peer dialled us.
    Accept,
}

/// A handshake past its greeting, registered so crossed dials can be resolved.
struct Attempt {
    id: u64,
    direction: Direction,
    /// Set when a crossing connection won: this one must not come up.
    lost: bool,
}

/// Unregisters a handshake attempt however the connection ends.
struct AttemptGuard {
    shared: Arc<Shared>,
    node: Option<NodeId>,
    id: u64,
}

impl Drop for AttemptGuard {
    fn drop(&mut self) {
        if let Some(node) = &self.node
            && let Some(link) = self.shared.net.links().get_mut(node)
        {
            link.attempts.retain(|a| a.id != self.id);
        }
    }
}

/// What the crossed-dial rule says about a handshake that reached its greeting.
enum Verdict {
    /// Go on.
    Go,
    /// A crossing handshake that wins is under way: wait until it is up (then refuse) or
    /// gone (then go on). Winners never wait, so two sides cannot wait for each other.
    Wait,
    /// Refuse the peer.
    Refuse(&'static str),
}

/// Decides whether a handshake with `node` may go on (reference §4.12, without Perl's
/// "switched connections" flapping). A connected node is refused. When dials cross, both
/// sides keep the connection dialled by the node with the smaller ID, a rule each side
/// computes the same way.
fn approve(shared: &Arc<Shared>, node: &NodeId, id: u64, direction: Direction) -> Verdict {
    let mut links = shared.net.links();
    let link = links.entry(node.clone()).or_default();
    if link.up.is_some() {
        // "a node with that ID already has an established transport" (§4.2).
        return Verdict::Refuse("already connected");
    }
    let ours = shared.id();
    let wins = match direction {
        Direction::Dial => ours < node,
        Direction::Accept => node < ours,
    };
    // Only a handshake in the other direction crosses this one; another in the same
    // direction is a leftover of an earlier attempt that is still being torn down.
    let crossing = |a: &Attempt| a.direction != direction;
    if link.attempts.iter().any(crossing) {
        if !wins {
            return Verdict::Wait;
        }
        for other in link.attempts.iter_mut().filter(|a| crossing(a)) {
            other.lost = true;
        }
    }
    link.attempts.push(Attempt {
        id,
        direction,
        lost: false,
    });
    Verdict::Go
}

/// What [`register`] decided about an established connection.
enum Registration {
    /// It is the node's connection now.
    Up(Arc<Conn>),
    /// It lost to a crossing connection that is still being set up: ask again shortly.
    Wait,
    /// Refuse the peer.
    Refuse(&'static str),
}

/// Makes an established connection the node's connection, unless another one came up
/// meanwhile, or a crossing connection won ([`approve`]).
///
/// A connection that lost is not refused while the winner is still being set up, because the
/// winner may yet fail: the peer refuses it when this connection came up on the peer's side
/// before the winner's greeting arrived there. Refusing both would close every connection
/// between the two nodes (the race that made them flap). So a loser waits: when the winner
/// comes up, the loser is refused ("already connected"); when the winner is gone, the loser
/// is kept, as the peer already keeps it.
fn register(
    shared: &Arc<Shared>,
    peer: &NodeId,
    attempt: &AttemptGuard,
    direction: Direction,
    session: &aemp_proto::handshake::Session,
    dialled: Option<SocketAddr>,
) -> Registration {
    let mut links = shared.net.links();
    let link = links.entry(peer.clone()).or_default();
    if link.up.is_some() {
        return Registration::Refuse("already connected");
    }
    let lost = link.attempts.iter().any(|a| a.id == attempt.id && a.lost);
    if lost && link.attempts.iter().any(|a| a.direction != direction) {
        return Registration::Wait;
    }
    link.attempts.retain(|a| a.id != attempt.id);
    let conn = Arc::new(Conn::new(session.send_framing, link.drained.clone()));
    link.generation += 1;
    for (port, msg) in std::mem::take(&mut link.queue) {
        conn.push(&port, &msg);
    }
    link.up = Some(conn.clone());
    link.dialing = false;
    if let Some(addr) = dialled {
        link.addrs.retain(|a| *a != addr);
        link.addrs.insert(0, addr);
    }
    Registration::Up(conn)
}

/// Tells the dispatcher that `node` is up (`mon_nodes` callbacks).
fn node_up(shared: &Arc<Shared>, node: &NodeId) {
    let node = node.clone();
    shared.inject(Job::Run(Box::new(move |core| core.node_up(&node))));
}

/// Runs one connection: the handshake, then the data phase until it breaks. `up` is told the
/// peer's ID once the connection is established.
async fn connection_with(
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

/// Writes everything queued on the connection, many messages per write.
async fn write_loop(mut wr: tls::Writer, conn: Arc<Conn>, keepalive: Option<Duration>) {
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

/// Reads and dispatches messages until the connection ends.
async fn read_loop(
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

/// What a connection's reader has decoded, waiting for the node's dispatcher.
///
/// A bounded hand-off: the reader appends the jobs of each read and injects one wake-up (a
/// [`Job::Run`] that calls [`Core::take_inbox`](crate::dispatch::Core::take_inbox)) when the
/// inbox goes from empty to non-empty; the dispatcher takes everything at once, swapping in
/// an empty vector, so the vectors are reused rather than allocated per read. While the
/// dispatcher is [`INBOX_JOBS`] jobs or [`INBOX_BYTES`] bytes behind, the reader stops
/// reading, so TCP slows the sender down instead of memory growing without bound.
#[derive(Default)]
pub(crate) struct Inbox {
    state: Mutex<InboxState>,
    /// Signalled when the dispatcher has taken the jobs.
    space: Notify,
    /// An empty vector the dispatcher swaps in when it takes the jobs, so the two vectors'
    /// allocations are reused. Only the dispatcher locks it.
    spare: Mutex<Vec<Job>>,
}

#[derive(Default)]
struct InboxState {
    jobs: Vec<Job>,
    /// Wire bytes of the messages in `jobs`.
    bytes: usize,
    /// A wake-up for this inbox is on its way to the dispatcher (set iff `jobs` is not
    /// empty), so a later hand-over need not send another.
    scheduled: bool,
}

impl Inbox {
    fn state(&self) -> std::sync::MutexGuard<'_, InboxState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Moves `jobs` (the messages of `bytes` wire bytes) into the inbox, waiting while it is
    /// full; wakes the dispatcher if the inbox was empty.
    async fn hand_over(
        self: &Arc<Self>,
        shared: &Arc<Shared>,
        jobs: &mut Vec<Job>,
        bytes: usize,
    ) -> Result<(), NetError> {
        loop {
            let wake = {
                let mut state = self.state();
                if state.jobs.len() < INBOX_JOBS && state.bytes < INBOX_BYTES {
                    state.jobs.append(jobs);
                    state.bytes += bytes;
                    Some(!std::mem::replace(&mut state.scheduled, true))
                } else {
                    None
                }
            };
            match wake {
                Some(true) => {
                    let inbox = self.clone();
                    shared.inject(Job::Run(Box::new(move |core| core.take_inbox(&inbox))));
                    return Ok(());
                }
                Some(false) => return Ok(()),
                // Full: a wake-up is pending, so the dispatcher will make room, unless it
                // has stopped.
                None => tokio::select! {
                    () = self.space.notified() => {}
                    () = shared.dispatcher_stopped() => return Err(NetError::ClosedLocally),
                },
            }
        }
    }

    /// Gives every waiting job to `push`, in order (the dispatcher's side).
    pub(crate) fn take(&self, push: impl FnMut(Job)) {
        let mut jobs = self.spare.lock().unwrap_or_else(PoisonError::into_inner);
        {
            let mut state = self.state();
            std::mem::swap(&mut state.jobs, &mut jobs);
            state.bytes = 0;
            state.scheduled = false;
        }
        self.space.notify_one();
        jobs.drain(..).for_each(push);
    }
}

/// Turns a received frame into dispatcher work. The source node of every inbound message is
/// the connection's node (reference §10, the 1.28 fix).
fn inbound(shared: &Arc<Shared>, peer: &NodeId, frame: Frame) -> Option<Job> {
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

/// A reader waits while this many of its jobs wait for the dispatcher.
const INBOX_JOBS: usize = 16 * 1024;

/// A reader waits while messages of this many wire bytes wait for the dispatcher.
const INBOX_BYTES: usize = 4 << 20;

/// Room kept free in a connection's read buffer before each read.
const READ_SPARE: usize = 16 * 1024;

/// How much the read buffer grows by when it runs short.
const READ_CHUNK: usize = 64 * 1024;

/// A fast hasher for node IDs (short strings, not attacker-chosen in a way that matters:
/// only authenticated peers and our own code create links), eight bytes per step.
#[derive(Default)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut word = [0_u8; 8];
            word.copy_from_slice(c);
            self.add(u64::from_le_bytes(word));
        }
        for &b in chunks.remainder() {
            self.add(u64::from(b));
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }
}

impl IdHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

/// The capacity a connection's write buffer starts with.
const WRITE_CHUNK: usize = 64 * 1024;

/// A write buffer larger than this is given back when the connection has been idle for
/// [`SHRINK_AFTER`].
const MAX_IDLE_BUFFER: usize = 4 << 20;

/// How long a connection must be idle before its grown write buffers are given back.
const SHRINK_AFTER: Duration = Duration::from_millis(500);
