//! The handshake state machine: greeting, nonce, optional TLS, authentication (reference
//! §4.1–4.8).
//!
//! The machine is symmetric: the dialling and the accepting side run the same code, and
//! neither waits for the other before sending its greeting. It performs no I/O and reads no
//! clock: bytes and the current time go in, bytes and events come out.
//!
//! ```text
//!   new ──► ExpectGreeting ──► ExpectNonce ──► AwaitApproval ──accept_peer──┬──► ExpectAuth ──► Established
//!                                                     │                     │          ▲
//!                                               refuse_peer             (both want TLS)│
//!                                                     ▼                     └► ExpectTls ─tls_established
//!                                                   Failed  ◄── any error, including the timeout
//! ```
//!
//! # Driving it
//!
//! 1. Create it with [`Handshake::new`]; it queues our two greeting lines at once.
//! 2. Loop: write everything [`poll_transmit`](Handshake::poll_transmit) returns, handle every
//!    [`poll_event`](Handshake::poll_event), wait for input or for
//!    [`poll_timeout`](Handshake::poll_timeout), then call
//!    [`handle_input`](Handshake::handle_input) or [`handle_timeout`](Handshake::handle_timeout).
//! 3. On [`Event::PeerGreeting`] decide whether to talk to that node (for instance, refuse a
//!    node that is already connected) and call [`accept_peer`](Handshake::accept_peer) or
//!    [`refuse_peer`](Handshake::refuse_peer).
//! 4. On [`Event::StartTls`] take the buffered bytes with
//!    [`take_buffered`](Handshake::take_buffered) (they are the start of the TLS stream), run
//!    TLS in the given role, call [`tls_established`](Handshake::tls_established), and from then
//!    on write transmits through TLS and feed decrypted bytes.
//! 5. On [`Event::Established`] take the buffered bytes once more: they are the first bytes
//!    of the data phase.
//!
//! ```
//! use std::time::Instant;
//! use aemp_proto::auth::Secret;
//! use aemp_proto::greeting::Nonce;
//! use aemp_proto::handshake::{Event, Handshake, HandshakeConfig};
//!
//! let now = Instant::now();
//! let mut config_a = HandshakeConfig::new("a".parse()?);
//! config_a.secret = Some(Secret::new("s3cret"));
//! let mut config_b = HandshakeConfig::new("b".parse()?);
//! config_b.secret = Some(Secret::new("s3cret"));
//! let mut a = Handshake::new(&config_a, Nonce::from_random(&[1; 66]), None, now);
//! let mut b = Handshake::new(&config_b, Nonce::from_random(&[2; 66]), None, now);
//!
//! let mut established = 0;
//! while established < 2 {
//!     while let Some(bytes) = a.poll_transmit() {
//!         b.handle_input(&bytes, now)?;
//!     }
//!     while let Some(bytes) = b.poll_transmit() {
//!         a.handle_input(&bytes, now)?;
//!     }
//!     for side in [&mut a, &mut b] {
//!         while let Some(event) = side.poll_event() {
//!             match event {
//!                 Event::PeerGreeting { .. } => side.accept_peer(now)?,
//!                 Event::Established(session) => {
//!                     established += 1;
//!                     assert_eq!(session.send_framing.name(), "cbor");
//!                 }
//!                 other => unreachable!("no certificates configured: {other:?}"),
//!             }
//!         }
//!     }
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::auth::{AuthMethod, Secret, Transcript, choose_method};
use crate::framing::Framing;
use crate::greeting::{AuthLine, Greeting, GreetingError, Nonce};
use crate::id::NodeId;

