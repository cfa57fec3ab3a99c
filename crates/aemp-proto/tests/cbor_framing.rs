//! Integration and property tests of the `cbor` framing: RFC 8949 Appendix A, exact encoder
//! output, round trips, split reads, arbitrary input, indefinite-length re-encodings.

use aemp_proto::framing::cbor::{CborDecoder, decode_value, encode_frame, encode_value};
use aemp_proto::{DecodeError, Frame, Value};
use bytes::BytesMut;
use proptest::prelude::*;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digits"))
        .collect()
}

fn s(v: &str) -> Value {
    Value::from(v)
}

fn int(v: i64) -> Value {
    Value::Int(v)
}

fn arr(items: Vec<Value>) -> Value {
    Value::Array(items)
}

fn map(entries: Vec<(Value, Value)>) -> Value {
    Value::Map(entries)
}

/// Decodes `item` as the only element of a message `["", item]`, as a frame.
fn decode_as_element(item: &[u8]) -> Result<Value, DecodeError> {
    let mut wire = vec![0x82, 0x60];
    wire.extend_from_slice(item);
    let mut buf = BytesMut::from(&wire[..]);
    let frame = CborDecoder::new(1 << 20)
        .decode(&mut buf)?
        .expect("complete");
    assert!(buf.is_empty());
    assert_eq!(frame.port, "");
    assert_eq!(frame.message.len(), 1);
    Ok(frame.message.into_iter().next().expect("one element"))
}

/// Checks one Appendix A example through both the frame decoder and `decode_value`.
fn check(item_hex: &str, expected: &Value) {
    let item = hex(item_hex);
    let framed = decode_as_element(&item).unwrap_or_else(|e| panic!("{item_hex}: {e:?}"));
    assert_eq!(&framed, expected, "{item_hex}");
    let single = decode_value(&item).expect(item_hex);
    assert_eq!(&single, expected, "{item_hex}");
}

fn check_float(item_hex: &str, expected: f64) {
    let item = hex(item_hex);
    let framed = decode_as_element(&item).expect(item_hex);
    let single = decode_value(&item).expect(item_hex);
    for value in [framed, single] {
        match value {
            Value::Float(f) if expected.is_nan() => assert!(f.is_nan(), "{item_hex}"),
            Value::Float(f) => assert_eq!(f.to_bits(), expected.to_bits(), "{item_hex}"),
            other => panic!("{item_hex}: {other:?}"),
        }
    }
}

fn check_error(item_hex: &str) {
    let item = hex(item_hex);
    assert!(
        matches!(decode_as_element(&item), Err(DecodeError::Malformed { .. })),
        "{item_hex}"
    );
    assert!(
        matches!(decode_value(&item), Err(DecodeError::Malformed { .. })),
        "{item_hex}"
    );
}

// ---- RFC 8949 Appendix A ----

#[test]
fn appendix_a_integers() {
    let cases: [(&str, i64); 14] = [
        ("00", 0),
        ("01", 1),
        ("0a", 10),
        ("17", 23),
        ("1818", 24),
        ("1819", 25),
        ("1864", 100),
        ("1903e8", 1000),
        ("1a000f4240", 1_000_000),
        ("1b000000e8d4a51000", 1_000_000_000_000),
        ("20", -1),
        ("29", -10),
        ("3863", -100),
        ("3903e7", -1000),
    ];
    for (item, n) in cases {
        check(item, &int(n));
    }
    check("1bffffffffffffffff", &Value::UInt(u64::MAX));
    assert!(matches!(
        decode_value(&hex("1bffffffffffffffff")),
        Ok(Value::UInt(u64::MAX))
    ));
    // Canonical form: a value that fits an i64 is an Int even in an 8-byte head.
    assert!(matches!(
        decode_value(&hex("1b0000000000000001")),
        Ok(Value::Int(1))
    ));
    // -18446744073709551616 does not fit any Value integer.
    check_error("3bffffffffffffffff");
}

#[test]
fn appendix_a_bignums_come_out_as_bytes() {
    let magnitude = hex("010000000000000000");
    check("c249010000000000000000", &Value::Bytes(magnitude.clone()));
    check("c349010000000000000000", &Value::Bytes(magnitude));
}

