//! Golden tests: replay sessions captured between real Perl AnyEvent::MP 1.30 nodes
//! (`tests/vectors/`, see its README) through our handshake and JSON decoder, byte for byte.
//!
//! We play one of the Perl nodes: our handshake sends that node's captured greeting and nonce,
//! so the transcripts are the captured ones, and the auth line we compute must equal the one
//! the Perl node sent. The other node's captured bytes are fed in their original chunks.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] fns: a panic is a test failure"
)]

use std::time::Instant;

use aemp_proto::auth::{AuthMethod, Secret, Transcript};
use aemp_proto::framing::{Frame, FrameDecoder, Framing};
use aemp_proto::greeting::{Greeting, Nonce};
use aemp_proto::handshake::{Event, Handshake, HandshakeConfig, HandshakeError, TlsMode, TlsRole};
use aemp_proto::{Message, Value};
use bytes::BytesMut;

const SECRET: &str = "aemp-harness-test-secret";

fn vector(name: &str) -> String {
    let path = format!("{}/tests/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn json_vector(name: &str) -> serde_json::Value {
    serde_json::from_str(&vector(name)).unwrap()
}

/// One direction of a captured connection: its chunks in arrival order.
struct Direction {
    chunks: Vec<Vec<u8>>,
}

impl Direction {
    fn bytes(&self) -> Vec<u8> {
        self.chunks.concat()
    }

    /// The first `n` lines (without LF) of this direction.
    fn lines(&self, n: usize) -> Vec<String> {
        let bytes = self.bytes();
        bytes
            .split(|&b| b == b'\n')
            .take(n)
            .map(|l| String::from_utf8(l.to_vec()).unwrap())
            .collect()
    }
}

/// Reads connection `conn` of a `.jsonl` capture: (dialler→listener, listener→dialler).
fn capture(name: &str, conn: u64) -> (Direction, Direction) {
    let mut c2s = Direction { chunks: vec![] };
    let mut s2c = Direction { chunks: vec![] };
    for line in vector(name).lines() {
        let event: serde_json::Value = serde_json::from_str(line).unwrap();
        if event["conn"].as_u64() != Some(conn) {
            continue;
        }
        let Some(b64) = event["b64"].as_str() else {
            continue;
        };
        let chunk = base64_decode(b64);
        match event["dir"].as_str() {
            Some("c2s") => c2s.chunks.push(chunk),
            Some("s2c") => s2c.chunks.push(chunk),
            other => panic!("unknown direction {other:?}"),
        }
    }
    assert!(!c2s.chunks.is_empty() && !s2c.chunks.is_empty());
    (c2s, s2c)
}

fn base64_decode(s: &str) -> Vec<u8> {
    let value = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("bad base64 {c}"),
        }
    };
    let mut out = Vec::new();
    for quad in s.as_bytes().chunks(4) {
        let digits: Vec<u32> = quad
            .iter()
            .filter(|&&c| c != b'=')
            .map(|&c| value(c))
            .collect();
        let n = digits.iter().fold(0, |acc, d| (acc << 6) | d) << (6 * (4 - digits.len()));
        for i in 0..digits.len().saturating_sub(1) {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    out
}

/// Our config when we play a Perl node: Perl's accept list, JSON only.
fn perl_like_config(node: &str, secret: &str) -> HandshakeConfig {
    let mut c = HandshakeConfig::new(node.parse().unwrap());
    c.secret = Some(Secret::new(secret));
    c.auth_accept = AuthMethod::ALL.to_vec();
    c.framings = vec![Framing::Json];
    c
}

/// Plays the node whose captured lines are `ours` against the peer's captured `theirs`.
/// Returns our handshake, everything we transmitted, and the result of feeding.
fn replay(
    config: &HandshakeConfig,
    ours: &Direction,
    theirs: &Direction,
) -> (Handshake, Vec<u8>, Result<Option<BytesMut>, HandshakeError>) {
    let now = Instant::now();
    let lines = ours.lines(2);
    let greeting: Greeting = lines[0].parse().unwrap();
    let nonce = Nonce::from_line(&lines[1]).unwrap();
    let mut hs = Handshake::with_greeting(config, &greeting, nonce, now);
    let mut sent = Vec::new();
    let mut data = None;
    for chunk in &theirs.chunks {
        if data.is_some() {
            // The rest belongs to the data phase, which the caller decodes chunk by chunk.
            break;
        }
        if let Err(e) = hs.handle_input(chunk, now) {
            return (hs, sent, Err(e));
        }
        loop {
            while let Some(bytes) = hs.poll_transmit() {
                sent.extend_from_slice(&bytes);
            }
            match hs.poll_event() {
                Some(Event::PeerGreeting { .. }) => {
                    if let Err(e) = hs.accept_peer(now) {
                        return (hs, sent, Err(e));
                    }
                }
                Some(Event::StartTls { .. }) => panic!("no TLS in this capture"),
                Some(Event::Established(_)) => data = Some(hs.take_buffered()),
                Some(other) => panic!("unexpected event {other:?}"),
                None => break,
            }
        }
    }
    (hs, sent, Ok(data))
}

/// The first three lines our side of the capture sent: greeting, nonce, auth line.
fn expected_handshake_bytes(ours: &Direction) -> Vec<u8> {
    let mut v = ours.lines(3).join("\n").into_bytes();
    v.push(b'\n');
    v
}

/// The `msg N:` lines of one direction's section in a `.txt` capture, as frames.
fn expected_messages(txt: &str, section: &str) -> Vec<Frame> {
    let start = txt
        .find(section)
        .unwrap_or_else(|| panic!("no section {section}"));
    let body = &txt[start + section.len()..];
    let end = body.find("\n  [").unwrap_or(body.len());
    body[..end]
        .lines()
        .filter_map(|l| l.trim().strip_prefix("msg "))
        .map(|l| {
            let json = l.split_once(": ").unwrap().1;
            let Value::Array(mut elements) = from_serde(serde_json::from_str(json).unwrap()) else {
                panic!("message is not an array")
            };
            let port = elements.remove(0).as_str().unwrap().to_owned();
            Frame::new(port, Message::new(elements))
        })
        .collect()
}

fn from_serde(v: serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(b),
        serde_json::Value::Number(n) => n
            .as_i64()
            .map(Value::Int)
            .or_else(|| n.as_u64().map(Value::from_u64))
            .unwrap_or_else(|| Value::Float(n.as_f64().unwrap())),
        serde_json::Value::String(s) => Value::String(s),
        serde_json::Value::Array(a) => Value::Array(a.into_iter().map(from_serde).collect()),
        serde_json::Value::Object(o) => Value::Map(
            o.into_iter()
                .map(|(k, v)| (Value::String(k), from_serde(v)))
                .collect(),
        ),
    }
}

