//! [`Node`]: the handle through which a program creates ports, sends, kills and monitors.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use aemp_proto::id::format_name;

use aemp_proto::{Message, NodeId, PortId, Value};
use tokio::sync::mpsc::UnboundedSender;

use crate::dispatch::{self, Core, Job, RcvChange, SpawnJob, with_active};
use crate::error::{KillError, PortError, SpawnError};
use crate::monitor::{Action, MonitorGuard, Reason};
use crate::port::{Behaviour, IntoFlow, Pattern, callback};

mod builder;
mod network;

pub use builder::{Dispatcher, NodeBuilder};
pub use network::{NodeEvent, NodeMonitorGuard, Shutdown};

/// A running node: the process's identity in an AEMP network and the owner of its ports.
///
/// Cheap to clone; every clone is the same node. All callbacks of a node run one at a time on
/// its dispatcher task, in the order their messages were sent, so code in a callback needs no
/// locks. Methods may be called from anywhere: inside a callback they act on the node
/// directly, from other threads or tasks they are handed to the dispatcher in order.
///
/// ```
/// use aemp::{Message, Node};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), aemp::NodeError> {
/// let node = Node::builder().id("doc-node").start()?;
/// let (tx, rx) = tokio::sync::oneshot::channel();
/// let mut tx = Some(tx);
/// let pong = node.port(move |msg: Message| {
///     if let Some(tx) = tx.take() {
///         let _ = tx.send(msg);
///     }
/// });
/// node.send(&pong, Message::new(vec!["ping".into(), 1.into()]));
/// assert_eq!(rx.await.expect("delivered")[0], "ping".into());
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Node {
    pub(crate) shared: Arc<Shared>,
}

/// The parts of a node every handle shares.
pub(crate) struct Shared {
    id: NodeId,
    /// Random prefix of every port name this node generates (96 bits, base 62), so names are
    /// never reused across restarts.
    prefix: String,
    /// The counter part of the next port name; 0 is never used.
    counter: AtomicU64,
    /// Work for the dispatcher from other threads and tasks.
    injector: UnboundedSender<Job>,
    /// Spawn init functions by name.
    inits: RwLock<HashMap<String, InitFn>>,
    /// Well-known names (`register`/`lookup`).
    names: Mutex<HashMap<String, PortId>>,
    /// The id of the next monitor, known to its guard before the dispatcher adds it.
    monitor_ids: AtomicU64,
    /// The runtime the node was started on, where its timers run: methods may be called
    /// from threads outside any runtime.
    pub(crate) runtime: tokio::runtime::Handle,
    /// Connections to other nodes.
    pub(crate) net: crate::net::Net,
    /// Seeds and what Global learned about other nodes.
    pub(crate) global: crate::global::Global,
    /// Calls waiting for a reply, failed by shutdown.
    pub(crate) calls: crate::time::PendingCalls,
}

/// A registered spawn init function.
pub(crate) type InitFn = Arc<dyn Fn(Message) -> Result<(), String> + Send + Sync>;

/// Where a port ID points, seen from this node.
pub(crate) enum LocalKey {
    /// A port of this node with a name this node generated.
    Own(u64),
    /// A port of this node whose name another node chose (or no such port).
    Foreign,
    /// This node's node port.
    NodePort,
    /// A port on another node.
    Remote,
}

impl Node {
    /// Starts building a node.
    pub fn builder() -> NodeBuilder {
        NodeBuilder::default()
    }

    /// This node's ID.
    pub fn id(&self) -> &NodeId {
        &self.shared.id
    }

    /// The node port: the bare node ID, which answers the node requests of reference §3.
    pub fn node_port(&self) -> PortId {
        PortId::node_port(self.shared.id.clone())
    }

    /// `true` if `port` lives on this node.
    pub fn port_is_local(&self, port: &PortId) -> bool {
        self.shared.is_local(port)
    }

    /// Creates a port whose callback gets every message (a "miniport").
    ///
    /// The callback's return value decides what happens next (see [`IntoFlow`]): `()` keeps
    /// the port, [`Flow::Done`](crate::Flow::Done) or `true` kills it normally, an `Err` or a
    /// panic kills it with `["die", text]`.
    pub fn port<R: IntoFlow>(&self, f: impl FnMut(Message) -> R + Send + 'static) -> PortId {
        self.create(Behaviour::Callback(callback(f)))
    }

