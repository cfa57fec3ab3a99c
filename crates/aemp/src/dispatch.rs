//! The node's dispatcher: one task that owns the port table and runs every callback of the
//! node, one at a time, in the order the work was issued (reference §2.10, §2.15).
//!
//! # How it works
//!
//! The dispatcher task owns a [`Core`]: the port table and the monitors. Work arrives as
//! [`Job`]s in one FIFO. While the dispatcher runs a batch of jobs, that FIFO sits in a
//! thread-local ([`Active`]), so code inside a callback queues a send with one thread-local
//! access and no lock. Code on other threads or tasks injects jobs through the node's
//! channel; the dispatcher drains it between batches, and when a port seems missing (its
//! creation on another thread may still be in the channel).
//!
//! User code never touches the port table. Operations that change it from inside a callback
//! (creating a port, `receive`, `monitor`, ...) are *control* jobs that the dispatcher applies
//! as soon as the callback returns, before the next message: to every later message they look
//! immediate. Deliveries, kills and spawn inits share the FIFO, so their order is the order
//! they were issued, and a send from inside a callback never runs the receiver re-entrantly.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use aemp_proto::{Message, NodeId, PortId, Value};
use tokio::sync::mpsc::UnboundedReceiver;

use crate::kernel;
use crate::monitor::{Action, Reason};
use crate::node::{InitFn, LocalKey, Node, Shared};
use crate::port::{Behaviour, Callback, Outcome, Pattern};

/// Work for the dispatcher.
pub(crate) enum Job {
    /// Deliver a message to a port named by this node.
    Deliver { key: u64, msg: Message },
    /// Deliver a message to a port whose name another node chose (a remote spawn). Boxed to
    /// keep `Job` small: every job is moved through the FIFO.
    DeliverNamed(Box<(PortId, Message)>),
    /// Create a port.
    Install { key: u64, behaviour: Behaviour },
    /// Kill a port (always deferred, reference §2.10).
    Kill { port: PortId, reason: Reason },
    /// Run a spawn init function for a new port.
    Spawn(Box<SpawnJob>),
    /// Run user code, in a port's context if `port` is set (timers, `psub`).
    User { port: Option<u64>, f: UserFn },
    /// Bookkeeping on the core.
    Run(Box<dyn FnOnce(&mut Core) + Send>),
    /// Stop the dispatcher: every port dies with the node (monitors do not fire).
    Shutdown,
}

/// A spawn waiting to run its init function.
pub(crate) struct SpawnJob {
    pub(crate) key: u64,
    pub(crate) init: Option<InitFn>,
    pub(crate) name: String,
    pub(crate) args: Message,
}

/// A `monitor_nodes` callback.
pub(crate) type NodeWatcher = Box<dyn FnMut(&crate::NodeEvent) + Send>;

/// User code run by the dispatcher; an error kills its port with `die`.
pub(crate) type UserFn = Box<dyn FnOnce() -> Result<(), String> + Send>;

/// The part of a dispatcher that code inside callbacks reaches through the thread-local.
pub(crate) struct Active {
    /// Identifies the node (compared by pointer).
    shared: Arc<Shared>,
    /// Pending work in issue order.
    queue: VecDeque<Job>,
    /// Table changes requested by the running code, applied when it returns.
    control: Vec<Job>,
    /// The name of the running port (`SELF`) if another node chose it; the key is in
    /// [`CURRENT`].
    current_name: Option<Arc<str>>,
}

thread_local! {
    /// The active part of the dispatcher running on this thread, during a batch.
    static ACTIVE: RefCell<Option<Box<Active>>> = const { RefCell::new(None) };
    /// Set when `Active::control` has work, so the dispatcher checks it without a borrow.
    static CONTROL_PENDING: Cell<bool> = const { Cell::new(false) };
    /// The key of the port whose code runs (`SELF`); 0 for none (keys start at 1).
    static CURRENT: Cell<u64> = const { Cell::new(0) };
}

/// Runs `f` on the active part of `shared`'s dispatcher, if it is running on this thread
/// (that is, we are inside one of its callbacks).
pub(crate) fn with_active<R>(shared: &Arc<Shared>, f: impl FnOnce(&mut Active) -> R) -> Option<R> {
    ACTIVE.with(|cell| {
        let mut guard = cell.try_borrow_mut().ok()?;
        let active = guard.as_deref_mut()?;
        Arc::ptr_eq(&active.shared, shared).then(|| f(active))
    })
}