/// Decodes a data phase fed in the captured chunk boundaries.
fn decode_chunks(chunks: &[Vec<u8>], first: BytesMut) -> Vec<Frame> {
    let mut decoder = FrameDecoder::new(Framing::Json, 64 << 20);
    let mut buf = first;
    let mut frames = Vec::new();
    let mut drain = |buf: &mut BytesMut| {
        while let Some(f) = decoder.decode(buf).expect("captured data decodes") {
            frames.push(f);
        }
    };
    drain(&mut buf);
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        drain(&mut buf);
    }
    assert!(
        buf.iter().all(u8::is_ascii_whitespace),
        "undecoded bytes left"
    );
    frames.into_iter().map(sorted_maps).collect()
}

/// serde_json (without `preserve_order`) sorts object keys; sort ours the same way to compare.
fn sorted_maps(frame: Frame) -> Frame {
    fn sort(v: Value) -> Value {
        match v {
            Value::Array(a) => Value::Array(a.into_iter().map(sort).collect()),
            Value::Map(m) => {
                let mut m: Vec<(Value, Value)> = m.into_iter().map(|(k, v)| (k, sort(v))).collect();
                m.sort_by(|a, b| a.0.as_str().cmp(&b.0.as_str()));
                Value::Map(m)
            }
            other => other,
        }
    }
    let elements = frame.message.into_inner().into_iter().map(sort).collect();
    Frame::new(frame.port, Message::new(elements))
}