#[test]
fn appendix_a_floats() {
    let cases: [(&str, f64); 27] = [
        ("f90000", 0.0),
        ("f98000", -0.0),
        ("f93c00", 1.0),
        ("fb3ff199999999999a", 1.1),
        ("f93e00", 1.5),
        ("f97bff", 65504.0),
        ("fa47c35000", 100_000.0),
        ("fa7f7fffff", 3.402_823_466_385_288_6e38),
        ("fb7e37e43c8800759c", 1.0e300),
        ("f90001", 5.960_464_477_539_063e-8),
        ("f90400", 6.103_515_625e-5),
        ("f9c400", -4.0),
        ("fbc010666666666666", -4.1),
        ("f97c00", f64::INFINITY),
        ("f97e00", f64::NAN),
        ("f9fc00", f64::NEG_INFINITY),
        ("fa7f800000", f64::INFINITY),
        ("fa7fc00000", f64::NAN),
        ("faff800000", f64::NEG_INFINITY),
        ("fb7ff0000000000000", f64::INFINITY),
        ("fb7ff8000000000000", f64::NAN),
        ("fbfff0000000000000", f64::NEG_INFINITY),
        // Not in Appendix A: the largest subnormal half, and subnormal singles and doubles.
        ("f903ff", 6.097_555_160_522_461e-5),
        ("fa00000001", 1.401_298_464_324_817e-45),
        ("fb0000000000000001", 5e-324),
        ("fa3f800000", 1.0),
        ("f93555", 0.333_251_953_125),
    ];
    for (item, f) in cases {
        check_float(item, f);
    }
}

#[test]
fn appendix_a_simple_values() {
    check("f4", &Value::Bool(false));
    check("f5", &Value::Bool(true));
    check("f6", &Value::Null);
    check("f7", &Value::Null); // undefined
    check_error("f0"); // simple(16)
    check_error("f8ff"); // simple(255)
    check_error("f818"); // two-byte form of a value below 32
}

#[test]
fn appendix_a_tags_are_ignored() {
    check(
        "c074323031332d30332d32315432303a30343a30305a",
        &s("2013-03-21T20:04:00Z"),
    );
    check("c11a514b67b0", &int(1_363_896_240));
    check("c1fb41d452d9ec200000", &Value::Float(1_363_896_240.5));
    check("d74401020304", &Value::Bytes(vec![1, 2, 3, 4]));
    check("d818456449455446", &Value::Bytes(hex("6449455446")));
    check(
        "d82076687474703a2f2f7777772e6578616d706c652e636f6d",
        &s("http://www.example.com"),
    );
}

#[test]
fn appendix_a_strings() {
    check("40", &Value::Bytes(vec![]));
    check("4401020304", &Value::Bytes(vec![1, 2, 3, 4]));
    check("60", &s(""));
    check("6161", &s("a"));
    check("6449455446", &s("IETF"));
    check("62225c", &s("\"\\"));
    check("62c3bc", &s("\u{fc}"));
    check("63e6b0b4", &s("\u{6c34}"));
    check("64f0908591", &s("\u{10151}"));
}

