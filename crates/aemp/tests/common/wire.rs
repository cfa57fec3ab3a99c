//! A scripted peer on a raw TCP socket, for the network tests (included with `#[path]`).
//!
//! [`Wire`] reads handshake lines and data-phase frames from a socket with timeouts, keeps a
//! log of every frame received, and writes raw bytes. [`perl_handshake`] plays the handshake
//! exactly as a Perl AnyEvent::MP 1.30 node does (checking the aemp node's side of it);
//! [`proto_handshake`] plays it with `aemp_proto`'s own state machine.

#![allow(
    dead_code,
    reason = "each test file uses a different subset of these helpers"
)]
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failure is a test failure"
)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use aemp::{Message, Node, NodeId, Value};
use aemp_proto::auth::{AuthMethod, Secret, Transcript};
use aemp_proto::framing::{Frame, FrameDecoder, Framing};
use aemp_proto::greeting::{AuthLine, Greeting, Nonce};
use aemp_proto::handshake::{Event, Handshake, HandshakeConfig, Session};
use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long a test waits for something that must happen. Generous: the machine is shared.
pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// The shared secret of the captured Perl sessions.
pub(crate) const SECRET: &str = "aemp-harness-test-secret";

/// Perl's default auth and framing lists, as a Perl 1.30 node advertises them.
pub(crate) const PERL_LISTS: &str =
    "tls_md6_64_256,hmac_md6_64_256,tls_anon,cleartext;json,storable";

/// A unique suffix for node IDs within this test process.
pub(crate) fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Starts a listening node on 127.0.0.1 with the capture secret.
pub(crate) fn listening_node(timeout: Duration) -> Node {
    Node::builder()
        .id(unique("rust"))
        .secret(SECRET)
        .monitor_timeout(timeout)
        .handshake_timeout(timeout)
        .bind("127.0.0.1:0".parse::<SocketAddr>().unwrap())
        .start()
        .unwrap()
}

/// A nonce line from 66 random bytes, as Perl makes it.
pub(crate) fn random_nonce() -> Nonce {
    let mut bytes = [0_u8; 66];
    getrandom::fill(&mut bytes).unwrap();
    Nonce::from_random(&bytes)
}

/// One end of a scripted connection.
pub(crate) struct Wire {
    pub(crate) stream: TcpStream,
    /// Received bytes not consumed yet.
    pub(crate) buf: BytesMut,
    decoder: FrameDecoder,
    /// Every frame received so far, in order.
    pub(crate) log: Vec<Frame>,
    /// Frames received but not yet taken by [`next_frame`](Self::next_frame) or
    /// [`frame_where`](Self::frame_where).
    pending: std::collections::VecDeque<Frame>,
}

impl Wire {
    pub(crate) fn new(stream: TcpStream, framing: Framing) -> Self {
        stream.set_nodelay(true).unwrap();
        Self {
            stream,
            buf: BytesMut::new(),
            decoder: FrameDecoder::new(framing, 256 << 20),
            log: Vec::new(),
            pending: std::collections::VecDeque::new(),
        }
    }

    /// Switches the data-phase framing the peer is read in.
    pub(crate) fn set_framing(&mut self, framing: Framing) {
        self.decoder = FrameDecoder::new(framing, 256 << 20);
    }

    /// Reads more bytes; panics on EOF, error or timeout.
    async fn fill(&mut self, what: &str) {
        match tokio::time::timeout(WAIT, self.stream.read_buf(&mut self.buf)).await {
            Ok(Ok(0)) => panic!("connection closed while waiting for {what}"),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => panic!("read error while waiting for {what}: {e}"),
            Err(_) => panic!("timed out waiting for {what}"),
        }
    }

    /// One LF-terminated handshake line, without the LF.
    pub(crate) async fn line(&mut self) -> String {
        loop {
            if let Some(end) = self.buf.iter().position(|&b| b == b'\n') {
                let line = self.buf.split_to(end + 1);
                return String::from_utf8(line[..end].to_vec()).unwrap();
            }
            assert!(self.buf.len() < 4096, "handshake line over 4 KiB");
            self.fill("a handshake line").await;
        }
    }

    /// The next data-phase frame.
    pub(crate) async fn next_frame(&mut self) -> Frame {
        if let Some(f) = self.pending.pop_front() {
            return f;
        }
        loop {
            if let Some(frame) = self.decoder.decode(&mut self.buf).unwrap() {
                self.log.push(frame.clone());
                return frame;
            }
            self.fill("a frame").await;
        }
    }