/// What one node brings to every handshake: identity, credentials, preferences.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct HandshakeConfig {
    /// Our node ID.
    pub node: NodeId,
    /// The shared secret, if any. A node with neither secret nor TLS can talk to nobody.
    pub secret: Option<Secret>,
    /// Whether we have a TLS certificate (then our greeting carries `tls=1.0`).
    pub tls: TlsMode,
    /// Methods we may send, in no particular order (we follow the peer's preference).
    /// Default: `tls_md6_64_256`, `hmac_md6_64_256`.
    pub auth_offer: Vec<AuthMethod>,
    /// Methods we accept from the peer, advertised in our greeting in this order (methods that
    /// need TLS are moved first when we have a certificate, see reference §4.6). Default:
    /// `tls_md6_64_256`, `hmac_md6_64_256`; `tls_anon` and `cleartext` only when added.
    pub auth_accept: Vec<AuthMethod>,
    /// Framings we can receive and send, in our order of preference. Default: `cbor`, `json`.
    pub framings: Vec<Framing>,
    /// Extra `key=value` pairs for our greeting. Default: `provider=aemp-<version>`.
    pairs: Vec<(String, String)>,
    /// How long the whole handshake may take (Perl's `monitor_timeout`, default 30 s).
    pub timeout: Duration,
}

impl HandshakeConfig {
    /// A configuration with the defaults listed on each field.
    pub fn new(node: NodeId) -> Self {
        Self {
            node,
            secret: None,
            tls: TlsMode::Disabled,
            auth_offer: vec![AuthMethod::TlsMd6, AuthMethod::HmacMd6],
            auth_accept: vec![AuthMethod::TlsMd6, AuthMethod::HmacMd6],
            framings: vec![Framing::Cbor, Framing::Json],
            pairs: vec![(
                "provider".to_owned(),
                concat!("aemp-", env!("CARGO_PKG_VERSION")).to_owned(),
            )],
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Adds a `key=value` pair to our greeting.
    ///
    /// # Errors
    ///
    /// Returns [`GreetingError::ForbiddenChar`] if the key or value contains `;`, `=` (key
    /// only) or a control character, which would break the greeting line.
    pub fn add_pair(&mut self, key: &str, value: &str) -> Result<(), GreetingError> {
        let bad = |s: &str, extra: char| {
            s.chars()
                .find(|&c| c == ';' || c == extra || c.is_control())
        };
        if let Some(c) = bad(key, '=').or_else(|| bad(value, ';')) {
            return Err(GreetingError::ForbiddenChar(c));
        }
        self.pairs.push((key.to_owned(), value.to_owned()));
        Ok(())
    }

    /// Our greeting line 1 for a connection whose peer is at `peer_addr`.
    fn greeting(&self, peer_addr: Option<SocketAddr>) -> Greeting {
        let mut auth: Vec<AuthMethod> = self.auth_accept.clone();
        if self.tls == TlsMode::Enabled {
            // "A Rust node that has a cert must therefore advertise tls_md6_64_256 (and
            // optionally tls_anon) before hmac_md6_64_256" (reference §4.6).
            auth.sort_by_key(|m| !m.needs_tls());
        }
        let mut pairs: Vec<(String, Option<String>)> = self
            .pairs
            .iter()
            .map(|(k, v)| (k.clone(), Some(v.clone())))
            .collect();
        if self.tls == TlsMode::Enabled {
            pairs.push(("tls".to_owned(), Some("1.0".to_owned())));
        }
        if let Some(addr) = peer_addr {
            pairs.push(("peeraddr".to_owned(), Some(addr.to_string())));
        }
        Greeting {
            protocol: PROTOCOL.to_owned(),
            version: "1".to_owned(),
            node: self.node.clone(),
            auth: auth.iter().map(|m| m.name().to_owned()).collect(),
            framings: self.framings.iter().map(|f| f.name().to_owned()).collect(),
            pairs,
        }
    }
}

/// Whether this node has a TLS certificate.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum TlsMode {
    /// No certificate: TLS is never used.
    Disabled,
    /// A certificate is configured: TLS is used with every peer that has one too.
    Enabled,
}

/// Which side of the TLS handshake we play, decided from the nonces (reference §4.5).
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum TlsRole {
    /// Our nonce line is byte-wise lower than the peer's: we connect as the TLS client.
    Client,
    /// Our nonce line is higher: we accept as the TLS server.
    Server,
}

/// Something the runtime must act on.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Event {
    /// The peer's greeting passed every check. Call [`Handshake::accept_peer`] or
    /// [`Handshake::refuse_peer`].
    PeerGreeting {
        /// The node ID the peer claims.
        node: NodeId,
    },
    /// Start TLS in this role now; the buffered bytes belong to the TLS stream.
    StartTls {
        /// Our role.
        role: TlsRole,
    },
    /// Both sides are authenticated; the data phase starts.
    Established(Box<Session>),
}