#[test]
fn appendix_a_arrays_and_maps() {
    let one_to_25: Vec<Value> = (1..=25).map(int).collect();
    let nested = arr(vec![
        int(1),
        arr(vec![int(2), int(3)]),
        arr(vec![int(4), int(5)]),
    ]);
    let a_b = map(vec![(s("a"), int(1)), (s("b"), arr(vec![int(2), int(3)]))]);
    check("80", &arr(vec![]));
    check("83010203", &arr(vec![int(1), int(2), int(3)]));
    check("8301820203820405", &nested);
    check(
        "98190102030405060708090a0b0c0d0e0f101112131415161718181819",
        &arr(one_to_25.clone()),
    );
    check("a0", &map(vec![]));
    check("a201020304", &map(vec![(int(1), int(2)), (int(3), int(4))]));
    check("a26161016162820203", &a_b);
    check(
        "826161a161626163",
        &arr(vec![s("a"), map(vec![(s("b"), s("c"))])]),
    );
    check(
        "a56161614161626142616361436164614461656145",
        &map(vec![
            (s("a"), s("A")),
            (s("b"), s("B")),
            (s("c"), s("C")),
            (s("d"), s("D")),
            (s("e"), s("E")),
        ]),
    );

    // Indefinite lengths.
    check("5f42010243030405ff", &Value::Bytes(vec![1, 2, 3, 4, 5]));
    check("7f657374726561646d696e67ff", &s("streaming"));
    check("9fff", &arr(vec![]));
    check("9f018202039f0405ffff", &nested);
    check("9f01820203820405ff", &nested);
    check("83018202039f0405ff", &nested);
    check("83019f0203ff820405", &nested);
    check(
        "9f0102030405060708090a0b0c0d0e0f101112131415161718181819ff",
        &arr(one_to_25),
    );
    check("bf61610161629f0203ffff", &a_b);
    check(
        "826161bf61626163ff",
        &arr(vec![s("a"), map(vec![(s("b"), s("c"))])]),
    );
    check(
        "bf6346756ef563416d7421ff",
        &map(vec![(s("Fun"), Value::Bool(true)), (s("Amt"), int(-2))]),
    );
    // Empty chunks and empty indefinite strings.
    check("5fff", &Value::Bytes(vec![]));
    check("7f6060ff", &s(""));
}

#[test]
fn appendix_a_definite_items_re_encode_identically() {
    // The encoder's output is the preferred serialisation Appendix A shows.
    for item in [
        "00",
        "17",
        "1818",
        "1903e8",
        "1a000f4240",
        "1b000000e8d4a51000",
        "1bffffffffffffffff",
        "3903e7",
        "fb3ff199999999999a",
        "f4",
        "f6",
        "4401020304",
        "64f0908591",
        "8301820203820405",
        "98190102030405060708090a0b0c0d0e0f101112131415161718181819",
        "a26161016162820203",
        "a56161614161626142616361436164614461656145",
    ] {
        let mut out = Vec::new();
        encode_value(&decode_value(&hex(item)).unwrap(), &mut out);
        assert_eq!(out, hex(item), "{item}");
    }
}

// ---- exact encoder output ----

#[test]
fn encoder_exact_bytes() {
    let mut out = Vec::new();
    encode_frame("sink", &[s("0123456789")], &mut out);
    assert_eq!(out, hex("82 64 73696e6b 6a 30313233343536373839"));

    out.clear();
    encode_frame("", &[], &mut out);
    assert_eq!(out, [0x81, 0x60]);

    out.clear();
    let elements = [
        s("ping"),
        int(-500),
        Value::UInt(1 << 63),
        Value::Float(-0.5),
        Value::Bytes(vec![0xde, 0xad]),
        map(vec![(int(1), Value::Null), (s("k"), Value::Bool(true))]),
    ];
    encode_frame("p", &elements, &mut out);
    let expected = hex(
        "87 6170 6470696e67 3901f3 1b8000000000000000 fbbfe0000000000000 42dead \
         a2 01 f6 616b f5",
    );
    assert_eq!(out, expected);

    // 24 elements need a one-byte argument; a 300-byte port a two-byte one.
    out.clear();
    let port = "x".repeat(300);
    encode_frame(&port, &vec![Value::Null; 23], &mut out);
    assert_eq!(out[..4], [0x98, 24, 0x79, 0x01]);
    assert_eq!(out[4], 0x2c);
    assert_eq!(out.len(), 4 + 1 + 300 + 23);

    // Messages append to what is already in the buffer.
    let mut batch = vec![0x80];
    encode_frame("a", &[], &mut batch);
    assert_eq!(batch, [0x80, 0x81, 0x61, b'a']);
}

// ---- property tests ----

