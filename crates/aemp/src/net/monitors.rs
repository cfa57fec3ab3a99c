//! Our monitors on ports of other nodes: one `mon1` per 0→1 transition and one `mon0` per
//! 1→0 on each port, sent in order with everything else the sender sends to that node.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError};

use aemp_proto::{Message, NodeId, PortId};

use super::link::send;
use crate::monitor::Action;
use crate::node::Shared;

/// Monitors on the ports of one other node, by port name, with their ids.
pub(super) type PortMonitors = HashMap<String, Vec<(u64, Action)>>;

/// Adds a monitor on a port of another node; the first one on that port sends `mon1`
/// ("exactly one mon1 per 0→1 transition", reference §3).
pub(crate) fn add_monitor(shared: &Arc<Shared>, port: &PortId, id: u64, action: Action) {
    let first = {
        let mut all = shared
            .net
            .remote_monitors
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let list = all
            .entry(port.node().clone())
            .or_default()
            .entry(port.name().to_owned())
            .or_default();
        list.push((id, action));
        list.len() == 1
    };
    // A node-port monitor sends nothing: it fires only when the connection fails (§2.8).
    if first && !port.is_node_port() {
        request(shared, port, "mon1");
    }
}

/// Removes a monitor on a port of another node; the last one sends `mon0`.
pub(crate) fn remove_monitor(shared: &Arc<Shared>, port: &PortId, id: u64) -> Option<Action> {
    let (action, last) = {
        let mut all = shared
            .net
            .remote_monitors
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let names = all.get_mut(port.node())?;
        let list = names.get_mut(port.name())?;
        let i = list.iter().position(|(m, _)| *m == id)?;
        let (_, action) = list.remove(i);
        let last = list.is_empty();
        if last {
            names.remove(port.name());
        }
        (action, last)
    };
    if last && !port.is_node_port() {
        request(shared, port, "mon0");
    }
    Some(action)
}

/// Takes the monitors on one remote port (it died), or on all ports of a node (`None`).
pub(crate) fn take_monitors(
    shared: &Arc<Shared>,
    node: &NodeId,
    name: Option<&str>,
) -> Vec<Action> {
    let mut all = shared
        .net
        .remote_monitors
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    match name {
        Some(name) => all
            .get_mut(node)
            .and_then(|names| names.remove(name))
            .map(|list| list.into_iter().map(|(_, a)| a).collect())
            .unwrap_or_default(),
        None => all
            .remove(node)
            .map(|names| names.into_values().flatten().map(|(_, a)| a).collect())
            .unwrap_or_default(),
    }
}

/// Sends `["", tag, port name]` to the port's node.
pub(super) fn request(shared: &Arc<Shared>, port: &PortId, tag: &str) {
    send(
        shared,
        &PortId::node_port(port.node().clone()),
        Message::from([
            aemp_proto::Value::from(tag),
            aemp_proto::Value::from(port.name()),
        ]),
    );
}
