//! Starting the `aemp bench serve` child of the network benchmarks, and making sure it ends.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aemp::{NodeId, PortId};
use anyhow::{Context, Result, bail};

use super::FramingArg;

/// The environment variable that hands the child its secret (not the command line, which
/// other users can read).
pub(super) const SECRET_ENV: &str = "AEMP_BENCH_SECRET";

/// The first word of the child's line when it is ready.
pub(super) const READY: &str = "ready";

/// The first word of the child's line when it could not start.
pub(super) const FAILED: &str = "error";

/// A running `aemp bench serve` child and what it announced. Dropping it closes the child's
/// stdin (on which it exits), kills it and waits for it, so no process is left behind, also
/// when the benchmark fails.
pub(super) struct Served {
    /// Where its node listens.
    pub(super) addr: SocketAddr,
    /// Its node ID.
    pub(super) node: NodeId,
    /// Its sink port: counts `[payload]` messages, answers `["done", reply]` with the count.
    pub(super) sink: PortId,
    /// Its echo port: answers `[reply, payload]` with `[payload]`.
    pub(super) echo: PortId,
    /// Its plain TCP echo listener.
    pub(super) tcp: SocketAddr,
    /// The secret both nodes share.
    pub(super) secret: String,
    process: std::process::Child,
}

impl Served {
    /// Starts this executable as `aemp bench serve --framing <framing>` with a fresh random
    /// secret and waits for its announcement.
    pub(super) fn start(framing: FramingArg) -> Result<Self> {
        let secret = random_secret()?;
        let exe = std::env::current_exe().context("finding the aemp executable")?;
        let mut process = Command::new(exe)
            .args(["bench", "serve", "--framing", framing.name()])
            .env(SECRET_ENV, &secret)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting the benchmark child (aemp bench serve)")?;
        let stdout = process.stdout.take();
        // From here on, `reap` ends the child on every error path.
        let announced = stdout
            .context("the benchmark child has no stdout")
            .and_then(read_announcement);
        match announced {
            Ok(a) => Ok(Self {
                addr: a.addr,
                node: a.node,
                sink: a.sink,
                echo: a.echo,
                tcp: a.tcp,
                secret,
                process,
            }),
            Err(e) => {
                reap(&mut process);
                Err(e)
            }
        }
    }
}

impl Served {
    /// The child's process ID.
    pub(super) fn pid(&self) -> u32 {
        self.process.id()
    }
}

/// Sends `signal` (`STOP`, `CONT`, ...) to process `pid` with `kill(1)`.
pub(super) fn signal(pid: u32, signal: &str) -> Result<()> {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .with_context(|| format!("running kill -{signal}"))?;
    if !status.success() {
        bail!("kill -{signal} {pid} failed");
    }
    Ok(())
}

impl Drop for Served {
    fn drop(&mut self) {
        reap(&mut self.process);
    }
}

/// Closes the child's stdin (on which it exits by itself), gives it a moment to do so
/// (profilers and tracing flush then), kills it if it has not, and waits for it.
fn reap(process: &mut std::process::Child) {
    drop(process.stdin.take());
    let deadline = Instant::now() + EXIT_GRACE;
    while Instant::now() < deadline {
        match process.try_wait() {
            Ok(Some(_)) => return,
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(_) => break,
        }
    }
    // Killing a child that has already exited fails harmlessly; waiting reaps it either way.
    let _ = process.kill();
    let _ = process.wait();
}

/// How long the child may take to exit once its stdin is closed.
const EXIT_GRACE: Duration = Duration::from_secs(2);

/// What the child announces on its first stdout line.
struct Announcement {
    addr: SocketAddr,
    node: NodeId,
    sink: PortId,
    echo: PortId,
    tcp: SocketAddr,
}

/// Reads `ready addr=… node=… sink=… echo=… tcp=…` (or `error <text>`).
fn read_announcement(stdout: std::process::ChildStdout) -> Result<Announcement> {
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .context("reading the benchmark child's announcement")?;
    let line = line.trim();
    if line.is_empty() {
        bail!("the benchmark child exited before it was ready");
    }
    if let Some(text) = line.strip_prefix(FAILED) {
        bail!("the benchmark child failed: {}", text.trim());
    }
    let mut words = line.split_whitespace();
    if words.next() != Some(READY) {
        bail!("unexpected announcement from the benchmark child: {line}");
    }
    let mut field = |key: &str| -> Result<String> {
        let word = words.next().unwrap_or_default();
        word.strip_prefix(key)
            .and_then(|w| w.strip_prefix('='))
            .map(str::to_owned)
            .with_context(|| format!("no {key}= in the benchmark child's announcement: {line}"))
    };
    let bad = |what: &str| format!("bad {what} in the benchmark child's announcement: {line}");
    Ok(Announcement {
        addr: field("addr")?.parse().with_context(|| bad("addr"))?,
        node: field("node")?.parse().with_context(|| bad("node"))?,
        sink: field("sink")?.parse().with_context(|| bad("sink"))?,
        echo: field("echo")?.parse().with_context(|| bad("echo"))?,
        tcp: field("tcp")?.parse().with_context(|| bad("tcp"))?,
    })
}

/// 128 random bits, in hex.
fn random_secret() -> Result<String> {
    let mut bytes = [0_u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("random source: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
