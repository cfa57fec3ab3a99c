//! The chat of AEMP's `eg/chat_server` and `eg/chat_client`, shared by the two examples and
//! by `tests/chat.rs`.
//!
//! The server port is registered on its node as `eg_chat_server`. A client joins with
//! `["join", client_port, nick]`; the server monitors the client port and tells everyone
//! `"<nick> (joins)"`. `["privmsg", nick, text]` is relayed to every client as
//! `"<nick>: <text>"`. When a client port dies (the client quit, or its node went away) the
//! monitor fires and everyone hears `"<nick> (quits, <reason>)"`. Clients receive `[text]`.

#![allow(dead_code, reason = "each user needs a different subset")]

use std::collections::HashMap;
use std::error::Error;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aemp::prelude::*;
use aemp::{Mailbox, ValueError};

/// The name the server port is registered under.
pub(crate) const SERVER_NAME: &str = "eg_chat_server";

/// The secret of the example network (overridden by `$AEMP_SECRET`).
pub(crate) fn secret() -> String {
    std::env::var("AEMP_SECRET").unwrap_or_else(|_| "chat-example".to_owned())
}

/// Starts the chat server on `node`; returns its port.
pub(crate) fn serve(node: &Node) -> Result<PortId, Box<dyn Error>> {
    // The clients, by port; touched only on the node's dispatcher, one callback at a time
    // (the mutex is never contended, it only makes the map shareable between callbacks).
    let clients: Arc<Mutex<HashMap<PortId, MonitorGuard>>> = Arc::default();
    let server = node.new_port();

    let say = {
        let (node, clients) = (node.clone(), clients.clone());
        move |text: String| {
            for port in clients.lock().unwrap_or_else(|e| e.into_inner()).keys() {
                node.send(port, msg![text.as_str()]);
            }
        }
    };

    let (n, c, say_join) = (node.clone(), clients, say.clone());
    node.receive(
        &server,
        "join",
        move |m: Message| -> Result<(), ValueError> {
            let port: PortId = m.decode_element(1)?;
            let nick: String = m.decode_element(2)?;
            // When the client's port dies, everyone hears it.
            let (c2, say_quit, gone, who) =
                (c.clone(), say_join.clone(), port.clone(), nick.clone());
            let guard = n.monitor(&port, move |reason| {
                c2.lock().unwrap_or_else(|e| e.into_inner()).remove(&gone);
                say_quit(format!("{who} (quits, {reason})"));
            });
            c.lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(port, guard);
            say_join(format!("{nick} (joins)"));
            Ok(())
        },
    )?;
    node.receive(
        &server,
        "privmsg",
        move |m: Message| -> Result<(), ValueError> {
            let nick: String = m.decode_element(1)?;
            let text: String = m.decode_element(2)?;
            say(format!("{nick}: {text}"));
            Ok(())
        },
    )?;
    node.register(SERVER_NAME, &server);
    Ok(server)
}

/// Asks `server_node` for its chat server port (the node port's `lookup` request).
pub(crate) async fn find_server(
    node: &Node,
    server_node: &NodeId,
) -> Result<PortId, Box<dyn Error>> {
    let reply = node
        .call(
            &PortId::node_port(server_node.clone()),
            msg!["lookup", SERVER_NAME],
            Some(Duration::from_secs(10)),
        )
        .await?;
    match reply.first() {
        Some(Value::Null) | None => Err(format!("{server_node} runs no chat server").into()),
        Some(_) => Ok(reply.decode_element(0)?),
    }
}

/// Joins `server` as `nick`: returns the client's mailbox, which gets every line.
pub(crate) fn join(node: &Node, server: &PortId, nick: &str) -> Mailbox {
    let inbox = node.mailbox();
    node.send(server, msg!["join", inbox.port(), nick]);
    inbox
}

/// Says `text` as `nick`.
pub(crate) fn say(node: &Node, server: &PortId, nick: &str, text: &str) {
    node.send(server, msg!["privmsg", nick, text]);
}

/// The text of a line the server sent.
pub(crate) fn text(line: &Message) -> String {
    line.first()
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}