fn float() -> impl Strategy<Value = f64> {
    use proptest::num::f64::{INFINITE, NEGATIVE, NORMAL, POSITIVE, SUBNORMAL, ZERO};
    POSITIVE | NEGATIVE | NORMAL | SUBNORMAL | ZERO | INFINITE
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        (-30_i64..30).prop_map(Value::Int),
        ((i64::MAX as u64 + 1)..=u64::MAX).prop_map(Value::UInt),
        float().prop_map(Value::Float),
        ".{0,40}".prop_map(Value::String),
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(Value::Bytes),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            proptest::collection::vec((inner.clone(), inner), 0..6).prop_map(Value::Map),
        ]
    })
}

/// Encodes a value with indefinite lengths everywhere, strings split into chunks of `chunk`
/// bytes (text chunks end on character boundaries), non-shortest integer heads and a tag
/// around every other item.
fn encode_indefinite(value: &Value, chunk: usize, out: &mut Vec<u8>, tag: &mut bool) {
    *tag = !*tag;
    if *tag {
        out.extend_from_slice(&[0xd9, 0xd9, 0xf7]); // tag 55799, self-described CBOR
    }
    match value {
        Value::Int(i) if *i >= 0 => {
            out.push(0x1b);
            out.extend_from_slice(&i.to_be_bytes());
        }
        Value::Int(i) => {
            out.push(0x3b);
            out.extend_from_slice(&(-1 - i).to_be_bytes());
        }
        Value::UInt(u) => {
            out.push(0x1b);
            out.extend_from_slice(&u.to_be_bytes());
        }
        Value::Float(f) if f64::from(*f as f32).to_bits() == f.to_bits() => {
            out.push(0xfa);
            out.extend_from_slice(&(*f as f32).to_bits().to_be_bytes());
        }
        Value::Bytes(b) => {
            out.push(0x5f);
            for piece in b.chunks(chunk) {
                out.push(0x5a);
                out.extend_from_slice(&(piece.len() as u32).to_be_bytes());
                out.extend_from_slice(piece);
            }
            out.push(0xff);
        }
        Value::String(text) => {
            out.push(0x7f);
            let mut piece = String::new();
            for c in text.chars() {
                if piece.len() + c.len_utf8() > chunk && !piece.is_empty() {
                    encode_value(&Value::String(std::mem::take(&mut piece)), out);
                }
                piece.push(c);
            }
            encode_value(&Value::String(piece), out);
            out.push(0xff);
        }
        Value::Array(items) => {
            out.push(0x9f);
            for item in items {
                encode_indefinite(item, chunk, out, tag);
            }
            out.push(0xff);
        }
        Value::Map(entries) => {
            out.push(0xbf);
            for (k, v) in entries {
                encode_indefinite(k, chunk, out, tag);
                encode_indefinite(v, chunk, out, tag);
            }
            out.push(0xff);
        }
        other => encode_value(other, out),
    }
}

/// The encoding of some values, to compare values that may contain NaN.
fn bytes_of(values: &[Value]) -> Vec<u8> {
    let mut out = Vec::new();
    for v in values {
        encode_value(v, &mut out);
    }
    out
}

