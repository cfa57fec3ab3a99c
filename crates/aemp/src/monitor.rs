//! Kill reasons, monitor actions and monitor guards (reference §1.4, §2.8–2.10).

use std::fmt;

use aemp_proto::{Message, NodeId, PortId, Value};

use crate::Node;

/// Why a port died: the values its monitors receive.
///
/// An empty reason is a normal kill. The library produces `["die", text]` (a callback failed),
/// `["transport_error", node, text]` (the link to the port's node broke) and
/// `["no_such_port", "cannot monitor nonexistent port", port]` (the port never existed or is
/// already dead); users may kill with any values.
///
/// ```
/// use aemp::Reason;
/// assert!(Reason::normal().is_normal());
/// let r = Reason::die("boom");
/// assert_eq!(r.tag(), Some("die"));
/// assert_eq!(r.to_string(), r#"["die","boom"]"#);
/// ```
#[derive(Clone, Debug, Default)]
pub struct Reason {
    values: Vec<Value>,
    origin: Origin,
}

/// Who ended a port (not sent on the wire; for local diagnostics).
#[derive(Clone, Copy, Debug, Default, Eq, PartialEq)]
#[non_exhaustive]
pub enum Origin {
    /// A program on this node (a `kill`, a failed callback).
    #[default]
    Local,
    /// A remote node (a `kil` request or a `kil0` report).
    Remote,
    /// The library itself (lost connection, missing port).
    Library,
}

impl Reason {
    /// The normal kill: no values.
    pub fn normal() -> Self {
        Self::default()
    }

    /// A reason with the given values, from this node.
    pub fn new(values: Vec<Value>) -> Self {
        Self {
            values,
            origin: Origin::Local,
        }
    }

    /// `["die", text]`: a callback failed or panicked.
    pub fn die(text: impl Into<String>) -> Self {
        Self::new(vec![Value::from("die"), Value::String(text.into())])
    }

    /// `["no_such_port", "cannot monitor nonexistent port", port]`.
    pub fn no_such_port(port: &PortId) -> Self {
        Self {
            values: vec![
                Value::from("no_such_port"),
                Value::from("cannot monitor nonexistent port"),
                Value::String(port.to_string()),
            ],
            origin: Origin::Library,
        }
    }

    /// `["transport_error", node, text]`: the connection to `node` broke or never came up.
    pub fn transport_error(node: &NodeId, text: impl Into<String>) -> Self {
        Self {
            values: vec![
                Value::from("transport_error"),
                Value::String(node.to_string()),
                Value::String(text.into()),
            ],
            origin: Origin::Library,
        }
    }

    /// Sets who ended the port.
    pub fn with_origin(mut self, origin: Origin) -> Self {
        self.origin = origin;
        self
    }

    /// `true` for a normal kill (no values).
    pub fn is_normal(&self) -> bool {
        self.values.is_empty()
    }

    /// The first value as a string, if it is one (`"die"`, `"transport_error"`, ...).
    pub fn tag(&self) -> Option<&str> {
        self.values.first().and_then(Value::as_str)
    }

    /// The values.
    pub fn values(&self) -> &[Value] {
        &self.values
    }

    /// Who ended the port.
    pub fn origin(&self) -> Origin {
        self.origin
    }

    /// The values, for appending to a message.
    pub fn into_values(self) -> Vec<Value> {
        self.values
    }
}

impl PartialEq for Reason {
    /// Reasons are equal when their values are; the origin is diagnostic only.
    fn eq(&self, other: &Self) -> bool {
        self.values == other.values
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", Value::Array(self.values.clone()))
    }
}

impl From<Message> for Reason {
    fn from(msg: Message) -> Self {
        Self::new(msg.into_inner())
    }
}

impl From<Vec<Value>> for Reason {
    fn from(values: Vec<Value>) -> Self {
        Self::new(values)
    }
}

/// What a monitor does when its port dies (the four forms of `mon`, reference §2.8).
pub(crate) enum Action {
    /// Call back with the reason (also on a normal kill).
    Callback(Box<dyn FnOnce(Reason) + Send>),
    /// Kill this port with the same reason, unless the kill was normal.
    Kill(PortId),
    /// Send this message with the reason's values appended (always).
    Send(PortId, Message),
    /// A peer node monitors this port (`mon1`): send it `["", "kil0", name, reason…]`.
    Peer(NodeId, String),
}

/// Unregisters a monitor when dropped; [`detach`](Self::detach) keeps it for good.
///
/// Returned by every form of `monitor`. Monitors are one-shot: once fired, dropping the guard
/// does nothing.
#[must_use = "dropping the guard removes the monitor at once; call .detach() to keep it"]
pub struct MonitorGuard {
    node: Option<Node>,
    port: PortId,
    id: u64,
}

impl MonitorGuard {
    pub(crate) fn new(node: Node, port: PortId, id: u64) -> Self {
        Self {
            node: Some(node),
            port,
            id,
        }
    }

    /// Keeps the monitor registered until it fires, without a guard.
    pub fn detach(mut self) {
        self.node = None;
    }

    /// The monitored port.
    pub fn port(&self) -> &PortId {
        &self.port
    }
}

impl fmt::Debug for MonitorGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MonitorGuard")
            .field("port", &self.port)
            .field("id", &self.id)
            .finish()
    }
}

impl Drop for MonitorGuard {
    fn drop(&mut self) {
        if let Some(node) = self.node.take() {
            node.unmonitor(&self.port, self.id);
        }
    }
}
