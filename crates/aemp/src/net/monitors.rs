//! Our monitors on ports of other nodes: one `mon1` per 0→1 transition and one `mon0` per
//! 1→0 on each port, sent in order with everything else the sender sends to that node. A
//! monitor on a port this node already reported dead fires at once with the reason reported.

use std::collections::HashMap;
use std::sync::Arc;

use aemp_proto::{Message, PortId};

use super::link::send;
use crate::monitor::{Action, Reason};
use crate::node::Shared;

/// Monitors on the ports of one other node, by port name, with their ids.
pub(super) type PortMonitors = HashMap<String, Vec<(u64, Action)>>;

/// Adds a monitor on a port of another node; the first one on that port sends `mon1`
/// ("exactly one mon1 per 0→1 transition", reference §3). If the port was reported dead,
/// the monitor is not added: it is handed back with the reason, to be fired at once.
pub(crate) fn add_monitor(
    shared: &Arc<Shared>,
    port: &PortId,
    id: u64,
    action: Action,
) -> Result<(), Box<(Action, Reason)>> {
    let first = {
        let mut table = shared.net.table();
        if let Some(reason) = table.dead_reason(port) {
            return Err(Box::new((action, reason)));
        }
        let list = table
            .link(port.node())
            .monitors
            .entry(port.name().to_owned())
            .or_default();
        list.push((id, action));
        list.len() == 1
    };
    // A node-port monitor sends nothing: it fires only when the connection fails (§2.8).
    if first && !port.is_node_port() {
        request(shared, port, "mon1");
    }
    Ok(())
}

/// Removes a monitor on a port of another node; the last one sends `mon0`.
pub(crate) fn remove_monitor(shared: &Arc<Shared>, port: &PortId, id: u64) -> Option<Action> {
    let (action, last) = {
        let mut table = shared.net.table();
        let names = &mut table.links.get_mut(port.node())?.monitors;
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

/// Sends `["", tag, port name]` to the port's node.
fn request(shared: &Arc<Shared>, port: &PortId, tag: &str) {
    send(
        shared,
        &PortId::node_port(port.node().clone()),
        Message::from([
            aemp_proto::Value::from(tag),
            aemp_proto::Value::from(port.name()),
        ]),
    );
}
