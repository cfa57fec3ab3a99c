//! Seeds and the Global link: how nodes find each other (reference §6.3–6.5, the address
//! part; groups and the full mesh come with the Global service).
//!
//! - **Seeds**: a task dials every seed address the node is not connected to, at once and
//!   then every `connect_interval` (at least 1 s), learning the seed's node ID from its
//!   greeting.
//! - **Link ports**: on every node-up event for node N we spawn
//!   `AnyEvent::MP::Global::connect(0, <our id>)` on N (the port Perl calls `port{N}`),
//!   monitor it, and send it `addr` (our listeners), `nodes` (the addresses we know, if
//!   any) and `setup`, in that order, exactly as a Perl 1.30 node does (§6.4).
//! - The link port N spawns on us answers `addr` (remember N's listeners, forward them to
//!   the nodes that asked to be fed), `nodes` (remember where those nodes listen, so sending
//!   to them dials them), `seedme1`/`seedme0`, and `find`; replies go out through our own
//!   link port on N. `set`, `reg0`, `reg1` and `setup` are accepted and ignored (groups).
//! - **Master**: the first seed node that comes up is our master; we send it `seedme1`, and
//!   it answers with every address it knows and forwards new ones. When it goes down, another
//!   connected seed node takes its place.
//!
//! Decisions (docs/decisions.md): we do not dial every node we hear of (no full mesh yet):
//! their addresses are recorded and used when a message is sent to them. `addr` is forwarded
//! at once, not after Perl's 2–3 s. A listener bound to `0.0.0.0` is announced with the
//! addresses this host's name resolves to (loopback if none).

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use aemp_proto::handshake::HandshakeError;
use aemp_proto::{Message, NodeId, PortId, Value};

use crate::{NetError, Node, NodeEvent, Reason};

/// The init function name of the Global link port.
pub(crate) const LINK_INIT: &str = "AnyEvent::MP::Global::connect";

/// Global's protocol version (reference §6.1).
const GLOBAL_VERSION: i64 = 0;

/// Seeds and what the node learned about other nodes.
#[derive(Default)]
pub(crate) struct Global {
    seeds: Vec<SocketAddr>,
    /// Our listeners as announced in `addr` (worked out once, at start: it may ask DNS).
    announce: std::sync::OnceLock<Vec<String>>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Listeners announced by (or learned for) each node, as written on the wire.
    addr: HashMap<NodeId, Vec<String>>,
    /// Our link port on each connected node.
    links: HashMap<NodeId, PortId>,
    /// The node found at each seed address.
    seed_nodes: HashMap<SocketAddr, NodeId>,
    /// Nodes that asked us to feed them addresses (`seedme1`).
    seedme: HashSet<NodeId>,
    /// The seed node we feed from.
    master: Option<NodeId>,
    /// Whether `seedme1` went to the master.
    master_asked: bool,
}

