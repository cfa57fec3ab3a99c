//! A network partition between two hosts: this process (the root network namespace) and an
//! `aemp run` node in a network namespace the test creates, joined by a veth pair whose
//! link the test sets down and up again. Needs `ip netns` (root); skipped with a message
//! where it is refused.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failure is a test failure"
)]

#[path = "common/procs.rs"]
mod procs;
#[path = "common/rc.rs"]
mod rc;

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aemp::{Message, Node, PortId, Reason, Value, msg};
use procs::{NodeProc, SECRET, unique};
use rc::Rc;

const WAIT: Duration = Duration::from_secs(10);

/// A network namespace with one end of a veth pair; the other end stays here. Removed
/// (with both ends) when dropped.
struct Netns {
    name: String,
    here: String,
    /// This side's address and the namespace's.
    host: String,
    inside: String,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Netns {
    fn create() -> Result<Self, String> {
        let id = std::process::id();
        let net = format!("10.231.{}", id % 250);
        let ns = Self {
            name: format!("aemp-part-{id}"),
            here: format!("aemp{id}a"),
            host: format!("{net}.1"),
            inside: format!("{net}.2"),
        };
        let there = format!("aemp{id}b");
        ip(&["netns", "add", &ns.name])?;
        ip(&[
            "link", "add", &ns.here, "type", "veth", "peer", "name", &there,
        ])?;
        ip(&["link", "set", &there, "netns", &ns.name])?;
        ip(&["addr", "add", &format!("{}/24", ns.host), "dev", &ns.here])?;
        ip(&["link", "set", &ns.here, "up"])?;
        let exec = |args: &[&str]| {
            let mut all = vec!["netns", "exec", &ns.name, "ip"];
            all.extend_from_slice(args);
            ip(&all)
        };
        exec(&["addr", "add", &format!("{}/24", ns.inside), "dev", &there])?;
        exec(&["link", "set", &there, "up"])?;
        exec(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    fn set_link(&self, state: &str) {
        ip(&["link", "set", &self.here, state]).unwrap();
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = ip(&["link", "del", &self.here]);
        let _ = ip(&["netns", "del", &self.name]);
    }
}

/// Spawns `aemp::echo` on the peer, links `back` to it (so `back` dies with it, and no
/// late reply reaches it), and returns it with its monitor, in place.
async fn echo(
    node: &Node,
    peer: &NodeProc,
    back: &PortId,
) -> (PortId, tokio::sync::oneshot::Receiver<Reason>) {
    let echo = node
        .spawn(&peer.id, "aemp::echo", Message::empty())
        .unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    node.monitor(&echo, move |r| drop(tx.send(r))).detach();
    node.monitor_link(&echo, back).detach();
    node.call(
        &PortId::node_port(peer.id.clone()),
        msg!["info"],
        Some(WAIT),
    )
    .await
    .unwrap();
    (echo, rx)
}

#[test]
fn a_partition_is_detected_and_healed_without_false_death_or_holes() {
    let ns = match Netns::create() {
        Ok(ns) => ns,
        Err(e) => {
            eprintln!("SKIPPED: cannot create a network namespace here ({e})");
            return;
        }
    };
    let env = Rc::new("partition");
    let name = unique("partitioned");
    env.ok(&[
        "setsecret",
        SECRET,
        "profile",
        &name,
        "setnodeid",
        &name,
        "setbinds",
        &format!("{}:0", ns.inside),
    ]);
    let mut command = Command::new("ip");
    command
        .args([
            "netns",
            "exec",
            &ns.name,
            env!("CARGO_BIN_EXE_aemp"),
            "run",
            &name,
        ])
        .args(["heartbeat_interval", "0.2", "heartbeat_timeout", "2"])
        .env("AEMP_RC", env.path())
        .env_remove("RUST_LOG");
    let peer = NodeProc::spawn(command);
    assert!(
        peer.addr.to_string().starts_with(&ns.inside),
        "{}",
        peer.addr
    );
    let timeout = Duration::from_secs(2);

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let node = Node::builder()
            .secret(SECRET)
            .heartbeat_interval(Duration::from_millis(200))
            .heartbeat_timeout(timeout)
            .monitor_timeout(Duration::from_secs(20))
            .start()
            .unwrap();
        node.connect(peer.addr).await.unwrap();

        // A numbered stream through an echo on the other host, back to us.
        let (tx, mut replies) = tokio::sync::mpsc::unbounded_channel::<u64>();
        let back = node.port(move |m: Message| {
            let _ = tx.send(m[0].as_u64().unwrap());
        });
        let (echo1, dead) = echo(&node, &peer, &back).await;
        let sent = Arc::new(AtomicU64::new(0));
        let fired_at = Arc::new(AtomicU64::new(u64::MAX));
        {
            let (sent, fired_at) = (sent.clone(), fired_at.clone());
            node.monitor(&echo1, move |_| {
                fired_at.store(sent.load(Ordering::SeqCst), Ordering::SeqCst);
            })
            .detach();
        }
        let streamer = {
            let (node, echo1, back, sent) =
                (node.clone(), echo1.clone(), back.clone(), sent.clone());
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(2));
                for _ in 0..2000 {
                    tick.tick().await;
                    let n = sent.fetch_add(1, Ordering::SeqCst);
                    node.send(&echo1, msg![back.to_string(), n]);
                }
            })
        };
        assert_eq!(
            tokio::time::timeout(WAIT, replies.recv()).await.unwrap(),
            Some(0)
        );

