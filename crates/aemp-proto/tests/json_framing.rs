//! Integration and property tests of the `json` framing, plus golden tests against captures of
//! real Perl AnyEvent::MP 1.30 sessions (`tests/vectors/*.jsonl`).

#![allow(clippy::unwrap_used, reason = "test helpers: a panic is a failed test")]

use std::collections::BTreeMap;

use aemp_proto::framing::json::{JsonDecoder, decode_value, encode_frame, encode_value};
use aemp_proto::framing::{Frame, FrameDecoder, Framing, MAX_DEPTH};
use aemp_proto::{DecodeError, Message, Value};
use bytes::BytesMut;
use proptest::prelude::*;

const MAX: usize = 64 * 1024 * 1024;

fn encode(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    encode_value(value, &mut out);
    out
}

/// Feeds `chunks` one by one to a fresh decoder and collects every frame, stopping at the
/// first error.
fn decode_chunks<'a>(
    chunks: impl IntoIterator<Item = &'a [u8]>,
) -> (Vec<Frame>, Result<(), DecodeError>) {
    let mut decoder = JsonDecoder::new(MAX);
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => break,
                Err(e) => return (frames, Err(e)),
            }
        }
    }
    (frames, Ok(()))
}

// ------------------------------------------------------------------------------------------------
// Round trips of chosen values
// ------------------------------------------------------------------------------------------------

#[test]
fn chosen_values_round_trip() {
    let values = [
        Value::Null,
        Value::Bool(true),
        Value::Bool(false),
        Value::Int(0),
        Value::Int(-1),
        Value::Int(i64::MIN),
        Value::Int(i64::MAX),
        Value::UInt(1 << 63),
        Value::UInt(u64::MAX),
        Value::Float(1.5),
        Value::Float(0.1),
        Value::Float(1e300),
        Value::Float(-1e-300),
        Value::Float(5e-324),
        Value::Float(f64::MAX),
        Value::Float(1.0),
        Value::Float(1_795_652_928.585_23),
        Value::from(""),
        Value::from("plain"),
        Value::from("quote \" backslash \\ slash / tab \t nl \n cr \r bs \u{8} ff \u{c}"),
        Value::from("\0\u{1}\u{1f}\u{7f}\u{80}\u{ff}"),
        Value::from("unicode: é ß € 😀 \u{2028}\u{2029} \u{10ffff}"),
        Value::from("]}[{,:\""),
        Value::Array(vec![]),
        Value::Map(vec![]),
        Value::Map(vec![
            ("b".into(), 1.into()),
            ("a".into(), Value::Array(vec![Value::Null, "x".into()])),
            ("b".into(), Value::Map(vec![("\"k\"".into(), 2.5.into())])),
        ]),
        Value::Array(vec![
            Value::Array(vec![Value::Array(vec![Value::Int(-7)])]),
            Value::from("z"),
        ]),
    ];
    for value in values {
        let text = encode(&value);
        let back = decode_value(&text).unwrap_or_else(|e| panic!("{value:?}: {e}"));
        assert_eq!(back, value);
        // Byte-exact as well: catches e.g. a lost sign of -0.0 that == would not.
        assert_eq!(encode(&back), text);
    }
}

#[test]
fn negative_zero_keeps_its_sign() {
    let text = encode(&Value::Float(-0.0));
    assert_eq!(text, b"-0.0");
    assert!(matches!(decode_value(&text), Ok(Value::Float(f)) if f == 0.0 && f.is_sign_negative()));
}

#[test]
fn bytes_decode_as_code_point_strings() {
    let bytes = vec![0x00, 0x22, 0x41, 0x5c, 0x7f, 0x80, 0xc3, 0xa9, 0xff];
    let text = encode(&Value::Bytes(bytes.clone()));
    assert_eq!(
        text,
        b"\"\\u0000\\\"A\\\\\x7f\xc2\x80\xc3\x83\xc2\xa9\xc3\xbf\""
    );
    let expected: String = bytes.iter().map(|&b| char::from(b)).collect();
    assert_eq!(decode_value(&text).unwrap(), Value::String(expected));
}