impl Global {
    pub(crate) fn new(seeds: Vec<SocketAddr>) -> Self {
        Self {
            seeds,
            announce: std::sync::OnceLock::new(),
            state: Mutex::default(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The seed addresses.
    pub(crate) fn seeds(&self) -> &[SocketAddr] {
        &self.seeds
    }

    /// The listeners each node announced (or that we heard of), as written.
    pub(crate) fn addresses(&self) -> Vec<(NodeId, Vec<String>)> {
        let mut v: Vec<_> = self
            .state()
            .addr
            .iter()
            .map(|(n, a)| (n.clone(), a.clone()))
            .collect();
        v.sort();
        v
    }
}

/// Starts seeding and the link ports of `node` (after its listeners are bound).
pub(crate) fn start(node: &Node) {
    let _ = node.shared.global.announce.set(announced(node));
    let global_node = node.clone();
    node.insert_init(LINK_INIT, move |args: Message| {
        link_init(&global_node, &args)
    });
    let watcher = node.clone();
    node.monitor_nodes(move |event| match event {
        NodeEvent::Up(peer) => node_up(&watcher, peer),
        NodeEvent::Down(peer, _) => node_down(&watcher, peer),
    })
    .detach();
    if !node.shared.global.seeds.is_empty() {
        let node = node.clone();
        node.shared.runtime.clone().spawn(seed_loop(node));
    }
}

/// Dials seeds we are not connected to until the node shuts down.
async fn seed_loop(node: Node) {
    let interval = node
        .shared
        .net
        .connect_interval()
        .max(Duration::from_secs(1));
    // Seeds that turned out to be this node (Perl forgets those too).
    let mut ourselves: HashSet<SocketAddr> = HashSet::new();
    loop {
        for &addr in &node.shared.global.seeds {
            if node.shared.injector_closed() || node.shared.net.is_closing() {
                return;
            }
            if ourselves.contains(&addr) || node.listen_addrs().contains(&addr) {
                ourselves.insert(addr);
                continue;
            }
            if let Some(id) = connected_seed(&node, addr) {
                consider_master(&node, &id);
                continue;
            }
            match node.connect(addr).await {
                Ok(id) => {
                    tracing::debug!(%addr, node = %id, "connected to seed");
                    node.shared
                        .global
                        .state()
                        .seed_nodes
                        .insert(addr, id.clone());
                    // The node-up event may have run before we knew it is a seed.
                    consider_master(&node, &id);
                }
                Err(NetError::Handshake(
                    HandshakeError::SelfConnection | HandshakeError::EchoAttack,
                )) => {
                    tracing::debug!(%addr, "seed is this node itself; not dialled again");
                    ourselves.insert(addr);
                }
                Err(e) => tracing::debug!(%addr, error = %e, "seed not reachable"),
            }
        }
        tokio::time::sleep(interval).await;
        if node.shared.injector_closed() || node.shared.net.is_closing() {
            return;
        }
    }
}

/// The connected node at seed address `addr`, if any: known from an earlier dial, or because
/// the node there announced `addr` as its listener (it dialled us first, or we met it through
/// another seed) — dialling it again would only be refused as a second connection.
fn connected_seed(node: &Node, addr: SocketAddr) -> Option<NodeId> {
    let mut state = node.shared.global.state();
    if let Some(id) = state.seed_nodes.get(&addr) {
        return node.node_is_up(id).then(|| id.clone());
    }
    let written = addr.to_string();
    let id = state
        .addr
        .iter()
        .find(|(id, addrs)| addrs.contains(&written) && node.node_is_up(id))
        .map(|(id, _)| id.clone())?;
    state.seed_nodes.insert(addr, id.clone());
    Some(id)
}

fn node_up(node: &Node, peer: &NodeId) {
    let link = match node.spawn(
        peer,
        LINK_INIT,
        [Value::from(GLOBAL_VERSION), node.id().into()],
    ) {
        Ok(link) => link,
        Err(e) => {
            tracing::warn!(%peer, error = %e, "cannot spawn the Global link");
            return;
        }
    };
    // When the link port dies (or the node goes), forget it.
    let n = node.clone();
    let (peer_id, link_id) = (peer.clone(), link.clone());
    node.monitor(&link, move |_reason| {
        let mut state = n.shared.global.state();
        if state.links.get(&peer_id) == Some(&link_id) {
            state.links.remove(&peer_id);
        }
    })
    .detach();
    let known = {
        let mut state = node.shared.global.state();
        state.links.insert(peer.clone(), link.clone());
        known_nodes_value(node, &mut state, peer)
    };
    let announce: Vec<Value> = node
        .shared
        .global
        .announce
        .get()
        .map(|list| list.iter().map(|a| Value::from(a.as_str())).collect())
        .unwrap_or_default();
    node.send(
        &link,
        Message::from([Value::from("addr"), Value::from(announce)]),
    );
    if let Some(known) = known {
        node.send(&link, Message::from([Value::from("nodes"), known]));
    }
    node.send(&link, Message::from([Value::from("setup")]));
    consider_master(node, peer);
}

/// Makes `peer` our master if it is a seed node and no master is up, and asks it to feed
/// us (`seedme1`) once our link port on it exists.
fn consider_master(node: &Node, peer: &NodeId) {
    let link = {
        let mut state = node.shared.global.state();
        if state.master.as_ref() == Some(peer) {
            if state.master_asked {
                return;
            }
        } else {
            let is_seed = state.seed_nodes.values().any(|id| id == peer);
            let have_master = state.master.as_ref().is_some_and(|m| node.node_is_up(m));
            if !is_seed || have_master {
                return;
            }
            tracing::debug!(master = %peer, "selected new master");
            state.master = Some(peer.clone());
            state.master_asked = false;
        }
        let Some(link) = state.links.get(peer).cloned() else {
            return;
        };
        state.master_asked = true;
        link
    };
    node.send(&link, Message::from([Value::from("seedme1")]));
}

fn node_down(node: &Node, peer: &NodeId) {
    let next = {
        let mut state = node.shared.global.state();
        state.links.remove(peer);
        state.seedme.remove(peer);
        // As Perl's Global does on node-down: a node that left is not announced.
        state.addr.remove(peer);
        if state.master.as_ref() != Some(peer) {
            return;
        }
        state.master = None;
        state.master_asked = false;
        state
            .seed_nodes
            .values()
            .find(|id| *id != peer && node.node_is_up(id))
            .cloned()
    };
    if let Some(next) = next {
        consider_master(node, &next);
    }
}

/// Our listeners as Perl announces them: `ip:port` strings. A listener on `0.0.0.0` is
/// announced with the addresses this host's name resolves to (loopback if none).
fn announced(node: &Node) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for addr in node.listen_addrs() {
        let ips: Vec<IpAddr> = if addr.ip().is_unspecified() {
            let mut ips: Vec<IpAddr> = (crate::config::hostname().as_str(), addr.port())
                .to_socket_addrs()
                .map(|it| it.map(|a| a.ip()).filter(|ip| !ip.is_loopback()).collect())
                .unwrap_or_default();
            if ips.is_empty() {
                ips.push(IpAddr::from([127, 0, 0, 1]));
            }
            ips
        } else {
            vec![addr.ip()]
        };
        for ip in ips {
            let s = SocketAddr::new(ip, addr.port()).to_string();
            if !out.contains(&s) {
                out.push(s);
            }
        }
    }
    out
}

/// The `nodes` map of every node we know the listeners of, but `except`; nodes the link
/// table has forgotten (unused for `monitor_timeout`) are forgotten here too.
fn known_nodes_value(node: &Node, state: &mut State, except: &NodeId) -> Option<Value> {
    state.addr.retain(|id, _| node.shared.net.knows(id));
    nodes_value(state.addr.iter().filter(|(id, _)| *id != except))
}

/// A `nodes` map, or `None` if it would be empty.
fn nodes_value<'a>(entries: impl Iterator<Item = (&'a NodeId, &'a Vec<String>)>) -> Option<Value> {
    let map: Vec<(Value, Value)> = entries
        .map(|(id, addrs)| {
            let list: Vec<Value> = addrs.iter().map(|a| Value::from(a.as_str())).collect();
            (Value::from(id), Value::from(list))
        })
        .collect();
    (!map.is_empty()).then_some(Value::Map(map))
}

/// The init of the link port another node spawns on us (`Global::connect(version, node)`).
fn link_init(node: &Node, args: &Message) -> Result<(), String> {
    let version = args.first().and_then(Value::as_i64);
    if version != Some(GLOBAL_VERSION) {
        return Err(format!("unsupported Global version {:?}", args.first()));
    }
    let peer: NodeId = args
        .decode_element(1)
        .map_err(|e| format!("Global link without a node id: {e}"))?;
    let me = crate::self_port().ok_or("no port context")?;
    // When the spawner goes away, the link port ends normally (as Perl's `mon $node`).
    let n = node.clone();
    let port = me.clone();
    node.monitor(&PortId::node_port(peer.clone()), move |_| {
        let _ = n.kill(&port, Reason::normal());
    })
    .detach();
    let n = node.clone();
    node.receive_default(&me, move |msg: Message| on_link_message(&n, &peer, &msg))
        .map_err(|e| e.to_string())
}

/// One message on the link port `peer` spawned on us, handled on behalf of `peer`.
fn on_link_message(node: &Node, peer: &NodeId, msg: &Message) {
    let global = &node.shared.global;
    let reply = |body: Message| {
        let link = global.state().links.get(peer).cloned();
        match link {
            Some(link) => node.send(&link, body),
            None => tracing::debug!(%peer, "no link port on the peer yet; Global reply dropped"),
        }
    };
    match msg.first().and_then(Value::as_str) {
        Some("addr") => {
            let list = addr_list(msg.get(1));
            learn(node, peer, &list);
            let fed: Vec<PortId> = {
                let state = global.state();
                state
                    .seedme
                    .iter()
                    .filter(|id| *id != peer)
                    .filter_map(|id| state.links.get(id).cloned())
                    .collect()
            };
            if let Some(nodes) = nodes_value(std::iter::once((peer, &list))) {
                for link in fed {
                    node.send(&link, Message::from([Value::from("nodes"), nodes.clone()]));
                }
            }
        }
        Some("nodes") => {
            let Some(Value::Map(entries)) = msg.get(1) else {
                tracing::debug!(%peer, %msg, "Global nodes message without a map");
                return;
            };
            for (id, addrs) in entries {
                let Some(id) = id.as_str().and_then(|s| NodeId::new(s).ok()) else {
                    continue;
                };
                if &id != node.id() {
                    learn(node, &id, &addr_list(Some(addrs)));
                }
            }
        }
        Some("seedme1") => {
            let known = {
                let mut state = global.state();
                state.seedme.insert(peer.clone());
                known_nodes_value(node, &mut state, peer)
            };
            if let Some(known) = known {
                reply(Message::from([Value::from("nodes"), known]));
            }
        }
        Some("seedme0") => {
            global.state().seedme.remove(peer);
        }
        Some("find") => {
            let Some(id) = msg
                .get(1)
                .and_then(Value::as_str)
                .and_then(|s| NodeId::new(s).ok())
            else {
                return;
            };
            let found = {
                let state = global.state();
                state
                    .addr
                    .get(&id)
                    .map(|a| nodes_value(std::iter::once((&id, a))))
            };
            if let Some(Some(nodes)) = found {
                reply(Message::from([Value::from("nodes"), nodes]));
            }
        }
        Some("setup" | "set" | "reg0" | "reg1") => {
            tracing::trace!(%peer, %msg, "Global group message ignored (groups not implemented)");
        }
        _ => tracing::debug!(%peer, %msg, "unknown Global link message ignored"),
    }
}

/// The strings of an address list (non-strings skipped).
fn addr_list(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Records where `id` listens and tells the transport.
fn learn(node: &Node, id: &NodeId, addrs: &[String]) {
    // Known from now on (a listener-less node too), until unused for monitor_timeout.
    node.shared.net.note(id);
    for a in addrs {
        match a.parse::<SocketAddr>() {
            Ok(addr) => node.add_address(id, addr),
            Err(_) => tracing::debug!(node = %id, addr = a, "unusable address ignored"),
        }
    }
    node.shared
        .global
        .state()
        .addr
        .insert(id.clone(), addrs.to_vec());
}