/// The chunks of a direction that come after the chunk holding its auth line.
fn chunks_after_handshake(d: &Direction) -> (BytesMut, Vec<Vec<u8>>) {
    let mut seen = 0;
    for (i, chunk) in d.chunks.iter().enumerate() {
        for (j, &b) in chunk.iter().enumerate() {
            if b == b'\n' {
                seen += 1;
                if seen == 3 {
                    return (BytesMut::from(&chunk[j + 1..]), d.chunks[i + 1..].to_vec());
                }
            }
        }
    }
    panic!("no auth line")
}

#[test]
fn hmac_session_as_the_listener() {
    let (c2s, s2c) = capture("json.jsonl", 1);
    let config = perl_like_config("perl-seed", SECRET);
    let (hs, sent, data) = replay(&config, &s2c, &c2s);
    let data = data.expect("handshake succeeds").expect("established");
    assert!(hs.is_established());
    assert_eq!(
        String::from_utf8(sent).unwrap(),
        String::from_utf8(expected_handshake_bytes(&s2c)).unwrap(),
        "our greeting and auth line equal the Perl listener's"
    );
    // Every data-phase message of the dialler decodes to the expected values.
    let (_, rest) = chunks_after_handshake(&c2s);
    let frames = decode_chunks(&rest, data);
    let txt = vector("json.txt");
    assert_eq!(
        frames,
        expected_messages(&txt, "[dialler -> listener (c2s)]")
    );
    assert_eq!(frames.len(), 16);
}

#[test]
fn hmac_session_as_the_dialler() {
    let (c2s, s2c) = capture("json.jsonl", 1);
    let config = perl_like_config("perl-client", SECRET);
    let (hs, sent, data) = replay(&config, &c2s, &s2c);
    let data = data.expect("handshake succeeds").expect("established");
    assert!(hs.is_established());
    assert_eq!(sent, expected_handshake_bytes(&c2s));
    let (_, rest) = chunks_after_handshake(&s2c);
    let frames = decode_chunks(&rest, data);
    let txt = vector("json.txt");
    assert_eq!(
        frames,
        expected_messages(&txt, "[listener -> dialler (s2c)]")
    );
    assert_eq!(frames.len(), 15);
    // Perl's float time arrives as a float.
    assert_eq!(frames[13].message[0], Value::Float(1_795_652_928.585_23));
}

#[test]
fn cleartext_peer_accepted_by_a_listener_that_allows_it() {
    let (c2s, s2c) = capture("raw.jsonl", 1);
    let config = perl_like_config("perl-seed", SECRET);
    let (hs, sent, data) = replay(&config, &s2c, &c2s);
    let data = data.expect("handshake succeeds").expect("established");
    assert!(hs.is_established());
    assert_eq!(sent, expected_handshake_bytes(&s2c));
    let (_, rest) = chunks_after_handshake(&c2s);
    let frames = decode_chunks(&rest, data);
    assert_eq!(
        frames,
        expected_messages(&vector("raw.txt"), "[dialler -> listener (c2s)]")
    );
}

#[test]
fn cleartext_peer_refused_by_default() {
    let (c2s, s2c) = capture("raw.jsonl", 1);
    let mut config = perl_like_config("perl-seed", SECRET);
    config.auth_accept = vec![AuthMethod::TlsMd6, AuthMethod::HmacMd6];
    let (_, _, result) = replay(&config, &s2c, &c2s);
    assert_eq!(
        result.err(),
        Some(HandshakeError::AuthMethodNotAccepted {
            method: AuthMethod::Cleartext
        })
    );
}