#[test]
fn frames_round_trip_through_frame_decoder() {
    let frames = vec![
        Frame::new("sink", vec![Value::from("0123456789")]),
        Frame::new(
            "",
            vec![Value::from("mon1"), Value::from("k1XG8x2ZXLu790F0J.a")],
        ),
        Frame::new("a\"b", vec![]),
        Frame::new("é€", vec![Value::UInt(u64::MAX), Value::Float(-0.5)]),
    ];
    let mut wire = Vec::new();
    for f in &frames {
        Framing::Json.encode(&f.port, &f.message, &mut wire);
    }
    Framing::Json.encode_keepalive(&mut wire);
    let mut decoder = FrameDecoder::new(Framing::Json, MAX);
    let mut buf = BytesMut::from(&wire[..]);
    let mut got = Vec::new();
    while let Some(frame) = decoder.decode(&mut buf).unwrap() {
        got.push(frame);
    }
    assert!(buf.is_empty());
    assert!(got.pop().is_some_and(|f| f.is_keepalive()));
    assert_eq!(got, frames);
}

// ------------------------------------------------------------------------------------------------
// Stream handling
// ------------------------------------------------------------------------------------------------

#[test]
fn whitespace_between_texts_and_keepalives() {
    let wire = b"\n[\"a\",1]\r\n\t [] [\"\"]\n\n[ \"b\" ]  \n";
    let (frames, result) = decode_chunks([&wire[..]]);
    result.unwrap();
    assert_eq!(
        frames,
        vec![
            Frame::new("a", vec![Value::Int(1)]),
            Frame::default(),
            Frame::default(),
            Frame::new("b", Message::default()),
        ]
    );
    assert!(frames[1].is_keepalive() && frames[2].is_keepalive());
}

#[test]
fn partial_buffers_return_none_until_complete() {
    let wire = br#"["port",{"k":["v",1.25e2,"\ud83d\ude00"]},-3]"#;
    let mut decoder = JsonDecoder::new(MAX);
    let mut buf = BytesMut::new();
    for (i, &b) in wire.iter().enumerate() {
        buf.extend_from_slice(&[b]);
        let result = decoder.decode(&mut buf).unwrap();
        if i + 1 < wire.len() {
            assert_eq!(result, None, "after {} bytes", i + 1);
            assert_eq!(buf.len(), i + 1, "nothing is consumed early");
        } else {
            let frame = result.unwrap();
            assert_eq!(frame.port, "port");
            assert_eq!(
                frame.message[0],
                Value::Map(vec![(
                    "k".into(),
                    Value::Array(vec!["v".into(), Value::Float(125.0), "😀".into()])
                )])
            );
            assert_eq!(frame.message[1], Value::Int(-3));
        }
    }
    assert!(buf.is_empty());
}

#[test]
fn too_large_is_refused_before_the_text_completes() {
    let mut decoder = FrameDecoder::new(Framing::Json, 1024);
    let mut buf = BytesMut::from(&b"[\"sink\",\""[..]);
    let mut err = None;
    for _ in 0..2000 {
        buf.extend_from_slice(b"x");
        match decoder.decode(&mut buf) {
            Ok(None) => {}
            Ok(Some(_)) => panic!("no frame can complete"),
            Err(e) => {
                err = Some(e);
                break;
            }
        }
    }
    assert_eq!(err, Some(DecodeError::TooLarge { max: 1024 }));
    assert_eq!(buf.len(), 1025);
}

#[test]
fn too_deep_is_refused_while_scanning() {
    let mut decoder = JsonDecoder::new(MAX);
    let mut buf = BytesMut::from(&b"[\"p\","[..]);
    buf.extend_from_slice(&vec![b'['; MAX_DEPTH - 1]);
    assert_eq!(decoder.decode(&mut buf), Ok(None));
    buf.extend_from_slice(b"[");
    assert_eq!(
        decoder.decode(&mut buf),
        Err(DecodeError::TooDeep { max: MAX_DEPTH })
    );
}

// ------------------------------------------------------------------------------------------------
// Golden tests: real Perl sessions
// ------------------------------------------------------------------------------------------------

