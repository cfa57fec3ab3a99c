//! Typed settings of a profile (reference §5.4) and starting a node from them (§2.1).

use std::net::SocketAddr;
use std::time::Duration;

use aemp_proto::NodeId;
use aemp_proto::auth::AuthMethod;
use aemp_proto::framing::Framing;

use super::values::{
    boolean, count, duration, names, optional_string, scalar_string, services, string_list,
};
use super::{ConfigError, ConfigFile, Json, Map, resolve_binds, resolve_seeds};
use crate::{Node, NodeBuilder, Value};

/// The keys every profile starts from (reference §5.3, with aemp's own choices:
/// `cbor` first, and `tls_anon`/`cleartext` accepted only when configured).
pub(super) fn builtin_defaults() -> Map<String, Json> {
    let mut map = Map::new();
    map.insert("monitor_timeout".into(), Json::from(30));
    map.insert("connect_interval".into(), Json::from(2));
    map.insert("framing_format".into(), Json::from(vec!["cbor", "json"]));
    map.insert(
        "auth_offer".into(),
        Json::from(vec!["tls_md6_64_256", "hmac_md6_64_256"]),
    );
    map.insert(
        "auth_accept".into(),
        Json::from(vec!["tls_md6_64_256", "hmac_md6_64_256"]),
    );
    map.insert("autocork".into(), Json::from(false));
    map.insert("nodelay".into(), Json::from(true));
    map.insert("heartbeat_interval".into(), Json::from(1));
    map.insert("heartbeat_timeout".into(), Json::from(10));
    map.insert("handshake_timeout".into(), Json::from(10));
    map.insert("max_queue".into(), Json::from(64_u64 << 20));
    map.insert("max_unauthenticated".into(), Json::from(512));
    map
}

/// The low-level options (`aemp set OPTION VALUE`): AEMP's seven, then
/// aemp's failure-handling limits (see the fields of [`Settings`]).
pub const OPTIONS: [&str; 12] = [
    "monitor_timeout",
    "connect_interval",
    "framing_format",
    "auth_offer",
    "auth_accept",
    "autocork",
    "nodelay",
    "heartbeat_interval",
    "heartbeat_timeout",
    "handshake_timeout",
    "max_queue",
    "max_unauthenticated",
];

/// Keys with a meaning besides [`OPTIONS`]; others are kept in [`Settings::extra`].
const KNOWN: [&str; 9] = [
    "nodeid", "secret", "cert", "binds", "seeds", "services", "version", "profile", "parent",
];

/// A service run when a node starts from a profile (AEMP's `services` key): the name of an
/// init function registered with [`Node::register_init`], and its arguments. It is spawned on
/// the new node, as `spawn(NODE, name, args)`. A name ending in `::` names a module: only
/// `AnyEvent::MP::Global::` is known (Global always runs), others are refused.
#[derive(Clone, Debug, PartialEq)]
pub struct Service {
    /// The init function (or module) name.
    pub name: String,
    /// Its arguments.
    pub args: Vec<Value>,
}

