//! [`NodeBuilder`]: a node's options, and starting it.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use aemp_proto::auth::{AuthMethod, Secret};
use aemp_proto::framing::Framing;
use aemp_proto::handshake::{HandshakeConfig, TlsMode};
use aemp_proto::{NodeId, PortNameGenerator};
use tokio::sync::mpsc::unbounded_channel;

use super::{Node, Shared};
use crate::dispatch::{self, Core};
use crate::error::NodeError;
use crate::net::Limits;

/// Builds and starts a [`Node`].
#[derive(Debug, Default)]
#[must_use]
pub struct NodeBuilder {
    id: Option<String>,
    dispatcher: Dispatcher,
    secret: Option<Vec<u8>>,
    binds: Vec<SocketAddr>,
    /// Timeouts and bounds of the transport.
    limits: Limits,
    handshake_timeout: Option<Duration>,
    framings: Option<Vec<Framing>>,
    auth_offer: Option<Vec<AuthMethod>>,
    auth_accept: Option<Vec<AuthMethod>>,
    no_delay_off: bool,
    seeds: Vec<SocketAddr>,
    cert: Option<CertPem>,
}

/// A certificate PEM with its private key; `Debug` does not show it.
#[derive(Default)]
struct CertPem(Vec<u8>);

impl fmt::Debug for CertPem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CertPem(..)")
    }
}

/// Where a node's dispatcher (the loop that runs all its callbacks) runs.
#[derive(Clone, Copy, Debug, Default, Eq, PartialEq)]
#[non_exhaustive]
pub enum Dispatcher {
    /// On a thread of its own (the default): it never migrates between the runtime's worker
    /// threads, so caches stay warm (about 15% faster locally), and a slow callback never holds
    /// up the runtime's other tasks. Callbacks still run inside the runtime's context, so they
    /// may spawn tasks and timers.
    #[default]
    Thread,
    /// As a task on the runtime. Use this with tokio's paused test clock
    /// (`#[tokio::test(start_paused = true)]`): the clock only advances while the runtime is
    /// idle, and a dispatcher on its own thread is invisible to it.
    Task,
}

impl NodeBuilder {
    /// Sets the node ID. Default: `anon/<random>`, as AEMP's `anon/`.
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Sets the shared secret other nodes must know (HMAC-MD6 authentication). A node with
    /// neither a secret nor a certificate can talk to nobody.
    pub fn secret(mut self, secret: impl Into<Vec<u8>>) -> Self {
        self.secret = Some(secret.into());
        self
    }