/// The result of a successful handshake.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Session {
    /// The peer's node ID, from its greeting.
    pub peer: NodeId,
    /// The method the peer authenticated with.
    pub auth: AuthMethod,
    /// The framing we send in.
    pub send_framing: Framing,
    /// The framing the peer sends in.
    pub recv_framing: Framing,
    /// Whether the connection runs inside TLS.
    pub tls: TlsMode,
    /// The peer's whole greeting (for its `key=value` pairs).
    pub peer_greeting: Greeting,
}

/// Drives one side of the greeting and authentication phases.
///
/// Method groups, in polling order: input ([`handle_input`](Self::handle_input),
/// [`handle_timeout`](Self::handle_timeout)), decisions ([`accept_peer`](Self::accept_peer),
/// [`refuse_peer`](Self::refuse_peer), [`tls_established`](Self::tls_established)), output
/// ([`poll_transmit`](Self::poll_transmit), [`poll_event`](Self::poll_event),
/// [`poll_timeout`](Self::poll_timeout)), and [`take_buffered`](Self::take_buffered). After an
/// error every method that returns a `Result` returns that error again.
#[derive(Debug)]
pub struct Handshake {
    /// Our identity and credentials, copied from the config.
    node: NodeId,
    secret: Option<Secret>,
    tls: TlsMode,
    auth_offer: Vec<AuthMethod>,
    auth_accept: Vec<AuthMethod>,
    framings: Vec<Framing>,
    /// Our two greeting lines exactly as sent: they enter the transcripts and the echo check.
    own_line1: String,
    own_nonce: Nonce,
    state: State,
    /// Received bytes not consumed yet.
    buf: BytesMut,
    transmit: VecDeque<Bytes>,
    events: VecDeque<Event>,
    /// The handshake fails if it is not complete by then.
    deadline: Instant,
    /// The error that ended the handshake, returned again by later calls.
    error: Option<HandshakeError>,
}

#[derive(Debug)]
enum State {
    ExpectGreeting,
    ExpectNonce { greeting: Greeting, line1: String },
    AwaitApproval(Box<Peer>),
    ExpectTls(Box<Peer>),
    ExpectAuth(Box<Peer>),
    Established,
    Failed,
}

/// What we know about the peer once both of its greeting lines are in.
#[derive(Debug)]
struct Peer {
    greeting: Greeting,
    transcript: Transcript,
    role: TlsRole,
    tls_active: bool,
    send_framing: Option<Framing>,
}

impl Handshake {
    /// Starts a handshake and queues our greeting lines for transmission.
    ///
    /// `nonce` must come from a good random source ([`Nonce::from_random`]); `peer_addr` is
    /// announced as `peeraddr`, as Perl does (Perl uses it for seed bookkeeping).
    pub fn new(
        config: &HandshakeConfig,
        nonce: Nonce,
        peer_addr: Option<SocketAddr>,
        now: Instant,
    ) -> Self {
        Self::with_greeting(config, &config.greeting(peer_addr), nonce, now)
    }

    /// Starts a handshake that sends exactly `greeting` as line 1 instead of the one built
    /// from `config`; the rest of `config` (secret, methods, framings) still decides. Meant
    /// for replaying recorded sessions and for tests.
    pub fn with_greeting(
        config: &HandshakeConfig,
        greeting: &Greeting,
        nonce: Nonce,
        now: Instant,
    ) -> Self {
        let own_line1 = greeting.to_string();
        let mut hello = BytesMut::with_capacity(own_line1.len() + nonce.as_str().len() + 2);
        hello.extend_from_slice(own_line1.as_bytes());
        hello.extend_from_slice(b"\n");
        hello.extend_from_slice(nonce.as_str().as_bytes());
        hello.extend_from_slice(b"\n");
        Self {
            node: config.node.clone(),
            secret: config.secret.clone(),
            tls: config.tls,
            auth_offer: config.auth_offer.clone(),
            auth_accept: config.auth_accept.clone(),
            framings: config.framings.clone(),
            own_line1,
            own_nonce: nonce,
            state: State::ExpectGreeting,
            buf: BytesMut::new(),
            transmit: VecDeque::from([hello.freeze()]),
            events: VecDeque::new(),
            deadline: now + config.timeout,
            error: None,
        }
    }

