//! `aemp demo`: a real network on this machine, with no setup at all.
//!
//! It writes a temporary config file (a fresh secret, profiles `seed`, `a` and `b` bound to
//! 127.0.0.1), starts the seed and two nodes as separate `aemp run` processes, and joins them
//! with a node of its own that knows nothing but the seed's address. Then it shows: the seed
//! introducing the nodes to each other, a remote spawn on each node, ping-pong through both
//! nodes with round-trip times, and a monitor firing when node `b`'s process is killed.

use std::future::Future;
use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aemp::config::{ConfigFile, Json};
use aemp::{Node, NodeId, PortId, Reason, Value, msg};
use anyhow::{Context, Result, anyhow, bail};

/// How long any single step may take.
const STEP: Duration = Duration::from_secs(10);

/// Runs the demo; fails if anything does not behave.
pub(crate) fn run() -> Result<()> {
    let started = Instant::now();
    let dir = TempDir::new()?;
    let rc = dir.path.join("config.json");
    let mut secret = [0_u8; 32];
    getrandom::fill(&mut secret).map_err(|e| anyhow!("random source failed: {e}"))?;
    let secret: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    let mut file = ConfigFile::open(&rc)?;
    file.set(None, "secret", Json::from(secret.as_str()));
    file.set(None, "monitor_timeout", Json::from(5));
    for name in ["seed", "a", "b"] {
        file.set(Some(name), "nodeid", Json::from(format!("demo-{name}")));
        file.set(Some(name), "binds", Json::from(vec!["127.0.0.1:0"]));
    }
    file.save()?;
    println!(
        "config: {} (a fresh secret, profiles seed, a, b)",
        rc.display()
    );

    let mut nodes = Children::default();
    let (seed_id, seed_addr) = nodes.start(&rc, "seed", &[])?;
    println!(
        "started {seed_id} (seed) on {seed_addr}, pid {}",
        nodes.last_pid()
    );
    let seeds = format!("[\"{seed_addr}\"]");
    let (a_id, a_addr) = nodes.start(&rc, "a", &["seeds", &seeds])?;
    println!(
        "started {a_id} on {a_addr}, pid {}, seed {seed_addr}",
        nodes.last_pid()
    );
    let (b_id, b_addr) = nodes.start(&rc, "b", &["seeds", &seeds])?;
    println!(
        "started {b_id} on {b_addr}, pid {}, seed {seed_addr}",
        nodes.last_pid()
    );
    let b_index = 2;

    let runtime = super::runtime(Some(2))?;
    runtime.block_on(async {
        let me = Node::builder()
            .id("demo-viewer")
            .secret(secret.as_bytes())
            .seed(seed_addr)
            .monitor_timeout(Duration::from_secs(5))
            .start()?;
        let result = show(&me, &mut nodes, b_index, [&a_id, &b_id]).await;
        me.shutdown();
        result
    })?;
    nodes.stop_all();
    println!(
        "demo finished in {:.1} s: every node process stopped, {} removed",
        started.elapsed().as_secs_f64(),
        dir.path.display()
    );
    Ok(())
}

