//! Error types of the runtime, one per operation.

use aemp_proto::{IdError, PortId};

/// Why a node could not be started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// The node ID breaks the rules of [`NodeId`](aemp_proto::NodeId).
    #[error("invalid node id: {0}")]
    InvalidId(#[source] IdError),
    /// `start` was called outside a tokio runtime; call it from async code or inside
    /// `Runtime::enter`.
    #[error("a node must be started inside a tokio runtime")]
    NoRuntime,
    /// The operating system's random source failed.
    #[error("random source failed: {0}")]
    Random(String),
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {reason}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        reason: String,
    },
    /// The dispatcher thread could not be started.
    #[error("cannot start the node's dispatcher thread: {0}")]
    Thread(String),
    /// The certificate PEM given to [`NodeBuilder::cert_pem`](crate::NodeBuilder::cert_pem)
    /// is unusable: unparsable, without a certificate or a private key, or with a key that
    /// does not belong to its first certificate.
    #[error("unusable TLS certificate: {0}")]
    Cert(String),
    /// A timeout or limit given to the [`NodeBuilder`](crate::NodeBuilder) cannot work.
    #[error("{option}: {reason}")]
    Option {
        /// The option (as the config key is called).
        option: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

/// Why a port operation was refused.
#[derive(Clone, Debug, Eq, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum PortError {
    /// Callbacks can only be registered on ports of this node (and not on the node port).
    #[error("{0} is not a local port")]
    NotLocal(PortId),
    /// The operation needs a current port (`SELF`) but runs outside any port's code.
    #[error("no current port: this must run inside a port's callback")]
    NoCurrentPort,
}

/// Why a kill was refused.
#[derive(Clone, Debug, Eq, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum KillError {
    /// Node ports cannot be killed.
    #[error("killing a node port is not allowed ({0})")]
    NodePort(PortId),
}

/// Why a spawn or an init registration was refused.
#[derive(Clone, Debug, Eq, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SpawnError {
    /// Init function names must contain `::` (AEMP's rule), e.g. `chat::server`.
    #[error("init function name {0:?} must contain '::'")]
    InvalidName(String),
}

/// Why a mailbox receive returned no message.
#[derive(Clone, Copy, Debug, Eq, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum RecvError {
    /// No (matching) message arrived in time.
    #[error("timed out waiting for a message")]
    Timeout,
    /// The mailbox's port is dead and every queued message has been received.
    #[error("the mailbox's port is dead")]
    Closed,
}

/// Why a call got no reply.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// No reply within the timeout.
    #[error("no reply within the timeout")]
    Timeout,
    /// The called port died before replying (with this reason).
    #[error("the called port died: {0}")]
    PortDied(crate::Reason),
    /// The calling node shut down before a reply came.
    #[error("the node shut down before a reply came")]
    Shutdown,
}