fn base64_decode(text: &str) -> Vec<u8> {
    let sextet = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("bad base64 byte {c:#x}"),
        }
    };
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0_u32, 0);
    for &c in text.as_bytes().iter().filter(|&&c| c != b'=') {
        acc = (acc << 6) | sextet(c);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

/// The data-phase chunks of every (connection, direction), in arrival order: the chunks of the
/// direction with the first three lines (greeting, nonce, auth line) cut off.
fn data_phase_chunks(capture: &str) -> BTreeMap<(u64, String), Vec<Vec<u8>>> {
    let mut streams: BTreeMap<(u64, String), Vec<Vec<u8>>> = BTreeMap::new();
    for line in capture.lines().filter(|l| !l.trim().is_empty()) {
        let event: serde_json::Value = serde_json::from_str(line).unwrap();
        let Some(b64) = event["b64"].as_str() else {
            continue;
        };
        let conn = event["conn"].as_u64().unwrap();
        let dir = event["dir"].as_str().unwrap().to_owned();
        let chunk = base64_decode(b64);
        assert_eq!(chunk.len() as u64, event["len"].as_u64().unwrap());
        streams.entry((conn, dir)).or_default().push(chunk);
    }
    streams
        .into_iter()
        .map(|(key, chunks)| {
            let mut newlines = 0;
            let mut data_chunks = Vec::new();
            for chunk in chunks {
                if newlines == 3 {
                    data_chunks.push(chunk);
                    continue;
                }
                for (i, &b) in chunk.iter().enumerate() {
                    if b == b'\n' {
                        newlines += 1;
                        if newlines == 3 {
                            if i + 1 < chunk.len() {
                                data_chunks.push(chunk[i + 1..].to_vec());
                            }
                            break;
                        }
                    }
                }
            }
            (key, data_chunks)
        })
        .collect()
}

/// One direction of one connection of the annotated transcript: the data-phase size and the
/// `msg N:` lines.
#[derive(Debug, Default)]
struct Expected {
    data_bytes: usize,
    messages: Vec<String>,
}

fn expected_messages(transcript: &str) -> BTreeMap<(u64, String), Expected> {
    let mut out: BTreeMap<(u64, String), Expected> = BTreeMap::new();
    let mut conn = 0;
    let mut current: Option<(u64, String)> = None;
    for line in transcript.lines() {
        let trimmed = line.trim_start();
        if let Some(rest) = line.strip_prefix("=== connection ") {
            conn = rest.split(':').next().unwrap().parse().unwrap();
            current = None;
        } else if line.starts_with("=== ") {
            current = None;
        } else if trimmed.starts_with("[dialler -> listener (c2s)]") {
            current = Some((conn, "c2s".to_owned()));
        } else if trimmed.starts_with("[listener -> dialler (s2c)]") {
            current = Some((conn, "s2c".to_owned()));
        } else if let Some(key) = &current {
            let entry = out.entry(key.clone()).or_default();
            if let Some(rest) = trimmed.strip_prefix("data phase: ") {
                entry.data_bytes = rest.split(' ').next().unwrap().parse().unwrap();
            } else if let Some(rest) = trimmed.strip_prefix("msg ") {
                let (n, json) = rest.split_once(": ").unwrap();
                assert_eq!(n.parse::<usize>().unwrap(), entry.messages.len() + 1);
                entry.messages.push(json.to_owned());
            }
        }
    }
    out
}

/// Whether our value equals what serde_json made of the same text. serde_json sorts object keys
/// and keeps the last of duplicates, so objects compare as such maps.
fn same_as_serde(ours: &Value, theirs: &serde_json::Value) -> bool {
    use serde_json::Value as J;
    match (ours, theirs) {
        (Value::Null, J::Null) => true,
        (Value::Bool(a), J::Bool(b)) => a == b,
        (Value::String(a), J::String(b)) => a == b,
        (Value::Int(_) | Value::UInt(_), J::Number(n)) if n.is_i64() || n.is_u64() => {
            ours.as_i64() == n.as_i64() && ours.as_u64() == n.as_u64()
        }
        // serde_json reads `-0` as the float -0.0, we as the integer 0.
        (Value::Int(_) | Value::UInt(_) | Value::Float(_), J::Number(n)) => {
            match (ours.as_f64(), n.as_f64()) {
                (Some(a), Some(b)) => nearly_equal(a, b),
                _ => false,
            }
        }
        (Value::Array(a), J::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same_as_serde(x, y))
        }
        (Value::Map(entries), J::Object(b)) => {
            let mut last: BTreeMap<&str, &Value> = BTreeMap::new();
            for (k, v) in entries {
                let Some(k) = k.as_str() else { return false };
                last.insert(k, v);
            }
            last.len() == b.len()
                && last
                    .iter()
                    .all(|(k, v)| b.get(*k).is_some_and(|w| same_as_serde(v, w)))
        }
        _ => false,
    }
}

/// serde_json (without its `float_roundtrip` feature) may round the last bit differently; our
/// own float parsing is checked bit-exactly elsewhere.
fn nearly_equal(a: f64, b: f64) -> bool {
    a == b
        || (a.is_sign_negative() == b.is_sign_negative() && a.to_bits().abs_diff(b.to_bits()) <= 2)
}

