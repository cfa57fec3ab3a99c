use std::time::Duration;

use super::*;
use crate::{AuthMethod, Framing};

/// The sample of reference §5.2, as Perl's tool writes it (plus its `#` comment).
const PERL_SAMPLE: &str = r#"{
   "version" : 1,
   "secret"  : "…",                      # global defaults: any key of §5.4
   "binds"   : ["*:4040"],
   "profile" : {
      "seed"  : { "nodeid" : "anon/", "binds" : ["*:4040"] },
      "doomed": { "parent" : "server", "services" : ["BK::Backend::IRC::"] }
   }
}"#;

fn temp_dir(name: &str) -> PathBuf {
    let mut random = [0_u8; 8];
    getrandom::fill(&mut random).unwrap();
    let dir = std::env::temp_dir().join(format!(
        "aemp-config-{name}-{}",
        random
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    ));
    fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn reads_the_perl_sample() {
    let file = ConfigFile::parse(PERL_SAMPLE).unwrap();
    assert_eq!(file.profile_names(), ["doomed", "seed"]);
    let seed = file.settings("seed", &[]).unwrap();
    assert_eq!(seed.node_id, "anon/");
    assert_eq!(seed.secret.as_deref(), Some("…"));
    assert_eq!(seed.binds, ["*:4040"]);
    assert_eq!(seed.monitor_timeout, Duration::from_secs(30));
    assert_eq!(seed.connect_interval, Duration::from_secs(2));
    assert_eq!(seed.framings, [Framing::Cbor, Framing::Json]);
    assert_eq!(seed.auth_accept, [AuthMethod::TlsMd6, AuthMethod::HmacMd6]);
    assert!(seed.nodelay);
    // aemp's failure-handling limits have defaults a Perl file never sets.
    assert_eq!(seed.heartbeat_interval, Duration::from_secs(1));
    assert_eq!(seed.heartbeat_timeout, Duration::from_secs(10));
    assert_eq!(seed.handshake_timeout, Duration::from_secs(10));
    assert_eq!(seed.max_queue, 64 << 20);
    assert_eq!(seed.max_unauthenticated, 512);
    // "doomed" has a parent that does not exist: it contributes nothing.
    let doomed = file.settings("doomed", &[]).unwrap();
    assert_eq!(doomed.node_id, "doomed");
    assert_eq!(doomed.services.len(), 1);
    assert_eq!(doomed.services[0].name, "BK::Backend::IRC::");
    // A profile that does not exist gives the global defaults, the node ID is its name.
    let other = file.settings("elsewhere", &[]).unwrap();
    assert_eq!(other.node_id, "elsewhere");
    assert_eq!(other.binds, ["*:4040"]);
}

#[test]
fn relaxed_syntax_keeps_strings_intact() {
    let file = ConfigFile::parse(
        "{ # comment\n \"secret\": \"a#b,]\", \"binds\": [\"1.2.3.4:5\",],\n \"x\": {\"y\":1,}, }",
    )
    .unwrap();
    assert_eq!(file.get(None, "secret"), Some(&Json::from("a#b,]")));
    assert_eq!(
        file.get(None, "binds"),
        Some(&Json::from(vec!["1.2.3.4:5"]))
    );
    let s = file.settings("p", &[]).unwrap();
    assert_eq!(s.extra.get("x"), Some(&serde_json::json!({"y": 1})));
    // An escaped quote does not end the string.
    let file = ConfigFile::parse(r##"{"secret": "a\"#,}"}"##).unwrap();
    assert_eq!(file.get(None, "secret"), Some(&Json::from("a\"#,}")));
}

#[test]
fn precedence_defaults_overrides_top_ancestors_profile() {
    let file = ConfigFile::parse(
        r#"{
        "monitor_timeout": 11,
        "connect_interval": "3",
        "parent": "base",
        "profile": {
            "base": { "seeds": ["10.0.0.1:1"], "secret": "base" },
            "mid": { "secret": "mid", "nodelay": 0 },
            "leaf": { "parent": "mid", "nodeid": "leaf-node", "monitor_timeout": "2.5" }
        }
    }"#,
    )
    .unwrap();
    let overrides = [
        ("monitor_timeout", Json::from(99)),
        ("secret", Json::from("override")),
        ("autocork", Json::from(true)),
    ];
    let s = file.settings("leaf", &overrides).unwrap();
    // The profile beats its parent, which beats the top level, which beats overrides.
    assert_eq!(s.monitor_timeout, Duration::from_millis(2500));
    assert_eq!(s.secret.as_deref(), Some("mid"));
    assert!(!s.nodelay);
    // The top level's parent is every chain's farthest ancestor.
    assert_eq!(s.seeds, ["10.0.0.1:1"]);
    // Numbers written as strings, overrides where nothing in the file says otherwise.
    assert_eq!(s.connect_interval, Duration::from_secs(3));
    assert!(s.autocork);
    assert_eq!(s.node_id, "leaf-node");
    // The effective map has neither `profile` nor `parent`.
    let map = file.effective("leaf", &[]).unwrap();
    assert!(!map.contains_key("profile") && !map.contains_key("parent"));
}

#[test]
fn parent_cycles_are_errors_not_hangs() {
    let file = ConfigFile::parse(
        r#"{"profile": {"a": {"parent": "b"}, "b": {"parent": "c"}, "c": {"parent": "a"}}}"#,
    )
    .unwrap();
    let e = file.settings("a", &[]).unwrap_err();
    assert!(matches!(e, ConfigError::ParentCycle { .. }), "{e}");
    assert_eq!(
        e.to_string(),
        "profile \"a\": parent chain loops: a -> b -> c -> a"
    );
    let file = ConfigFile::parse(r#"{"profile": {"a": {"parent": "a"}}}"#).unwrap();
    assert!(matches!(
        file.settings("a", &[]),
        Err(ConfigError::ParentCycle { .. })
    ));
    let file = ConfigFile::parse(r#"{"profile": {"a": {"parent": 7}}}"#).unwrap();
    let e = file.settings("a", &[]).unwrap_err().to_string();
    assert!(e.contains("\"parent\""), "{e}");
}

#[test]
fn bad_values_name_profile_and_key() {
    let cases = [
        (
            r#"{"monitor_timeout": "soon"}"#,
            "monitor_timeout",
            "not a number",
        ),
        (
            r#"{"monitor_timeout": 0}"#,
            "monitor_timeout",
            "more than 0",
        ),
        (
            r#"{"connect_interval": -1}"#,
            "connect_interval",
            "more than 0",
        ),
        (r#"{"nodelay": "maybe"}"#, "nodelay", "not a boolean"),
        (
            r#"{"heartbeat_timeout": 1}"#,
            "heartbeat_timeout",
            "longer than heartbeat_interval",
        ),
        (
            r#"{"heartbeat_interval": 0}"#,
            "heartbeat_interval",
            "more than 0",
        ),
        (
            r#"{"handshake_timeout": "x"}"#,
            "handshake_timeout",
            "not a number",
        ),
        (r#"{"max_queue": 0}"#, "max_queue", "more than 0"),
        (r#"{"max_queue": 1.5}"#, "max_queue", "whole number"),
        (
            r#"{"max_unauthenticated": "many"}"#,
            "max_unauthenticated",
            "whole number",
        ),
        (r#"{"binds": 5}"#, "binds", "array of strings"),
        (r#"{"seeds": [[1]]}"#, "seeds", "not a string"),
        (r#"{"nodeid": "a#b"}"#, "nodeid", "#"),
        (r#"{"nodeid": ""}"#, "nodeid", ""),
        (r#"{"secret": {}}"#, "secret", "must be a string"),
        (
            r#"{"framing_format": ["storable"]}"#,
            "framing_format",
            "no framing",
        ),
        (
            r#"{"framing_format": ["jsno"]}"#,
            "framing_format",
            "unknown name",
        ),
        (
            r#"{"auth_offer": ["hmac_md6"]}"#,
            "auth_offer",
            "unknown name",
        ),
        (r#"{"auth_accept": [{}]}"#, "auth_accept", "is not a string"),
        (r#"{"services": ["x", 3]}"#, "services", "not a service"),
    ];
    for (text, key, why) in cases {
        let e = ConfigFile::parse(text)
            .unwrap()
            .settings("prof", &[])
            .expect_err(text);
        let ConfigError::Key {
            profile,
            key: k,
            reason,
        } = &e
        else {
            panic!("{text}: {e}");
        };
        assert_eq!((profile.as_str(), k.as_str()), ("prof", key), "{text}");
        assert!(reason.contains(why), "{text}: {reason}");
        assert!(e.to_string().starts_with("profile \"prof\": key"), "{e}");
    }
}

#[test]
fn perl_values_are_understood() {
    let file = ConfigFile::parse(
        r#"{"framing_format": ["json", "storable"], "monitor_timeout": "30",
            "binds": "127.0.0.1:1,127.0.0.1:2", "nodeid": 42, "nodelay": "0",
            "auth_accept": ["tls_md6_64_256", "hmac_md6_64_256", "tls_anon", "cleartext"],
            "services": [["AnyEvent::MP::LogCatcher::catch", 9], "X::"]}"#,
    )
    .unwrap();
    let s = file.settings("p", &[]).unwrap();
    assert_eq!(s.framings, [Framing::Json]);
    assert_eq!(s.binds, ["127.0.0.1:1", "127.0.0.1:2"]);
    assert_eq!(s.node_id, "42");
    assert!(!s.nodelay);
    assert_eq!(s.auth_accept.len(), 4);
    assert_eq!(s.services[0].args, [crate::Value::from(9)]);
}

#[test]
fn failure_limits_from_the_file_reach_the_node() {
    let file = ConfigFile::parse(
        r#"{"heartbeat_interval": "0.25", "heartbeat_timeout": 3, "handshake_timeout": 4,
            "max_queue": "1048576", "max_unauthenticated": 16}"#,
    )
    .unwrap();
    let s = file.settings("p", &[]).unwrap();
    assert_eq!(s.heartbeat_interval, Duration::from_millis(250));
    assert_eq!(s.heartbeat_timeout, Duration::from_secs(3));
    assert_eq!(s.handshake_timeout, Duration::from_secs(4));
    assert_eq!(s.max_queue, 1 << 20);
    assert_eq!(s.max_unauthenticated, 16);
    // The builder takes them (an impossible pair would be refused at start).
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _guard = rt.enter();
    let mut s = s;
    s.binds = Vec::new();
    let node = s.start().unwrap();
    drop(node.shutdown());
}

#[test]
fn invalid_files_are_errors_and_never_overwritten() {
    let dir = temp_dir("invalid");
    let path = dir.join("config.json");
    fs::write(&path, "{ not json").unwrap();
    let e = ConfigFile::open(&path).unwrap_err();
    assert!(matches!(e, ConfigError::Parse { .. }), "{e}");
    assert!(e.to_string().contains(path.to_str().unwrap()), "{e}");
    assert!(e.to_string().contains("line 1"), "{e}");
    fs::write(&path, "[1, 2]").unwrap();
    let e = ConfigFile::open(&path).unwrap_err().to_string();
    assert!(e.contains("must be a JSON object"), "{e}");
    fs::write(&path, r#"{"profile": []}"#).unwrap();
    assert!(ConfigFile::open(&path).is_err());
    assert_eq!(fs::read_to_string(&path).unwrap(), r#"{"profile": []}"#);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn unreadable_files_are_errors() {
    // Deterministic even for root (who reads any mode): bytes that are not UTF-8, and a
    // directory where the file should be.
    let dir = temp_dir("unreadable");
    let path = dir.join("config.json");
    fs::write(&path, b"{\"secret\": \"\xff\xfe\"}").unwrap();
    let e = ConfigFile::open(&path).unwrap_err();
    assert!(matches!(e, ConfigError::Read { .. }), "{e}");
    assert!(
        e.to_string()
            .starts_with(&format!("cannot read config file {}", path.display())),
        "{e}"
    );
    let e = ConfigFile::open(&dir).unwrap_err();
    assert!(matches!(e, ConfigError::Read { .. }), "{e}");
    // Nothing was written over it.
    assert_eq!(fs::read(&path).unwrap(), b"{\"secret\": \"\xff\xfe\"}");
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn editing_and_atomic_saves() {
    let dir = temp_dir("save");
    let path = dir.join("sub").join("config.json");
    let mut file = ConfigFile::open(&path).unwrap();
    assert!(!file.is_modified());
    file.save().unwrap();
    assert!(!path.exists(), "an unmodified file is not written");

    file.set(Some("seed"), "binds", Json::from(vec!["127.0.0.1:4040"]));
    file.set(None, "secret", Json::from("s"));
    assert!(file.is_modified());
    file.save().unwrap();
    assert!(!file.is_modified());
    let text = fs::read_to_string(&path).unwrap();
    let back = ConfigFile::parse(&text).unwrap();
    assert_eq!(
        back.get(Some("seed"), "binds"),
        Some(&Json::from(vec!["127.0.0.1:4040"]))
    );
    assert_eq!(back.get(None, "version"), Some(&Json::from(1)));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the file holds secrets: {mode:o}");
    }

    // The second save keeps the first as a backup.
    let mut file = ConfigFile::open(&path).unwrap();
    assert_eq!(
        file.remove(Some("seed"), "binds"),
        Some(Json::from(vec!["127.0.0.1:4040"]))
    );
    assert!(file.delete_profile("seed"));
    assert!(!file.delete_profile("seed"));
    file.save().unwrap();
    let backup = fs::read_to_string(dir.join("sub").join("config.json~")).unwrap();
    assert_eq!(backup, text);
    assert!(ConfigFile::open(&path).unwrap().profile("seed").is_none());
    assert!(!dir.join("sub").join("config.json~new~").exists());
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn setting_an_equal_value_is_not_a_change() {
    let mut file = ConfigFile::parse(r#"{"profile": {"p": {"secret": "x"}}}"#).unwrap();
    file.set(Some("p"), "secret", Json::from("x"));
    assert!(!file.is_modified());
    file.ensure_profile("p");
    assert!(!file.is_modified());
    file.ensure_profile("q");
    assert!(file.is_modified());
    assert_eq!(file.profile("q"), Some(&Map::new()));
}

#[test]
fn oversized_files_are_refused_before_reading() {
    let dir = temp_dir("big");
    let path = dir.join("config.json");
    let f = fs::File::create(&path).unwrap();
    f.set_len(MAX_FILE_SIZE + 1).unwrap();
    let e = ConfigFile::open(&path).unwrap_err().to_string();
    assert!(e.contains("larger than the limit"), "{e}");
    fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn a_profile_starts_a_node() {
    let file = ConfigFile::parse(
        r#"{"secret": "x", "profile": {"n": {"nodeid": "config-node", "binds": ["127.0.0.1:0"]}}}"#,
    )
    .unwrap();
    let node = file.settings("n", &[]).unwrap().start().unwrap();
    assert_eq!(node.id().as_str(), "config-node");
    let addrs = node.listen_addrs();
    assert_eq!(addrs.len(), 1);
    assert!(addrs[0].ip().is_loopback() && addrs[0].port() != 0);
    node.shutdown();

    let anon = ConfigFile::parse(r#"{"nodeid": "anon/", "binds": []}"#)
        .unwrap()
        .settings("whatever", &[])
        .unwrap()
        .start()
        .unwrap();
    assert!(anon.id().as_str().starts_with("anon/"), "{}", anon.id());
    assert!(anon.listen_addrs().is_empty());
    anon.shutdown();
}

#[tokio::test]
async fn unknown_services_and_bad_binds_are_errors() {
    let file = ConfigFile::parse(
        r#"{"binds": [], "profile": {
            "svc": {"services": ["No::such"]},
            "module": {"services": ["Some::Module::"]},
            "global": {"services": ["AnyEvent::MP::Global::"]},
            "bind": {"binds": ["nonsense:port"]}
        }}"#,
    )
    .unwrap();
    let e = file.settings("svc", &[]).unwrap().start().unwrap_err();
    assert!(
        matches!(e, ConfigError::UnknownService { ref name, .. } if name == "No::such"),
        "{e}"
    );
    let e = file.settings("module", &[]).unwrap().start().unwrap_err();
    assert!(matches!(e, ConfigError::UnknownService { .. }), "{e}");
    file.settings("global", &[])
        .unwrap()
        .start()
        .unwrap()
        .shutdown();
    let e = file.settings("bind", &[]).unwrap().start().unwrap_err();
    assert!(
        matches!(e, ConfigError::Resolve { ref key, ref spec, .. } if key == "binds" && spec == "nonsense:port"),
        "{e}"
    );
}

#[tokio::test]
async fn a_failing_setup_is_reported_and_stops_the_start() {
    let settings = ConfigFile::parse(r#"{"binds": []}"#)
        .unwrap()
        .settings("s", &[])
        .unwrap();
    let e = settings
        .start_with(|_node| Err("no database".into()))
        .unwrap_err();
    assert!(matches!(e, ConfigError::Setup { .. }), "{e}");
    assert_eq!(e.to_string(), "profile \"s\": setup failed: no database");
}

mod no_panics {
    use proptest::prelude::*;

    use super::*;

    /// Text that looks like a config file: JSON-ish tokens, comments, commas, junk.
    fn configish() -> impl Strategy<Value = String> {
        let token = prop_oneof![
            Just("{".to_owned()),
            Just("}".to_owned()),
            Just("[".to_owned()),
            Just("]".to_owned()),
            Just(",".to_owned()),
            Just(":".to_owned()),
            Just("#".to_owned()),
            Just("\n".to_owned()),
            Just("\"profile\"".to_owned()),
            Just("\"parent\"".to_owned()),
            Just("\"binds\"".to_owned()),
            Just("\"seeds\"".to_owned()),
            Just("\"monitor_timeout\"".to_owned()),
            Just("\"nodelay\"".to_owned()),
            Just("\"services\"".to_owned()),
            Just("\"framing_format\"".to_owned()),
            Just("\"nodeid\"".to_owned()),
            Just("\"p\"".to_owned()),
            Just("1e308".to_owned()),
            Just("-0".to_owned()),
            Just("null".to_owned()),
            "\"[^\"\\\\]{0,8}\"",
            "[ -~]{0,4}",
        ];
        prop::collection::vec(token, 0..40).prop_map(|t| t.concat())
    }

    proptest! {
        #[test]
        fn any_text_gives_settings_or_an_error(text in configish()) {
            if let Ok(file) = ConfigFile::parse(&text) {
                for profile in ["p", "q"] {
                    if let Ok(settings) = file.settings(profile, &[]) {
                        // Junk addresses must give an error, not a panic.
                        for spec in settings.binds.iter().chain(&settings.seeds) {
                            let _ = parse_spec(spec);
                        }
                    }
                    let _ = file.effective(profile, &[]);
                }
                let _ = file.to_pretty_string();
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(text in "\\PC{0,200}") {
            let _ = ConfigFile::parse(&text);
            let _ = parse_spec(&text);
        }
    }
}
