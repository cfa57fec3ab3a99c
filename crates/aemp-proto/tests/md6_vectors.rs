//! MD6-256 and HMAC-MD6 against the vectors computed by Perl's `Digest::MD6` 0.11 and
//! `Digest::HMAC_MD6` 0.01, and the auth tokens of real AnyEvent::MP 1.30 handshakes.

use aemp_proto::md6::{Md6_256, hmac_md6_256, md6_256, to_hex};
use serde_json::Value;

fn load(name: &str) -> Value {
    let path = format!("{}/tests/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn md6_vectors() -> Value {
    load("md6-vectors.json")
}

fn str_field<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("missing string field {key:?} in {v}"))
}

fn unhex(hex: &str) -> Vec<u8> {
    assert!(hex.len().is_multiple_of(2), "odd hex length");
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap_or_else(|e| panic!("{hex:?}: {e}")))
        .collect()
}

/// The middle field of `method;token;framing`.
fn token_of(auth_line: &str) -> &str {
    let fields: Vec<&str> = auth_line.split(';').collect();
    assert_eq!(fields.len(), 3, "auth line {auth_line:?}");
    fields[1]
}

/// The transcript T a node signs: its own two greeting lines, then the peer's, each ending in LF.
fn transcript(own: [&str; 2], peer: [&str; 2]) -> Vec<u8> {
    format!("{}\n{}\n{}\n{}\n", own[0], own[1], peer[0], peer[1]).into_bytes()
}

/// `hmac_md6_64_256` token: hex HMAC-MD6(key = T, message = MD6-256(secret)).
fn hmac_token(t: &[u8], secret: &[u8]) -> String {
    to_hex(&hmac_md6_256(t, &md6_256(secret)))
}

/// `tls_md6_64_256` token: hex MD6-256(T).
fn tls_token(t: &[u8]) -> String {
    to_hex(&md6_256(t))
}

#[test]
fn md6_256_every_entry() {
    let vectors = md6_vectors();
    let entries = vectors["md6_256"].as_array().expect("md6_256 array");
    assert!(
        entries.len() >= 8,
        "expected at least 8 md6_256 vectors, found {}",
        entries.len()
    );
    for entry in entries {
        let input = unhex(str_field(entry, "input_hex"));
        assert_eq!(
            Some(input.len() as u64),
            entry["input_len"].as_u64(),
            "{entry}"
        );
        let expected = str_field(entry, "md6_256_hex");
        assert_eq!(
            to_hex(&md6_256(&input)),
            expected,
            "input of {} bytes",
            input.len()
        );

        // The same through the streaming interface, one byte at a time.
        let mut hasher = Md6_256::new();
        for byte in &input {
            hasher.update(std::slice::from_ref(byte));
        }
        assert_eq!(
            to_hex(&hasher.finalize()),
            expected,
            "input of {} bytes",
            input.len()
        );
    }
}

#[test]
fn md6_256_known_values() {
    for (input, expected) in [
        (
            &b""[..],
            "bca38b24a804aa37d821d31af00f5598230122c5bbfc4c4ad5ed40e4258f04ca",
        ),
        (
            b"abc",
            "230637d4e6845cf0d092b558e87625f03881dd53a7439da34cf3b94ed0d8b2c5",
        ),
        (
            b"8ugxrtw6H5tKnfPWfaSr4HGhE8MoJXmzTT1BWq7sLut\
              NcD0IbXprQlZjIbl7MBKoeklG3IEfY9GlJthC0pENzk",
            "21bbec58f7330e200e0ff56a96dd6451aae049a4ce6c59b4fd0b7dcc101136c7",
        ),
    ] {
        assert_eq!(to_hex(&md6_256(input)), expected);
    }
}

#[test]
fn hmac_md6_generic() {
    let vectors = md6_vectors();
    let v = &vectors["hmac_md6_64_256_generic"];
    // Digest::HMAC_MD6::hmac_md6_hex(data, key, 64, 256): `data` is the message.
    let key = str_field(v, "key");
    let data = str_field(v, "data");
    assert_eq!(
        to_hex(&hmac_md6_256(key.as_bytes(), data.as_bytes())),
        str_field(v, "hex")
    );
    assert_eq!(
        to_hex(&hmac_md6_256(b"key", b"data")),
        "d47ad7f69305ad00bbf681d81a25742bcf5f6b3a2010e23767f23d37339eb596"
    );
}

