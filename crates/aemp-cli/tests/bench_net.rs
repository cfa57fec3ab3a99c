//! The network benchmarks (`aemp bench remote|rtt|connect`) run against a child process,
//! print the documented JSON line, and leave no process behind.

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Environment variable the tests put on the benchmark (and so on its children), to find
/// any process it left behind.
const MARKER: &str = "AEMP_TEST_MARKER";

/// Runs `aemp args…` with a unique marker in its environment; returns its output and the
/// marker.
fn aemp_marked(args: &[&str], name: &str) -> (Output, String) {
    let marker = format!("{name}-{}-{:?}", std::process::id(), Instant::now());
    let out = Command::new(env!("CARGO_BIN_EXE_aemp"))
        .args(args)
        .env(MARKER, &marker)
        .output()
        .expect("the aemp binary runs");
    (out, marker)
}

/// Live processes (not zombies) whose environment carries `marker`.
fn processes_with_marker(marker: &str) -> Vec<String> {
    let needle = format!("{MARKER}={marker}\0");
    let mut found = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in dir.flatten() {
        let path = entry.path();
        let Ok(environ) = std::fs::read(path.join("environ")) else {
            continue;
        };
        if !String::from_utf8_lossy(&environ).contains(&needle) {
            continue;
        }
        let stat = std::fs::read_to_string(path.join("stat")).unwrap_or_default();
        // The state follows the command name in parentheses.
        let state = stat.rsplit(')').next().unwrap_or("").trim_start();
        if !state.starts_with('Z') {
            found.push(stat);
        }
    }
    found
}

/// Asserts the benchmark succeeded and left nothing running; returns its one stdout line.
fn check_run(out: &Output, marker: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "failed: {stdout}{stderr}");
    let left = processes_with_marker(marker);
    assert!(left.is_empty(), "processes left running: {left:?}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "exactly one line expected: {stdout}");
    lines[0].to_owned()
}

/// The keys of a flat JSON object line, in order.
fn keys(line: &str) -> Vec<String> {
    line.trim_matches(['{', '}'])
        .split(',')
        .map(|kv| {
            kv.split(':')
                .next()
                .unwrap_or("")
                .trim_matches('"')
                .to_owned()
        })
        .collect()
}

fn remote(framing: &str) {
    let (out, marker) = aemp_marked(
        &[
            "bench",
            "remote",
            "--framing",
            framing,
            "--size",
            "16",
            "--messages",
            "20000",
            "--json",
        ],
        &format!("remote-{framing}"),
    );
    let line = check_run(&out, &marker);
    assert_eq!(
        keys(&line),
        [
            "bench",
            "framing",
            "size",
            "messages",
            "seconds",
            "msgs_per_sec",
            "bytes_per_sec"
        ],
        "{line}"
    );
    let v: serde_json::Value = serde_json::from_str(&line).expect("one JSON object");
    assert_eq!(v["bench"], "remote");
    assert_eq!(v["framing"], framing);
    assert_eq!(v["size"], 16);
    assert_eq!(v["messages"], 20000);
    let seconds = v["seconds"].as_f64().expect("seconds");
    let rate = v["msgs_per_sec"].as_f64().expect("msgs_per_sec");
    let bytes = v["bytes_per_sec"].as_f64().expect("bytes_per_sec");
    assert!(seconds > 0.0 && rate > 0.0, "{line}");
    assert!((rate - 20000.0 / seconds).abs() <= 1.0, "{line}");
    assert!((bytes - rate * 16.0).abs() <= 16.0, "{line}");
}

#[test]
fn bench_remote_cbor_counts_every_message() {
    remote("cbor");
}

#[test]
fn bench_remote_json_counts_every_message() {
    remote("json");
}