    /// Feeds bytes received from the peer (decrypted bytes once TLS runs).
    ///
    /// Bytes that arrive while the machine waits for a decision or for TLS, or after the
    /// handshake, are buffered; [`take_buffered`](Self::take_buffered) returns them.
    ///
    /// # Errors
    ///
    /// Any [`HandshakeError`]; the connection must then be closed.
    pub fn handle_input(&mut self, bytes: &[u8], now: Instant) -> Result<(), HandshakeError> {
        self.check(now)?;
        self.buf.extend_from_slice(bytes);
        let result = self.advance();
        self.record(result)
    }

    /// Tells the machine the time; fails the handshake once its deadline has passed.
    ///
    /// # Errors
    ///
    /// [`HandshakeError::Timeout`] when the deadline has passed, or an earlier error.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), HandshakeError> {
        self.check(now)
    }

    /// Accepts the peer announced by [`Event::PeerGreeting`] and continues the handshake.
    ///
    /// # Errors
    ///
    /// [`HandshakeError::NoCredentials`], [`HandshakeError::NoCommonAuth`] or
    /// [`HandshakeError::NoCommonFraming`] if we cannot authenticate to this peer;
    /// [`HandshakeError::InvalidState`] if no greeting is waiting for a decision.
    pub fn accept_peer(&mut self, now: Instant) -> Result<(), HandshakeError> {
        self.check(now)?;
        let State::AwaitApproval(mut peer) = std::mem::replace(&mut self.state, State::Failed)
        else {
            return self.misuse("accept_peer");
        };
        let result = self.choose(&mut peer).and_then(|()| {
            if peer.tls_active {
                self.events.push_back(Event::StartTls { role: peer.role });
                self.state = State::ExpectTls(peer);
                Ok(())
            } else {
                self.send_auth(peer)
            }
        });
        self.record(result)
    }

    /// Refuses the peer announced by [`Event::PeerGreeting`] (for example because that node
    /// is already connected). The handshake fails with [`HandshakeError::Refused`].
    pub fn refuse_peer(&mut self, reason: &str) -> HandshakeError {
        let error = HandshakeError::Refused {
            reason: reason.to_owned(),
        };
        self.state = State::Failed;
        self.error.get_or_insert(error).clone()
    }

    /// Reports that the TLS handshake requested by [`Event::StartTls`] has completed; our auth
    /// line is then queued (to be written through TLS).
    ///
    /// # Errors
    ///
    /// [`HandshakeError::InvalidState`] if TLS was not requested, or an error from bytes
    /// that were buffered meanwhile.
    pub fn tls_established(&mut self, now: Instant) -> Result<(), HandshakeError> {
        self.check(now)?;
        let State::ExpectTls(peer) = std::mem::replace(&mut self.state, State::Failed) else {
            return self.misuse("tls_established");
        };
        let result = self.send_auth(peer);
        self.record(result)
    }

    /// Bytes to send to the peer, in order.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.transmit.pop_front()
    }

    /// The next event for the runtime.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next; `None` once the
    /// handshake has finished either way.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Established | State::Failed => None,
            _ => Some(self.deadline),
        }
    }

    /// Takes the received bytes that the handshake has not consumed: the start of the TLS
    /// stream after [`Event::StartTls`], or the first data-phase bytes after
    /// [`Event::Established`].
    pub fn take_buffered(&mut self) -> BytesMut {
        std::mem::take(&mut self.buf)
    }

    /// `true` once both sides are authenticated.
    pub fn is_established(&self) -> bool {
        matches!(self.state, State::Established)
    }

    /// Our greeting line 1 as sent.
    pub fn own_greeting(&self) -> &str {
        &self.own_line1
    }

    fn check(&mut self, now: Instant) -> Result<(), HandshakeError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        if now >= self.deadline && !self.is_established() {
            return self.record(Err(HandshakeError::Timeout));
        }
        Ok(())
    }

    fn record(&mut self, result: Result<(), HandshakeError>) -> Result<(), HandshakeError> {
        if let Err(e) = &result {
            self.state = State::Failed;
            self.error = Some(e.clone());
        }
        result
    }

    fn misuse(&mut self, operation: &'static str) -> Result<(), HandshakeError> {
        self.record(Err(HandshakeError::InvalidState { operation }))
    }

    /// Consumes as many complete lines as the current state wants.
    fn advance(&mut self) -> Result<(), HandshakeError> {
        loop {
            match std::mem::replace(&mut self.state, State::Failed) {
                State::ExpectGreeting => {
                    let Some(line) = self.next_line()? else {
                        self.state = State::ExpectGreeting;
                        return Ok(());
                    };
                    let greeting = self.check_greeting(&line)?;
                    self.state = State::ExpectNonce {
                        greeting,
                        line1: line,
                    };
                }
                State::ExpectNonce { greeting, line1 } => {
                    let Some(line) = self.next_line()? else {
                        self.state = State::ExpectNonce { greeting, line1 };
                        return Ok(());
                    };
                    let peer = self.check_nonce(greeting, &line1, &line)?;
                    self.events.push_back(Event::PeerGreeting {
                        node: peer.greeting.node.clone(),
                    });
                    self.state = State::AwaitApproval(Box::new(peer));
                    return Ok(());
                }
                State::ExpectAuth(peer) => {
                    let Some(line) = self.next_line()? else {
                        self.state = State::ExpectAuth(peer);
                        return Ok(());
                    };
                    let session = self.check_auth(*peer, &line)?;
                    self.events.push_back(Event::Established(Box::new(session)));
                    self.state = State::Established;
                    return Ok(());
                }
                // Waiting for the runtime, or done: leave the bytes buffered.
                other => {
                    self.state = other;
                    return Ok(());
                }
            }
        }
    }

    /// Takes one LF-terminated line (CR LF accepted) from the buffer, if complete.
    fn next_line(&mut self) -> Result<Option<String>, HandshakeError> {
        let window = &self.buf[..self.buf.len().min(MAX_LINE + 1)];
        let Some(end) = window.iter().position(|&b| b == b'\n') else {
            // "Until authentication completes, Perl's read buffer is capped at 4096 bytes"
            // (reference §4.4): a longer line is an error, not something to buffer.
            if self.buf.len() > MAX_LINE {
                return Err(HandshakeError::LineTooLong { max: MAX_LINE });
            }
            return Ok(None);
        };
        let mut line = self.buf.split_to(end + 1);
        line.truncate(end);
        if line.last() == Some(&b'\r') {
            line.truncate(end - 1);
        }
        let line = String::from_utf8(line.to_vec()).map_err(|_| HandshakeError::NotUtf8)?;
        Ok(Some(line))
    }

    fn check_greeting(&self, line: &str) -> Result<Greeting, HandshakeError> {
        let greeting: Greeting = line.parse()?;
        // "Otherwise must be our protocol or `aemp`, else error" (reference §4.2).
        if greeting.protocol != PROTOCOL {
            return Err(if greeting.protocol.starts_with("aemp-") {
                HandshakeError::UnsupportedProtocol {
                    got: greeting.protocol,
                }
            } else {
                HandshakeError::WrongProtocol {
                    got: greeting.protocol,
                }
            });
        }
        // "numeric compare `!= 1` → version mismatch" (reference §4.2).
        if !greeting.is_version_1() {
            return Err(HandshakeError::VersionMismatch {
                got: greeting.version,
            });
        }
        Ok(greeting)
    }

    fn check_nonce(
        &self,
        greeting: Greeting,
        line1: &str,
        line2: &str,
    ) -> Result<Peer, HandshakeError> {
        let nonce = Nonce::from_line(line2)?;
        // "if own_line1 LF own_line2 equals peer_line1 LF peer_line2, abort" (reference §4.3).
        if line1 == self.own_line1 && nonce == self.own_nonce {
            return Err(HandshakeError::EchoAttack);
        }
        // "equals own ID → I refuse to talk to myself" (reference §4.2). Checked after the
        // echo check (Perl checks it first) so that an echo is reported as what it is.
        if greeting.node == self.node {
            return Err(HandshakeError::SelfConnection);
        }
        // "the side whose nonce line is byte-wise lower is the TLS client" (reference §4.5).
        let role = match self.own_nonce.as_str().cmp(nonce.as_str()) {
            std::cmp::Ordering::Less => TlsRole::Client,
            std::cmp::Ordering::Greater => TlsRole::Server,
            std::cmp::Ordering::Equal => return Err(HandshakeError::NonceCollision),
        };
        // "TLS is used iff we have a context and the peer's greeting has tls whose integer
        // value is 1" (reference §4.5).
        let tls_active = self.tls == TlsMode::Enabled && greeting.wants_tls();
        let transcript = Transcript::new(&self.own_line1, self.own_nonce.as_str(), line1, line2);
        Ok(Peer {
            greeting,
            transcript,
            role,
            tls_active,
            send_framing: None,
        })
    }

    /// Chooses the framing we send; fails early if we cannot authenticate to this peer.
    fn choose(&self, peer: &mut Peer) -> Result<(), HandshakeError> {
        if self.secret.is_none() && !peer.tls_active {
            // "No TLS and no secret: error ... a node with neither secret nor cert can connect
            // to nobody" (reference §4.6).
            return Err(HandshakeError::NoCredentials);
        }
        if self.pick_method(peer).is_none() {
            return Err(HandshakeError::NoCommonAuth {
                offered: peer.greeting.auth.join(","),
            });
        }
        // "walk the peer's framing-list; pick the first entry in our framing_format"
        // (reference §4.6).
        let framing = peer
            .greeting
            .framings
            .iter()
            .filter_map(|name| name.parse::<Framing>().ok())
            .find(|f| self.framings.contains(f))
            .ok_or_else(|| HandshakeError::NoCommonFraming {
                offered: peer.greeting.framings.join(","),
            })?;
        peer.send_framing = Some(framing);
        Ok(())
    }

    fn pick_method(&self, peer: &Peer) -> Option<AuthMethod> {
        choose_method(
            &peer.greeting.auth,
            &self.auth_offer,
            self.secret.as_ref(),
            peer.tls_active,
        )
    }

    fn send_auth(&mut self, peer: Box<Peer>) -> Result<(), HandshakeError> {
        let (Some(method), Some(framing)) = (self.pick_method(&peer), peer.send_framing) else {
            return Err(HandshakeError::InvalidState {
                operation: "send_auth",
            });
        };
        let token = method
            .token(peer.transcript.own(), self.secret.as_ref(), peer.tls_active)
            .ok_or(HandshakeError::NoCredentials)?;
        let line = AuthLine {
            method: method.name().to_owned(),
            token,
            framing: framing.name().to_owned(),
        };
        self.transmit
            .push_back(Bytes::from(format!("{line}\n").into_bytes()));
        self.state = State::ExpectAuth(peer);
        self.advance()
    }

    fn check_auth(&self, peer: Peer, line: &str) -> Result<Session, HandshakeError> {
        let auth: AuthLine = line.parse()?;
        let method: AuthMethod =
            auth.method
                .parse()
                .map_err(|_| HandshakeError::UnknownAuthMethod {
                    got: auth.method.clone(),
                })?;
        // Perl does not check the method against its own auth_accept (reference §4.8, QUIRK);
        // we do, so tls_anon and cleartext are refused unless configured.
        if !self.auth_accept.contains(&method) {
            return Err(HandshakeError::AuthMethodNotAccepted { method });
        }
        if !method.verify(
            &auth.token,
            peer.transcript.peer(),
            self.secret.as_ref(),
            peer.tls_active,
        ) {
            return Err(HandshakeError::AuthFailed { method });
        }
        // "an unusable name → error '<framing>: unusable remote framing'" (reference §4.9).
        let recv_framing: Framing =
            auth.framing
                .parse()
                .map_err(|_| HandshakeError::UnusableFraming {
                    got: auth.framing.clone(),
                })?;
        let send_framing = peer.send_framing.ok_or(HandshakeError::InvalidState {
            operation: "check_auth",
        })?;
        Ok(Session {
            peer: peer.greeting.node.clone(),
            auth: method,
            send_framing,
            recv_framing,
            tls: if peer.tls_active {
                TlsMode::Enabled
            } else {
                TlsMode::Disabled
            },
            peer_greeting: peer.greeting,
        })
    }
}