/// Queues `job` at the end of `shared`'s FIFO if its dispatcher is running on this thread
/// (taking it out of the option); leaves it there otherwise.
///
/// The job is moved once, from the caller's slot into the queue. (Returning it in a
/// `Result` made the compiler stage it on the stack in pieces, and reading those back cost
/// a store-forwarding stall per local send.)
pub(crate) fn try_push(shared: &Arc<Shared>, job: &mut Option<Job>) {
    ACTIVE.with(|cell| {
        if let Ok(mut guard) = cell.try_borrow_mut()
            && let Some(active) = guard.as_deref_mut()
            && Arc::ptr_eq(&active.shared, shared)
            && let Some(job) = job.take()
        {
            active.queue.push_back(job);
        }
    });
}

/// The key of the port whose code runs on this thread (`SELF`), if any.
pub(crate) fn current_key() -> Option<u64> {
    let key = CURRENT.get();
    (key != 0).then_some(key)
}

/// Runs `f` on whatever dispatcher is running on this thread.
pub(crate) fn with_any_active<R>(f: impl FnOnce(&mut Active) -> R) -> Option<R> {
    ACTIVE.with(|cell| {
        let mut guard = cell.try_borrow_mut().ok()?;
        guard.as_deref_mut().map(f)
    })
}

impl Active {
    /// Queues a table change to apply when the running code returns.
    pub(crate) fn control(&mut self, job: Job) {
        self.control.push(job);
        CONTROL_PENDING.set(true);
    }

    /// `SELF`.
    pub(crate) fn current_port(&self) -> Option<PortId> {
        let key = CURRENT.get();
        (key != 0).then(|| self.shared.port_id(key, self.current_name.as_deref()))
    }

    /// The node whose dispatcher this is.
    pub(crate) fn node(&self) -> Node {
        Node {
            shared: self.shared.clone(),
        }
    }
}

/// The state owned by a node's dispatcher task.
pub(crate) struct Core {
    /// The node this core belongs to.
    pub(crate) node: Node,
    /// The FIFO and friends; `None` while a batch runs (then it is in the thread-local).
    active: Option<Box<Active>>,
    /// Live local ports. The node port is not in here; it is the kernel.
    ports: HashMap<u64, Entry, BuildHasherDefault<KeyHasher>>,
    /// Keys of ports whose names another node chose (remote spawns).
    foreign: HashMap<Arc<str>, u64>,
    /// The monitors of the port being killed that have not fired yet, so that a guard
    /// dropped by an earlier monitor's callback still stops its monitor.
    unfired: VecDeque<(u64, Action)>,
    /// The port a running spawn init may create with `receive` on `SELF`.
    spawning: Option<u64>,
    /// The peer-chosen name of the port a running remote spawn creates.
    spawning_name: Option<Arc<str>>,
    /// Ports whose spawn init has not run yet, with the monitors and registration that wait
    /// for them (so `spawn` then `mon` works, as AEMP promises).
    pending_spawns: HashMap<u64, PendingSpawn, BuildHasherDefault<KeyHasher>>,
    /// The dispatcher's private batch queue, kept between batches for its allocation.
    spare: VecDeque<Job>,
    /// `monitor_nodes` callbacks, by id.
    node_watchers: Vec<(u64, NodeWatcher)>,
    /// Nodes currently up, so watchers see up and down strictly alternate.
    up: std::collections::HashSet<NodeId>,
    /// Monitors peers placed on our ports (`mon1`): (peer, key) → (count, monitor id).
    peer_monitors: HashMap<(NodeId, u64), (u32, u64)>,
    /// Work injected from other threads and tasks (see [`Core::exists_after_catch_up`]).
    injected: UnboundedReceiver<Job>,
    /// Set by [`Job::Shutdown`].
    stopped: bool,
}

/// One live port.
struct Entry {
    behaviour: Behaviour,
    /// Monitors, by id, in registration order.
    monitors: Vec<(u64, Action)>,
    /// The name, if another node chose it (else it is derived from the key).
    name: Option<Arc<str>>,
    /// Whether `register` gave it a name (so its death must clean the registry).
    registered: bool,
}

