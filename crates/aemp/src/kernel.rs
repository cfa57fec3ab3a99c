//! The node port: requests of the form `[tag, args…]` sent to the bare node ID (reference §3).
//!
//! Handled here: `snd`/`relay`, `snd_multiple`, `info`, `time`, `known_nodes`, `up_nodes`,
//! `lookup`, `kil`, `eval` (answered with an error: Rust nodes do not evaluate code),
//! `devnull` and the empty keepalive. The requests that need a connection (`mon0`, `mon1`,
//! `kil0`, `AnyEvent::MP::_spawn`) are handled by the transport. Unknown tags are logged and
//! ignored — never executed.

use std::time::{SystemTime, UNIX_EPOCH};

use aemp_proto::{Message, NodeId, PortId, Value};

use crate::dispatch::{Core, Job};
use crate::monitor::{Origin, Reason};

/// The answer a Rust node gives to `eval` in place of Perl's `$@`.
pub const EVAL_REFUSED: &str = "eval is not supported: aemp (Rust) nodes do not evaluate code";

/// Handles one message to the node port from this node.
pub(crate) fn handle(core: &mut Core, msg: Message) {
    handle_from(core, None, msg);
}

/// Handles one message to the node port; `from` is the sending node for messages that came
/// over a connection (needed by `mon1`, `mon0`, `kil0`).
pub(crate) fn handle_from(core: &mut Core, from: Option<&NodeId>, msg: Message) {
    let mut args = msg.into_inner().into_iter();
    let Some(tag) = args.next() else {
        return; // `[]`: keepalive
    };
    let tag = tag.to_perl_string().unwrap_or_default().into_owned();
    let args: Vec<Value> = args.collect();
    match tag.as_str() {
        "" | "devnull" => {}
        "snd" | "relay" => relay(core, args),
        "snd_multiple" => {
            for one in args {
                if let Value::Array(one) = one {
                    relay(core, one);
                }
            }
        }
        "info" => reply(core, &args, vec![Value::from(core.node.id().as_str())]),
        "time" => reply(core, &args, vec![Value::Float(unix_time())]),
        "known_nodes" => {
            let nodes = core.node.known_nodes();
            reply(
                core,
                &args,
                nodes.iter().map(|n| Value::from(n.as_str())).collect(),
            );
        }
        "up_nodes" => {
            let nodes = core.node.up_nodes();
            reply(
                core,
                &args,
                nodes.iter().map(|n| Value::from(n.as_str())).collect(),
            );
        }
        "lookup" => {
            let mut args = args.into_iter();
            let name = args
                .next()
                .and_then(|n| n.to_perl_string().map(|s| s.into_owned()));
            let found = name.and_then(|n| core.node.lookup(&n));
            let rest: Vec<Value> = args.collect();
            reply(
                core,
                &rest,
                vec![found.map_or(Value::Null, |p| Value::from(p.to_string()))],
            );
        }
        "kil" => {
            let mut args = args.into_iter();
            let name = args
                .next()
                .and_then(|n| n.to_perl_string().map(|s| s.into_owned()));
            match name {
                // "Killing a node port is refused" (SPEC §1; Perl quirk §10 item 8).
                None => tracing::warn!("kil request without a port name ignored"),
                Some(name) if name.is_empty() => tracing::warn!("kil of the node port refused"),
                Some(name) => match PortId::new(core.node.id().clone(), &name) {
                    Ok(port) => core.push(Job::Kill {
                        port,
                        reason: Reason::new(args.collect()).with_origin(Origin::Remote),
                    }),
                    Err(e) => tracing::warn!(%e, "kil request with a bad port name"),
                },
            }
        }
        "eval" => {
            let rest: Vec<Value> = args.into_iter().skip(1).collect();
            reply(core, &rest, vec![Value::from(EVAL_REFUSED)]);
        }
        "mon1" | "mon0" | "kil0" => {
            let Some(from) = from else {
                tracing::warn!(
                    request = tag,
                    "monitor request without a source node ignored"
                );
                return;
            };
            let mut args = args.into_iter();
            let Some(name) = args
                .next()
                .and_then(|n| n.to_perl_string().map(|s| s.into_owned()))
            else {
                tracing::warn!(request = tag, "monitor request without a port name ignored");
                return;
            };
            match tag.as_str() {
                "mon1" => core.peer_monitor(from, &name),
                "mon0" => core.peer_unmonitor(from, &name),
                _ => {
                    let reason = Reason::new(args.collect()).with_origin(Origin::Remote);
                    core.remote_port_died(from, &name, reason);
                }
            }
        }
        "AnyEvent::MP::_spawn" => {
            let mut args = args.into_iter();
            let name = args
                .next()
                .and_then(|n| n.to_perl_string().map(|s| s.into_owned()));
            let init = args
                .next()
                .and_then(|n| n.to_perl_string().map(|s| s.into_owned()));
            match (name, init) {
                (Some(name), Some(init)) if !name.is_empty() => {
                    core.spawn_for_peer(&name, &init, args.collect());
                }
                _ => tracing::warn!("malformed spawn request ignored"),
            }
        }
        other => tracing::info!(request = other, "unknown node request ignored"),
    }
}

/// `snd port, msg…`: relays the rest to any port.
fn relay(core: &mut Core, args: Vec<Value>) {
    let mut args = args.into_iter();
    match args
        .next()
        .as_ref()
        .and_then(Value::to_perl_string)
        .map(|s| s.parse::<PortId>())
    {
        Some(Ok(port)) => core.route(&port, Message::new(args.collect())),
        _ => tracing::warn!("snd request without a valid port"),
    }
}

/// Answers with `snd replyport, extra…, results…` (the `@reply` convention of §3).
fn reply(core: &mut Core, reply: &[Value], results: Vec<Value>) {
    let Some((port, extra)) = reply.split_first() else {
        return; // no reply wanted
    };
    let Some(Ok(port)) = port.to_perl_string().map(|s| s.parse::<PortId>()) else {
        tracing::warn!("node request with an invalid reply port");
        return;
    };
    let mut values = extra.to_vec();
    values.extend(results);
    core.route(&port, Message::new(values));
}

fn unix_time() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}