    /// The first frame (not taken yet) for which `pred` holds; others stay pending in order.
    pub(crate) async fn frame_where(&mut self, mut pred: impl FnMut(&Frame) -> bool) -> Frame {
        if let Some(i) = self.pending.iter().position(&mut pred) {
            return self.pending.remove(i).unwrap();
        }
        loop {
            let frame = loop {
                if let Some(frame) = self.decoder.decode(&mut self.buf).unwrap() {
                    self.log.push(frame.clone());
                    break frame;
                }
                self.fill("a matching frame").await;
            };
            if pred(&frame) {
                return frame;
            }
            self.pending.push_back(frame);
        }
    }

    /// The first frame addressed to the port named `name`.
    pub(crate) async fn frame_to(&mut self, name: &str) -> Frame {
        self.frame_where(|f| f.port == name).await
    }

    /// Frames received but not taken yet.
    pub(crate) fn pending(&self) -> impl Iterator<Item = &Frame> {
        self.pending.iter()
    }

    /// Writes raw bytes.
    pub(crate) async fn send(&mut self, bytes: impl AsRef<[u8]>) {
        self.stream.write_all(bytes.as_ref()).await.unwrap();
    }

    /// Writes a text in two writes, split in the middle (mid-text, as TCP may deliver it).
    pub(crate) async fn send_split(&mut self, text: &str) {
        let bytes = text.as_bytes();
        let mid = bytes.len() / 2;
        self.send(&bytes[..mid]).await;
        self.stream.flush().await.unwrap();
        tokio::task::yield_now().await;
        self.send(&bytes[mid..]).await;
    }

    /// Waits until the other side closes the connection (EOF or reset), discarding anything
    /// it sends meanwhile. Panics if that does not happen within `within`.
    pub(crate) async fn expect_closed(&mut self, within: Duration) {
        expect_closed(&mut self.stream, within).await;
    }
}

/// Waits until the other side of `stream` closes it (EOF or reset), discarding what it sends.
/// Returns how long that took.
pub(crate) async fn expect_closed(stream: &mut TcpStream, within: Duration) -> Duration {
    let start = Instant::now();
    let mut scratch = vec![0_u8; 64 * 1024];
    loop {
        let left = within.saturating_sub(start.elapsed());
        match tokio::time::timeout(left, stream.read(&mut scratch)).await {
            Ok(Ok(0) | Err(_)) => return start.elapsed(),
            Ok(Ok(_)) => {}
            Err(_) => panic!("the aemp node did not close the connection within {within:?}"),
        }
    }
}

/// The aemp node's side of a handshake as a Perl peer saw it.
pub(crate) struct PerlView {
    pub(crate) greeting: Greeting,
    pub(crate) nonce: String,
    pub(crate) auth: AuthLine,
}

/// Plays a Perl 1.30 node's handshake on `wire` (either side: the protocol is symmetric):
/// writes `line1` and an 88-character nonce at once, reads the aemp node's two lines, sends
/// the `hmac_md6_64_256` auth line over the real transcript choosing `json` as Perl does,
/// then reads and verifies the aemp node's auth line.
pub(crate) async fn perl_handshake(wire: &mut Wire, line1: &str, secret: &str) -> PerlView {
    let nonce = random_nonce();
    assert_eq!(nonce.as_str().len(), 88);
    wire.send(format!("{line1}\n{}\n", nonce.as_str())).await;
    let peer1 = wire.line().await;
    let peer2 = wire.line().await;
    let greeting: Greeting = peer1.parse().unwrap();
    assert_eq!(greeting.protocol, "aemp", "{peer1}");
    assert!(greeting.is_version_1(), "{peer1}");
    assert!(
        !peer2.is_empty() && !peer2.contains('\r'),
        "nonce {peer2:?}"
    );
    // Perl walks the aemp node's framing list and takes the first one in its own
    // `framing_format` (json,storable); the aemp node must offer json.
    let our_framing = greeting
        .framings
        .iter()
        .find(|f| *f == "json" || *f == "storable")
        .unwrap_or_else(|| panic!("aemp offers no framing Perl speaks: {peer1}"));
    assert_eq!(our_framing, "json", "aemp must list json before storable");
    // Perl walks the aemp node's auth list: the first entry in its offer (tls_md6_64_256,
    // hmac_md6_64_256), `tls_` ones only when TLS is active (it is not here, §4.6).
    let method = greeting
        .auth
        .iter()
        .find(|m| *m == "hmac_md6_64_256")
        .unwrap_or_else(|| panic!("no auth method Perl can use without TLS: {peer1}"));
    assert_eq!(method, "hmac_md6_64_256");
    assert!(
        greeting
            .auth
            .iter()
            .all(|m| m != "cleartext" && m != "tls_anon"),
        "aemp accepts weak methods by default: {peer1}"
    );
    let transcript = Transcript::new(line1, nonce.as_str(), &peer1, &peer2);
    let secret = Secret::new(secret);
    let token = AuthMethod::HmacMd6
        .token(transcript.own(), Some(&secret), false)
        .unwrap();
    wire.send(format!("hmac_md6_64_256;{token};json\n")).await;
    let auth: AuthLine = wire.line().await.parse().unwrap();
    assert_eq!(auth.method, "hmac_md6_64_256");
    assert!(
        AuthMethod::HmacMd6.verify(&auth.token, transcript.peer(), Some(&secret), false),
        "the aemp node's token does not verify"
    );
    // Perl lists json,storable: the aemp node must choose json (it never sends storable).
    assert_eq!(auth.framing, "json");
    PerlView {
        greeting,
        nonce: peer2,
        auth,
    }
}