/// What waits for a spawned port to exist.
#[derive(Default)]
struct PendingSpawn {
    monitors: Vec<(u64, Action)>,
    registered: bool,
}

/// A change to a port's `receive` table.
pub(crate) enum RcvChange {
    Add(Pattern, Callback),
    Default(Callback),
    Remove(Pattern),
    Replace(Callback),
}

impl Core {
    pub(crate) fn new(node: Node, injected: UnboundedReceiver<Job>) -> Self {
        let active = Box::new(Active {
            shared: node.shared.clone(),
            queue: VecDeque::new(),
            control: Vec::new(),
            current_name: None,
        });
        Self {
            node,
            active: Some(active),
            ports: HashMap::default(),
            foreign: HashMap::new(),
            unfired: VecDeque::new(),
            spawning: None,
            spawning_name: None,
            pending_spawns: HashMap::default(),
            peer_monitors: HashMap::new(),
            node_watchers: Vec::new(),
            up: std::collections::HashSet::new(),
            spare: VecDeque::new(),
            injected,
            stopped: false,
        }
    }

    /// Queues work at the end of the FIFO (from the dispatcher's own code).
    pub(crate) fn push(&mut self, job: Job) {
        match &mut self.active {
            Some(active) => active.queue.push_back(job),
            None => ACTIVE.with(|cell| {
                if let Some(active) = cell.borrow_mut().as_deref_mut() {
                    active.queue.push_back(job);
                }
            }),
        }
    }

    /// Takes a job injected from another thread.
    fn accept(&mut self, job: Job) {
        match job {
            // A port created elsewhere exists from the moment its creator has its ID, so
            // anything issued after the creation finds it, whatever path it took.
            Job::Install { key, behaviour } => self.install(key, None, behaviour),
            other => self.push(other),
        }
    }

    /// Queues everything a connection's reader has decoded, in order.
    pub(crate) fn take_inbox(&mut self, inbox: &crate::net::Inbox) {
        inbox.take(|job| self.push(job));
    }

    /// `true` if the port exists, accepting injected work first if it seems not to.
    ///
    /// A port created on another thread exists from the moment its creator has its ID, but
    /// its [`Job::Install`] may still wait in the channel while a callback that learnt the
    /// ID some other way (a lock, a channel the node does not see) uses it. So a miss in the
    /// port table takes in what was injected so far (installs apply at once, other jobs
    /// join the FIFO behind what is queued, keeping every sender's order) and looks again.
    #[cold]
    fn exists_after_catch_up(&mut self, key: u64) -> bool {
        while let Ok(job) = self.injected.try_recv() {
            self.accept(job);
        }
        self.ports.contains_key(&key)
    }

    fn is_idle(&self) -> bool {
        self.active
            .as_ref()
            .is_none_or(|a| a.queue.is_empty() && a.control.is_empty())
    }

    /// Resolves a local port ID to its key.
    fn key(&self, port: &PortId) -> Option<u64> {
        match self.node.shared.local_key(port) {
            LocalKey::Own(key) => Some(key),
            LocalKey::Foreign => self.foreign.get(port.name()).copied(),
            LocalKey::NodePort | LocalKey::Remote => None,
        }
    }

    fn port_id(&self, key: u64) -> PortId {
        let foreign = self.ports.get(&key).and_then(|e| e.name.clone());
        self.node.shared.port_id(key, foreign.as_deref())
    }

    pub(crate) fn install(&mut self, key: u64, name: Option<Arc<str>>, behaviour: Behaviour) {
        if let Some(name) = &name {
            self.foreign.insert(name.clone(), key);
        }
        self.ports.insert(
            key,
            Entry {
                behaviour,
                monitors: Vec::new(),
                name,
                registered: false,
            },
        );
    }

    /// Sends a message to any port, local or remote, in issue order.
    pub(crate) fn route(&mut self, port: &PortId, msg: Message) {
        match self.node.shared.local_key(port) {
            LocalKey::Own(key) => self.push(Job::Deliver { key, msg }),
            LocalKey::Foreign => self.push(Job::DeliverNamed(Box::new((port.clone(), msg)))),
            LocalKey::NodePort => self.push(Job::Run(Box::new(move |core: &mut Self| {
                kernel::handle(core, msg);
            }))),
            LocalKey::Remote => self.node.shared.send_remote(port, msg),
        }
    }

