//! The profile commands against a temporary `$AEMP_RC`: what they write, chaining, JSON
//! arguments, errors (exit 1, file untouched) and usage errors (exit 2, one line).

#[path = "common/rc.rs"]
mod rc;

use std::path::Path;

use rc::Rc;
use serde_json::{Value, json};

/// Runs a command that must fail with `code` and a one-line `aemp: ...` error; returns it.
fn fails(rc: &Rc, code: i32, args: &[&str]) -> String {
    let err = rc.fails(code, args);
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err:?}");
    assert!(err.starts_with("aemp: "), "{err:?}");
    err
}

/// The config file as written.
fn written(rc: &Rc) -> Value {
    read(&rc.path())
}

fn read(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("config written")).expect("JSON")
}

#[test]
fn chained_profile_commands_write_the_file() {
    let rc = Rc::new("chain");
    rc.ok(&[
        "setsecret",
        "top-secret",
        "profile",
        "seed",
        "setnodeid",
        "seed",
        "setbinds",
        "127.0.0.1:4040,[::1]:4040",
        "addseed",
        "127.0.0.1:4041",
        "addseed",
        "127.0.0.1:4041",
        "monitor_timeout",
        "10",
        "setnodelay",
        "false",
        "framing_format",
        "json",
        "profile",
        "worker",
        "parent",
        "seed",
        "nodeid",
        "anon/",
        "services",
        r#"[["aemp::echo"]]"#,
    ]);
    let want = json!({
        "version": 1,
        "secret": "top-secret",
        "profile": {
            "seed": {
                "nodeid": "seed",
                "binds": ["127.0.0.1:4040", "[::1]:4040"],
                "seeds": ["127.0.0.1:4041"],
                "monitor_timeout": "10",
                "nodelay": "false",
                "framing_format": ["json"],
            },
            "worker": {
                "parent": "seed",
                "nodeid": "anon/",
                "services": [["aemp::echo"]],
            },
        },
    });
    assert_eq!(written(&rc), want);

    // showprofile prints a profile as written; showconfig the effective keys.
    let shown: Value = serde_json::from_str(&rc.ok(&["showprofile", "worker"])).unwrap();
    assert_eq!(shown, want["profile"]["worker"]);
    let effective: Value = serde_json::from_str(&rc.ok(&["showconfig", "worker"])).unwrap();
    assert_eq!(effective["secret"], "top-secret");
    assert_eq!(effective["binds"], want["profile"]["seed"]["binds"]);
    assert_eq!(effective["nodeid"], "anon/");
    assert_eq!(effective["connect_interval"], 2, "built-in default");
    assert!(effective.get("parent").is_none() && effective.get("profile").is_none());
    // KEY VALUE defaults lose against the file.
    let effective: Value = serde_json::from_str(&rc.ok(&[
        "showconfig",
        "worker",
        "connect_interval",
        "7",
        "secret",
        "other",
    ]))
    .unwrap();
    assert_eq!(effective["connect_interval"], "7");
    assert_eq!(effective["secret"], "top-secret");

    // Deleting things.
    rc.ok(&[
        "profile",
        "seed",
        "delbind",
        "[::1]:4040",
        "delseeds",
        "delmonitor_timeout",
        "del",
        "nodelay",
    ]);
    rc.ok(&["profile", "worker", "delparent", "delservices", "delnodeid"]);
    rc.ok(&["delsecret", "delprofile", "worker"]);
    assert_eq!(
        written(&rc),
        json!({
            "version": 1,
            "profile": {"seed": {
                "nodeid": "seed",
                "binds": ["127.0.0.1:4040"],
                "framing_format": ["json"],
            }},
        })
    );
    // The previous version is kept as a backup.
    let backup = read(&rc.dir.join("config.json~"));
    assert_eq!(
        backup["profile"]["seed"]["binds"].as_array().unwrap().len(),
        1
    );
}