/// The effective settings of a profile, typed. Built by [`ConfigFile::settings`]; every
/// field may be changed before [`start`](Self::start).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Settings {
    /// The profile these settings came from.
    pub profile: String,
    /// `nodeid`, or the profile name when absent; `anon/` means a random ID.
    pub node_id: String,
    /// `secret`: the shared secret.
    pub secret: Option<String>,
    /// `cert`: certificate, key and CA certificates, PEM.
    pub cert: Option<String>,
    /// `binds`, as written (resolved by [`node_builder`](Self::node_builder)); absent: `*`.
    pub binds: Vec<String>,
    /// `seeds`, as written.
    pub seeds: Vec<String>,
    /// `services`.
    pub services: Vec<Service>,
    /// `monitor_timeout` (default 30 s).
    pub monitor_timeout: Duration,
    /// `connect_interval` (default 2 s).
    pub connect_interval: Duration,
    /// `framing_format`, the framings we speak (Perl's `storable` is skipped).
    pub framings: Vec<Framing>,
    /// `auth_offer`.
    pub auth_offer: Vec<AuthMethod>,
    /// `auth_accept`.
    pub auth_accept: Vec<AuthMethod>,
    /// `autocork`: accepted and ignored (aemp always coalesces queued writes).
    pub autocork: bool,
    /// `nodelay` (default true): `TCP_NODELAY` on connections.
    pub nodelay: bool,
    /// `heartbeat_interval` (aemp only, default 1 s): how often a connection to another aemp
    /// node carries a heartbeat ([`NodeBuilder::heartbeat_interval`]).
    pub heartbeat_interval: Duration,
    /// `heartbeat_timeout` (aemp only, default 10 s): a link to an aemp node that sent
    /// nothing for this long is closed ([`NodeBuilder::heartbeat_timeout`]).
    pub heartbeat_timeout: Duration,
    /// `handshake_timeout` (aemp only, default 10 s): how long a connection may take to
    /// authenticate ([`NodeBuilder::handshake_timeout`]).
    pub handshake_timeout: Duration,
    /// `max_queue` (aemp only, default 64 MiB): bytes that may wait to be sent to one node
    /// ([`NodeBuilder::max_queue`]).
    pub max_queue: usize,
    /// `max_unauthenticated` (aemp only, default 512): inbound connections that may be in
    /// their handshake at once ([`NodeBuilder::max_unauthenticated`]).
    pub max_unauthenticated: usize,
    /// Keys aemp does not know, kept as they were (Perl files may carry extra keys).
    pub extra: Map<String, Json>,
}