    /// Changes a port's `receive` table; `false` if the port does not exist.
    pub(crate) fn change(&mut self, port: &PortId, change: RcvChange) -> bool {
        let Some(key) = self.key(port) else {
            return false;
        };
        if !self.ports.contains_key(&key)
            && !self.exists_after_catch_up(key)
            && self.spawning == Some(key)
        {
            // A spawn init calling `receive` on SELF creates its port (reference §2.11).
            let name = self.spawning_name.clone();
            self.install(key, name, Behaviour::Empty);
        }
        let Some(entry) = self.ports.get_mut(&key) else {
            return false;
        };
        let b = &mut entry.behaviour;
        match change {
            RcvChange::Add(p, cb) => b.add_rule(p, cb),
            RcvChange::Default(cb) => b.set_default(cb),
            RcvChange::Remove(p) => b.remove_rules(&p),
            RcvChange::Replace(cb) => *b = Behaviour::Callback(cb),
        }
        true
    }

    /// Adds a monitor; fires it at once with `no_such_port` if the port does not exist.
    pub(crate) fn monitor(&mut self, port: &PortId, id: u64, action: Action) {
        if !self.node.shared.is_local(port) {
            if let Err(dead) = crate::net::add_monitor(&self.node.shared, port, id, action) {
                // Reported dead before: it stays dead (no false death).
                let (action, reason) = *dead;
                self.fire(action, reason);
            }
            return;
        }
        if port.is_node_port() {
            // Our own node port lives as long as the node: the monitor can never fire.
            return;
        }
        let key = self.key(port);
        if let Some(pending) = key.and_then(|k| self.pending_spawns.get_mut(&k)) {
            pending.monitors.push((id, action));
            return;
        }
        if let Some(k) = key
            && !self.ports.contains_key(&k)
        {
            self.exists_after_catch_up(k);
        }
        match key.and_then(|k| self.ports.get_mut(&k)) {
            Some(entry) => entry.monitors.push((id, action)),
            None => self.fire(action, Reason::no_such_port(port)),
        }
    }

    pub(crate) fn unmonitor(&mut self, port: &PortId, id: u64) {
        if !self.node.shared.is_local(port) {
            drop(crate::net::remove_monitor(&self.node.shared, port, id));
            return;
        }
        self.unfired.retain(|(m, _)| *m != id);
        let Some(key) = self.key(port) else {
            return;
        };
        if let Some(entry) = self.ports.get_mut(&key) {
            entry.monitors.retain(|(m, _)| *m != id);
        }
        if let Some(pending) = self.pending_spawns.get_mut(&key) {
            pending.monitors.retain(|(m, _)| *m != id);
        }
    }

    /// Marks a port as registered under a name; `false` if it does not exist (and is not
    /// about to be spawned).
    pub(crate) fn mark_registered(&mut self, port: &PortId) -> bool {
        let Some(key) = self.key(port) else {
            return false;
        };
        if let Some(pending) = self.pending_spawns.get_mut(&key) {
            pending.registered = true;
            return true;
        }
        if !self.ports.contains_key(&key) && !self.exists_after_catch_up(key) {
            return false;
        }
        match self.ports.get_mut(&key) {
            Some(entry) => {
                entry.registered = true;
                true
            }
            None => false,
        }
    }

    /// Notes that `key` will be created by a queued spawn init.
    pub(crate) fn expect_spawn(&mut self, key: u64) {
        self.pending_spawns.insert(key, PendingSpawn::default());
    }

    /// Kills a local port now (the deferred kill job, or a callback that failed).
    pub(crate) fn kill_now(&mut self, key: u64, reason: Reason) {
        let id = self.port_id(key);
        if !self.ports.contains_key(&key) && !self.exists_after_catch_up(key) {
            return;
        }
        let Some(mut entry) = self.ports.remove(&key) else {
            return;
        };
        if let Some(name) = &entry.name {
            self.foreign.remove(name);
        }
        if entry.registered {
            self.node.shared.unregister_port(&id);
        }
        if entry.monitors.is_empty() && !reason.is_normal() {
            tracing::info!(port = %id, %reason, "unmonitored local port died");
        }
        // One at a time, applying table changes in between: a monitor callback that drops
        // the guard of a later monitor stops it, as dropping a guard promises.
        let outer = std::mem::replace(
            &mut self.unfired,
            std::mem::take(&mut entry.monitors).into(),
        );
        while let Some((_, action)) = self.unfired.pop_front() {
            self.fire(action, reason.clone());
            self.apply_control();
        }
        self.unfired = outer;
        // Dropping the callbacks runs user `Drop` code, which may call the API: fine here,
        // nothing is borrowed.
        drop(entry);
    }

