//! `aemp run` in a process, poked at with `cal`, `snd`, `mon`, `info`, `trace` and `nodes`
//! from other processes, all through a temporary `$AEMP_RC`.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rc::Rc;

#[path = "common/rc.rs"]
mod rc;

/// Kills the child however the test ends (unless taken back with [`Reaper::take`]).
struct Reaper(Option<Child>);

impl Reaper {
    fn take(mut self) -> Child {
        self.0.take().expect("a child")
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[test]
fn run_answers_the_network_commands() {
    let env = Rc::new("net-cmds");
    let mut r = [0_u8; 4];
    getrandom::fill(&mut r).unwrap();
    let node = format!("cli-node-{}", u32::from_le_bytes(r));
    env.ok(&[
        "gensecret",
        "profile",
        "server",
        "setnodeid",
        &node,
        "setbinds",
        "127.0.0.1:0",
    ]);
    let mut child = env
        .command(&["run", "server"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("aemp run starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let server = Reaper(Some(child));
    let addr = line
        .trim()
        .strip_prefix(&format!("node {node} listens on "))
        .unwrap_or_else(|| panic!("unexpected announcement {line:?}"))
        .to_owned();
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    // The tool's own node finds the network through the `aemp` profile's seeds.
    env.ok(&["profile", "aemp", "setseeds", &addr]);

    // cal NODE time: the node port answers with its clock.
    let t: f64 = env.ok(&["cal", &node, "time"]).trim().parse().unwrap();
    assert!(t > 1.6e9, "{t}");
    assert_eq!(
        env.ok(&["cal", &node, "info"]).trim(),
        format!("\"{node}\"")
    );

    // snd: confirmed by the ordered echo through the node.
    let out = env.ok(&["snd", &node, "devnull", "[1,2]"]);
    assert_eq!(out.trim(), "message sent successfully");
    let err = env.fails(1, &["snd", &format!("{node}#nope"), "hello"]);
    assert!(err.contains("no_such_port"), "{err}");

    // A port made with a node request, monitored by one process and killed by another.
    env.ok(&["snd", &node, "AnyEvent::MP::_spawn", "worker", "aemp::echo"]);
    let worker = format!("{node}#worker");
    let mut monitor = env
        .command(&["mon", &worker, "--timeout", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // `mon` says so on stderr once the server has its monitor.
    let mut said = String::new();
    BufReader::new(monitor.stderr.take().unwrap())
        .read_line(&mut said)
        .unwrap();
    assert_eq!(said.trim(), format!("monitoring {worker}"));
    let monitor = Reaper(Some(monitor));
    let out = env.ok(&["snd", &node, "kil", "worker", "stopped", "[\"by test\"]"]);
    assert_eq!(out.trim(), "message sent successfully");
    let mut monitor = monitor.take();
    let status = monitor.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let mut printed = String::new();
    std::io::Read::read_to_string(&mut monitor.stdout.take().unwrap(), &mut printed).unwrap();
    assert_eq!(printed.trim(), r#""stopped",["by test"]"#);

    // A live port and a short timeout: exit 1, "timed out".
    env.ok(&["snd", &node, "AnyEvent::MP::_spawn", "alive", "aemp::echo"]);
    let err = env.fails(1, &["mon", &format!("{node}#alive"), "--timeout", "0.5"]);
    assert!(err.contains("timed out"), "{err}");
    // A node nobody knows: exit 1 after the timeout.
    let err = env.fails(1, &["cal", "nobody-knows-me", "time", "--timeout", "0.5"]);
    assert!(
        err.contains("timed out after 0.5 s: no seed knows node nobody-knows-me"),
        "{err}"
    );
    // The wrong secret: the seed refuses us, and the error says where to look.
    env.ok(&["profile", "aemp", "setsecret", "wrong"]);
    let err = env.fails(1, &["cal", &node, "time", "--timeout", "1"]);
    assert!(err.contains("no seed answered"), "{err}");
    assert!(err.contains("is the secret right?"), "{err}");
    env.ok(&["profile", "aemp", "delsecret"]);

    // info, trace, nodes.
    let info = env.ok(&["info", &node]);
    assert!(info.contains(&format!("node:        \"{node}\"")), "{info}");
    assert!(info.contains(&format!("listens on:  {addr}")), "{info}");
    let trace = env.ok(&["trace", &node]);
    assert_eq!(
        trace.lines().next().unwrap().split(' ').next(),
        Some(node.as_str()),
        "{trace}"
    );
    let nodes = env.ok(&["nodes"]);
    assert!(
        nodes.lines().any(|l| l == format!("{node} {addr}")),
        "{nodes}"
    );

    // SIGTERM: a clean shutdown.
    let mut child = server.take();
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "aemp run ignored SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(
        stderr.contains(&format!("node {node} shut down")),
        "{stderr}"
    );
}