    /// Creates a port with no callback yet; give it some with [`receive`](Self::receive).
    /// A message that arrives before any callback kills the port with `die` (AEMP 1.30).
    pub fn new_port(&self) -> PortId {
        self.create(Behaviour::Empty)
    }

    fn create(&self, behaviour: Behaviour) -> PortId {
        let key = self.shared.next_key();
        self.control(Job::Install { key, behaviour });
        self.shared.port_id(key, None)
    }

    /// Registers a callback for messages matching `pattern` on a local port (AEMP's `rcv`).
    ///
    /// Several callbacks may match one message; each gets it, in registration order. A
    /// callback returning [`Flow::Done`](crate::Flow::Done) (or `true`) is unregistered. The
    /// callback receives the whole message, tag included. A miniport becomes a full port and
    /// its callback becomes the default callback.
    ///
    /// # Errors
    ///
    /// [`PortError::NotLocal`] for a port of another node. A port that does not exist (or no
    /// longer does) is not an error: the change is dropped, as messages to it would be.
    pub fn receive<R: IntoFlow>(
        &self,
        port: &PortId,
        pattern: impl Into<Pattern>,
        f: impl FnMut(Message) -> R + Send + 'static,
    ) -> Result<(), PortError> {
        self.change(port, RcvChange::Add(pattern.into(), callback(f)))
    }

    /// Sets the callback for messages that match no `receive` pattern.
    ///
    /// # Errors
    ///
    /// [`PortError::NotLocal`] for a port of another node.
    pub fn receive_default<R: IntoFlow>(
        &self,
        port: &PortId,
        f: impl FnMut(Message) -> R + Send + 'static,
    ) -> Result<(), PortError> {
        self.change(port, RcvChange::Default(callback(f)))
    }

    /// Removes every callback registered for exactly `pattern`.
    ///
    /// # Errors
    ///
    /// [`PortError::NotLocal`] for a port of another node.
    pub fn unreceive(&self, port: &PortId, pattern: impl Into<Pattern>) -> Result<(), PortError> {
        self.change(port, RcvChange::Remove(pattern.into()))
    }

    /// Replaces everything a local port does with one callback (making it a miniport).
    ///
    /// # Errors
    ///
    /// [`PortError::NotLocal`] for a port of another node.
    pub fn set_callback<R: IntoFlow>(
        &self,
        port: &PortId,
        f: impl FnMut(Message) -> R + Send + 'static,
    ) -> Result<(), PortError> {
        self.change(port, RcvChange::Replace(callback(f)))
    }

    fn change(&self, port: &PortId, change: RcvChange) -> Result<(), PortError> {
        if !self.port_is_local(port) || port.is_node_port() {
            return Err(PortError::NotLocal(port.clone()));
        }
        let port = port.clone();
        self.exec(move |core| {
            if !core.change(&port, change) {
                tracing::debug!(%port, "receive on a port that does not exist");
            }
        });
        Ok(())
    }

    /// Sends a message to any port, local or remote (AEMP's `snd`). Never blocks and never
    /// fails visibly: a message to a port that does not exist is dropped, as in AEMP.
    ///
    /// Messages from one sender to one port arrive in the order they were sent.
    pub fn send(&self, port: &PortId, msg: impl Into<Message>) {
        let msg = msg.into();
        match self.shared.local_key(port) {
            LocalKey::Own(key) => self.enqueue(Job::Deliver { key, msg }),
            LocalKey::Remote => self.shared.send_remote(port, msg),
            LocalKey::Foreign | LocalKey::NodePort => {
                let port = port.clone();
                self.enqueue(Job::Run(Box::new(move |core: &mut Core| {
                    core.route(&port, msg)
                })));
            }
        }
    }

