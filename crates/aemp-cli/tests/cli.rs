//! Runs the built `aemp` binary.

use std::process::Command;

fn aemp(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_aemp"))
        .args(args)
        .output()
        .expect("the aemp binary runs")
}

#[test]
fn demo_runs_and_exits_zero_within_30_seconds() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_aemp"))
        .arg("demo")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the aemp binary runs");
    // A bound, not a measurement: a demo that hangs must not hang the test suite.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while child.try_wait().expect("wait").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "demo still running after 30 s: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for expected in [
        "started demo-seed (seed) on 127.0.0.1:",
        "started demo-a on 127.0.0.1:",
        "started demo-b on 127.0.0.1:",
        "the seed told it where demo-a and demo-b listen",
        "spawned aemp::echo on demo-a as demo-a#",
        "spawned aemp::echo on demo-b as demo-b#",
        "ping-pong: 2000 round trips viewer → demo-a → demo-b → viewer",
        "killed demo-b (SIGKILL)",
        r#"died with ["transport_error","demo-b","#,
        "demo-a still answers: info",
        "demo finished",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
}

#[test]
fn bench_local_json_has_the_documented_fields_in_order() {
    let out = aemp(&[
        "bench",
        "local",
        "--json",
        "--messages",
        "20000",
        "--runs",
        "1",
    ]);
    assert!(out.status.success());
    let line = String::from_utf8(out.stdout).expect("utf-8");
    let line = line.trim();
    assert!(
        line.starts_with(r#"{"bench":"local","messages":20000,"seconds":"#),
        "{line}"
    );
    let v: serde_json::Value = serde_json::from_str(line).expect("one JSON object");
    assert!(
        v["msgs_per_sec"].as_f64().is_some_and(|r| r > 0.0),
        "{line}"
    );
    let fields: Vec<&str> = line
        .trim_matches(['{', '}'])
        .split(',')
        .map(|kv| kv.split(':').next().unwrap_or(""))
        .collect();
    assert_eq!(
        fields,
        [
            r#""bench""#,
            r#""messages""#,
            r#""seconds""#,
            r#""msgs_per_sec""#
        ]
    );
}

#[test]
fn bench_ports_json_has_the_documented_fields_in_order() {
    let out = aemp(&["bench", "ports", "--json", "--ports", "20000"]);
    assert!(out.status.success());
    let line = String::from_utf8(out.stdout).expect("utf-8");
    let line = line.trim();
    assert!(
        line.starts_with(r#"{"bench":"ports","ports":20000,"bytes_per_port":"#),
        "{line}"
    );
    let v: serde_json::Value = serde_json::from_str(line).expect("one JSON object");
    assert!(
        v["creates_per_sec"].as_f64().is_some_and(|r| r > 0.0),
        "{line}"
    );
}

#[test]
fn bad_arguments_exit_with_usage_errors() {
    let out = aemp(&["bench", "local", "--messages", "0"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("must be positive"));
    let out = aemp(&["no-such-command"]);
    assert_eq!(out.status.code(), Some(2));
}