async fn show(me: &Node, nodes: &mut Children, b_index: usize, ids: [&NodeId; 2]) -> Result<()> {
    let [a, b] = ids;
    step("the seed to introduce a and b", async {
        while !ids
            .iter()
            .all(|id| me.node_addresses().iter().any(|(n, _)| n == *id))
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await?;
    println!(
        "{} knows only the seed's address; the seed told it where {a} and {b} listen",
        me.id()
    );

    // A remote spawn on each node: `aemp::echo` is an init function every `aemp run` offers.
    let echo_a = me.spawn(a, "aemp::echo", msg![])?;
    let echo_b = me.spawn(b, "aemp::echo", msg![])?;
    println!("spawned aemp::echo on {a} as {echo_a}");
    println!("spawned aemp::echo on {b} as {echo_b}");
    let (tx, b_died) = tokio::sync::oneshot::channel::<Reason>();
    me.monitor(&echo_b, move |reason| drop(tx.send(reason)))
        .detach();
    println!("monitoring {echo_b}");

    // Messages are ordered per pair of nodes, not across paths: a ping relayed through a
    // could reach b before our spawn request did. One direct round trip to each echo port
    // first makes sure both exist.
    let mut inbox = me.mailbox();
    for echo in [&echo_a, &echo_b] {
        me.send(echo, msg![inbox.port(), "ready?"]);
        let ready = step("an echo port to answer", inbox.recv())
            .await?
            .context("the viewer's mailbox closed")?;
        if ready != msg!["ready?"] {
            bail!("{echo} answered {ready}");
        }
    }

    // Ping-pong: viewer → echo on a → echo on b → viewer, so a talks to b directly.
    let rounds = 2000_u64;
    let mut rtts = Vec::with_capacity(2000);
    for i in 0..rounds {
        let sent = Instant::now();
        me.send(&echo_a, msg![&echo_b, inbox.port(), "ping", i]);
        let pong = step("a pong", inbox.recv())
            .await?
            .context("the viewer's mailbox closed")?;
        rtts.push(sent.elapsed());
        if pong != msg!["ping", i] {
            bail!("ping {i} came back as {pong}");
        }
    }
    rtts.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let len = rtts.len();
    println!(
        "ping-pong: {rounds} round trips viewer → {a} → {b} → viewer: min {:.0} µs, p50 {:.0} µs, p99 {:.0} µs",
        us(rtts[0]),
        us(rtts[len / 2]),
        us(rtts[len * 99 / 100]),
    );
    // Kill b's process: the monitor on its echo port fires with a transport error.
    let killed = Instant::now();
    nodes.kill(b_index)?;
    println!("killed {b} (SIGKILL)");
    let reason = step("the monitor to fire", b_died)
        .await?
        .context("the monitor was dropped")?;
    println!(
        "monitor fired after {:.0} ms: {echo_b} died with {reason}",
        killed.elapsed().as_secs_f64() * 1e3
    );
    if reason.tag() != Some("transport_error") {
        bail!("expected a transport_error, got {reason}");
    }
    // And a still answers.
    let reply = me
        .call(&PortId::node_port(a.clone()), msg!["info"], Some(STEP))
        .await
        .map_err(|e| anyhow!("{a}: {e}"))?;
    if reply.first() != Some(&Value::from(a.as_str())) {
        bail!("{a} answered info with {reply}");
    }
    println!("{a} still answers: info → {reply}");
    Ok(())
}

async fn step<T>(what: &str, f: impl Future<Output = T>) -> Result<T> {
    tokio::time::timeout(STEP, f)
        .await
        .map_err(|_| anyhow!("timed out waiting for {what}"))
}

/// The node processes; killed when dropped, so an error never leaves them behind.
#[derive(Default)]
struct Children(Vec<Child>);

impl Children {
    /// Starts `aemp run PROFILE PAIRS...` and reads its `node ID listens on ADDR` line.
    fn start(
        &mut self,
        rc: &PathBuf,
        profile: &str,
        pairs: &[&str],
    ) -> Result<(NodeId, SocketAddr)> {
        let exe = std::env::current_exe().context("finding the aemp binary")?;
        let mut child = Command::new(exe)
            .arg("run")
            .arg(profile)
            .args(pairs)
            .env("AEMP_RC", rc)
            // The demo reports what happens itself; the nodes' warnings (the lost link to
            // the node it kills) would only interleave with it.
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "error".to_owned()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting `aemp run {profile}`"))?;
        let stdout = child.stdout.take().context("no stdout")?;
        self.0.push(child);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(STEP)
            .map_err(|_| anyhow!("`aemp run {profile}` did not start within {STEP:?}"))?;
        let parse = || -> Option<(NodeId, SocketAddr)> {
            let rest = line.trim().strip_prefix("node ")?;
            let (id, addrs) = rest.split_once(" listens on ")?;
            Some((id.parse().ok()?, addrs.split(' ').next()?.parse().ok()?))
        };
        parse().ok_or_else(|| anyhow!("`aemp run {profile}` said {line:?}"))
    }

    fn last_pid(&self) -> u32 {
        self.0.last().map_or(0, Child::id)
    }

    fn kill(&mut self, index: usize) -> Result<()> {
        let child = self.0.get_mut(index).context("no such node process")?;
        child.kill().context("killing a node")?;
        child.wait().context("waiting for a node")?;
        Ok(())
    }

    /// Stops every process: SIGTERM (a clean shutdown) where possible, then SIGKILL.
    fn stop_all(&mut self) {
        for child in &mut self.0 {
            if matches!(child.try_wait(), Ok(None)) {
                let terminated = Command::new("kill")
                    .arg("-TERM")
                    .arg(child.id().to_string())
                    .status()
                    .is_ok_and(|s| s.success());
                if !terminated {
                    let _ = child.kill();
                }
            }
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        for child in &mut self.0 {
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        self.0.clear();
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A temporary directory, removed when dropped.
struct TempDir {
    path: PathBuf,
}

impl TempDir {
    fn new() -> Result<Self> {
        let mut random = [0_u8; 8];
        getrandom::fill(&mut random).map_err(|e| anyhow!("random source failed: {e}"))?;
        let name: String = random.iter().map(|b| format!("{b:02x}")).collect();
        let path = std::env::temp_dir().join(format!("aemp-demo-{name}"));
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(Self { path })
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