    /// Kills a port with a reason ([`Reason::normal`] for a normal kill); local or remote.
    /// The kill is queued behind messages already sent, as in AEMP.
    ///
    /// # Errors
    ///
    /// [`KillError::NodePort`]: a node port cannot be killed.
    pub fn kill(&self, port: &PortId, reason: Reason) -> Result<(), KillError> {
        if port.is_node_port() {
            return Err(KillError::NodePort(port.clone()));
        }
        if self.port_is_local(port) {
            self.enqueue(Job::Kill {
                port: port.clone(),
                reason,
            });
        } else {
            self.shared.kill_remote(port, reason);
        }
        Ok(())
    }

    /// Calls `f` with the reason when `port` dies (also on a normal kill). If the port does
    /// not exist, `f` is called at once with the `no_such_port` reason.
    ///
    /// `f` runs on the dispatcher and must not block; a panic in it is logged.
    pub fn monitor(&self, port: &PortId, f: impl FnOnce(Reason) + Send + 'static) -> MonitorGuard {
        self.add_monitor(port, Action::Callback(Box::new(f)))
    }

    /// Kills `linked` with the same reason when `port` dies abnormally (AEMP's
    /// `mon $port, $rcvport`).
    pub fn monitor_link(&self, port: &PortId, linked: &PortId) -> MonitorGuard {
        self.add_monitor(port, Action::Kill(linked.clone()))
    }

    /// Sends `msg` with the reason's values appended to `to` when `port` dies (AEMP's
    /// `mon $port, $rcvport, @msg`), also on a normal kill.
    pub fn monitor_send(
        &self,
        port: &PortId,
        to: &PortId,
        msg: impl Into<Message>,
    ) -> MonitorGuard {
        self.add_monitor(port, Action::Send(to.clone(), msg.into()))
    }

