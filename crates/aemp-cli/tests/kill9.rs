//! A peer process killed with SIGKILL: the other side's monitors fire with `transport_error`
//! within `monitor_timeout` (the node in the separate process is `aemp bench serve`).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aemp::{Node, PortId, Value, msg};
use aemp_proto::framing::Framing;

/// Kills the child however the test ends.
struct Reaper(Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn kill_dash_nine_of_a_peer_fires_monitors_with_transport_error() {
    let mut child = Reaper(
        Command::new(env!("CARGO_BIN_EXE_aemp"))
            .args(["bench", "serve", "--framing", "cbor"])
            .env("AEMP_BENCH_SECRET", "kill9-secret")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("aemp bench serve starts"),
    );
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().expect("piped"))
        .read_line(&mut line)
        .expect("an announcement");
    let field = |key: &str| -> String {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(key))
            .unwrap_or_else(|| panic!("no {key} in {line}"))
            .to_owned()
    };
    let addr: std::net::SocketAddr = field("addr=").parse().expect("an address");
    let sink: PortId = field("sink=").parse().expect("a port id");

    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(async {
        let monitor_timeout = Duration::from_secs(5);
        let node = Node::builder()
            .secret("kill9-secret")
            .framings(vec![Framing::Cbor])
            .monitor_timeout(monitor_timeout)
            .start()
            .expect("node starts");
        let peer = node.connect(addr).await.expect("connects to the child");
        assert_eq!(&peer, sink.node());
        let (tx, rx) = tokio::sync::oneshot::channel();
        node.monitor(&sink, move |reason| drop(tx.send(reason)))
            .detach();
        // A round trip, so the child has the monitor before it dies.
        let reply = node
            .call(
                &PortId::node_port(peer.clone()),
                msg!["info"],
                Some(monitor_timeout),
            )
            .await
            .expect("the child answers");
        assert_eq!(reply[0], Value::from(peer.as_str()));

        let killed = Instant::now();
        let _ = child.0.kill(); // SIGKILL
        let reason = tokio::time::timeout(monitor_timeout, rx)
            .await
            .expect("the monitor fires within monitor_timeout")
            .expect("the monitor fired");
        assert_eq!(reason.tag(), Some("transport_error"));
        assert_eq!(reason.values()[1], Value::from(peer.as_str()));
        assert!(killed.elapsed() < monitor_timeout);
        assert!(!node.node_is_up(&peer));
    });
}