#[test]
fn aemp_hmac_md6_fixed_greetings() {
    let vectors = md6_vectors();
    let v = &vectors["aemp_hmac_md6_64_256"];
    let secret = str_field(v, "secret").as_bytes();
    assert_eq!(to_hex(&md6_256(secret)), str_field(v, "md6_256_secret_hex"));

    let a = [
        str_field(v, "node_a_greeting1"),
        str_field(v, "node_a_greeting2"),
    ];
    let b = [
        str_field(v, "node_b_greeting1"),
        str_field(v, "node_b_greeting2"),
    ];
    let t_a = transcript(a, b);
    let t_b = transcript(b, a);
    assert!(
        t_a.len() > 64,
        "the transcript is longer than a block, so the key gets hashed"
    );

    let line_a = str_field(v, "node_a_auth_line");
    let line_b = str_field(v, "node_b_auth_line");
    assert!(line_a.starts_with("hmac_md6_64_256;"));
    assert_eq!(hmac_token(&t_a, secret), token_of(line_a));
    assert_eq!(hmac_token(&t_b, secret), token_of(line_b));
}

#[test]
fn aemp_tls_md6_fixed_greetings() {
    let vectors = md6_vectors();
    let g = &vectors["aemp_hmac_md6_64_256"];
    let v = &vectors["aemp_tls_md6_64_256"];
    let a = [
        str_field(g, "node_a_greeting1"),
        str_field(g, "node_a_greeting2"),
    ];
    let b = [
        str_field(g, "node_b_greeting1"),
        str_field(g, "node_b_greeting2"),
    ];
    let line_a = str_field(v, "node_a_auth_line");
    let line_b = str_field(v, "node_b_auth_line");
    assert!(line_a.starts_with("tls_md6_64_256;"));
    assert_eq!(tls_token(&transcript(a, b)), token_of(line_a));
    assert_eq!(tls_token(&transcript(b, a)), token_of(line_b));
}

#[test]
fn captured_hmac_md6_handshake() {
    let v = load("testvector-hmac_md6_64_256.json");
    let secret = str_field(&v, "secret").as_bytes();
    assert_eq!(
        to_hex(&md6_256(secret)),
        str_field(&v, "md6_256_secret_hex")
    );

    let dialler = [
        str_field(&v, "dialler_greeting1"),
        str_field(&v, "dialler_greeting2"),
    ];
    let listener = [
        str_field(&v, "listener_greeting1"),
        str_field(&v, "listener_greeting2"),
    ];
    let dialler_token = hmac_token(&transcript(dialler, listener), secret);
    let listener_token = hmac_token(&transcript(listener, dialler), secret);

    assert_eq!(dialler_token, str_field(&v, "dialler_auth_recomputed"));
    assert_eq!(dialler_token, str_field(&v, "dialler_auth_manual_hmac"));
    assert_eq!(
        dialler_token,
        token_of(str_field(&v, "dialler_auth_line_on_wire"))
    );
    assert_eq!(listener_token, str_field(&v, "listener_auth_recomputed"));
    assert_eq!(
        listener_token,
        token_of(str_field(&v, "listener_auth_line_on_wire"))
    );

    // The streaming hasher gives the same key digest without building the transcript.
    let mut hasher = Md6_256::new();
    for line in dialler.iter().chain(&listener) {
        hasher.update(line.as_bytes());
        hasher.update(b"\n");
    }
    assert_eq!(
        to_hex(&hmac_md6_256(&hasher.finalize(), &md6_256(secret))),
        dialler_token
    );
}

#[test]
fn captured_tls_md6_handshake() {
    let v = load("testvector-tls_md6_64_256.json");
    let dialler = [
        str_field(&v, "dialler_greeting1"),
        str_field(&v, "dialler_greeting2"),
    ];
    let listener = [
        str_field(&v, "listener_greeting1"),
        str_field(&v, "listener_greeting2"),
    ];
    let dialler_token = tls_token(&transcript(dialler, listener));
    let listener_token = tls_token(&transcript(listener, dialler));

    assert_eq!(dialler_token, str_field(&v, "dialler_auth_recomputed"));
    assert_eq!(
        dialler_token,
        token_of(str_field(&v, "dialler_auth_line_plaintext"))
    );
    assert_eq!(listener_token, str_field(&v, "listener_auth_recomputed"));
    assert_eq!(
        listener_token,
        token_of(str_field(&v, "listener_auth_line_plaintext"))
    );
}

#[test]
fn hmac_secret_vector_file() {
    // Both files agree on MD6(secret) of the harness secret.
    let v = load("testvector-hmac_md6_64_256.json");
    let vectors = md6_vectors();
    let harness_secret = vectors["md6_256"]
        .as_array()
        .expect("md6_256 array")
        .iter()
        .find(|e| unhex(str_field(e, "input_hex")) == str_field(&v, "secret").as_bytes())
        .expect("the harness secret is among the md6_256 inputs");
    assert_eq!(
        str_field(harness_secret, "md6_256_hex"),
        str_field(&v, "md6_256_secret_hex")
    );
}