/// Why a handshake failed. Variants are in the order of the protocol phases.
#[derive(Clone, Debug, Eq, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The handshake did not complete within the configured timeout.
    #[error("handshake timed out")]
    Timeout,
    /// The peer sent a handshake line longer than the limit without a line end.
    #[error("handshake line longer than {max} bytes")]
    LineTooLong {
        /// The limit.
        max: usize,
    },
    /// A handshake line is not valid UTF-8.
    #[error("handshake line is not valid UTF-8")]
    NotUtf8,
    /// A handshake line could not be parsed.
    #[error("malformed handshake line: {0}")]
    Malformed(#[from] GreetingError),
    /// The peer does not speak `aemp`.
    #[error("unparsable greeting, expected \"aemp\", got {got:?}")]
    WrongProtocol {
        /// The protocol the peer named.
        got: String,
    },
    /// The peer wants a sub-protocol of aemp we do not implement (Perl's `aemp-dataconn`).
    #[error("unsupported protocol {got:?}")]
    UnsupportedProtocol {
        /// The protocol the peer named.
        got: String,
    },
    /// The peer speaks another protocol version.
    #[error("version mismatch (we: 1, they: {got})")]
    VersionMismatch {
        /// The version the peer named.
        got: String,
    },
    /// The peer has our own node ID: we dialled ourselves, or a node shares our ID.
    #[error("peer has our own node id; refusing to talk to myself")]
    SelfConnection,
    /// The peer sent our own greeting back.
    #[error("peer echoed our greeting (echo attack?)")]
    EchoAttack,
    /// Both nonce lines are identical, so no TLS role can be chosen. Practically impossible
    /// with random nonces.
    #[error("peer sent our nonce")]
    NonceCollision,
    /// The runtime refused the peer (for example: already connected).
    #[error("refused: {reason}")]
    Refused {
        /// Why.
        reason: String,
    },
    /// We have neither a shared secret nor TLS with this peer, so we cannot authenticate.
    #[error("unable to handshake: no TLS and no shared secret configured")]
    NoCredentials,
    /// No method in the peer's list is one we offer and can produce.
    #[error("{offered}: no common auth type supported")]
    NoCommonAuth {
        /// The peer's list.
        offered: String,
    },
    /// No framing in the peer's list is one we speak.
    #[error("{offered}: no common framing method supported")]
    NoCommonFraming {
        /// The peer's list.
        offered: String,
    },
    /// The peer authenticated with a method we do not know.
    #[error("peer selected unsupported auth method {got:?}")]
    UnknownAuthMethod {
        /// The method name.
        got: String,
    },
    /// The peer authenticated with a method we know but do not accept.
    #[error("peer selected auth method {method}, which we do not accept")]
    AuthMethodNotAccepted {
        /// The method.
        method: AuthMethod,
    },
    /// The peer's token is wrong: the shared secrets (or certificates) differ.
    #[error("authentication failure ({method}): shared secret mismatch")]
    AuthFailed {
        /// The method the peer used.
        method: AuthMethod,
    },
    /// The peer will send in a framing we cannot read.
    #[error("{got}: unusable remote framing")]
    UnusableFraming {
        /// The framing name.
        got: String,
    },
    /// The runtime called a method in a state where it makes no sense (a bug in the caller).
    #[error("{operation} called in the wrong handshake state")]
    InvalidState {
        /// The method called.
        operation: &'static str,
    },
}

/// The default handshake timeout, Perl's default `monitor_timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Longest handshake line accepted, in bytes (Perl's pre-auth read buffer cap).
pub const MAX_LINE: usize = 4096;

/// The protocol name in greeting line 1.
const PROTOCOL: &str = "aemp";

#[cfg(test)]
mod tests;
