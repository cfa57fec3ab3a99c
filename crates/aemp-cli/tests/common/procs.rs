//! `aemp run` node processes for the failure tests: start one from a profile, read its
//! announcement, watch its log, signal it (SIGSTOP, SIGCONT, SIGTERM, SIGKILL), read its
//! CPU time and memory from `/proc`; it is killed however the test ends. Included with
//! `#[path = "common/procs.rs"] mod procs;` next to `rc.rs`.

#![allow(dead_code, reason = "each test file uses a different subset")]
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failure is a test failure"
)]

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aemp::NodeId;

use super::rc::Rc;

/// The secret every node of the failure tests shares.
pub(crate) const SECRET: &str = "failure-tests-secret";

/// A running `aemp run` process.
pub(crate) struct NodeProc {
    child: Option<Child>,
    pub(crate) id: NodeId,
    pub(crate) addr: SocketAddr,
    pub(crate) pid: u32,
    /// Everything it wrote on stderr so far.
    log: Arc<Mutex<String>>,
}

/// Writes a config with [`SECRET`] and a profile `name` (node ID `name`, listening on
/// 127.0.0.1:0) to `env`.
pub(crate) fn profile(env: &Rc, name: &str) {
    env.ok(&[
        "setsecret",
        SECRET,
        "profile",
        name,
        "setnodeid",
        name,
        "setbinds",
        "127.0.0.1:0",
    ]);
}

/// A node ID nobody else uses.
pub(crate) fn unique(prefix: &str) -> String {
    let mut r = [0_u8; 4];
    getrandom::fill(&mut r).unwrap();
    format!("{prefix}-{:08x}", u32::from_le_bytes(r))
}

impl NodeProc {
    /// `aemp run PROFILE PAIRS...` with the environment of `env`.
    pub(crate) fn run(env: &Rc, profile: &str, pairs: &[&str]) -> Self {
        let mut args = vec!["run", profile];
        args.extend_from_slice(pairs);
        Self::spawn(env.command(&args))
    }

    /// `aemp run PROFILE PAIRS...` under `ulimit -n FDS`.
    pub(crate) fn run_with_fd_limit(env: &Rc, fds: u32, profile: &str, pairs: &[&str]) -> Self {
        let mut c = Command::new("sh");
        c.arg("-c")
            .arg(format!("ulimit -n {fds} && exec \"$0\" \"$@\""))
            .arg(env!("CARGO_BIN_EXE_aemp"))
            .arg("run")
            .arg(profile)
            .args(pairs)
            .env("AEMP_RC", env.path())
            .env_remove("RUST_LOG");
        Self::spawn(c)
    }

    /// Starts `command` (an `aemp run`) and reads its announcement.
    pub(crate) fn spawn(mut command: Command) -> Self {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("aemp run starts");
        let pid = child.id();
        let log = Arc::new(Mutex::new(String::new()));
        let mut stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
            let mut buf = [0_u8; 4096];
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        // Keep reading stdout so the child never blocks on it.
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        let parsed = line
            .trim()
            .strip_prefix("node ")
            .and_then(|rest| rest.split_once(" listens on "))
            .and_then(|(id, addrs)| {
                Some((id.parse().ok()?, addrs.split(' ').next()?.parse().ok()?))
            });
        let Some((id, addr)) = parsed else {
            let _ = child.kill();
            let _ = child.wait();
            std::thread::sleep(Duration::from_millis(100));
            panic!("aemp run said {line:?}; stderr: {}", log.lock().unwrap());
        };
        Self {
            child: Some(child),
            id,
            addr,
            pid,
            log,
        }
    }

    /// Sends a signal (`STOP`, `CONT`, `TERM`, `KILL`).
    pub(crate) fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid.to_string())
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal} {}", self.pid);
    }

    /// What the process wrote on stderr so far.
    pub(crate) fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits until stderr holds `times` lines containing every one of `words`.
    pub(crate) fn wait_for_log(&self, words: &[&str], times: usize, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            let found = self
                .log()
                .lines()
                .filter(|l| words.iter().all(|w| l.contains(w)))
                .count();
            if found >= times {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the process to exit; its status code.
    pub(crate) fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let deadline = Instant::now() + within;
        let child = self.child.as_mut()?;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status.code();
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// User + system CPU time so far, from `/proc/PID/stat`.
    pub(crate) fn cpu(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).unwrap();
        // Fields after the command name (which may hold spaces) start after the last ')'.
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        // USER_HZ is 100 on Linux.
        Duration::from_millis(ticks * 10)
    }

    /// Resident memory, from `/proc/PID/statm`.
    pub(crate) fn rss(&self) -> u64 {
        let statm = std::fs::read_to_string(format!("/proc/{}/statm", self.pid)).unwrap();
        let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
        pages * 4096
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // A stopped process must be woken to die promptly.
            let _ = Command::new("kill")
                .arg("-CONT")
                .arg(self.pid.to_string())
                .status();
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
