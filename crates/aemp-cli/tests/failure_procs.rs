//! Peers that fail as real processes do: stopped with SIGSTOP (idle and under load), flooded
//! while stopped, terminated, refusing, and a listener under thousands of silent connections
//! or at its file-descriptor limit. The peers are `aemp run` processes
//! (`common/procs.rs`); the watcher is a node in this process.

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

use std::net::TcpStream;
use std::time::{Duration, Instant};

use aemp::Node;
use procs::{NodeProc, SECRET, profile, unique};
use rc::Rc;
use watch::{Stream, WAIT, heartbeat_death, info, monitored_echo, numbers};

/// The watcher: heartbeats every 200 ms, a link silent for 2 s is dead.
fn watcher() -> Node {
    Node::builder()
        .secret(SECRET)
        .heartbeat_interval(Duration::from_millis(200))
        .heartbeat_timeout(Duration::from_secs(2))
        .monitor_timeout(Duration::from_secs(10))
        .start()
        .unwrap()
}

#[test]
fn a_stopped_peer_is_detected_idle_and_loaded_and_stays_dead_after_it_resumes() {
    let env = Rc::new("sigstop");
    let name = unique("stopped");
    profile(&env, &name);
    let peer = NodeProc::run(
        &env,
        &name,
        &["heartbeat_interval", "0.2", "heartbeat_timeout", "2"],
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let node = watcher();
        node.connect(peer.addr).await.unwrap();
        let timeout = Duration::from_secs(2);

        // Idle: nothing flows but heartbeats.
        let (_echo, dead) = monitored_echo(&node, &peer.id, None).await;
        let stopped = Instant::now();
        peer.signal("STOP");
        heartbeat_death(dead, stopped, timeout, "SIGSTOP, idle link").await;
        assert!(!node.node_is_up(&peer.id));
        peer.signal("CONT");
        // The stopped node sees the link gone when it runs again.
        assert!(
            peer.wait_for_log(&["WARN", "link lost", node.id().as_str()], 1, WAIT),
            "{}",
            peer.log()
        );

        // Loaded: 500 numbered messages a second through an echo back to us.
        info(&node, &peer.id).await;
        let (echo, dead) = monitored_echo(&node, &peer.id, None).await;
        let mut stream = Stream::start(&node, &echo, 2500, numbers(&node));
        stream.flowing().await;
        let stopped = Instant::now();
        peer.signal("STOP");
        heartbeat_death(dead, stopped, timeout, "SIGSTOP, 500 msg/s").await;
        let limit = stream.sent().await;
        peer.signal("CONT");
        assert!(
            peer.wait_for_log(&["WARN", "link lost", node.id().as_str()], 2, WAIT),
            "{}",
            peer.log()
        );
        // Reconnect and let the peer hand over whatever it still had for us: a round trip
        // after everything it read.
        info(&node, &peer.id).await;
        let mut last = None;
        while let Ok(n) = stream.replies.try_recv() {
            assert!(last.is_none_or(|l| n > l), "reordered: {n} after {last:?}");
            assert!(
                n < limit,
                "message {n} was sent after the monitor fired ({limit}) and delivered"
            );
            last = Some(n);
        }
    });
}

#[test]
fn a_flood_to_a_stopped_peer_overflows_with_bounded_memory() {
    let max_queue: u64 = 64 << 20;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_aemp"))
        .args(["bench", "flood", "--seconds", "2", "--json"])
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let line = String::from_utf8(out.stdout).unwrap();
    let r: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
    eprintln!("{line}");
    assert_eq!(r["max_queue"].as_u64(), Some(max_queue));
    assert_eq!(r["reason"][2], "send queue overflow", "{line}");
    let peak = r["peak_rss_bytes"].as_u64().unwrap();
    assert!(peak < max_queue + (64 << 20), "peak RSS {peak} B: {line}");
    assert!(r["overflow_after_s"].as_f64().unwrap() < 2.0, "{line}");
}

#[test]
fn a_terminated_node_is_seen_down_at_once() {
    let env = Rc::new("sigterm");
    let name = unique("terminated");
    profile(&env, &name);
    let mut peer = NodeProc::run(&env, &name, &[]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        // Heartbeats and monitor_timeout far away: only the closed link can be this fast.
        let node = Node::builder()
            .secret(SECRET)
            .heartbeat_timeout(Duration::from_secs(60))
            .monitor_timeout(Duration::from_secs(60))
            .start()
            .unwrap();
        node.connect(peer.addr).await.unwrap();
        let (_echo, dead) = monitored_echo(&node, &peer.id, None).await;
        let start = Instant::now();
        peer.signal("TERM");
        let reason = tokio::time::timeout(WAIT, dead).await.unwrap().unwrap();
        eprintln!("SIGTERM: monitor fired after {:?}", start.elapsed());
        assert_eq!(reason.tag(), Some("transport_error"));
        assert!(start.elapsed() < Duration::from_secs(3));
        assert!(!node.node_is_up(&peer.id));
    });
    assert_eq!(peer.wait_exit(WAIT), Some(0));
    assert!(peer.log().contains("shut down"), "{}", peer.log());
}