    /// Carries out a monitor's action.
    pub(crate) fn fire(&mut self, action: Action, reason: Reason) {
        match action {
            Action::Callback(f) => self.run_user(
                None,
                Box::new(move || {
                    f(reason);
                    Ok(())
                }),
            ),
            Action::Kill(port) => {
                if !reason.is_normal() {
                    self.push(Job::Kill { port, reason });
                }
            }
            Action::Send(port, mut msg) => {
                msg.extend(reason.into_values());
                self.route(&port, msg);
            }
            Action::Peer(node, name) => {
                if let Some(key) = self.key(&self.node.shared.port_id_named(&name)) {
                    self.peer_monitors.remove(&(node.clone(), key));
                }
                let mut values = vec![Value::from("kil0"), Value::from(name)];
                values.extend(reason.into_values());
                self.node_request(&node, values);
            }
        }
    }

    /// Sends `["", values…]` to the node port of `node`.
    pub(crate) fn node_request(&mut self, node: &NodeId, values: Vec<Value>) {
        self.node
            .shared
            .send_remote(&PortId::node_port(node.clone()), Message::new(values));
    }

    /// A connection to `node` came up.
    pub(crate) fn node_up(&mut self, node: &NodeId) {
        if self.up.insert(node.clone()) {
            self.tell_watchers(&crate::NodeEvent::Up(node.clone()));
        }
    }

    /// Adds or removes a `monitor_nodes` callback.
    pub(crate) fn watch_nodes(&mut self, id: u64, watcher: Option<NodeWatcher>) {
        match watcher {
            Some(w) => self.node_watchers.push((id, w)),
            None => self.node_watchers.retain(|(i, _)| *i != id),
        }
    }

    fn tell_watchers(&mut self, event: &crate::NodeEvent) {
        for (_, watcher) in &mut self.node_watchers {
            // "mon_nodes callbacks: exceptions caught, logged" (reference §2.14).
            if let Err(panic) = catch_unwind(AssertUnwindSafe(|| watcher(event))) {
                tracing::error!(
                    error = panic_text(&panic),
                    "monitor_nodes callback panicked"
                );
            }
        }
    }

    /// The connection to `node` is gone (or never came): every monitor on its ports fires.
    ///
    /// `actions` are the monitors the transport took from the lost link (their ports are
    /// recorded as dead already).
    pub(crate) fn node_down(&mut self, node: &NodeId, reason: &Reason, actions: Vec<Action>) {
        if self.up.remove(node) {
            self.tell_watchers(&crate::NodeEvent::Down(node.clone(), reason.clone()));
        }
        for action in actions {
            self.fire(action, reason.clone());
        }
        // What the peer monitored here is forgotten: its side fired with the same reason.
        let gone: Vec<(u64, u64)> = self
            .peer_monitors
            .iter()
            .filter(|((n, _), _)| n == node)
            .map(|((_, key), (_, id))| (*key, *id))
            .collect();
        for (key, id) in gone {
            self.peer_monitors.remove(&(node.clone(), key));
            if let Some(entry) = self.ports.get_mut(&key) {
                entry.monitors.retain(|(m, _)| *m != id);
            }
        }
    }

    /// `kil0` from `node`: its port `name` died; our monitors on it fire.
    pub(crate) fn remote_port_died(&mut self, node: &NodeId, name: &str, reason: Reason) {
        for action in crate::net::port_died(&self.node.shared, node, name, &reason) {
            self.fire(action, reason.clone());
        }
    }

