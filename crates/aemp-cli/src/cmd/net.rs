//! Network commands: `run` (a node until a signal) and the short-lived client commands
//! `snd`, `cal`, `mon`, `trace`, `info`, `nodes` (reference §5.7).
//!
//! A client command starts its own node from the `aemp` profile with a random ID and no
//! listeners (so it reaches others by its own dials, and sends `[]` keepalives), connects to
//! the profile's seeds (plus `--seed`), and learns where other nodes listen from the seeds
//! (Global's `seedme1`/`nodes`).

use std::collections::{BTreeSet, VecDeque};
use std::future::Future;
use std::time::{Duration, Instant};

use aemp::config::{ConfigFile, Json, resolve_seeds};
use aemp::{Message, MonitorGuard, Node, NodeId, PortId, Reason, Value, msg};
use anyhow::{Context, Result, anyhow, bail};
use tokio::sync::oneshot;

use super::args;

/// Options every client command takes.
#[derive(Clone, Debug)]
pub(crate) struct Opts {
    /// How long to wait for the network (`None`: forever).
    pub(crate) timeout: Option<Duration>,
    /// Extra seed addresses.
    pub(crate) seeds: Vec<String>,
}

impl Opts {
    /// Builds options from the command line's `--timeout` seconds (0: forever).
    ///
    /// # Errors
    ///
    /// A negative or non-finite timeout.
    pub(crate) fn new(timeout: f64, seeds: Vec<String>) -> Result<Self> {
        let timeout = if timeout == 0.0 {
            None
        } else {
            Some(
                Duration::try_from_secs_f64(timeout)
                    .map_err(|_| anyhow!("--timeout {timeout}: not a number of seconds"))?,
            )
        };
        Ok(Self { timeout, seeds })
    }
}

/// Registers the init functions every `aemp run` node offers.
///
/// `aemp::echo`: a port that takes `[port, rest...]` and sends `rest` to `port` (so
/// `[a, b, "x"]` sent to one echo reaches echo `a`, which sends `["x"]` to `b`).
pub(crate) fn register_builtins(node: &Node) -> Result<(), aemp::SpawnError> {
    let n = node.clone();
    node.register_init("aemp::echo", move |_args: Message| {
        let me = aemp::self_port().ok_or("no port context")?;
        let n2 = n.clone();
        n.set_callback(&me, move |mut m: Message| {
            let Some(to) = m.take_first() else {
                return;
            };
            match to.decode::<PortId>() {
                Ok(to) => n2.send(&to, m),
                Err(e) => tracing::debug!(error = %e, "aemp::echo: first element is not a port"),
            }
        })
        .map_err(|e| e.to_string())
    })
}

/// `aemp run [PROFILE] [KEY VALUE]...`
pub(crate) fn run(profile: Option<String>, pairs: &[String]) -> Result<()> {
    let pairs = args::pairs(pairs)?;
    let overrides: Vec<(&str, Json)> = pairs.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    let name = profile.unwrap_or_else(aemp::config::hostname);
    let settings = ConfigFile::open_default()?.settings(&name, &overrides)?;
    if settings.secret.is_none() && settings.cert.is_none() {
        eprintln!(
            "aemp: warning: profile {name:?} has neither secret nor cert: no other node can connect (aemp profile {name} gensecret)"
        );
    }
    super::runtime(Some(2))?.block_on(async {
        let node = settings.start_with(|node| Ok(register_builtins(node)?))?;
        let listens: Vec<String> = node
            .listen_addrs()
            .iter()
            .map(ToString::to_string)
            .collect();
        println!("node {} listens on {}", node.id(), listens.join(" "));
        use std::io::Write as _;
        std::io::stdout().flush()?;
        shutdown_signal().await?;
        // Graceful: queued messages are written and every peer sees this node go down.
        node.shutdown().await;
        eprintln!("node {} shut down", node.id());
        Ok(())
    })
}

