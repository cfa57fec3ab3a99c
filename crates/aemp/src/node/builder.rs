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

/// Builds and starts a [`Node`].
#[derive(Debug, Default)]
#[must_use]
pub struct NodeBuilder {
    id: Option<String>,
    dispatcher: Dispatcher,
    secret: Option<Vec<u8>>,
    binds: Vec<SocketAddr>,
    monitor_timeout: Option<Duration>,
    connect_interval: Option<Duration>,
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

    /// How long messages for an unreachable node are kept, and how long a handshake may take
    /// (AEMP's `monitor_timeout`, default 30 s).
    pub fn monitor_timeout(mut self, timeout: Duration) -> Self {
        self.monitor_timeout = Some(timeout);
        self
    }

    /// Spacing of connection attempts to a node with known addresses (AEMP's
    /// `connect_interval`, default 2 s).
    pub fn connect_interval(mut self, interval: Duration) -> Self {
        self.connect_interval = Some(interval);
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
    /// is unusable.
    pub fn start(self) -> Result<Node, NodeError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| NodeError::NoRuntime)?;
        let mut random = [0_u8; 12];
        getrandom::fill(&mut random).map_err(|e| NodeError::Random(e.to_string()))?;
        let prefix = PortNameGenerator::new(random).prefix().to_owned();
        let id = match self.id.as_deref() {
            None | Some("anon/") => format!("anon/{prefix}"),
            Some(id) => id.to_owned(),
        };
        let id = NodeId::new(&id).map_err(NodeError::InvalidId)?;
        let monitor_timeout = self.monitor_timeout.unwrap_or(DEFAULT_MONITOR_TIMEOUT);
        let mut handshake = HandshakeConfig::new(id.clone());
        handshake.secret = self.secret.map(Secret::new);
        handshake.timeout = monitor_timeout;
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
        let mut net = crate::net::Net::new(
            handshake,
            monitor_timeout,
            self.connect_interval.unwrap_or(DEFAULT_CONNECT_INTERVAL),
        );
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
        // Link ports with every node that comes up, and seeding (reference §6.4).
        crate::global::start(&node);
        crate::prelude::offer_default(&node);
        Ok(node)
    }
}

/// AEMP's default `monitor_timeout`.
const DEFAULT_MONITOR_TIMEOUT: Duration = Duration::from_secs(30);

/// AEMP's default `connect_interval`.
const DEFAULT_CONNECT_INTERVAL: Duration = Duration::from_secs(2);