    /// `mon1` from `node` for our port `name` (reference-counted per peer, unlike Perl).
    pub(crate) fn peer_monitor(&mut self, node: &NodeId, name: &str) {
        let port = self.node.shared.port_id_named(name);
        let key = self.key(&port);
        if let Some(k) = key
            && let Some((count, _)) = self.peer_monitors.get_mut(&(node.clone(), k))
        {
            *count += 1;
            return;
        }
        let id = self.node.shared.next_monitor_id();
        let exists = key
            .is_some_and(|k| self.ports.contains_key(&k) || self.pending_spawns.contains_key(&k));
        if let (true, Some(k)) = (exists, key) {
            self.peer_monitors.insert((node.clone(), k), (1, id));
        }
        self.monitor(&port, id, Action::Peer(node.clone(), name.to_owned()));
    }

    /// `mon0` from `node` for our port `name`.
    pub(crate) fn peer_unmonitor(&mut self, node: &NodeId, name: &str) {
        let port = self.node.shared.port_id_named(name);
        let Some(key) = self.key(&port) else {
            return;
        };
        let slot = (node.clone(), key);
        let Some((count, id)) = self.peer_monitors.get_mut(&slot) else {
            return;
        };
        *count -= 1;
        if *count == 0 {
            let id = *id;
            self.peer_monitors.remove(&slot);
            self.unmonitor(&port, id);
        }
    }

    /// `AnyEvent::MP::_spawn` from a peer: run `init` for a port named `name` by the peer.
    pub(crate) fn spawn_for_peer(&mut self, name: &str, init: &str, args: Message) {
        if self.foreign.contains_key(name) {
            tracing::warn!(name, "spawn of a port name that is already in use refused");
            return;
        }
        let key = self.node.shared.next_key();
        let name: Arc<str> = Arc::from(name);
        self.foreign.insert(name.clone(), key);
        self.spawning_name = Some(name);
        let init_fn = self.node.shared.init(init);
        self.pending_spawns.insert(key, PendingSpawn::default());
        self.spawn(key, init_fn, init, args);
        self.spawning_name = None;
        if !self.ports.contains_key(&key) {
            self.foreign.retain(|_, k| *k != key);
        }
    }

    /// Runs one job (outside any thread-local borrow).
    fn run_job(&mut self, job: Job) {
        match job {
            Job::Deliver { key, msg } => self.deliver(key, msg),
            Job::DeliverNamed(named) => match self.foreign.get(named.0.name()) {
                Some(&key) => {
                    let name = self.ports.get(&key).and_then(|e| e.name.clone());
                    set_current(Some(key), name);
                    self.deliver(key, named.1);
                    // The fast path (`Job::Deliver`) sets only the key: never leave a
                    // foreign name behind for the next port's `SELF`.
                    set_current(None, None);
                }
                None => {
                    let port = &named.0;
                    tracing::debug!(%port, "message to a port that does not exist; dropped");
                }
            },
            Job::Install { key, behaviour } => self.install(key, None, behaviour),
            Job::Kill { port, reason } => match self.key(&port) {
                Some(key) => self.kill_now(key, reason),
                None => tracing::debug!(%port, "kill of a port that does not exist"),
            },
            Job::Spawn(job) => {
                let SpawnJob {
                    key,
                    init,
                    name,
                    args,
                } = *job;
                self.spawn(key, init, &name, args);
            }
            Job::User { port, f } => self.run_user(port, f),
            Job::Run(f) => f(self),
            Job::Shutdown => self.stopped = true,
        }
    }

    #[inline]
    fn deliver(&mut self, key: u64, msg: Message) {
        if let Some(entry) = self.ports.get_mut(&key) {
            let outcome = handle(entry, msg);
            self.after(key, outcome);
            return;
        }
        self.deliver_late(key, msg);
    }

    /// A message to a port not in the table: its creation may still wait in the channel.
    #[cold]
    #[inline(never)]
    fn deliver_late(&mut self, key: u64, msg: Message) {
        if self.exists_after_catch_up(key)
            && let Some(entry) = self.ports.get_mut(&key)
        {
            let outcome = handle(entry, msg);
            self.after(key, outcome);
        } else {
            tracing::debug!(key, "message to a port that does not exist; dropped");
        }
    }

    /// Acts on what a port's code asked for.
    #[inline]
    fn after(&mut self, key: u64, outcome: Outcome) {
        match outcome {
            Outcome::Continue => {}
            Outcome::Done => self.finish(key, Reason::normal()),
            Outcome::Die(text) => self.finish(key, Reason::die(text)),
        }
    }

