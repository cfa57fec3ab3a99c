//! A soak: three `aemp run` node processes, numbered streams through every ordered pair of
//! them (this process → echo on node i → echo on node j → back to this process), and one
//! node killed with SIGKILL and restarted every so often. Every stream must be complete and
//! in order, or one of its echoes' monitors must have fired; memory must stay flat.
//!
//! `soak_short` runs in the normal test suite (about 40 s, a kill every 8–12 s);
//! `stress_soak` is the long form (`cargo test -p aemp-cli --test soak -- --ignored`;
//! `AEMP_SOAK_SECS` sets its length, default 600 s, a kill every 20–40 s).

#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failure is a test failure"
)]

#[path = "common/procs.rs"]
mod procs;
#[path = "common/rc.rs"]
mod rc;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aemp::{Message, Node, PortId, msg};
use procs::{NodeProc, SECRET, unique};
use rc::Rc;

const WAIT: Duration = Duration::from_secs(10);
const NODES: usize = 3;

#[test]
fn soak_short() {
    soak(Duration::from_secs(40), (8, 12));
}

#[test]
#[ignore = "long: run with --ignored (AEMP_SOAK_SECS sets the length)"]
fn stress_soak() {
    let secs = std::env::var("AEMP_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(600);
    soak(Duration::from_secs(secs), (20, 40));
}

/// One node process and the echo port this process spawned on it.
struct Member {
    name: String,
    proc: NodeProc,
    addr: SocketAddr,
    echo: PortId,
    /// Set when our monitor on `echo` fired.
    dead: Arc<AtomicBool>,
    /// Resident size a few seconds into this incarnation, and when that was.
    baseline: Option<(Instant, u64)>,
    started: Instant,
}

/// A numbered stream from this process through `echo_i` and `echo_j` back to `back`.
struct Stream {
    i: usize,
    j: usize,
    echo_i: PortId,
    echo_j: PortId,
    dead_i: Arc<AtomicBool>,
    dead_j: Arc<AtomicBool>,
    back: PortId,
    received: Arc<Mutex<Vec<u64>>>,
    sent: u64,
    /// Still sending (both echoes alive when last looked at).
    open: bool,
}

impl Stream {
    fn broken(&self) -> bool {
        self.dead_i.load(Ordering::SeqCst) || self.dead_j.load(Ordering::SeqCst)
    }
}

fn soak(length: Duration, kill_every: (u64, u64)) {
    let env = Rc::new("soak");
    let names: Vec<String> = (0..NODES).map(|k| unique(&format!("soak{k}"))).collect();
    env.ok(&["setsecret", SECRET]);
    for name in &names {
        env.ok(&["profile", name, "setnodeid", name]);
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let node = Node::builder()
            .secret(SECRET)
            .heartbeat_interval(Duration::from_millis(250))
            .heartbeat_timeout(Duration::from_secs(3))
            .monitor_timeout(Duration::from_secs(10))
            .start()
            .unwrap();
        // Node 0 is the seed of the others, so they learn where each other listens.
        let mut members: Vec<Member> = Vec::new();
        let mut seed = None;
        for name in &names {
            let proc = start(&env, name, "127.0.0.1:0", seed);
            seed.get_or_insert(proc.addr);
            members.push(join(&node, name.clone(), proc).await);
        }
        let mut streams: Vec<Stream> = Vec::new();
        for i in 0..NODES {
            for j in 0..NODES {
                if i != j {
                    streams.push(stream(&node, &members, i, j));
                }
            }
        }
        let begin = Instant::now();
        let mut next_kill = begin + Duration::from_secs(pick(kill_every));
        let mut victim = 0;
        let mut kills = 0;
        let mut own_baseline = None;
        let mut tick = tokio::time::interval(Duration::from_millis(5));
        while begin.elapsed() < length {
            tick.tick().await;
            for s in streams.iter_mut().filter(|s| s.open) {
                if s.broken() {
                    s.open = false;
                    continue;
                }
                node.send(&s.echo_i, msg![s.echo_j.to_string(), s.back.to_string(), s.sent]);
                s.sent += 1;
            }
            for m in &mut members {
                if m.baseline.is_none() && m.started.elapsed() > Duration::from_secs(5) {
                    m.baseline = Some((Instant::now(), m.proc.rss()));
                }
            }
            if own_baseline.is_none() && begin.elapsed() > Duration::from_secs(5) {
                own_baseline = Some(own_rss());
            }
            if Instant::now() >= next_kill {
                kills += 1;
                let k = victim;
                victim = (victim + 1) % NODES;
                kill_and_restart(&node, &env, &mut members, k, seed).await;
                for j in (0..NODES).filter(|&j| j != k) {
                    streams.push(stream(&node, &members, k, j));
                    streams.push(stream(&node, &members, j, k));
                }
                next_kill = Instant::now() + Duration::from_secs(pick(kill_every));
            }
        }
        // Let every open stream finish, then judge them all.
        for s in streams.iter().filter(|s| s.open && !s.broken()) {
            let complete = tokio::time::timeout(WAIT, async {
                while s.received.lock().unwrap().len() < usize::try_from(s.sent).unwrap()
                    && !s.broken()
                {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
            .await;
            assert!(complete.is_ok(), "stream {}→{} stalled", s.i, s.j);
        }
        let mut complete = 0;
        for s in &streams {
            let got = s.received.lock().unwrap();
            assert!(
                got.windows(2).all(|w| w[0] < w[1]),
                "stream {}→{} out of order",
                s.i,
                s.j
            );
            if s.broken() {
                continue;
            }
            let expected: Vec<u64> = (0..s.sent).collect();
            assert_eq!(*got, expected, "stream {}→{} has holes and no monitor fired", s.i, s.j);
            complete += 1;
        }
        eprintln!(
            "soak: {:?}, {kills} kills, {} streams ({complete} complete, the rest ended by a monitor)",
            begin.elapsed(),
            streams.len()
        );
        assert!(kills >= 2, "too short to kill anything twice");
        for m in &members {
            if let Some((at, before)) = m.baseline
                && at.elapsed() > Duration::from_secs(10)
            {
                let now = m.proc.rss();
                eprintln!("{}: RSS {} → {} KiB over {:?}", m.name, before / 1024, now / 1024, at.elapsed());
                assert!(now < before + (16 << 20), "{} grew from {before} to {now} B", m.name);
            }
        }
        if let Some(before) = own_baseline {
            let now = own_rss();
            eprintln!("this process: RSS {} → {} KiB", before / 1024, now / 1024);
            assert!(now < before + (32 << 20), "grew from {before} to {now} B");
        }
    });
}

/// Starts `aemp run NAME` listening on `bind`, seeded by `seed` if any.
fn start(env: &Rc, name: &str, bind: &str, seed: Option<SocketAddr>) -> NodeProc {
    let binds = format!("[\"{bind}\"]");
    let seeds = seed
        .map(|s| format!("[\"{s}\"]"))
        .unwrap_or_else(|| "[]".to_owned());
    NodeProc::run(
        env,
        name,
        &[
            "binds",
            &binds,
            "seeds",
            &seeds,
            "heartbeat_interval",
            "0.25",
            "heartbeat_timeout",
            "3",
        ],
    )
}

/// Connects to a fresh node process and spawns a monitored echo on it.
async fn join(node: &Node, name: String, proc: NodeProc) -> Member {
    let addr = proc.addr;
    let start = Instant::now();
    loop {
        match node.connect(addr).await {
            Ok(id) => {
                assert_eq!(id, proc.id);
                break;
            }
            Err(e) if start.elapsed() < WAIT => {
                eprintln!("{name} not reachable yet: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("{name} not reachable: {e}"),
        }
    }
    let echo = node
        .spawn(&proc.id, "aemp::echo", Message::empty())
        .unwrap();
    let dead = Arc::new(AtomicBool::new(false));
    let flag = dead.clone();
    node.monitor(&echo, move |_| flag.store(true, Ordering::SeqCst))
        .detach();
    node.call(
        &PortId::node_port(proc.id.clone()),
        msg!["info"],
        Some(WAIT),
    )
    .await
    .unwrap();
    Member {
        name,
        proc,
        addr,
        echo,
        dead,
        baseline: None,
        started: Instant::now(),
    }
}

/// Kills node `k` with SIGKILL, waits for our monitor on its echo, and starts it again on
/// the same address (its seed address stays valid for the others).
async fn kill_and_restart(
    node: &Node,
    env: &Rc,
    members: &mut [Member],
    k: usize,
    seed: Option<SocketAddr>,
) {
    let m = &members[k];
    m.proc.signal("KILL");
    let killed = Instant::now();
    while !m.dead.load(Ordering::SeqCst) {
        assert!(
            killed.elapsed() < WAIT,
            "no monitor fired for the killed {}",
            m.name
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (name, addr) = (m.name.clone(), m.addr);
    let seed = if k == 0 { None } else { seed };
    let proc = start(env, &name, &addr.to_string(), seed);
    members[k] = join(node, name, proc).await;
}

/// A new stream from this process through the current echoes of `i` and `j`.
fn stream(node: &Node, members: &[Member], i: usize, j: usize) -> Stream {
    let received = Arc::new(Mutex::new(Vec::new()));
    let r = received.clone();
    let back = node.port(move |m: Message| {
        if let Some(n) = m.first().and_then(aemp::Value::as_u64) {
            r.lock().unwrap().push(n);
        }
    });
    Stream {
        i,
        j,
        echo_i: members[i].echo.clone(),
        echo_j: members[j].echo.clone(),
        dead_i: members[i].dead.clone(),
        dead_j: members[j].dead.clone(),
        back,
        received,
        sent: 0,
        open: true,
    }
}

/// A number of seconds in `range` (inclusive), at random.
fn pick((low, high): (u64, u64)) -> u64 {
    let mut b = [0_u8; 8];
    getrandom::fill(&mut b).unwrap();
    low + u64::from_le_bytes(b) % (high - low + 1)
}

fn own_rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    statm
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<u64>()
        .unwrap()
        * 4096
}
