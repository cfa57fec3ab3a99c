//! Typed settings of a profile (reference §5.4) and starting a node from them (§2.1).

use std::net::SocketAddr;
use std::time::Duration;

use aemp_proto::NodeId;
use aemp_proto::auth::AuthMethod;
use aemp_proto::framing::Framing;

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
    map
}

/// The low-level options of reference §5.4 (`aemp set OPTION VALUE`).
pub const OPTIONS: [&str; 7] = [
    "monitor_timeout",
    "connect_interval",
    "framing_format",
    "auth_offer",
    "auth_accept",
    "autocork",
    "nodelay",
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
            .nodelay(self.nodelay);
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
            node.shutdown();
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

/// A string, or a number written as one (Perl does not distinguish).
fn scalar_string(v: &Json) -> Option<String> {
    match v {
        Json::String(s) => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn optional_string(map: &Map<String, Json>, key: &str) -> Result<Option<String>, String> {
    match map.get(key) {
        None | Some(Json::Null) => Ok(None),
        Some(v) => scalar_string(v)
            .map(Some)
            .ok_or_else(|| "must be a string".to_owned()),
    }
}

/// An array of strings, each possibly a comma-separated list; a single string is a list.
fn string_list(v: &Json) -> Result<Vec<String>, String> {
    match v {
        Json::String(s) => Ok(split_list(s)),
        Json::Array(items) => {
            let mut out = Vec::new();
            for item in items {
                let s = scalar_string(item).ok_or_else(|| format!("{item} is not a string"))?;
                out.extend(split_list(&s));
            }
            Ok(out)
        }
        _ => Err("must be an array of strings".to_owned()),
    }
}

/// Splits a comma-separated list (reference §5.5: any list entry may hold several), trimmed,
/// without empty parts: `"a, b,,c"` → `["a", "b", "c"]`.
pub fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn services(v: &Json) -> Result<Vec<Service>, String> {
    let Json::Array(items) = v else {
        return Err("must be an array of names or [name, args...] arrays".to_owned());
    };
    items
        .iter()
        .map(|item| match item {
            Json::String(name) => Ok(Service {
                name: name.clone(),
                args: Vec::new(),
            }),
            Json::Array(call) => {
                let (name, args) = call
                    .split_first()
                    .ok_or_else(|| "an empty service array".to_owned())?;
                let name = name
                    .as_str()
                    .ok_or_else(|| format!("service name {name} is not a string"))?;
                let args = args
                    .iter()
                    .map(|a| serde_json::from_value::<Value>(a.clone()).map_err(|e| e.to_string()))
                    .collect::<Result<_, _>>()?;
                Ok(Service {
                    name: name.to_owned(),
                    args,
                })
            }
            other => Err(format!("{other} is not a service name or array")),
        })
        .collect()
}

/// Seconds as a number or a numeric string, positive and finite.
fn duration(v: &Json) -> Result<Duration, String> {
    let secs = match v {
        Json::Number(n) => n.as_f64(),
        Json::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
    .ok_or_else(|| format!("{v} is not a number of seconds"))?;
    if secs.is_nan() || secs <= 0.0 {
        return Err(format!("{v} must be more than 0 seconds"));
    }
    Duration::try_from_secs_f64(secs).map_err(|_| format!("{v} is too large"))
}

/// Perl truth values, plus the words `true`/`false`/`yes`/`no` that the command line writes.
fn boolean(v: &Json) -> Result<bool, String> {
    match v {
        Json::Null => Ok(false),
        Json::Bool(b) => Ok(*b),
        Json::Number(n) => Ok(n.as_f64() != Some(0.0)),
        Json::String(s) => match s.trim() {
            "" | "0" | "false" | "no" | "off" => Ok(false),
            "1" | "true" | "yes" | "on" => Ok(true),
            _ => Err(format!("{v} is not a boolean (true/false, 1/0)")),
        },
        _ => Err(format!("{v} is not a boolean")),
    }
}

/// A list of protocol names. Perl's `storable` framing is skipped (aemp does not speak it);
/// any other unknown name is an error (a typo would otherwise silently weaken the list).
fn names<T: std::str::FromStr>(map: &Map<String, Json>, key: &str) -> Result<Vec<T>, String> {
    let list = match map.get(key) {
        Some(v @ (Json::Array(_) | Json::String(_))) => string_list(v)?,
        _ => return Err("must be an array of names".to_owned()),
    };
    let mut out = Vec::new();
    for name in &list {
        match name.parse() {
            Ok(v) => out.push(v),
            Err(_) if name == "storable" => {
                tracing::debug!(key, name, "not spoken by aemp, skipped");
            }
            Err(_) => return Err(format!("unknown name {name:?}")),
        }
    }
    Ok(out)
}