#[test]
fn secrets_and_certificates() {
    let rc = Rc::new("secrets");
    rc.ok(&["gensecret"]);
    let secret = written(&rc)["secret"].as_str().unwrap().to_owned();
    assert!(secret.len() >= 80 && secret.bytes().all(|b| b.is_ascii_alphanumeric()));
    rc.ok(&["gensecret"]);
    assert_ne!(written(&rc)["secret"], secret.as_str());

    rc.ok(&["profile", "tls", "gencert"]);
    let pem = written(&rc)["profile"]["tls"]["cert"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(pem.contains("-----BEGIN PRIVATE KEY-----"));
    // The same PEM from a file.
    let file = rc.dir.join("node.pem");
    std::fs::write(&file, &pem).unwrap();
    rc.ok(&["profile", "copy", "setcert", file.to_str().unwrap()]);
    assert_eq!(written(&rc)["profile"]["copy"]["cert"], pem.as_str());
    // A file that is not a certificate with its key is refused.
    std::fs::write(&file, "hello").unwrap();
    let err = fails(
        &rc,
        1,
        &["profile", "bad", "setcert", file.to_str().unwrap()],
    );
    assert!(err.contains("PEM certificate and its private key"), "{err}");
    rc.ok(&["profile", "copy", "delcert"]);
    assert!(written(&rc)["profile"]["copy"].get("cert").is_none());
}

#[test]
fn a_single_json_array_is_the_whole_command_line() {
    let rc = Rc::new("jsonargs");
    rc.ok(&[
        r#"["profile", "p", "setseeds", ["10.0.0.1:1", "10.0.0.2:2"], "secret", "\"quoted\""]"#,
    ]);
    assert_eq!(
        written(&rc)["profile"]["p"]["seeds"],
        json!(["10.0.0.1:1", "10.0.0.2:2"])
    );
    assert_eq!(written(&rc)["profile"]["p"]["secret"], "quoted");
}

#[test]
fn bad_values_fail_and_leave_the_file_alone() {
    let rc = Rc::new("bad");
    rc.ok(&["profile", "p", "setnodeid", "p1"]);
    let before = std::fs::read(rc.path()).unwrap();
    for (args, why) in [
        (
            &["profile", "p", "monitor_timeout", "soon"][..],
            "not a number of seconds",
        ),
        (&["profile", "p", "setnodeid", "a#b"][..], "invalid node id"),
        (&["profile", "p", "setbinds", "host:port"][..], "not a port"),
        (&["profile", "p", "addseed", "[::1"][..], "missing ']'"),
        (&["profile", "p", "auth_offer", "hmac"][..], "unknown name"),
        (&["profile", "p", "nodelay", "maybe"][..], "not a boolean"),
        (
            &["profile", "p", "setparent", "p"][..],
            "parent chain loops",
        ),
        (&["delprofile", "nope"][..], "no profile"),
        (&["showprofile", "nope"][..], "no profile"),
        (
            &["profile", "p", "delbind", "1.2.3.4:5"][..],
            "not in the binds",
        ),
        // A good command before a bad one is not saved either.
        (
            &["profile", "p", "setsecret", "x", "monitor_timeout", "-1"][..],
            "more than 0",
        ),
    ] {
        let err = fails(&rc, 1, args);
        assert!(err.contains(why), "{args:?}: {err}");
        assert_eq!(
            std::fs::read(rc.path()).unwrap(),
            before,
            "{args:?} changed the file"
        );
    }
    // Names are resolved when a node starts; showconfig resolves them too.
    rc.ok(&["profile", "q", "setseeds", "no-such-host.invalid:4040"]);
    let err = fails(&rc, 1, &["showconfig", "q"]);
    assert!(
        err.contains("cannot resolve \"no-such-host.invalid:4040\""),
        "{err}"
    );
}

#[test]
fn an_invalid_config_file_is_an_error_and_never_overwritten() {
    let rc = Rc::new("invalid");
    std::fs::write(rc.path(), "{ \"secret\": ").unwrap();
    let err = fails(&rc, 1, &["setsecret", "x"]);
    assert!(err.contains("invalid"), "{err}");
    assert_eq!(
        std::fs::read_to_string(rc.path()).unwrap(),
        "{ \"secret\": "
    );
    // Perl's relaxed syntax is fine.
    std::fs::write(
        rc.path(),
        "{ # written by hand\n \"secret\": \"s\", \"profile\": {\"p\": {\"binds\": [\"127.0.0.1:0\",],},},\n}",
    )
    .unwrap();
    rc.ok(&["profile", "p", "setnodeid", "pp"]);
    assert_eq!(written(&rc)["profile"]["p"]["nodeid"], "pp");
}

#[test]
fn usage_errors_exit_2_with_one_line() {
    let rc = Rc::new("usage");
    let err = fails(&rc, 2, &["no-such-command"]);
    assert!(err.contains("no-such-command"), "{err}");
    let err = fails(&rc, 2, &["snd"]);
    assert!(err.contains("<PORT>"), "{err}");
    let err = fails(&rc, 2, &["set", "no_such_option", "1"]);
    assert!(err.contains("no_such_option"), "{err}");
    fails(&rc, 2, &["cal", "seed", "time", "--timeout", "soon"]);
    assert!(!rc.path().exists(), "usage errors write nothing");
}

#[test]
fn every_command_has_help_with_an_example() {
    let rc = Rc::new("help");
    let top = rc.ok(&["--help"]);
    let commands: Vec<&str> = top
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .collect();
    assert!(commands.len() > 30, "{commands:?}");
    for c in commands {
        let help = rc.ok(&[c, "--help"]);
        assert!(
            help.contains("Example: `aemp "),
            "{c} --help has no example:\n{help}"
        );
    }
}