#[test]
fn refused_handshakes_and_lost_links_are_warnings_with_address_and_node() {
    let env = Rc::new("warn-logs");
    let name = unique("logging");
    profile(&env, &name);
    let peer = NodeProc::run(&env, &name, &[]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let intruder = Node::builder()
            .id(unique("intruder"))
            .secret("not the secret")
            .start()
            .unwrap();
        assert!(intruder.connect(peer.addr).await.is_err());
        assert!(
            peer.wait_for_log(
                &[
                    "WARN",
                    "handshake refused",
                    "127.0.0.1:",
                    intruder.id().as_str(),
                    "secret"
                ],
                1,
                WAIT
            ),
            "{}",
            peer.log()
        );
        let friend = Node::builder().secret(SECRET).start().unwrap();
        friend.connect(peer.addr).await.unwrap();
        friend.disconnect(&peer.id);
        assert!(
            peer.wait_for_log(
                &["WARN", "link lost", friend.id().as_str(), "127.0.0.1:"],
                1,
                WAIT
            ),
            "{}",
            peer.log()
        );
    });
}

/// How many file descriptors this process may open.
fn fd_limit() -> u64 {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|l| {
            l.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(1024)
}

/// CPU the process used over `window`, as a share of one core.
fn cpu_share(peer: &NodeProc, window: Duration) -> f64 {
    let before = peer.cpu();
    std::thread::sleep(window);
    (peer.cpu() - before).as_secs_f64() / window.as_secs_f64()
}

/// `aemp cal NODE time` from a client process; its wall time.
fn cal_time(env: &Rc, node: &str) -> Duration {
    let start = Instant::now();
    let t: f64 = env
        .ok(&["cal", node, "time", "--timeout", "10"])
        .trim()
        .parse()
        .unwrap();
    assert!(t > 1.6e9);
    start.elapsed()
}

#[test]
fn the_listener_serves_clients_while_5000_silent_connections_are_held() {
    let wanted: u64 = 5000;
    let limit = fd_limit();
    if limit < wanted + 200 {
        eprintln!(
            "SKIPPED: this process may open only {limit} files, the test holds {wanted} connections"
        );
        return;
    }
    let env = Rc::new("silent-flood");
    let name = unique("flooded");
    profile(&env, &name);
    let peer = NodeProc::run(&env, &name, &[]);
    env.ok(&["profile", "aemp", "setseeds", &peer.addr.to_string()]);
    let mut held = Vec::new();
    for _ in 0..wanted {
        held.push(TcpStream::connect(peer.addr).unwrap());
    }
    let cpu = cpu_share(&peer, Duration::from_secs(2));
    let mut cals: Vec<Duration> = (0..5).map(|_| cal_time(&env, &name)).collect();
    cals.sort();
    eprintln!(
        "5000 silent connections: node CPU {:.1}% of a core, aemp cal {:?} (median of 5, process start included)",
        cpu * 100.0,
        cals[2]
    );
    assert!(cpu < 0.5, "the node spins: {:.0}% of a core", cpu * 100.0);
    assert!(
        peer.wait_for_log(&["WARN", "too many unauthenticated connections"], 1, WAIT),
        "{}",
        peer.log()
    );
    // The node closed most of them: reads see EOF (or a reset) instead of blocking.
    let mut closed = 0_u64;
    for s in &mut held {
        s.set_nonblocking(true).unwrap();
        let mut b = [0_u8; 256];
        // The greeting may come first; a closed socket then reads 0 or fails.
        loop {
            match std::io::Read::read(s, &mut b) {
                Ok(0) => {
                    closed += 1;
                    break;
                }
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    closed += 1;
                    break;
                }
            }
        }
    }
    assert!(closed >= wanted - 512, "only {closed} closed");
}

#[test]
fn the_listener_neither_spins_nor_locks_clients_out_at_its_fd_limit() {
    let env = Rc::new("fd-limit");
    let name = unique("limited");
    profile(&env, &name);
    let peer = NodeProc::run_with_fd_limit(&env, 64, &name, &[]);
    let mut held = Vec::new();
    for _ in 0..100 {
        held.push(TcpStream::connect(peer.addr).unwrap());
    }
    assert!(
        peer.wait_for_log(&["WARN", "accept failed"], 1, WAIT),
        "{}",
        peer.log()
    );
    let cpu = cpu_share(&peer, Duration::from_secs(2));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let connected = runtime.block_on(async {
        let node = Node::builder().secret(SECRET).start().unwrap();
        let start = Instant::now();
        loop {
            match tokio::time::timeout(WAIT, node.connect(peer.addr)).await {
                Ok(Ok(id)) => {
                    assert_eq!(id, peer.id);
                    break start.elapsed();
                }
                _ if start.elapsed() < WAIT => tokio::time::sleep(Duration::from_millis(100)).await,
                other => panic!("no connection at the fd limit: {other:?}; {}", peer.log()),
            }
        }
    });
    eprintln!(
        "fd limit 64, 100 held connections: node CPU {:.1}% of a core, a client connected after {connected:?}",
        cpu * 100.0
    );
    assert!(
        cpu < 0.5,
        "the listener spins: {:.0}% of a core",
        cpu * 100.0
    );
    drop(held);
}