#[test]
fn wrong_secret_is_detected_and_our_auth_line_matches_perl() {
    let (c2s, s2c) = capture("badsecret.jsonl", 1);
    let config = perl_like_config("perl-seed", SECRET);
    let (hs, sent, result) = replay(&config, &s2c, &c2s);
    assert_eq!(
        result.err(),
        Some(HandshakeError::AuthFailed {
            method: AuthMethod::HmacMd6
        })
    );
    assert!(!hs.is_established());
    assert_eq!(sent, expected_handshake_bytes(&s2c));
}

/// Plays one side of the captured TLS handshake; TLS itself is represented by the events.
fn tls_side(ours: &str, theirs: &str, our_role: TlsRole) {
    let v = json_vector("testvector-tls_md6_64_256.json");
    let s = |k: &str| v[k].as_str().unwrap().to_owned();
    let mut config = perl_like_config(
        s(&format!("{ours}_greeting1")).split(';').nth(2).unwrap(),
        SECRET,
    );
    config.tls = TlsMode::Enabled;
    let now = Instant::now();
    let greeting: Greeting = s(&format!("{ours}_greeting1")).parse().unwrap();
    let nonce = Nonce::from_line(&s(&format!("{ours}_greeting2"))).unwrap();
    let mut hs = Handshake::with_greeting(&config, &greeting, nonce, now);
    hs.poll_transmit().unwrap();
    let peer_hello = format!(
        "{}\n{}\n",
        s(&format!("{theirs}_greeting1")),
        s(&format!("{theirs}_greeting2"))
    );
    hs.handle_input(peer_hello.as_bytes(), now).unwrap();
    assert!(matches!(hs.poll_event(), Some(Event::PeerGreeting { .. })));
    hs.accept_peer(now).unwrap();
    let Some(Event::StartTls { role }) = hs.poll_event() else {
        panic!("TLS expected")
    };
    assert_eq!(role, our_role);
    assert!(
        hs.poll_transmit().is_none(),
        "nothing is sent before TLS is up"
    );
    hs.tls_established(now).unwrap();
    let line = hs.poll_transmit().unwrap();
    assert_eq!(
        std::str::from_utf8(&line).unwrap(),
        format!("{}\n", s(&format!("{ours}_auth_line_plaintext")))
    );
    let peer_auth = format!("{}\n", s(&format!("{theirs}_auth_line_plaintext")));
    hs.handle_input(peer_auth.as_bytes(), now).unwrap();
    let Some(Event::Established(session)) = hs.poll_event() else {
        panic!("not established")
    };
    assert_eq!(session.auth, AuthMethod::TlsMd6);
    assert_eq!(session.tls, TlsMode::Enabled);
}

#[test]
fn tls_session_as_the_dialler_is_the_tls_client() {
    tls_side("dialler", "listener", TlsRole::Client);
}

#[test]
fn tls_session_as_the_listener_is_the_tls_server() {
    tls_side("listener", "dialler", TlsRole::Server);
}

#[test]
fn hmac_vector_file_tokens() {
    let v = json_vector("testvector-hmac_md6_64_256.json");
    let s = |k: &str| v[k].as_str().unwrap();
    let t = Transcript::new(
        s("dialler_greeting1"),
        s("dialler_greeting2"),
        s("listener_greeting1"),
        s("listener_greeting2"),
    );
    let secret = Secret::new(s("secret"));
    let token = |own: &[u8]| {
        AuthMethod::HmacMd6
            .token(own, Some(&secret), false)
            .unwrap()
    };
    assert_eq!(token(t.own()), s("dialler_auth_recomputed"));
    assert_eq!(token(t.peer()), s("listener_auth_recomputed"));
    assert_eq!(
        format!("hmac_md6_64_256;{};json", token(t.own())),
        s("dialler_auth_line_on_wire")
    );
}