#[test]
fn bench_remote_kib_payloads() {
    let (out, marker) = aemp_marked(
        &[
            "bench",
            "remote",
            "--size",
            "1024",
            "--messages",
            "5000",
            "--json",
        ],
        "remote-kib",
    );
    let line = check_run(&out, &marker);
    assert!(
        line.starts_with(r#"{"bench":"remote","framing":"cbor","size":1024,"messages":5000,"#),
        "{line}"
    );
}

#[test]
fn bench_remote_with_a_window_counts_every_message() {
    let (out, marker) = aemp_marked(
        &[
            "bench",
            "remote",
            "--messages",
            "20001",
            "--window",
            "1000",
            "--json",
        ],
        "remote-window",
    );
    let line = check_run(&out, &marker);
    let v: serde_json::Value = serde_json::from_str(&line).expect("one JSON object");
    assert_eq!(v["messages"], 20001, "{line}");
}

#[test]
fn bench_rtt_json_has_the_documented_fields_in_order() {
    let (out, marker) = aemp_marked(&["bench", "rtt", "--rounds", "200", "--json"], "rtt");
    let line = check_run(&out, &marker);
    assert_eq!(
        keys(&line),
        [
            "bench",
            "size",
            "p50_us",
            "p99_us",
            "raw_tcp_p50_us",
            "ratio_p50"
        ],
        "{line}"
    );
    let v: serde_json::Value = serde_json::from_str(&line).expect("one JSON object");
    assert_eq!(v["bench"], "rtt");
    assert_eq!(v["size"], 16);
    let p50 = v["p50_us"].as_f64().expect("p50_us");
    let p99 = v["p99_us"].as_f64().expect("p99_us");
    let raw = v["raw_tcp_p50_us"].as_f64().expect("raw_tcp_p50_us");
    assert!(p50 > 0.0 && p99 >= p50 && raw > 0.0, "{line}");
    assert!(v["ratio_p50"].as_f64().is_some_and(|r| r > 0.0), "{line}");
}

#[test]
fn bench_connect_json_has_the_documented_fields_in_order() {
    let (out, marker) = aemp_marked(&["bench", "connect", "--rounds", "5", "--json"], "connect");
    let line = check_run(&out, &marker);
    assert_eq!(keys(&line), ["bench", "tls", "p50_ms", "p99_ms"], "{line}");
    assert!(
        line.starts_with(r#"{"bench":"connect","tls":false,"p50_ms":"#),
        "{line}"
    );
    let v: serde_json::Value = serde_json::from_str(&line).expect("one JSON object");
    let p50 = v["p50_ms"].as_f64().expect("p50_ms");
    let p99 = v["p99_ms"].as_f64().expect("p99_ms");
    assert!(p50 > 0.0 && p99 >= p50, "{line}");
}

#[test]
fn bench_remote_prints_a_table_by_default() {
    let (out, marker) = aemp_marked(
        &["bench", "remote", "--messages", "1000", "--size", "64"],
        "remote-table",
    );
    assert!(out.status.success());
    assert!(processes_with_marker(&marker).is_empty());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("1000 × 64 B"), "{stdout}");
    assert!(stdout.contains("msgs/s"), "{stdout}");
}

#[test]
fn serve_announces_itself_and_exits_when_stdin_closes() {
    let marker = format!("serve-{}-{:?}", std::process::id(), Instant::now());
    let mut child = Command::new(env!("CARGO_BIN_EXE_aemp"))
        .args(["bench", "serve", "--framing", "json"])
        .env("AEMP_BENCH_SECRET", "test-secret")
        .env(MARKER, &marker)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("aemp bench serve starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("piped"))
        .read_line(&mut line)
        .expect("an announcement");
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(words.first(), Some(&"ready"), "{line}");
    for (word, key) in words[1..]
        .iter()
        .zip(["addr=", "node=", "sink=", "echo=", "tcp="])
    {
        assert!(word.starts_with(key), "{line}");
    }
    // The marker finds it while it runs (so its absence elsewhere means something).
    assert_eq!(processes_with_marker(&marker).len(), 1);
    drop(child.stdin.take());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            assert!(status.success(), "{status}");
            assert!(processes_with_marker(&marker).is_empty());
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("serve did not exit after its stdin closed");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn serve_without_a_secret_fails_visibly() {
    let out = Command::new(env!("CARGO_BIN_EXE_aemp"))
        .args(["bench", "serve"])
        .env_remove("AEMP_BENCH_SECRET")
        .stdin(Stdio::null())
        .output()
        .expect("aemp bench serve runs");
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("error "), "{stdout}");
}

#[test]
fn bad_arguments_fail_with_one_line() {
    let (out, marker) = aemp_marked(&["bench", "remote", "--messages", "0"], "bad-args");
    assert_eq!(out.status.code(), Some(1));
    assert!(processes_with_marker(&marker).is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("aemp: "), "{stderr}");
}

#[test]
fn every_network_bench_has_help_with_an_example_and_serve_is_hidden() {
    for which in ["remote", "rtt", "connect"] {
        let out = Command::new(env!("CARGO_BIN_EXE_aemp"))
            .args(["bench", which, "--help"])
            .output()
            .expect("aemp runs");
        assert!(out.status.success());
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(
            help.contains(&format!("Example: `aemp bench {which}")),
            "{help}"
        );
    }
    let out = Command::new(env!("CARGO_BIN_EXE_aemp"))
        .args(["bench", "--help"])
        .output()
        .expect("aemp runs");
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("remote") && help.contains("connect"),
        "{help}"
    );
    assert!(!help.contains("serve"), "{help}");
}