fn check_golden(capture: &str, transcript: &str) -> usize {
    let streams = data_phase_chunks(capture);
    let expected = expected_messages(transcript);
    assert_eq!(
        streams.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    let mut total = 0;
    for (key, chunks) in &streams {
        let want = &expected[key];
        let data_bytes: usize = chunks.iter().map(Vec::len).sum();
        assert_eq!(data_bytes, want.data_bytes, "{key:?}");

        let (frames, result) = decode_chunks(chunks.iter().map(Vec::as_slice));
        result.unwrap_or_else(|e| panic!("{key:?}: {e}"));
        assert_eq!(frames.len(), want.messages.len(), "{key:?}");
        for (i, (frame, text)) in frames.iter().zip(&want.messages).enumerate() {
            // Independent oracle: serde_json's view of the same message.
            let theirs: serde_json::Value = serde_json::from_str(text).unwrap();
            let mut whole = vec![Value::String(frame.port.clone())];
            whole.extend(frame.message.iter().cloned());
            assert!(
                same_as_serde(&Value::Array(whole), &theirs),
                "{key:?} msg {}: {frame:?} vs {text}",
                i + 1
            );
            // Exact: Perl writes compact JSON, so re-encoding gives its bytes back (this also
            // checks map order and number kinds).
            let mut again = Vec::new();
            encode_frame(&frame.port, &frame.message, &mut again);
            assert_eq!(String::from_utf8(again).unwrap(), *text, "{key:?}");
        }
        // The stream split into one-byte reads gives the same frames.
        let bytes: Vec<u8> = chunks.concat();
        let (bytewise, result) = decode_chunks(bytes.chunks(1));
        result.unwrap();
        assert_eq!(bytewise, frames);
        total += frames.len();
    }
    total
}

#[test]
fn golden_perl_session() {
    let n = check_golden(
        include_str!("vectors/json.jsonl"),
        include_str!("vectors/json.txt"),
    );
    assert_eq!(n, 16 + 15);
}

#[test]
fn golden_raw_peer_session() {
    let n = check_golden(
        include_str!("vectors/raw.jsonl"),
        include_str!("vectors/raw.txt"),
    );
    assert_eq!(n, 4 + 10);
}

#[test]
fn golden_bad_secret_has_no_data_phase() {
    let n = check_golden(
        include_str!("vectors/badsecret.jsonl"),
        include_str!("vectors/badsecret.txt"),
    );
    assert_eq!(n, 0);
}

#[test]
fn golden_float_and_eval_reply_values() {
    let streams = data_phase_chunks(include_str!("vectors/json.jsonl"));
    let (frames, result) = decode_chunks(streams[&(1, "s2c".to_owned())].iter().map(Vec::as_slice));
    result.unwrap();
    assert_eq!(
        frames[13],
        Frame::new("epN9QPQ5.f", vec![Value::Float(1_795_652_928.585_23)])
    );
    assert_eq!(
        frames[14],
        Frame::new(
            "epN9QPQ5.g",
            vec![Value::from(""), Value::from("31332 1.30")]
        )
    );
    let (frames, _) = decode_chunks(streams[&(1, "c2s".to_owned())].iter().map(Vec::as_slice));
    assert_eq!(
        frames[14].message[1],
        Value::from("\"$$ \" . $AnyEvent::MP::VERSION")
    );
    assert_eq!(
        frames[15],
        Frame::new(
            "log",
            vec![
                "hello from".into(),
                "perl-client".into(),
                Value::Map(vec![
                    ("n".into(), 1.into()),
                    (
                        "list".into(),
                        Value::Array(vec![1.into(), 2.into(), 3.into()])
                    ),
                ]),
            ]
        )
    );
}

// ------------------------------------------------------------------------------------------------
// Properties
// ------------------------------------------------------------------------------------------------

fn arb_string() -> impl Strategy<Value = String> {
    prop::collection::vec(any::<char>(), 0..12).prop_map(String::from_iter)
}

/// JSON-representable values: no bytes, string keys, finite floats.
fn arb_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        (1_u64 << 63..=u64::MAX).prop_map(Value::UInt),
        (-1000_i64..1000).prop_map(Value::Int),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::Float),
        arb_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((arb_string().prop_map(Value::String), inner), 0..6)
                .prop_map(Value::Map),
        ]
    })
}

fn arb_frame() -> impl Strategy<Value = Frame> {
    (arb_string(), prop::collection::vec(arb_value(), 0..4))
        .prop_map(|(port, elements)| Frame::new(port, elements))
}

/// Fragments from which byte soups close to JSON are built.
const TOKENS: &[&[u8]] = &[
    b"[",
    b"]",
    b"[",
    b"]",
    b"{",
    b"}",
    b",",
    b":",
    b" ",
    b"\n",
    b"\"",
    b"\"",
    b"\\",
    b"\\u",
    b"\\n",
    b"d83d",
    b"dc00",
    b"00e9",
    b"0",
    b"1",
    b"7",
    b"-",
    b"+",
    b".",
    b"e",
    b"E",
    b"true",
    b"false",
    b"null",
    b"tru",
    b"\"a\"",
    b"\"k\":",
    b"\x01",
    b"\xc3\xa9",
    b"\xff",
    b"\xc3",
    b"18446744073709551616",
    b"9223372036854775808",
    b"u",
    b"/",
    b"1e400",
];