/// Feeds `wire` to one decoder in reads of the given sizes, collecting every frame; also
/// returns how many bytes were left in the buffer.
fn decode_in_reads(
    wire: &[u8],
    sizes: &[usize],
    max: usize,
) -> Result<(Vec<Frame>, usize), DecodeError> {
    let mut decoder = CborDecoder::new(max);
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    let mut rest = wire;
    let mut sizes = sizes.iter().cycle();
    while !rest.is_empty() {
        let n = (*sizes.next().unwrap_or(&1)).clamp(1, rest.len());
        buf.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
        while let Some(frame) = decoder.decode(&mut buf)? {
            frames.push(frame);
        }
    }
    Ok((frames, buf.len()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn value_round_trips(v in value()) {
        let mut out = Vec::new();
        encode_value(&v, &mut out);
        prop_assert_eq!(&decode_value(&out).unwrap(), &v);
        // As a message element too.
        let mut wire = Vec::new();
        encode_frame("port", std::slice::from_ref(&v), &mut wire);
        let frame = CborDecoder::new(1 << 20).decode(&mut BytesMut::from(&wire[..]));
        prop_assert_eq!(frame, Ok(Some(Frame::new("port", vec![v]))));
    }

    #[test]
    fn decoding_is_independent_of_read_sizes(
        messages in proptest::collection::vec(
            (".{0,12}", proptest::collection::vec(value(), 0..4)),
            1..8,
        ),
        sizes in proptest::collection::vec(1_usize..40, 1..10),
    ) {
        let mut wire = Vec::new();
        let mut expected = Vec::new();
        for (i, (port, elements)) in messages.into_iter().enumerate() {
            if i % 3 == 1 {
                wire.push(0x80);
                expected.push(Frame::default());
            }
            encode_frame(&port, &elements, &mut wire);
            expected.push(Frame::new(port, elements));
        }
        for sizes in [&[wire.len()][..], &[1], &sizes] {
            let (frames, left) = decode_in_reads(&wire, sizes, 1 << 20).unwrap();
            prop_assert_eq!(&frames, &expected);
            prop_assert_eq!(left, 0);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..200),
        sizes in proptest::collection::vec(1_usize..16, 1..4),
        max in 0_usize..300,
    ) {
        let _ = decode_value(&bytes);
        let _ = decode_in_reads(&bytes, &sizes, max);
        let mut framed = vec![0x9f, 0x60];
        framed.extend_from_slice(&bytes);
        let _ = decode_in_reads(&framed, &sizes, 1 << 20);
    }

    #[test]
    fn corrupted_messages_never_panic_and_decoders_agree(
        v in value(),
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
        sizes in proptest::collection::vec(1_usize..16, 1..4),
    ) {
        let mut wire = Vec::new();
        encode_frame("p", &[v], &mut wire);
        for (at, byte) in edits {
            let at = at % wire.len();
            wire[at] = byte;
        }
        let whole = CborDecoder::new(1 << 20).decode(&mut BytesMut::from(&wire[..]));
        let split = decode_in_reads(&wire, &sizes, 1 << 20);
        // Whatever the frame decoder accepts, the single-value parser reads the same way.
        if let Ok(Some(frame)) = &whole {
            let prefix_len = {
                let mut buf = BytesMut::from(&wire[..]);
                CborDecoder::new(1 << 20).decode(&mut buf).unwrap();
                wire.len() - buf.len()
            };
            let value = decode_value(&wire[..prefix_len]).unwrap();
            let Value::Array(items) = value else { panic!("not an array") };
            // Compared as bytes: a corrupted float may be a NaN.
            if items.is_empty() {
                prop_assert!(frame.is_keepalive());
            } else {
                prop_assert_eq!(items.len(), frame.message.len() + 1);
                prop_assert_eq!(bytes_of(&items[1..]), bytes_of(&frame.message));
            }
            if let Ok((frames, _)) = &split {
                // A corrupted head may end the first message early, leaving more messages.
                prop_assert!(!frames.is_empty());
                prop_assert_eq!(&frames[0].port, &frame.port);
                prop_assert_eq!(bytes_of(&frames[0].message), bytes_of(&frame.message));
            }
        }
    }

    #[test]
    fn indefinite_re_encoding_decodes_to_the_same_value(v in value(), chunk in 1_usize..8) {
        let mut out = Vec::new();
        encode_indefinite(&v, chunk, &mut out, &mut false);
        prop_assert_eq!(&decode_value(&out).unwrap(), &v);
        let mut wire = vec![0x9f, 0x60];
        wire.extend_from_slice(&out);
        wire.push(0xff);
        let frame = CborDecoder::new(1 << 20).decode(&mut BytesMut::from(&wire[..]));
        prop_assert_eq!(frame, Ok(Some(Frame::new("", vec![v]))));
    }
}

#[test]
fn a_large_message_in_small_reads_is_scanned_once() {
    // A million one-byte items in 1 KiB reads: rescanning from the start on every read would
    // scan half a billion heads.
    let count = 1 << 20;
    let mut wire = vec![0x9a];
    wire.extend_from_slice(&(count as u32 + 1).to_be_bytes());
    wire.push(0x60);
    wire.extend(std::iter::repeat_n(0x01, count));
    let (frames, left) = decode_in_reads(&wire, &[1024], 64 << 20).unwrap();
    assert_eq!(left, 0);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].message.len(), count);
}