/// Waits for SIGINT or SIGTERM (Ctrl-C elsewhere).
async fn shutdown_signal() -> Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).context("installing a SIGTERM handler")?;
        let mut int = signal(SignalKind::interrupt()).context("installing a SIGINT handler")?;
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        Ok(())
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")
    }
}

/// The tool's own node: the `aemp` profile, a random ID, no listeners (defaults the file may
/// override, as in Perl's tool), plus `--seed` addresses.
fn client(opts: &Opts) -> Result<Node> {
    let file = ConfigFile::open_default()?;
    let defaults = [
        ("nodeid", Json::from("anon/")),
        ("binds", Json::Array(Vec::new())),
    ];
    let settings = file.settings("aemp", &defaults)?;
    if settings.secret.is_none() && settings.cert.is_none() {
        bail!(
            "the \"aemp\" profile (or the top level) has neither secret nor cert, so no node would accept this one: run `aemp setsecret SECRET` with the network's secret"
        );
    }
    let extra =
        resolve_seeds(&opts.seeds).map_err(|(spec, why)| anyhow!("--seed {spec}: {why}"))?;
    if settings.seeds.is_empty() && extra.is_empty() {
        bail!(
            "no seeds: tell the tool where the network is with `aemp profile aemp setseeds HOST:PORT` or --seed HOST:PORT"
        );
    }
    let mut builder = settings.node_builder()?;
    for addr in extra {
        builder = builder.seed(addr);
    }
    Ok(builder.start()?)
}

/// Runs `f` on a client node within the timeout, then shuts the node down. `target` is the
/// node the command needs: `f` runs once it is [`reachable`], and the timeout error says so
/// if it never was.
fn with_client<T, F, Fut>(opts: &Opts, what: &str, target: Option<NodeId>, f: F) -> Result<T>
where
    F: FnOnce(Node) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    super::runtime(Some(2))?.block_on(async {
        let node = client(opts)?;
        let work = async {
            if let Some(t) = &target {
                reach(&node, t).await;
            }
            f(node.clone()).await
        };
        let result = match opts.timeout {
            Some(t) => match tokio::time::timeout(t, work).await {
                Ok(result) => result,
                Err(_) => Err(timed_out(&node, what, t, target.as_ref())),
            },
            None => work.await,
        };
        // Closes the links, so the nodes we talked to see us gone at once.
        node.shutdown_within(Duration::from_secs(1)).await;
        result
    })
}

/// The timeout error, saying what was missing.
fn timed_out(node: &Node, what: &str, after: Duration, target: Option<&NodeId>) -> anyhow::Error {
    let secs = after.as_secs_f64();
    let up = node.up_nodes();
    if up.is_empty() {
        let seeds: Vec<String> = node.seeds().iter().map(ToString::to_string).collect();
        return anyhow!(
            "{what}: timed out after {secs} s: no seed answered (seeds: {}; is the secret right?)",
            seeds.join(" ")
        );
    }
    match target {
        Some(t) if !reachable(node, t) => {
            anyhow!("{what}: timed out after {secs} s: no seed knows node {t}")
        }
        _ => anyhow!("{what}: timed out after {secs} s"),
    }
}

