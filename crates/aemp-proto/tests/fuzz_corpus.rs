//! Runs every fuzz body over the seed corpora committed in `fuzz/corpus/`, so the bodies stay
//! compiled and exercised on the stable toolchain (the fuzzers themselves need `cargo fuzz`).

#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] fns: a panic is a test failure"
)]

use std::fs;
use std::path::Path;

use aemp_proto::fuzzing;

fn run(target: &str, body: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut count = 0;
    for entry in fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let data = fs::read(&path).unwrap();
        body(&data);
        // Every prefix too: truncated input is the most common way a stream parser breaks.
        for end in 0..data.len() {
            body(&data[..end]);
        }
        count += 1;
    }
    assert!(count > 0, "no seed files in {}", dir.display());
}

#[test]
fn greeting_corpus() {
    run("greeting", fuzzing::fuzz_greeting);
}

#[test]
fn auth_line_corpus() {
    run("auth_line", fuzzing::fuzz_auth_line);
}

#[test]
fn json_decoder_corpus() {
    run("json_decoder", fuzzing::fuzz_json_decoder);
}

#[test]
fn cbor_decoder_corpus() {
    run("cbor_decoder", fuzzing::fuzz_cbor_decoder);
}

#[test]
fn handshake_corpus() {
    run("handshake", fuzzing::fuzz_handshake);
}
