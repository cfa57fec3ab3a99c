//! The chat examples' server and client code over real connections: joining, relaying, and
//! leaving noticed by the server's monitor (both by a kill and by a lost connection).

#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failure is a test failure"
)]

#[path = "../examples/common/chat.rs"]
mod chat;

use std::time::Duration;

use aemp::{Mailbox, Node, Reason};

const WAIT: Duration = Duration::from_secs(10);

async fn line(inbox: &mut Mailbox) -> String {
    chat::text(&inbox.recv_timeout(WAIT).await.unwrap())
}

fn client() -> Node {
    Node::builder().secret(chat::secret()).start().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_join_talk_and_leave() {
    let server_node = Node::builder()
        .secret(chat::secret())
        .bind("127.0.0.1:0".parse().unwrap())
        .start()
        .unwrap();
    let server = chat::serve(&server_node).unwrap();
    let addr = server_node.listen_addrs()[0];

    let alice = client();
    let found = alice.connect(addr).await.unwrap();
    assert_eq!(&found, server_node.id());
    assert_eq!(chat::find_server(&alice, &found).await.unwrap(), server);
    let mut alice_in = chat::join(&alice, &server, "alice");
    assert_eq!(line(&mut alice_in).await, "alice (joins)");

    let bob = client();
    bob.connect(addr).await.unwrap();
    let mut bob_in = chat::join(&bob, &server, "bob");
    assert_eq!(line(&mut alice_in).await, "bob (joins)");
    assert_eq!(line(&mut bob_in).await, "bob (joins)");

    chat::say(&alice, &server, "alice", "hi bob");
    assert_eq!(line(&mut alice_in).await, "alice: hi bob");
    assert_eq!(line(&mut bob_in).await, "alice: hi bob");

    // Bob leaves by killing his port: the server's monitor tells alice why.
    bob.kill(bob_in.port(), Reason::new(vec!["left".into()]))
        .unwrap();
    assert_eq!(line(&mut alice_in).await, r#"bob (quits, ["left"])"#);

    // Carol's node goes away: the monitor fires with the transport error.
    let carol = client();
    carol.connect(addr).await.unwrap();
    let _carol_in = chat::join(&carol, &server, "carol");
    assert_eq!(line(&mut alice_in).await, "carol (joins)");
    server_node.disconnect(carol.id());
    let quit = line(&mut alice_in).await;
    assert!(
        quit.starts_with(&format!(
            r#"carol (quits, ["transport_error","{}""#,
            carol.id()
        )),
        "{quit}"
    );

    // A node without a chat server says so.
    let err = chat::find_server(&alice, alice.id()).await.unwrap_err();
    assert!(err.to_string().contains("runs no chat server"), "{err}");
}