impl Settings {
    /// Reads settings from an effective key map (see [`ConfigFile::effective`]).
    ///
    /// # Errors
    ///
    /// [`ConfigError::Key`] naming the first unusable key.
    pub fn from_map(profile: &str, map: &Map<String, Json>) -> Result<Self, ConfigError> {
        let key_error = |key: &str, reason: String| ConfigError::Key {
            profile: profile.to_owned(),
            key: key.to_owned(),
            reason,
        };
        let node_id = match map.get("nodeid") {
            None | Some(Json::Null) => profile.to_owned(),
            Some(v) => {
                scalar_string(v).ok_or_else(|| key_error("nodeid", "must be a string".into()))?
            }
        };
        if node_id != "anon/" {
            NodeId::new(&node_id).map_err(|e| key_error("nodeid", e.to_string()))?;
        }
        let secret = optional_string(map, "secret").map_err(|r| key_error("secret", r))?;
        let cert = optional_string(map, "cert").map_err(|r| key_error("cert", r))?;
        let binds = match map.get("binds") {
            None | Some(Json::Null) => vec!["*".to_owned()],
            Some(v) => string_list(v).map_err(|r| key_error("binds", r))?,
        };
        let seeds = match map.get("seeds") {
            None | Some(Json::Null) => Vec::new(),
            Some(v) => string_list(v).map_err(|r| key_error("seeds", r))?,
        };
        let services = match map.get("services") {
            None | Some(Json::Null) => Vec::new(),
            Some(v) => services(v).map_err(|r| key_error("services", r))?,
        };
        let seconds = |key: &str| -> Result<Duration, ConfigError> {
            let v = map
                .get(key)
                .ok_or_else(|| key_error(key, "missing".into()))?;
            duration(v).map_err(|r| key_error(key, r))
        };
        let number = |key: &str| -> Result<usize, ConfigError> {
            let v = map
                .get(key)
                .ok_or_else(|| key_error(key, "missing".into()))?;
            count(v).map_err(|r| key_error(key, r))
        };
        let flag = |key: &str| -> Result<bool, ConfigError> {
            map.get(key)
                .map_or(Ok(false), |v| boolean(v).map_err(|r| key_error(key, r)))
        };
        let framings =
            names::<Framing>(map, "framing_format").map_err(|r| key_error("framing_format", r))?;
        if framings.is_empty() {
            return Err(key_error(
                "framing_format",
                "lists no framing aemp speaks (json, cbor)".into(),
            ));
        }
        let auth_offer =
            names::<AuthMethod>(map, "auth_offer").map_err(|r| key_error("auth_offer", r))?;
        let auth_accept =
            names::<AuthMethod>(map, "auth_accept").map_err(|r| key_error("auth_accept", r))?;
        let extra: Map<String, Json> = map
            .iter()
            .filter(|(k, _)| !KNOWN.contains(&k.as_str()) && !OPTIONS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for key in extra.keys() {
            tracing::debug!(profile, key, "config key not used by aemp, ignored");
        }
        let heartbeat_interval = seconds("heartbeat_interval")?;
        let heartbeat_timeout = seconds("heartbeat_timeout")?;
        if heartbeat_timeout <= heartbeat_interval {
            return Err(key_error(
                "heartbeat_timeout",
                format!(
                    "must be longer than heartbeat_interval ({} s)",
                    heartbeat_interval.as_secs_f64()
                ),
            ));
        }
        Ok(Self {
            profile: profile.to_owned(),
            node_id,
            secret,
            cert,
            binds,
            seeds,
            services,
            monitor_timeout: seconds("monitor_timeout")?,
            connect_interval: seconds("connect_interval")?,
            framings,
            auth_offer,
            auth_accept,
            autocork: flag("autocork")?,
            nodelay: flag("nodelay")?,
            heartbeat_interval,
            heartbeat_timeout,
            handshake_timeout: seconds("handshake_timeout")?,
            max_queue: number("max_queue")?,
            max_unauthenticated: number("max_unauthenticated")?,
            extra,
        })
    }

    /// The resolved listen addresses (see [`resolve_binds`]).
    ///
    /// # Errors
    ///
    /// [`ConfigError::Resolve`] for a spec that does not parse or resolve.
    pub fn bind_addrs(&self) -> Result<Vec<SocketAddr>, ConfigError> {
        resolve_binds(&self.binds)
            .map_err(|(spec, reason)| self.resolve_error("binds", spec, reason))
    }

    /// The resolved seed addresses (see [`resolve_seeds`]).
    ///
    /// # Errors
    ///
    /// [`ConfigError::Resolve`] for a spec that does not parse or resolve.
    pub fn seed_addrs(&self) -> Result<Vec<SocketAddr>, ConfigError> {
        resolve_seeds(&self.seeds)
            .map_err(|(spec, reason)| self.resolve_error("seeds", spec, reason))
    }

    fn resolve_error(&self, key: &str, spec: String, reason: String) -> ConfigError {
        ConfigError::Resolve {
            profile: self.profile.clone(),
            key: key.to_owned(),
            spec,
            reason,
        }
    }

    /// A [`NodeBuilder`] with these settings (binds and seeds resolved now, blocking on DNS
    /// if they hold names).
    ///
    /// # Errors
    ///
    /// [`ConfigError::Resolve`] for a bind or seed that does not resolve.
    pub fn node_builder(&self) -> Result<NodeBuilder, ConfigError> {
        let mut builder = Node::builder()
            .id(&self.node_id)
            .monitor_timeout(self.monitor_timeout)
            .connect_interval(self.connect_interval)
            .framings(self.framings.clone())
            .auth_offer(self.auth_offer.clone())
            .auth_accept(self.auth_accept.clone())
            .nodelay(self.nodelay)
            .heartbeat_interval(self.heartbeat_interval)
            .heartbeat_timeout(self.heartbeat_timeout)
            .handshake_timeout(self.handshake_timeout)
            .max_queue(self.max_queue)
            .max_unauthenticated(self.max_unauthenticated);
        if let Some(secret) = &self.secret {
            builder = builder.secret(secret.as_bytes());
        }
        if let Some(cert) = &self.cert {
            builder = builder.cert_pem(cert.as_bytes());
        }
        for addr in self.bind_addrs()? {
            builder = builder.bind(addr);
        }
        for addr in self.seed_addrs()? {
            builder = builder.seed(addr);
        }
        Ok(builder)
    }

    /// Starts a node with these settings and runs its services. Call it inside a tokio
    /// runtime.
    ///
    /// # Errors
    ///
    /// As [`node_builder`](Self::node_builder), [`ConfigError::Node`] if the node cannot
    /// start (a bind fails, the certificate is unusable, ...), and
    /// [`ConfigError::UnknownService`].
    pub fn start(&self) -> Result<Node, ConfigError> {
        self.start_with(|_| Ok(()))
    }

    /// As [`start`](Self::start), calling `setup` on the new node before its services run:
    /// the place to register the init functions services name.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use aemp::config::ConfigFile;
    ///
    /// let file = ConfigFile::parse(r#"{ "profile": { "svc": {
    ///     "binds": [], "services": [["demo::hello", "world"]] } } }"#)?;
    /// let (tx, rx) = tokio::sync::oneshot::channel();
    /// let tx = std::sync::Mutex::new(Some(tx));
    /// let node = file.settings("svc", &[])?.start_with(|node| {
    ///     node.register_init("demo::hello", move |args: aemp::Message| {
    ///         if let Some(tx) = tx.lock().unwrap().take() {
    ///             let _ = tx.send(args[0].clone());
    ///         }
    ///     })?;
    ///     Ok(())
    /// })?;
    /// assert_eq!(rx.await?, "world".into());
    /// assert_eq!(node.id().as_str(), "svc");
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`start`](Self::start), and [`ConfigError::Setup`] with the error `setup` returned
    /// (the node is shut down again).
    pub fn start_with(
        &self,
        setup: impl FnOnce(&Node) -> Result<(), Box<dyn std::error::Error + Send + Sync>>,
    ) -> Result<Node, ConfigError> {
        let node = self
            .node_builder()?
            .start()
            .map_err(|source| ConfigError::Node {
                profile: self.profile.clone(),
                source,
            })?;
        let fail = |error: ConfigError| {
            // In the background: the caller only needs the error.
            drop(node.shutdown());
            error
        };
        if let Err(e) = setup(&node) {
            return Err(fail(ConfigError::Setup {
                profile: self.profile.clone(),
                reason: e.to_string(),
            }));
        }
        for service in &self.services {
            if service.name.ends_with("::") {
                if service.name == "AnyEvent::MP::Global::" {
                    continue;
                }
                return Err(fail(self.unknown_service(&service.name)));
            }
            if !node.has_init(&service.name) {
                return Err(fail(self.unknown_service(&service.name)));
            }
            let args: crate::Message = service.args.iter().cloned().collect();
            node.spawn(&node.id().clone(), &service.name, args)
                .map_err(|_| fail(self.unknown_service(&service.name)))?;
        }
        tracing::info!(node = %node.id(), listen = ?node.listen_addrs(), "node starting up");
        Ok(node)
    }

    fn unknown_service(&self, name: &str) -> ConfigError {
        ConfigError::UnknownService {
            profile: self.profile.clone(),
            name: name.to_owned(),
        }
    }
}

/// AEMP's `configure`: reads the config file ([`ConfigFile::default_path`]) and starts a
/// node from `profile` (default: this host's name, [`hostname`]). `overrides` are defaults
/// that the file's keys override (reference §5.3), e.g. `("binds", json!(["127.0.0.1:0"]))`.
/// Call it once per process, inside a tokio runtime.
///
/// # Errors
///
/// Any [`ConfigError`]: an unreadable file, a bad key, an address that does not resolve, a
/// node that cannot start.
pub fn configure(profile: Option<&str>, overrides: &[(&str, Json)]) -> Result<Node, ConfigError> {
    let name = profile.map_or_else(hostname, str::to_owned);
    ConfigFile::open_default()?
        .settings(&name, overrides)?
        .start()
}

/// This host's name (Perl's uname nodename), the default profile name.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|s| !s.is_empty()))
        .or_else(|| std::env::var("COMPUTERNAME").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "localhost".to_owned())
}
