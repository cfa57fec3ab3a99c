//! Mailboxes: `recv`, timeouts, selective receive that keeps the rest queued in order, and
//! the port's life (SPEC §1 "async mailbox").

#![allow(clippy::unwrap_used, reason = "test code: a failure is a test failure")]

#[path = "common/support.rs"]
mod support;

use std::time::Duration;

use aemp::{Message, Pattern, Reason, RecvError, Value, msg};
use support::{death, died, start, start_on_task, within};

const SHORT: Duration = Duration::from_secs(5);

#[tokio::test]
async fn recv_returns_messages_in_order() {
    let node = start();
    let mut mailbox = node.mailbox();
    assert!(node.port_is_local(mailbox.port()));
    for n in 0..100 {
        node.send(mailbox.port(), msg!["n", n]);
    }
    for n in 0..100 {
        let m = within("a message", mailbox.recv()).await.unwrap();
        assert_eq!(m, msg!["n", n]);
    }
    assert_eq!(mailbox.try_recv(), None);
}

#[tokio::test(start_paused = true)]
async fn recv_timeout_times_out_when_nothing_arrives() {
    let node = start_on_task();
    let mut mailbox = node.mailbox();
    let start = tokio::time::Instant::now();
    assert_eq!(
        mailbox.recv_timeout(Duration::from_secs(30)).await,
        Err(RecvError::Timeout)
    );
    assert!(start.elapsed() >= Duration::from_secs(30));
    node.send(mailbox.port(), msg!["late"]);
    assert_eq!(mailbox.recv_timeout(SHORT).await, Ok(msg!["late"]));
}

#[tokio::test(start_paused = true)]
async fn recv_timeout_gets_a_message_sent_while_waiting() {
    let node = start_on_task();
    let mut mailbox = node.mailbox();
    node.after(Duration::from_secs(3), mailbox.port(), msg!["timer"]);
    assert_eq!(
        mailbox.recv_timeout(Duration::from_secs(10)).await,
        Ok(msg!["timer"])
    );
}

#[tokio::test]
async fn selective_receive_by_pattern_keeps_the_others_in_order() {
    let node = start();
    let mut mailbox = node.mailbox();
    for m in [
        msg!["a", 1],
        msg!["b", 1],
        msg!["c", 1],
        msg!["b", 2],
        msg!["a", 2],
    ] {
        node.send(mailbox.port(), m);
    }
    let b = Pattern::from("b");
    assert_eq!(mailbox.recv_matching(&b, SHORT).await, Ok(msg!["b", 1]));
    assert_eq!(mailbox.recv_matching(&b, SHORT).await, Ok(msg!["b", 2]));
    // A prefix pattern, served from the messages passed over.
    let c1 = Pattern::prefix([Value::from("c"), Value::from(1)]);
    assert_eq!(mailbox.recv_matching(&c1, SHORT).await, Ok(msg!["c", 1]));
    assert_eq!(mailbox.recv().await, Some(msg!["a", 1]));
    // The dispatcher runs on its own thread: the last message may still be on its way.
    assert_eq!(mailbox.recv_timeout(support::WAIT).await, Ok(msg!["a", 2]));
    assert_eq!(mailbox.try_recv(), None);
}

#[tokio::test]
async fn selective_receive_by_predicate_waits_for_a_later_match() {
    let node = start();
    let mut mailbox = node.mailbox();
    let port = mailbox.port().clone();
    let n2 = node.clone();
    let waiting = tokio::spawn(async move {
        let m = mailbox
            .recv_where(
                |m| m.first().and_then(Value::as_i64) == Some(3),
                support::WAIT,
            )
            .await;
        (m, mailbox)
    });
    for n in 1..=4 {
        n2.send(&port, msg![n]);
    }
    let (m, mut mailbox) = within("the match", waiting).await.unwrap();
    assert_eq!(m, Ok(msg![3]));
    let mut rest = Vec::new();
    for _ in 0..3 {
        // The last one may still be on its way from the dispatcher thread.
        rest.push(mailbox.recv_timeout(support::WAIT).await.unwrap());
    }
    assert_eq!(rest, vec![msg![1], msg![2], msg![4]]);
    assert_eq!(mailbox.try_recv(), None);
}

#[tokio::test(start_paused = true)]
async fn selective_receive_times_out_and_keeps_what_it_passed_over() {
    let node = start_on_task();
    let mut mailbox = node.mailbox();
    node.send(mailbox.port(), msg!["x"]);
    node.send(mailbox.port(), msg!["y"]);
    assert_eq!(
        mailbox
            .recv_matching(&Pattern::from("z"), Duration::from_secs(5))
            .await,
        Err(RecvError::Timeout)
    );
    assert_eq!(mailbox.recv().await, Some(msg!["x"]));
    assert_eq!(mailbox.recv().await, Some(msg!["y"]));
}

#[tokio::test]
async fn dropping_the_mailbox_kills_its_port_normally() {
    let node = start();
    let mailbox = node.mailbox();
    let dead = death(&node, mailbox.port());
    drop(mailbox);
    let reason = died(dead).await;
    assert!(reason.is_normal(), "{reason}");
}

#[tokio::test]
async fn after_its_port_is_killed_recv_drains_then_returns_none() {
    let node = start();
    let mut mailbox = node.mailbox();
    let dead = death(&node, mailbox.port());
    node.send(mailbox.port(), msg!["before"]);
    node.kill(mailbox.port(), Reason::die("stop")).unwrap();
    node.send(mailbox.port(), msg!["after"]);
    assert_eq!(died(dead).await, Reason::die("stop"));
    assert_eq!(mailbox.recv().await, Some(msg!["before"]));
    assert_eq!(within("closed", mailbox.recv()).await, None);
    assert_eq!(mailbox.recv_timeout(SHORT).await, Err(RecvError::Closed));
    assert_eq!(
        mailbox.recv_matching(&Pattern::from("x"), SHORT).await,
        Err(RecvError::Closed)
    );
}

#[tokio::test]
async fn a_waiting_recv_wakes_with_none_when_the_port_dies() {
    let node = start();
    let mut mailbox = node.mailbox();
    let port = mailbox.port().clone();
    let waiting = tokio::spawn(async move { mailbox.recv_timeout(support::WAIT).await });
    node.kill(&port, Reason::normal()).unwrap();
    assert_eq!(
        within("recv", waiting).await.unwrap(),
        Err::<Message, _>(RecvError::Closed)
    );
}