    /// Ends a port whose code finished or failed: it takes no more messages at once, and its
    /// kill is queued like any `kil` (deferred, reference §2.10), so monitors added by work
    /// issued before it see the real reason.
    fn finish(&mut self, key: u64, reason: Reason) {
        self.apply_control();
        if let Some(entry) = self.ports.get_mut(&key) {
            // Dropping the old behaviour runs user code: fine, nothing is borrowed.
            drop(std::mem::replace(&mut entry.behaviour, Behaviour::Dying));
            let port = self.port_id(key);
            self.push(Job::Kill { port, reason });
        }
    }

    /// Runs a spawn init in the new port's context (reference §2.11).
    fn spawn(&mut self, key: u64, init: Option<InitFn>, name: &str, args: Message) {
        match init {
            Some(init) => self.run_init(key, &init, args),
            None => tracing::warn!(init = name, "spawn of an unknown init function"),
        }
        // Hand what waited for the port to it, or report that it never came to be.
        let pending = self.pending_spawns.remove(&key).unwrap_or_default();
        let port = self.node.shared.port_id(key, self.spawning_name.as_deref());
        match self.ports.get_mut(&key) {
            Some(entry) => {
                entry.monitors.extend(pending.monitors);
                entry.registered |= pending.registered;
            }
            None => {
                if pending.registered {
                    self.node.shared.unregister_port(&port);
                }
                for (_, action) in pending.monitors {
                    self.fire(action, Reason::no_such_port(&port));
                }
            }
        }
    }

    fn run_init(&mut self, key: u64, init: &InitFn, args: Message) {
        self.spawning = Some(key);
        let previous = set_current(Some(key), self.spawning_name.clone());
        let result = catch_unwind(AssertUnwindSafe(|| init(args)))
            .unwrap_or_else(|panic| Err(panic_text(&panic)));
        set_current(previous.0, previous.1);
        // The init's `receive` calls create the port: apply them while it may.
        self.apply_control();
        self.spawning = None;
        if let Err(text) = result {
            self.finish(key, Reason::die(text));
        }
    }

    /// Runs user code with `SELF` set; an error or panic kills that port with `die`.
    pub(crate) fn run_user(&mut self, port: Option<u64>, f: UserFn) {
        let previous = set_current(port, None);
        let result =
            catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|panic| Err(panic_text(&panic)));
        set_current(previous.0, previous.1);
        if let Err(text) = result {
            match port {
                Some(key) => self.finish(key, Reason::die(text)),
                None => tracing::error!(error = text, "callback outside any port failed"),
            }
        }
    }

    /// Applies the table changes requested by code that just ran.
    #[inline]
    fn apply_control(&mut self) {
        if CONTROL_PENDING.replace(false) {
            self.apply_pending_control();
        }
    }

    #[cold]
    fn apply_pending_control(&mut self) {
        loop {
            let control = ACTIVE.with(|cell| {
                cell.borrow_mut()
                    .as_deref_mut()
                    .map(|a| std::mem::take(&mut a.control))
                    .unwrap_or_default()
            });
            if control.is_empty() {
                return;
            }
            for job in control {
                self.run_job(job);
            }
        }
    }
}

/// Sets `SELF` on this thread's dispatcher; returns the previous value.
fn set_current(key: Option<u64>, name: Option<Arc<str>>) -> (Option<u64>, Option<Arc<str>>) {
    let previous_key = CURRENT.replace(key.unwrap_or(0));
    let previous_name = with_any_active(|a| std::mem::replace(&mut a.current_name, name)).flatten();
    ((previous_key != 0).then_some(previous_key), previous_name)
}

/// How many jobs a dispatcher runs before it lets other tasks on its thread run.
const BATCH: usize = 4096;