/// Polls until `f` holds.
async fn until(mut f: impl FnMut() -> bool) {
    while !f() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// `true` if `target` is connected or its address is known (learned from a seed).
fn reachable(node: &Node, target: &NodeId) -> bool {
    node.node_is_up(target) || node.node_addresses().iter().any(|(id, _)| id == target)
}

/// Waits until `target` is [`reachable`].
async fn reach(node: &Node, target: &NodeId) {
    until(|| reachable(node, target)).await;
}

/// Monitors `target`; the receiver gets the kill reason.
fn watch(node: &Node, target: &PortId) -> (MonitorGuard, oneshot::Receiver<Reason>) {
    let (tx, died) = oneshot::channel();
    let guard = node.monitor(target, move |r| drop(tx.send(r)));
    (guard, died)
}

/// Asks `target`'s node for an ordered echo (Perl's `["", "snd", reply, …]`): when it is back,
/// that node has handled everything this node sent it before, a monitor included. Returns
/// `None` then, or the kill reason if the port turned out dead first: its notice comes over
/// the same connection before the echo, and its monitor fires first, so it is checked first.
async fn echo_unless_dead(
    node: &Node,
    target: &PortId,
    died: &mut oneshot::Receiver<Reason>,
) -> Result<Option<Reason>> {
    let mut inbox = node.mailbox();
    node.send(
        &PortId::node_port(target.node().clone()),
        msg!["snd", inbox.port(), "echo"],
    );
    tokio::select! {
        biased;
        reason = died => Ok(Some(reason.context("the monitor was dropped")?)),
        echo = inbox.recv() => {
            echo.context("the reply port closed")?;
            Ok(None)
        }
    }
}

fn parse_port(port: &str) -> Result<PortId> {
    port.parse()
        .with_context(|| format!("{port:?} is not a port ID (node#name, or a node ID)"))
}

/// `aemp snd PORT MSG...`: sends, then confirms with an ordered echo through the port's node
/// (or fails with the reason the port is dead).
pub(crate) fn snd(opts: &Opts, port: &str, message: &[String]) -> Result<()> {
    let target = parse_port(port)?;
    let message = args::message(message)?;
    with_client(
        opts,
        "snd",
        Some(target.node().clone()),
        |node| async move {
            let (_guard, mut died) = watch(&node, &target);
            node.send(&target, message);
            match echo_unless_dead(&node, &target, &mut died).await? {
                None => {
                    println!("message sent successfully");
                    Ok(())
                }
                Some(reason) => bail!("{target} is dead: {}", show_reason(&reason)),
            }
        },
    )
}

/// `aemp cal PORT MSG...`
pub(crate) fn cal(opts: &Opts, port: &str, message: &[String]) -> Result<()> {
    let target = parse_port(port)?;
    let message = args::message(message)?;
    with_client(
        opts,
        "cal",
        Some(target.node().clone()),
        |node| async move {
            let reply = node
                .call(&target, message, None)
                .await
                .map_err(|e| anyhow!("{target}: {e}"))?;
            println!("{}", args::show(&reply));
            Ok(())
        },
    )
}

/// `aemp mon PORT`: prints `monitoring PORT` on stderr once the port's node has the monitor
/// (confirmed by an ordered echo), then the kill reason on stdout.
pub(crate) fn mon(opts: &Opts, port: &str) -> Result<()> {
    let target = parse_port(port)?;
    with_client(
        opts,
        "mon",
        Some(target.node().clone()),
        |node| async move {
            let (_guard, mut died) = watch(&node, &target);
            let reason = match echo_unless_dead(&node, &target, &mut died).await? {
                Some(reason) => reason,
                None => {
                    eprintln!("monitoring {target}");
                    died.await.context("the monitor was dropped")?
                }
            };
            println!("{}", show_reason(&reason));
            Ok(())
        },
    )
}

fn show_reason(reason: &Reason) -> String {
    if reason.values().is_empty() {
        "(normal exit)".to_owned()
    } else {
        args::show(&reason.values().iter().cloned().collect())
    }
}

/// Asks `node`'s node port `request` and returns the reply's strings (node IDs).
async fn ask_ids(client: &Node, node: &NodeId, request: &str) -> Result<Vec<NodeId>> {
    let reply = client
        .call(
            &PortId::node_port(node.clone()),
            msg![request],
            Some(Duration::from_secs(5)),
        )
        .await
        .map_err(|e| anyhow!("{node}: {request}: {e}"))?;
    Ok(reply
        .iter()
        .filter_map(Value::as_str)
        .filter_map(|s| s.parse().ok())
        .collect())
}

/// `aemp trace NODE`: breadth first over `up_nodes`.
pub(crate) fn trace(opts: &Opts, start: &str) -> Result<()> {
    let start: NodeId = start
        .parse()
        .with_context(|| format!("{start:?} is not a node ID"))?;
    with_client(opts, "trace", Some(start.clone()), |client| async move {
        let mut seen = BTreeSet::from([start.clone(), client.id().clone()]);
        let mut queue = VecDeque::from([start]);
        while let Some(node) = queue.pop_front() {
            // Nodes we cannot learn an address for in time are reported, not waited for.
            let reachable =
                tokio::time::timeout(Duration::from_secs(2), reach(&client, &node)).await;
            let reply = match reachable {
                Ok(()) => ask_ids(&client, &node, "up_nodes").await,
                Err(_) => Err(anyhow!("no address known")),
            };
            match reply {
                Ok(neighbours) => {
                    let mut line = node.to_string();
                    for n in neighbours.iter().filter(|n| *n != client.id()) {
                        line.push(' ');
                        line.push_str(n.as_str());
                    }
                    println!("{line}");
                    for n in neighbours {
                        if seen.insert(n.clone()) {
                            queue.push_back(n);
                        }
                    }
                }
                Err(e) => println!("{node} (unreachable: {e:#})"),
            }
        }
        Ok(())
    })
}

/// `aemp info NODE`
pub(crate) fn info(opts: &Opts, target: &str) -> Result<()> {
    let target: NodeId = target
        .parse()
        .with_context(|| format!("{target:?} is not a node ID"))?;
    with_client(opts, "info", Some(target.clone()), |client| async move {
        let port = PortId::node_port(target.clone());
        let id = client
            .call(&port, msg!["info"], None)
            .await
            .map_err(|e| anyhow!("{target}: {e}"))?;
        let sent = Instant::now();
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or_default();
        let time = client
            .call(&port, msg!["time"], None)
            .await
            .map_err(|e| anyhow!("{target}: {e}"))?;
        let rtt = sent.elapsed();
        let up = ask_ids(&client, &target, "up_nodes").await?;
        let known = ask_ids(&client, &target, "known_nodes").await?;
        let without_us = |ids: &[NodeId]| -> String {
            ids.iter()
                .filter(|n| *n != client.id())
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(" ")
        };
        println!("node:        {}", args::show(&id));
        if let Some((_, addrs)) = client
            .node_addresses()
            .into_iter()
            .find(|(n, _)| *n == target)
        {
            println!("listens on:  {}", addrs.join(" "));
        }
        println!("up nodes:    {}", without_us(&up));
        println!("known nodes: {}", without_us(&known));
        if let Some(t) = time.first().and_then(Value::as_f64) {
            let offset = t - (since_epoch + rtt.as_secs_f64() / 2.0);
            println!(
                "clock:       {t:.3} (offset {:+.1} ms, round trip {:.2} ms)",
                offset * 1e3,
                rtt.as_secs_f64() * 1e3
            );
        }
        Ok(())
    })
}

/// `aemp nodes`: the nodes connected to the seeds, with their addresses.
pub(crate) fn nodes(opts: &Opts) -> Result<()> {
    with_client(opts, "nodes", None, |client| async move {
        let seeds = client.seeds();
        until(|| !client.up_nodes().is_empty()).await;
        let mut all: BTreeSet<NodeId> = client.up_nodes().into_iter().collect();
        for seed in client.up_nodes() {
            all.extend(ask_ids(&client, &seed, "up_nodes").await?);
        }
        all.remove(client.id());
        // Their addresses come from the seeds (`nodes`); give them a moment.
        let _ = tokio::time::timeout(
            Duration::from_secs(2),
            until(|| {
                let known = client.node_addresses();
                all.iter()
                    .all(|n| client.node_is_up(n) || known.iter().any(|(id, _)| id == n))
            }),
        )
        .await;
        let known = client.node_addresses();
        for n in &all {
            let addrs = known
                .iter()
                .find(|(id, _)| id == n)
                .map(|(_, a)| a.join(" "))
                .unwrap_or_default();
            let addrs = if addrs.is_empty() {
                "(no listeners)".to_owned()
            } else {
                addrs
            };
            println!("{n} {addrs}");
        }
        if all.is_empty() {
            println!("(no nodes; seeds: {seeds:?})");
        }
        Ok(())
    })
}
