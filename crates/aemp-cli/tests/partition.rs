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
#[path = "common/watch.rs"]
mod watch;

use std::process::Command;
use std::time::{Duration, Instant};

use aemp::{Node, PortId, msg};
use procs::{NodeProc, SECRET, unique};
use rc::Rc;
use watch::{Stream, WAIT, heartbeat_death, monitored_echo, numbers};

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

        // A numbered stream through an echo on the other host, back to a port of ours that
        // dies with the echo, so no late reply reaches it.
        let (back, replies) = numbers(&node);
        let (echo1, dead) = monitored_echo(&node, &peer.id, Some(&back)).await;
        let mut stream = Stream::start(&node, &echo1, 2000, (back, replies));
        stream.flowing().await;

        let cut = Instant::now();
        ns.set_link("down");
        let reason = heartbeat_death(dead, cut, timeout, "partition").await;
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
        let limit = stream.sent().await;
        // Before the cut: a prefix of the stream, in order, without holes (0 came first).
        let mut expected = 1;
        while let Ok(n) = stream.replies.try_recv() {
            assert_eq!(n, expected, "a hole or reordering before the cut");
            expected += 1;
        }
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
        let (back2, mut replies) = numbers(&node);
        let (echo2, _dead2) = monitored_echo(&node, &peer.id, Some(&back2)).await;
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