/// A Perl 1.30 greeting line 1 for node `id`.
pub(crate) fn perl_line1(id: &str, peeraddr: SocketAddr) -> String {
    format!("aemp;1;{id};{PERL_LISTS};peeraddr={peeraddr};provider=AE-1.30")
}

/// Plays a handshake with `aemp_proto`'s state machine as node `id` (secret `secret`,
/// framings `framings`), as the peer of the aemp node on `stream`. Returns the session and the
/// data-phase bytes already received.
pub(crate) async fn proto_handshake(
    stream: &mut TcpStream,
    id: &str,
    secret: &str,
    framings: Vec<Framing>,
) -> Result<(Session, BytesMut), String> {
    let mut config = HandshakeConfig::new(id.parse::<NodeId>().unwrap());
    config.secret = Some(Secret::new(secret));
    config.framings = framings;
    config.timeout = WAIT;
    let mut hs = Handshake::new(
        &config,
        random_nonce(),
        stream.peer_addr().ok(),
        Instant::now(),
    );
    let mut buf = vec![0_u8; 8192];
    loop {
        while let Some(bytes) = hs.poll_transmit() {
            stream.write_all(&bytes).await.map_err(|e| e.to_string())?;
        }
        let mut session = None;
        while let Some(event) = hs.poll_event() {
            match event {
                Event::PeerGreeting { .. } => {
                    hs.accept_peer(Instant::now()).map_err(|e| e.to_string())?
                }
                Event::Established(s) => session = Some(*s),
                other => return Err(format!("unexpected event {other:?}")),
            }
        }
        while let Some(bytes) = hs.poll_transmit() {
            stream.write_all(&bytes).await.map_err(|e| e.to_string())?;
        }
        if let Some(session) = session {
            return Ok((session, hs.take_buffered()));
        }
        let n = tokio::time::timeout(WAIT, stream.read(&mut buf))
            .await
            .map_err(|_| "handshake timed out".to_owned())?
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("closed during the handshake".to_owned());
        }
        hs.handle_input(&buf[..n], Instant::now())
            .map_err(|e| e.to_string())?;
    }
}

/// Parses a JSON array text into its values (for expected messages).
pub(crate) fn json(text: &str) -> Vec<Value> {
    match aemp_proto::framing::json::decode_value(text.as_bytes()).unwrap() {
        Value::Array(v) => v,
        other => panic!("not an array: {other:?}"),
    }
}

/// A message from a JSON array text.
pub(crate) fn json_msg(text: &str) -> Message {
    Message::new(json(text))
}

/// A local send/receive round trip on `node` works.
pub(crate) async fn node_still_works(node: &Node) {
    let mut mb = node.mailbox();
    node.send(mb.port(), aemp::msg!["still", "alive"]);
    let m = mb.recv_timeout(WAIT).await.unwrap();
    assert_eq!(m, aemp::msg!["still", "alive"]);
}

/// Reads everything the other side sends until it closes the connection (EOF or reset);
/// panics if that takes longer than `within`. Returns the bytes and how long it took.
pub(crate) async fn collect_until_closed(
    stream: &mut TcpStream,
    within: Duration,
) -> (Vec<u8>, Duration) {
    let start = Instant::now();
    let mut all = Vec::new();
    let mut scratch = vec![0_u8; 64 * 1024];
    loop {
        let left = within.saturating_sub(start.elapsed());
        match tokio::time::timeout(left, stream.read(&mut scratch)).await {
            Ok(Ok(0) | Err(_)) => return (all, start.elapsed()),
            Ok(Ok(n)) => all.extend_from_slice(&scratch[..n]),
            Err(_) => panic!("the aemp node did not close the connection within {within:?}"),
        }
    }
}

/// The resident set size of this process, in bytes.
pub(crate) fn rss() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}