    /// Sets the TLS certificate (AEMP's `cert`): one PEM holding our certificate (the first
    /// one), its private key, and possibly more CA certificates. The PEM is also the trust
    /// bundle: a peer is trusted iff its certificate is one of the PEM's certificates or is
    /// signed by one of them (host names are not checked).
    ///
    /// With a certificate, the node offers TLS (`tls=1.0`) and uses it with every peer that
    /// has a certificate too, authenticating with `tls_md6_64_256`; both sides present their
    /// certificates. With peers without one it falls back to the shared secret. The PEM is
    /// parsed by [`start`](Self::start).
    pub fn cert_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.cert = Some(CertPem(pem.into()));
        self
    }

    /// Listens on `addr` (port 0 picks a free port; see [`Node::listen_addrs`]).
    pub fn bind(mut self, addr: SocketAddr) -> Self {
        self.binds.push(addr);
        self
    }

    /// How long messages for an unreachable node are kept before its monitors fire with
    /// `unable to connect` (AEMP's `monitor_timeout`, default 30 s). Also the TCP user
    /// timeout of every connection (unacknowledged data fails the link after this long) and
    /// how long an unused node stays in the node table.
    pub fn monitor_timeout(mut self, timeout: Duration) -> Self {
        self.limits.monitor_timeout = timeout;
        self
    }

    /// Spacing of connection attempts to a node with known addresses (AEMP's
    /// `connect_interval`, default 2 s).
    pub fn connect_interval(mut self, interval: Duration) -> Self {
        self.limits.connect_interval = interval;
        self
    }

    /// How often a link to another aemp node carries a heartbeat (default 1 s; the faster
    /// of the two nodes sets the pace). To Perl nodes, which have no heartbeats, `[]` is
    /// written after this long without other writes. See
    /// [`heartbeat_timeout`](Self::heartbeat_timeout).
    pub fn heartbeat_interval(mut self, interval: Duration) -> Self {
        self.limits.heartbeat_interval = interval;
        self
    }

    /// A link to another aemp node that brought nothing, not even a heartbeat, for this long
    /// is closed: its monitors fire with `["transport_error", node, "heartbeat timeout"]`
    /// (default 10 s; must be longer than the heartbeat interval). This is how a hung
    /// (stopped) peer or a cut network is detected. A busy dispatcher on our side never
    /// counts as the peer's silence.
    pub fn heartbeat_timeout(mut self, timeout: Duration) -> Self {
        self.limits.heartbeat_timeout = timeout;
        self
    }

    /// How long a connection may take to authenticate (default 10 s); a peer that has not
    /// finished its handshake by then is disconnected.
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = Some(timeout);
        self
    }

    /// The most bytes that may wait to be sent to one node (default 64 MiB). A message that
    /// would pass it closes the link instead: the queued messages are dropped and every
    /// monitor of that node fires with `["transport_error", node, "send queue overflow"]`.
    /// Bulk senders stay below it with [`Node::wait_queue_below`].
    pub fn max_queue(mut self, bytes: usize) -> Self {
        self.limits.max_queue = bytes;
        self
    }

    /// The most inbound connections that may be in their handshake at once (default 512).
    /// Beyond it, a new connection replaces the oldest one that has waited a second or more,
    /// or is closed at once.
    pub fn max_unauthenticated(mut self, connections: usize) -> Self {
        self.limits.max_unauthenticated = connections;
        self
    }

    /// The most entries of the record of remote ports this node reported dead (default
    /// 262,144; about 40 bytes each; see [When things fail](crate#when-things-fail)).
    ///
    /// The record keeps, per node and port-name prefix, the dead counters as ranges. Past
    /// the limit, the ranges of the node with the most entries are merged (ports between
    /// ports reported dead count as dead too: errs towards death); if nothing can be merged,
    /// the record of the node touched longest ago is forgotten, with a warning.
    pub fn max_dead_ports(mut self, entries: usize) -> Self {
        self.limits.max_dead_ports = entries;
        self
    }

    /// The framings we offer, in preference order (default `cbor`, `json`).
    pub fn framings(mut self, framings: Vec<Framing>) -> Self {
        self.framings = Some(framings);
        self
    }

    /// The auth methods we may use towards peers (AEMP's `auth_offer`; default
    /// `tls_md6_64_256`, `hmac_md6_64_256`).
    pub fn auth_offer(mut self, methods: Vec<AuthMethod>) -> Self {
        self.auth_offer = Some(methods);
        self
    }

    /// The auth methods we accept from peers, advertised in our greeting (AEMP's
    /// `auth_accept`; default `tls_md6_64_256`, `hmac_md6_64_256`: `tls_anon` and `cleartext`
    /// only when listed here).
    pub fn auth_accept(mut self, methods: Vec<AuthMethod>) -> Self {
        self.auth_accept = Some(methods);
        self
    }

    /// Whether connections set `TCP_NODELAY` (AEMP's `nodelay`, default `true`; writes are
    /// coalesced either way).
    pub fn nodelay(mut self, on: bool) -> Self {
        self.no_delay_off = !on;
        self
    }

    /// Adds a seed: an address the node dials at start and re-dials (every
    /// `connect_interval` or more) whenever it is not connected to the node found there.
    /// Seeds also tell the node where the other nodes of the network listen (see
    /// [`Node::seeds`]).
    pub fn seed(mut self, addr: SocketAddr) -> Self {
        if !self.seeds.contains(&addr) {
            self.seeds.push(addr);
        }
        self
    }

    /// Chooses where the dispatcher runs (default: [`Dispatcher::Thread`]).
    pub fn dispatcher(mut self, dispatcher: Dispatcher) -> Self {
        self.dispatcher = dispatcher;
        self
    }

    /// Starts the node's dispatcher on the current tokio runtime.
    ///
    /// # Errors
    ///
    /// [`NodeError::InvalidId`] for a node ID that breaks the rules of [`NodeId`];
    /// [`NodeError::NoRuntime`] outside a tokio runtime; [`NodeError::Random`] if the
    /// operating system's random source fails; [`NodeError::Cert`] if the certificate PEM
    /// is unusable; [`NodeError::Option`] for a timeout or limit that cannot work (zero, or a
    /// heartbeat timeout not longer than the interval).
    pub fn start(self) -> Result<Node, NodeError> {
        let limits = self.checked_limits()?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| NodeError::NoRuntime)?;
        let mut random = [0_u8; 12];
        getrandom::fill(&mut random).map_err(|e| NodeError::Random(e.to_string()))?;
        let prefix = PortNameGenerator::new(random).prefix().to_owned();
        let id = match self.id.as_deref() {
            None | Some("anon/") => format!("anon/{prefix}"),
            Some(id) => id.to_owned(),
        };
        let id = NodeId::new(&id).map_err(NodeError::InvalidId)?;
        let mut handshake = HandshakeConfig::new(id.clone());
        handshake.secret = self.secret.map(Secret::new);
        handshake.timeout = self.handshake_timeout.unwrap_or(DEFAULT_HANDSHAKE_TIMEOUT);
        if let Some(framings) = self.framings {
            handshake.framings = framings;
        }
        if let Some(methods) = self.auth_offer {
            handshake.auth_offer = methods;
        }
        if let Some(methods) = self.auth_accept {
            handshake.auth_accept = methods;
        }
        let tls = match &self.cert {
            Some(CertPem(pem)) => {
                handshake.tls = TlsMode::Enabled;
                Some(crate::net::TlsConfig::from_pem(pem).map_err(NodeError::Cert)?)
            }
            None => None,
        };
        let mut net = crate::net::Net::new(handshake, limits);
        if let Some(tls) = tls {
            net = net.with_tls(tls);
        }
        net.nodelay = !self.no_delay_off;
        let (injector, rx) = unbounded_channel();
        let node = Node {
            shared: Arc::new(Shared {
                id,
                prefix,
                counter: AtomicU64::new(1),
                injector,
                inits: RwLock::new(HashMap::new()),
                names: Mutex::new(HashMap::new()),
                monitor_ids: AtomicU64::new(1),
                runtime: runtime.clone(),
                net,
                global: crate::global::Global::new(self.seeds),
                calls: crate::time::PendingCalls::default(),
            }),
        };
        let core = Core::new(node.clone(), rx);
        match self.dispatcher {
            Dispatcher::Thread => {
                std::thread::Builder::new()
                    .name(format!("aemp {}", node.id()))
                    .spawn(move || dispatch::run(core, &runtime))
                    .map_err(|e| NodeError::Thread(e.to_string()))?;
            }
            Dispatcher::Task => {
                runtime.spawn(dispatch::run_task(core));
            }
        }
        for addr in self.binds {
            crate::net::listen(&node.shared, addr).map_err(|e| NodeError::Bind {
                addr,
                reason: e.to_string(),
            })?;
        }
        crate::net::start_sweeper(&node.shared);
        // Link ports with every node that comes up, and seeding (reference §6.4).
        crate::global::start(&node);
        crate::prelude::offer_default(&node);
        Ok(node)
    }
}