        let cut = Instant::now();
        ns.set_link("down");
        let reason = tokio::time::timeout(WAIT, dead).await.unwrap().unwrap();
        let took = cut.elapsed();
        eprintln!("partition: monitor fired after {took:?}");
        assert_eq!(
            reason.values()[2],
            Value::from("heartbeat timeout"),
            "{reason}"
        );
        assert!(
            took <= timeout + Duration::from_secs(1),
            "fired after {took:?}"
        );
        assert!(!node.node_is_up(&peer.id));
        // The other side detects it too, on its own.
        assert!(
            peer.wait_for_log(
                &["WARN", "link lost", node.id().as_str(), "heartbeat timeout"],
                1,
                WAIT
            ),
            "{}",
            peer.log()
        );
        streamer.await.unwrap();
        // Before the cut: a prefix of the stream, in order, without holes.
        let mut expected = 0;
        while let Ok(n) = replies.try_recv() {
            assert_eq!(n, expected, "a hole or reordering before the cut");
            expected += 1;
        }
        let limit = fired_at.load(Ordering::SeqCst);
        assert!(
            expected <= limit,
            "{expected} replies, monitor fired at {limit}"
        );

        ns.set_link("up");
        let healed = Instant::now();
        // Reconnect: the node port answers again.
        let answered = loop {
            match node
                .call(
                    &PortId::node_port(peer.id.clone()),
                    msg!["info"],
                    Some(Duration::from_secs(2)),
                )
                .await
            {
                Ok(_) => break healed.elapsed(),
                Err(e) if healed.elapsed() < WAIT * 2 => eprintln!("not yet: {e}"),
                Err(e) => panic!("no reconnection after the partition healed: {e}"),
            }
        };
        eprintln!("partition healed: reconnected after {answered:?}");
        // No false death: the port reported dead stays dead, with the same reason.
        let (tx, again) = tokio::sync::oneshot::channel();
        node.monitor(&echo1, move |r| drop(tx.send(r))).detach();
        assert_eq!(
            tokio::time::timeout(WAIT, again).await.unwrap().unwrap(),
            reason
        );

        // After the heal: a new stream, complete and in order.
        let (tx, mut replies) = tokio::sync::mpsc::unbounded_channel::<u64>();
        let back2 = node.port(move |m: Message| {
            let _ = tx.send(m[0].as_u64().unwrap());
        });
        let (echo2, _dead2) = echo(&node, &peer, &back2).await;
        for n in 0..500_u64 {
            node.send(&echo2, msg![back2.to_string(), n]);
        }
        for n in 0..500_u64 {
            assert_eq!(
                tokio::time::timeout(WAIT, replies.recv()).await.unwrap(),
                Some(n)
            );
        }
    });
}