#[test]
fn md6_vector_file_auth_lines() {
    let v = json_vector("md6-vectors.json");
    let h = &v["aemp_hmac_md6_64_256"];
    let s = |k: &str| h[k].as_str().unwrap();
    let t = Transcript::new(
        s("node_a_greeting1"),
        s("node_a_greeting2"),
        s("node_b_greeting1"),
        s("node_b_greeting2"),
    );
    let secret = Secret::new(s("secret"));
    let line = |m: AuthMethod, own: &[u8]| {
        format!(
            "{};{};json",
            m.name(),
            m.token(own, Some(&secret), true).unwrap()
        )
    };
    assert_eq!(line(AuthMethod::HmacMd6, t.own()), s("node_a_auth_line"));
    assert_eq!(line(AuthMethod::HmacMd6, t.peer()), s("node_b_auth_line"));
    let tls = &v["aemp_tls_md6_64_256"];
    assert_eq!(
        line(AuthMethod::TlsMd6, t.own()),
        tls["node_a_auth_line"].as_str().unwrap()
    );
    assert_eq!(
        line(AuthMethod::TlsMd6, t.peer()),
        tls["node_b_auth_line"].as_str().unwrap()
    );
    let clear = &v["aemp_cleartext"];
    let secret = Secret::new(clear["secret"].as_str().unwrap());
    assert_eq!(
        format!(
            "cleartext;{};json",
            AuthMethod::Cleartext
                .token(b"", Some(&secret), false)
                .unwrap()
        ),
        clear["auth_line"].as_str().unwrap()
    );
}

/// The documentation example of reference §4.7 (protocol version 0, so only the tokens).
#[test]
fn pod_example_tokens() {
    let a1 = "aemp;0;anon/57Cs1CggVJjzYaQp13XXg4;tls_md6_64_256,hmac_md6_64_256,tls_anon,cleartext;json,storable;provider=AE-0.8;timeout=12;peeraddr=10.0.0.17:4040";
    let a2 =
        "yLgdG1ov/02shVkVQer3wzeuywZK+oraTdEQBmIqWHaegxSGDG4g+HqogLQbvdypFOsoDWJ1Sh4ImV4DMhvUBwTK";
    let b1 = "aemp;0;ruth;tls_md6_64_256,hmac_md6_64_256,tls_anon,cleartext;json,storable;provider=AE-0.8;timeout=12;peeraddr=10.0.0.1:37108";
    let b2 =
        "+xMQXP8ElfNmuvEhsmcp+s2wCJOuQAsPxSg3d2Ewhs6gBnJz+ypVdWJ/wAVrXqlIJfLeVS/CBy4gEGkyWHSuVb1L";
    let secret = Secret::new(
        "8ugxrtw6H5tKnfPWfaSr4HGhE8MoJXmzTT1BWq7sLutNcD0IbXprQlZjIbl7MBKoeklG3IEfY9GlJthC0pENzk",
    );
    assert_eq!(
        aemp_proto::auth::hex(&secret.hashed()),
        "21bbec58f7330e200e0ff56a96dd6451aae049a4ce6c59b4fd0b7dcc101136c7"
    );
    let t = Transcript::new(a1, a2, b1, b2);
    let hmac = |own: &[u8]| {
        AuthMethod::HmacMd6
            .token(own, Some(&secret), false)
            .unwrap()
    };
    let tls = |own: &[u8]| AuthMethod::TlsMd6.token(own, None, true).unwrap();
    assert_eq!(
        hmac(t.own()),
        "84cd590976f794914c2ca26dac3a207a57a6798b9171289c114de07cf0c20401"
    );
    assert_eq!(
        hmac(t.peer()),
        "5ad913855742ae5a03a5aeb7eafa4c78629de136bed6acd73eea36c9e98df44a"
    );
    assert_eq!(
        tls(t.own()),
        "b86e3c36a8be31dba0ba63ee8e3a16b9d96af9d58d7b3d428b5fabee34a9743d"
    );
    assert_eq!(
        tls(t.peer()),
        "ff99bec4ed07874a916554b62beec35f481c9364d59464219a3e08ae01b6521a"
    );
}