impl NodeBuilder {
    /// The limits, checked: nothing zero, the heartbeat timeout longer than the interval.
    fn checked_limits(&self) -> Result<Limits, NodeError> {
        let l = self.limits;
        let bad = |option: &'static str, reason: &str| {
            Err(NodeError::Option {
                option,
                reason: reason.to_owned(),
            })
        };
        let durations = [
            ("monitor_timeout", l.monitor_timeout),
            ("connect_interval", l.connect_interval),
            ("heartbeat_interval", l.heartbeat_interval),
            ("heartbeat_timeout", l.heartbeat_timeout),
            (
                "handshake_timeout",
                self.handshake_timeout.unwrap_or(DEFAULT_HANDSHAKE_TIMEOUT),
            ),
        ];
        for (option, d) in durations {
            if d.is_zero() {
                return bad(option, "must be more than 0 seconds");
            }
        }
        let counts = [
            ("max_queue", l.max_queue),
            ("max_unauthenticated", l.max_unauthenticated),
            ("max_dead_ports", l.max_dead_ports),
        ];
        for (option, n) in counts {
            if n == 0 {
                return bad(option, "must be more than 0");
            }
        }
        if l.heartbeat_timeout <= l.heartbeat_interval {
            return bad(
                "heartbeat_timeout",
                "must be longer than heartbeat_interval",
            );
        }
        Ok(l)
    }
}

/// How long a handshake may take by default.
const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