fn arb_soup() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::sample::select(TOKENS), 0..48).prop_map(|t| t.concat())
}

fn arb_whitespace() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::sample::select(&b" \t\r\n"[..]), 0..3)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn values_round_trip(value in arb_value()) {
        let text = encode(&value);
        let back = decode_value(&text).unwrap();
        prop_assert_eq!(&back, &value);
        prop_assert_eq!(encode(&back), text);
    }

    #[test]
    fn encoded_values_are_valid_json(value in arb_value()) {
        let text = encode(&value);
        let theirs: serde_json::Value = serde_json::from_slice(&text).unwrap();
        prop_assert!(same_as_serde(&value, &theirs), "{}", String::from_utf8_lossy(&text));
    }

    #[test]
    fn floats_encode_as_floats(f in any::<f64>()) {
        let text = encode(&Value::Float(f));
        match decode_value(&text).unwrap() {
            Value::Float(g) => prop_assert_eq!(g.to_bits(), f.to_bits()),
            Value::Null => prop_assert!(!f.is_finite()),
            other => prop_assert!(false, "{f:?} decoded as {other:?}"),
        }
    }

    #[test]
    fn frames_round_trip(frame in arb_frame()) {
        let mut wire = Vec::new();
        encode_frame(&frame.port, &frame.message, &mut wire);
        let (frames, result) = decode_chunks([&wire[..]]);
        result.unwrap();
        prop_assert_eq!(frames, vec![frame]);
    }

    #[test]
    fn decoding_does_not_depend_on_read_boundaries(
        frames in prop::collection::vec(arb_frame(), 0..6),
        gaps in prop::collection::vec(arb_whitespace(), 6),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
    ) {
        let mut wire = Vec::new();
        for (frame, gap) in frames.iter().zip(&gaps) {
            wire.extend_from_slice(gap);
            encode_frame(&frame.port, &frame.message, &mut wire);
        }
        let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(wire.len() + 1)).collect();
        cuts.push(0);
        cuts.push(wire.len());
        cuts.sort_unstable();
        let chunks = cuts.windows(2).map(|w| &wire[w[0]..w[1]]);
        let (got, result) = decode_chunks(chunks);
        result.unwrap();
        prop_assert_eq!(got, frames);
    }

    #[test]
    fn decoder_never_panics_on_arbitrary_bytes(
        bytes in prop::collection::vec(any::<u8>(), 0..256),
        chunk in 1_usize..32,
    ) {
        let (frames, _) = decode_chunks(bytes.chunks(chunk));
        // Every frame takes at least the two bytes of `[]`.
        prop_assert!(frames.len() <= bytes.len() / 2);
        let _ = decode_value(&bytes);
    }

    #[test]
    fn decoder_never_panics_on_json_like_soup(soup in arb_soup(), chunk in 1_usize..16) {
        let (frames, _) = decode_chunks(soup.chunks(chunk));
        prop_assert!(frames.len() <= soup.len() / 2);
        // Splitting must not change the outcome.
        let (whole, _) = decode_chunks([&soup[..]]);
        prop_assert_eq!(frames, whole);
    }

    #[test]
    fn decode_value_agrees_with_serde_json(soup in arb_soup()) {
        let ours = decode_value(&soup);
        match serde_json::from_slice::<serde_json::Value>(&soup) {
            Ok(theirs) => {
                let ours = ours.unwrap();
                prop_assert!(same_as_serde(&ours, &theirs), "{ours:?} vs {theirs:?}");
            }
            // serde_json refuses numbers beyond f64 range; we read them as infinities.
            Err(e) if e.to_string().contains("number out of range") => {}
            Err(e) => prop_assert!(ours.is_err(), "{ours:?} accepted, serde_json: {e}"),
        }
    }

    #[test]
    fn strict_json_texts_agree_with_serde_json(value in arb_value(), ws in arb_whitespace()) {
        // Pretty-printed by serde_json: whitespace between all tokens.
        let mut text = encode(&value);
        let theirs: serde_json::Value = serde_json::from_slice(&text).unwrap();
        text = serde_json::to_vec_pretty(&theirs).unwrap();
        text.extend_from_slice(&ws);
        let ours = decode_value(&text).unwrap();
        prop_assert!(same_as_serde(&ours, &theirs));
    }
}