    /// Keeps `value` alive until `port` dies or the guard is dropped (AEMP's `mon_guard`).
    pub fn monitor_guard<T: Send + 'static>(&self, port: &PortId, value: T) -> MonitorGuard {
        self.monitor(port, move |_| drop(value))
    }

    fn add_monitor(&self, port: &PortId, action: Action) -> MonitorGuard {
        let id = self.shared.monitor_ids.fetch_add(1, Ordering::Relaxed);
        if self.port_is_local(port) {
            let target = port.clone();
            self.exec(move |core| core.monitor(&target, id, action));
        } else {
            // Right away, so `mon1` precedes anything this sender sends that node next.
            if let Err(dead) = crate::net::add_monitor(&self.shared, port, id, action) {
                // Reported dead before: fire at once, on the dispatcher like every monitor.
                self.exec(move |core| {
                    let (action, reason) = *dead;
                    core.fire(action, reason);
                });
            }
        }
        MonitorGuard::new(self.clone(), port.clone(), id)
    }

    pub(crate) fn unmonitor(&self, port: &PortId, id: u64) {
        if !self.port_is_local(port) {
            // The action may hold user values: drop it on the dispatcher, like local ones.
            if let Some(action) = crate::net::remove_monitor(&self.shared, port, id) {
                self.exec(move |_| drop(action));
            }
            return;
        }
        let port = port.clone();
        self.exec(move |core| core.unmonitor(&port, id));
    }

    /// Registers a spawn init function under `name` (which must contain `::`, as AEMP
    /// function names do). [`spawn`](Self::spawn) on any node runs it in the new port's
    /// context with the spawn arguments; it creates the port by calling
    /// [`receive`](Self::receive) or [`set_callback`](Self::set_callback) on
    /// [`self_port()`](crate::self_port).
    ///
    /// Registration is explicit (no static constructors or linker tricks): a node runs only
    /// code it was told about, which is the point of replacing Perl's "call any function by
    /// name".
    ///
    /// # Errors
    ///
    /// [`SpawnError::InvalidName`] if `name` has no `::`.
    pub fn register_init<R: IntoFlow>(
        &self,
        name: &str,
        f: impl Fn(Message) -> R + Send + Sync + 'static,
    ) -> Result<(), SpawnError> {
        check_init_name(name)?;
        self.insert_init(name, f);
        Ok(())
    }

    /// `true` if an init function is registered under `name` (see
    /// [`register_init`](Self::register_init)).
    pub fn has_init(&self, name: &str) -> bool {
        self.shared
            .inits
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains_key(name)
    }

    /// Registers an init function whose name is known to be valid.
    pub(crate) fn insert_init<R: IntoFlow>(
        &self,
        name: &str,
        f: impl Fn(Message) -> R + Send + Sync + 'static,
    ) {
        let f: InitFn = Arc::new(move |args| f(args).into_flow().map(|_| ()));
        self.shared
            .inits
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(name.to_owned(), f);
    }

    /// Creates a port on `node` by running the init function registered there under `init`
    /// (AEMP's `spawn`). Returns the new port's ID at once; the init runs later, in order
    /// with everything else sent to that node, so messages sent to the new port right away
    /// arrive after the init ran. If `init` is unknown there, the port never exists and
    /// monitors on it fire with `no_such_port`.
    ///
    /// # Errors
    ///
    /// [`SpawnError::InvalidName`] if `init` has no `::`.
    pub fn spawn(
        &self,
        node: &NodeId,
        init: &str,
        args: impl Into<Message>,
    ) -> Result<PortId, SpawnError> {
        check_init_name(init)?;
        let key = self.shared.next_key();
        let name = format_name(&self.shared.prefix, key);
        let args = args.into();
        if node != self.id() {
            let port = PortId::new(node.clone(), &name)
                .map_err(|_| SpawnError::InvalidName(init.to_owned()))?;
            self.shared.spawn_remote(&port, init, args);
            return Ok(port);
        }
        let init_fn = self
            .shared
            .inits
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(init)
            .cloned();
        // Until the init has run, monitors and names given to the new port wait for it.
        self.exec(move |core| core.expect_spawn(key));
        self.enqueue(Job::Spawn(Box::new(SpawnJob {
            key,
            init: init_fn,
            name: init.to_owned(),
            args,
        })));
        Ok(self.shared.port_id(key, None))
    }

    /// Gives `port` a well-known name on this node; [`lookup`](Self::lookup) (or a remote
    /// node's `lookup` request) finds it. The name is removed when the port dies.
    pub fn register(&self, name: &str, port: &PortId) {
        self.shared
            .names
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(name.to_owned(), port.clone());
        let port = port.clone();
        let name = name.to_owned();
        let node = self.clone();
        self.exec(move |core| {
            if !core.mark_registered(&port) && node.port_is_local(&port) {
                // Registered a dead port: forget the name again.
                node.shared.unregister_port(&port);
                tracing::debug!(name, %port, "registered a port that does not exist");
            }
        });
    }

    /// Removes a well-known name.
    pub fn unregister(&self, name: &str) -> Option<PortId> {
        self.shared
            .names
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(name)
    }

    /// Finds the port registered under `name` on this node.
    pub fn lookup(&self, name: &str) -> Option<PortId> {
        self.shared
            .names
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(name)
            .cloned()
    }

    /// Runs `f` on the dispatcher: right after the running callback (from inside one) or in
    /// order with this sender's other work (from elsewhere).
    pub(crate) fn exec(&self, f: impl FnOnce(&mut Core) + Send + 'static) {
        self.control(Job::Run(Box::new(f)));
    }

    /// Queues a table change: applied when the running callback returns, or injected.
    fn control(&self, job: Job) {
        let mut job = Some(job);
        with_active(&self.shared, |a| {
            if let Some(job) = job.take() {
                a.control(job);
            }
        });
        if let Some(job) = job {
            self.inject(job);
        }
    }

    /// Queues work at the end of the node's FIFO (directly from inside a callback).
    pub(crate) fn enqueue(&self, job: Job) {
        let mut job = Some(job);
        dispatch::try_push(&self.shared, &mut job);
        if let Some(job) = job {
            self.inject(job);
        }
    }

    pub(crate) fn inject(&self, job: Job) {
        self.shared.inject(job);
    }
}

fn check_init_name(name: &str) -> Result<(), SpawnError> {
    if name.contains("::") {
        Ok(())
    } else {
        Err(SpawnError::InvalidName(name.to_owned()))
    }
}

impl fmt::Debug for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Node").field("id", &self.shared.id).finish()
    }
}