/// The dispatcher loop, on the node's own thread: runs until [`Job::Shutdown`] or until every
/// handle to the node's channel is gone.
pub(crate) fn run(mut core: Core, runtime: &tokio::runtime::Handle) {
    while !core.stopped {
        while let Ok(job) = core.injected.try_recv() {
            core.accept(job);
        }
        if core.is_idle() {
            // Work often follows within microseconds (the reply of a request–reply exchange,
            // the next read of a busy connection), and waking a parked thread costs more than
            // that: look again for a short while, yielding the CPU, before parking.
            if let Some(job) = spin_for_work(&mut core) {
                core.accept(job);
                continue;
            }
            // Outside the runtime's context: blocking here is allowed.
            match core.injected.blocking_recv() {
                Some(job) => core.accept(job),
                None => break,
            }
            continue;
        }
        // Callbacks run in the node's runtime context, so they may spawn tasks and timers.
        let _context = runtime.enter();
        run_batch(&mut core);
    }
    tracing::debug!(node = %core.node.id(), "node shut down");
}

/// How long an idle dispatcher thread keeps looking for work before it parks.
const SPIN: std::time::Duration = std::time::Duration::from_micros(50);

/// Polls for injected work for up to [`SPIN`], yielding the CPU between polls.
fn spin_for_work(core: &mut Core) -> Option<Job> {
    let start = std::time::Instant::now();
    loop {
        if let Ok(job) = core.injected.try_recv() {
            return Some(job);
        }
        if start.elapsed() >= SPIN {
            return None;
        }
        std::thread::yield_now();
    }
}

/// The dispatcher loop as a task on the runtime (see [`crate::Dispatcher::Task`]).
pub(crate) async fn run_task(mut core: Core) {
    while !core.stopped {
        while let Ok(job) = core.injected.try_recv() {
            core.accept(job);
        }
        if core.is_idle() {
            match core.injected.recv().await {
                Some(job) => core.accept(job),
                None => break,
            }
            continue;
        }
        run_batch(&mut core);
        // Let the runtime's other tasks run between batches.
        tokio::task::yield_now().await;
    }
    tracing::debug!(node = %core.node.id(), "node shut down");
}

/// Parks the FIFO in the thread-local and runs up to [`BATCH`] jobs.
///
/// Jobs are taken from the shared FIFO a whole queue at a time (the two queues are swapped,
/// keeping both allocations), so running a job costs no thread-local borrow; what the jobs
/// queue meanwhile lands in the shared FIFO, behind them.
fn run_batch(core: &mut Core) {
    let Some(active) = core.active.take() else {
        return;
    };
    ACTIVE.with(|cell| *cell.borrow_mut() = Some(active));
    let mut local = std::mem::take(&mut core.spare);
    let mut budget = BATCH;
    while budget > 0 {
        core.apply_control();
        let Some(job) = local.pop_front() else {
            let refilled = ACTIVE.with(|cell| {
                let mut guard = cell.borrow_mut();
                guard.as_deref_mut().is_some_and(|a| {
                    std::mem::swap(&mut local, &mut a.queue);
                    !local.is_empty()
                })
            });
            if refilled {
                continue;
            }
            break;
        };
        budget -= 1;
        match job {
            Job::Deliver { key, msg } => {
                // SELF for the callback about to run.
                CURRENT.set(key);
                core.deliver(key, msg);
            }
            other => {
                // Other jobs set SELF themselves where they run port code.
                CURRENT.set(0);
                core.run_job(other);
                if core.stopped {
                    break;
                }
            }
        }
    }
    core.apply_control();
    CURRENT.set(0);
    let mut active = ACTIVE.with(|cell| cell.borrow_mut().take());
    if let Some(a) = active.as_deref_mut()
        && !local.is_empty()
    {
        // Out of budget: what is left is older than what was queued meanwhile.
        local.append(&mut a.queue);
        std::mem::swap(&mut local, &mut a.queue);
    }
    core.spare = local;
    core.active = active;
}

/// Runs a port's code on one message; a panic becomes [`Outcome::Die`].
#[inline]
fn handle(entry: &mut Entry, msg: Message) -> Outcome {
    catch_unwind(AssertUnwindSafe(|| entry.behaviour.handle(msg)))
        .unwrap_or_else(|panic| Outcome::Die(panic_text(&panic)))
}

/// The text of a panic payload, as Perl's `die` message would be.
pub(crate) fn panic_text(panic: &Box<dyn Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "callback panicked".to_owned()
    }
}

/// A hasher for port keys: they are counters, so one multiplication spreads them well.
#[derive(Default)]
pub(crate) struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}