impl Shared {
    pub(crate) fn next_key(&self) -> u64 {
        self.counter.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn is_local(&self, port: &PortId) -> bool {
        port.node() == &self.id
    }

    /// The ID of a local port from its key (and its name, if another node chose it).
    pub(crate) fn port_id(&self, key: u64, foreign: Option<&str>) -> PortId {
        let name = match foreign {
            Some(name) => name.to_owned(),
            None => format_name(&self.prefix, key),
        };
        // Generated names and names accepted from peers are valid port names.
        let id = PortId::new(self.id.clone(), &name)
            .unwrap_or_else(|_| PortId::node_port(self.id.clone()));
        if foreign.is_none() {
            id.with_hint(key)
        } else {
            id
        }
    }

    /// Classifies a port ID: ours (with its key), foreign-named, node port or remote.
    pub(crate) fn local_key(&self, port: &PortId) -> LocalKey {
        if port.node() != &self.id {
            return LocalKey::Remote;
        }
        // IDs this node handed out carry their key; the node ID is compared by allocation
        // first, so an ID from another node with the same name never takes this path wrongly
        // (`port_id` sets the hint only on our own IDs, which share our NodeId allocation).
        if port.hint() != 0 && port.node().same_allocation(&self.id) {
            return LocalKey::Own(port.hint());
        }
        self.local_key_of_name(port.name())
    }

    /// Classifies the name of one of our ports (as it arrives on the wire).
    pub(crate) fn local_key_of_name(&self, name: &str) -> LocalKey {
        if name.is_empty() {
            return LocalKey::NodePort;
        }
        match name
            .strip_prefix(self.prefix.as_str())
            .and_then(|rest| rest.strip_prefix('.'))
            .and_then(aemp_proto::id::parse_counter)
        {
            Some(key) => LocalKey::Own(key),
            None => LocalKey::Foreign,
        }
    }

    pub(crate) fn unregister_port(&self, port: &PortId) {
        self.names
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|_, p| p != port);
    }

    /// This node's ID.
    pub(crate) fn id(&self) -> &NodeId {
        &self.id
    }

    /// The ID of our port called `name` (any name; an invalid one yields the node port).
    pub(crate) fn port_id_named(&self, name: &str) -> PortId {
        PortId::new(self.id.clone(), name).unwrap_or_else(|_| PortId::node_port(self.id.clone()))
    }

    /// A fresh monitor id.
    /// `true` once the dispatcher has stopped (after [`Node::shutdown`]).
    pub(crate) fn injector_closed(&self) -> bool {
        self.injector.is_closed()
    }

    pub(crate) fn next_monitor_id(&self) -> u64 {
        self.monitor_ids.fetch_add(1, Ordering::Relaxed)
    }

    /// The init function registered under `name`.
    pub(crate) fn init(&self, name: &str) -> Option<InitFn> {
        self.inits
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(name)
            .cloned()
    }

    /// Hands work to the dispatcher from outside it.
    pub(crate) fn inject(&self, job: Job) {
        if self.injector.send(job).is_err() {
            tracing::debug!(node = %self.id, "node is shut down; work dropped");
        }
    }

    /// Resolves when the node's dispatcher has stopped (it takes no more work).
    pub(crate) async fn dispatcher_stopped(&self) {
        self.injector.closed().await;
    }

    /// Sends to a port on another node, in order with everything else sent there.
    pub(crate) fn send_remote(self: &Arc<Self>, port: &PortId, msg: Message) {
        crate::net::send(self, port, msg);
    }

    /// `["", "kil", name, reason…]` to the port's node (reference §2.10).
    pub(crate) fn kill_remote(self: &Arc<Self>, port: &PortId, reason: Reason) {
        let mut msg = Message::from([Value::from("kil"), Value::from(port.name())]);
        msg.extend(reason.into_values());
        self.send_remote(&PortId::node_port(port.node().clone()), msg);
    }

    /// `["", "AnyEvent::MP::_spawn", name, init, args…]` to the target node (§2.11).
    pub(crate) fn spawn_remote(self: &Arc<Self>, port: &PortId, init: &str, args: Message) {
        let mut msg = Message::new(vec![
            Value::from("AnyEvent::MP::_spawn"),
            Value::from(port.name()),
            Value::from(init),
        ]);
        msg.extend(args);
        self.send_remote(&PortId::node_port(port.node().clone()), msg);
    }
}
