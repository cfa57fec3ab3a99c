//! serde support of `Value` and `Message`: round trips, Perl's habits and errors.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use aemp_proto::value::{from_value, to_value};
use aemp_proto::{Message, Value, ValueError};
use proptest::prelude::*;
use serde::de::{self, DeserializeOwned, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

fn s(v: &str) -> Value {
    Value::String(v.to_owned())
}

fn map(entries: Vec<(&str, Value)>) -> Value {
    Value::Map(entries.into_iter().map(|(k, v)| (s(k), v)).collect())
}

/// Serializes `x` to a `Value`, checks it against `expected`, and deserializes it back.
#[track_caller]
fn round_trip<T>(x: &T, expected: &Value)
where
    T: Serialize + DeserializeOwned + PartialEq + fmt::Debug,
{
    let v = to_value(x).expect("serializes");
    assert_eq!(&v, expected);
    let back: T = from_value(&v).expect("deserializes");
    assert_eq!(&back, x);
    let back: T = v.decode().expect("decodes");
    assert_eq!(&back, x);
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Inner {
    name: String,
    weight: f64,
    tags: Vec<String>,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Outer {
    id: u64,
    inner: Inner,
    maybe: Option<i32>,
    nothing: Option<i32>,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum Shape {
    Empty,
    Circle(f64),
    Rect(u32, u32),
    Named { name: String, sides: u8 },
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Meters(f64);

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Pair(String, i64);

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Unit;

#[test]
fn primitives_round_trip() {
    round_trip(&true, &Value::Bool(true));
    round_trip(&-7_i8, &Value::Int(-7));
    round_trip(&300_u16, &Value::Int(300));
    round_trip(&i64::MIN, &Value::Int(i64::MIN));
    round_trip(&i64::MAX, &Value::Int(i64::MAX));
    round_trip(&u64::MAX, &Value::UInt(u64::MAX));
    round_trip(&-1_i128, &Value::Int(-1));
    round_trip(&u128::from(u64::MAX), &Value::UInt(u64::MAX));
    round_trip(&2.5_f64, &Value::Float(2.5));
    round_trip(&-0.25_f32, &Value::Float(-0.25));
    round_trip(&'λ', &s("λ"));
    round_trip(&"text".to_owned(), &s("text"));
    round_trip(&(), &Value::Null);
    assert!(matches!(
        to_value(&u64::MAX).unwrap(),
        Value::UInt(u64::MAX)
    ));
    assert!(matches!(to_value(&5_u64).unwrap(), Value::Int(5)));
}

#[test]
fn options_and_collections_round_trip() {
    round_trip(&Some(3_u8), &Value::Int(3));
    round_trip(&None::<u8>, &Value::Null);
    round_trip(&Some(None::<u8>).flatten(), &Value::Null);
    round_trip(
        &vec![1_i32, -2, 3],
        &Value::Array(vec![Value::Int(1), Value::Int(-2), Value::Int(3)]),
    );
    round_trip(&Vec::<String>::new(), &Value::Array(vec![]));

    let mut bt = BTreeMap::new();
    bt.insert("a".to_owned(), vec![1_u8]);
    bt.insert("b".to_owned(), vec![]);
    round_trip(
        &bt,
        &map(vec![
            ("a", Value::Array(vec![Value::Int(1)])),
            ("b", Value::Array(vec![])),
        ]),
    );

    let mut hm = HashMap::new();
    hm.insert(1_u32, "one".to_owned());
    round_trip(&hm, &Value::Map(vec![(Value::Int(1), s("one"))]));

    // Integer keys also come back from string keys, as JSON maps carry them.
    let from_json_keys: HashMap<u32, String> =
        from_value(&Value::Map(vec![(s("1"), s("one"))])).unwrap();
    assert_eq!(from_json_keys, hm);
}

#[test]
fn structs_round_trip() {
    let outer = Outer {
        id: 9,
        inner: Inner {
            name: "box".to_owned(),
            weight: 1.25,
            tags: vec!["a".to_owned(), "b".to_owned()],
        },
        maybe: Some(-4),
        nothing: None,
    };
    round_trip(
        &outer,
        &map(vec![
            ("id", Value::Int(9)),
            (
                "inner",
                map(vec![
                    ("name", s("box")),
                    ("weight", Value::Float(1.25)),
                    ("tags", Value::Array(vec![s("a"), s("b")])),
                ]),
            ),
            ("maybe", Value::Int(-4)),
            ("nothing", Value::Null),
        ]),
    );
}

#[test]
fn struct_from_array_of_fields() {
    let v = Value::Array(vec![s("box"), Value::Int(2), Value::Array(vec![])]);
    let inner: Inner = v.decode().unwrap();
    assert_eq!(
        inner,
        Inner {
            name: "box".to_owned(),
            weight: 2.0,
            tags: vec![]
        }
    );
    let short = Value::Array(vec![s("box")]);
    assert!(short.decode::<Inner>().is_err());
    let long = Value::Array(vec![
        s("box"),
        Value::Int(2),
        Value::Array(vec![]),
        Value::Null,
    ]);
    assert_eq!(
        long.decode::<Inner>().unwrap_err().to_string(),
        "invalid length 4, expected an array of 3 elements"
    );
}

#[test]
fn enums_round_trip() {
    round_trip(&Shape::Empty, &s("Empty"));
    round_trip(
        &Shape::Circle(0.5),
        &map(vec![("Circle", Value::Float(0.5))]),
    );
    round_trip(
        &Shape::Rect(2, 3),
        &map(vec![(
            "Rect",
            Value::Array(vec![Value::Int(2), Value::Int(3)]),
        )]),
    );
    round_trip(
        &Shape::Named {
            name: "tri".to_owned(),
            sides: 3,
        },
        &map(vec![(
            "Named",
            map(vec![("name", s("tri")), ("sides", Value::Int(3))]),
        )]),
    );
    // serde_json's spelling of a unit variant as a map also works.
    let shape: Shape = map(vec![("Empty", Value::Null)]).decode().unwrap();
    assert_eq!(shape, Shape::Empty);
    // Errors: unknown variant, a map with two keys, a missing content.
    assert!(s("Hexagon").decode::<Shape>().is_err());
    let two = map(vec![("Empty", Value::Null), ("Circle", Value::Float(1.0))]);
    assert!(two.decode::<Shape>().is_err());
    assert!(s("Circle").decode::<Shape>().is_err());
    assert!(Value::Array(vec![]).decode::<Shape>().is_err());
}

#[test]
fn tuples_newtypes_units_round_trip() {
    round_trip(
        &(1_u8, "x".to_owned(), false),
        &Value::Array(vec![Value::Int(1), s("x"), Value::Bool(false)]),
    );
    round_trip(&Meters(3.5), &Value::Float(3.5));
    round_trip(
        &Pair("k".to_owned(), -1),
        &Value::Array(vec![s("k"), Value::Int(-1)]),
    );
    round_trip(&Unit, &Value::Null);
    round_trip(&[1.5_f64, 2.5], &Value::Array(vec![1.5.into(), 2.5.into()]));
}

#[derive(Debug, PartialEq, Deserialize)]
struct Borrowed<'a> {
    name: &'a str,
    #[serde(borrow)]
    raw: &'a [u8],
}

#[test]
fn borrowed_str_and_bytes() {
    let v = map(vec![
        ("name", s("borrowed")),
        ("raw", Value::Bytes(vec![0, 1, 255])),
    ]);
    let b: Borrowed<'_> = v.decode().unwrap();
    assert_eq!(b.name, "borrowed");
    assert_eq!(b.raw, [0, 1, 255]);
    // Both really point into the value.
    let Some(Value::String(name)) = v.get("name") else {
        panic!("no name")
    };
    assert!(std::ptr::eq(b.name.as_ptr(), name.as_ptr()));

    // An ASCII JSON string can be borrowed as bytes too.
    let v = map(vec![("name", s("n")), ("raw", s("ascii"))]);
    let b: Borrowed<'_> = v.decode().unwrap();
    assert_eq!(b.raw, b"ascii");

    let msg = Message::new(vec![s("tag"), Value::Bytes(vec![9])]);
    let (tag, raw): (&str, &[u8]) = msg.decode().unwrap();
    assert_eq!((tag, raw), ("tag", &[9_u8][..]));
}

/// A byte buffer that asks for `deserialize_byte_buf`, as `serde_bytes::ByteBuf` does.
#[derive(Debug, PartialEq)]
struct Bytes(Vec<u8>);

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BytesVisitor;

        impl<'de> Visitor<'de> for BytesVisitor {
            type Value = Bytes;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a byte string")
            }

            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Bytes, E> {
                Ok(Bytes(v.to_vec()))
            }

            fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Bytes, E> {
                Ok(Bytes(v))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Bytes, A::Error> {
                let mut out = Vec::new();
                while let Some(b) = seq.next_element::<u8>()? {
                    out.push(b);
                }
                Ok(Bytes(out))
            }
        }

        deserializer.deserialize_byte_buf(BytesVisitor)
    }
}

#[test]
fn perl_numeric_strings_become_numbers() {
    assert_eq!(s("42").decode::<u32>().unwrap(), 42);
    assert_eq!(s("-42").decode::<i16>().unwrap(), -42);
    assert_eq!(s("18446744073709551615").decode::<u64>().unwrap(), u64::MAX);
    assert_eq!(Value::Float(7.0).decode::<u8>().unwrap(), 7);
    assert_eq!(s("1.5").decode::<f64>().unwrap(), 1.5);
    assert_eq!(Value::Int(3).decode::<f32>().unwrap(), 3.0);
    let msg = Message::new(vec![s("ping"), s("7")]);
    let (tag, n): (String, u32) = msg.decode().unwrap();
    assert_eq!((tag.as_str(), n), ("ping", 7));
}

#[test]
fn perl_numbers_become_strings() {
    assert_eq!(Value::Int(1).decode::<String>().unwrap(), "1");
    assert_eq!(Value::Int(-12).decode::<String>().unwrap(), "-12");
    assert_eq!(
        Value::UInt(u64::MAX).decode::<String>().unwrap(),
        "18446744073709551615"
    );
    assert_eq!(Value::Float(2.0).decode::<String>().unwrap(), "2");
    assert_eq!(Value::Float(0.1).decode::<String>().unwrap(), "0.1");
    assert_eq!(Value::Bool(false).decode::<String>().unwrap(), "");
    assert_eq!(Value::Null.decode::<String>().unwrap(), "");
    assert_eq!(
        Value::Bytes(b"utf8".to_vec()).decode::<String>().unwrap(),
        "utf8"
    );
    // A map key sent as a number still names a string-keyed entry.
    let m: HashMap<String, u8> = Value::Map(vec![(Value::Int(5), Value::Int(1))])
        .decode()
        .unwrap();
    assert_eq!(m["5"], 1);
}

#[test]
fn perl_code_point_strings_become_bytes() {
    let b: Bytes = s("\u{0}A\u{80}\u{ff}").decode().unwrap();
    assert_eq!(b, Bytes(vec![0, b'A', 0x80, 0xff]));
    let b: Bytes = Value::Bytes(vec![1, 2, 3]).decode().unwrap();
    assert_eq!(b, Bytes(vec![1, 2, 3]));
    let b: Bytes = Value::Array(vec![Value::Int(4), Value::Int(255)])
        .decode()
        .unwrap();
    assert_eq!(b, Bytes(vec![4, 255]));
    let e = s("snow\u{2603}").decode::<Bytes>().unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid value: string with character U+2603 above U+00FF, expected a byte string"
    );
    let e = Value::Array(vec![Value::Int(256)])
        .decode::<Bytes>()
        .unwrap_err();
    assert_eq!(e, ValueError::OutOfRange("256".to_owned()));
    // A plain Vec<u8> reads a byte string as a sequence.
    assert_eq!(
        Value::Bytes(vec![5, 6]).decode::<Vec<u8>>().unwrap(),
        [5, 6]
    );
}

#[test]
fn perl_truthiness_for_bools() {
    assert!(!s("0").decode::<bool>().unwrap());
    assert!(!s("").decode::<bool>().unwrap());
    assert!(s("1").decode::<bool>().unwrap());
    assert!(!Value::Int(0).decode::<bool>().unwrap());
    assert!(Value::Int(1).decode::<bool>().unwrap());
    assert!(Value::Bool(true).decode::<bool>().unwrap());
    assert!(s("true").decode::<bool>().is_err());
    assert!(Value::Int(-1).decode::<bool>().is_err());
    assert!(Value::Float(0.0).decode::<bool>().is_err());
}

#[test]
fn message_from_serialize_and_decode() {
    let msg = Message::from_serialize(&("ping", 7_u32, [1.5_f64, 2.5])).unwrap();
    assert_eq!(msg.len(), 3);
    assert_eq!(msg[0], s("ping"));
    let (tag, n, floats): (String, u32, Vec<f64>) = msg.decode().unwrap();
    assert_eq!((tag.as_str(), n, floats), ("ping", 7, vec![1.5, 2.5]));
    assert_eq!(msg.decode_element::<u32>(1).unwrap(), 7);
    assert_eq!(msg.decode_element::<&str>(0).unwrap(), "ping");
    assert_eq!(msg.decode_element::<[f64; 2]>(2).unwrap(), [1.5, 2.5]);
    assert_eq!(
        msg.decode_element::<u32>(3).unwrap_err(),
        ValueError::MissingElement(3)
    );
    // A message also decodes into a tuple struct or a struct of its elements, or Values.
    let pair: (String, Meters) = Message::from_serialize(&("d", 2.0))
        .unwrap()
        .decode()
        .unwrap();
    assert_eq!(pair, ("d".to_owned(), Meters(2.0)));
    assert_eq!(msg.decode::<Vec<Value>>().unwrap(), msg.to_vec());
    assert_eq!(
        Message::from_serialize(&7_u8).unwrap_err(),
        ValueError::NotAnArray("integer")
    );
}

#[test]
fn message_decode_checks_tuple_length() {
    let msg = Message::from_serialize(&("ping", 7_u32)).unwrap();
    let e = msg.decode::<(String, u32, u32)>().unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid length 2, expected a tuple of size 3"
    );
    let e = msg.decode::<(String,)>().unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid length 2, expected an array of 1 elements"
    );
    // The same checks inside a value.
    let v = Value::Array(vec![s("a"), Value::Int(1)]);
    assert!(v.decode::<(String,)>().is_err());
    assert!(v.decode::<(String, u8, u8)>().is_err());
    assert!(v.decode::<(String, u8)>().is_ok());
}

#[test]
fn errors_are_clear() {
    assert_eq!(
        s("x").decode::<Vec<u8>>().unwrap_err(),
        ValueError::InvalidType {
            expected: "a sequence".to_owned(),
            found: "string"
        }
    );
    assert_eq!(
        Value::Int(1).decode::<Inner>().unwrap_err().to_string(),
        "invalid type: expected struct Inner, found integer"
    );
    assert_eq!(
        Value::Int(300).decode::<u8>().unwrap_err(),
        ValueError::OutOfRange("300".to_owned())
    );
    assert_eq!(
        Value::Int(-1).decode::<u64>().unwrap_err().to_string(),
        "number -1 out of range for the target type"
    );
    assert_eq!(
        Value::UInt(u64::MAX).decode::<i64>().unwrap_err(),
        ValueError::OutOfRange(u64::MAX.to_string())
    );
    assert_eq!(
        to_value(&(i128::from(u64::MAX) + 1)).unwrap_err(),
        ValueError::OutOfRange("18446744073709551616".to_owned())
    );
    assert_eq!(
        to_value(&i128::MIN).unwrap_err(),
        ValueError::OutOfRange(i128::MIN.to_string())
    );
    assert_eq!(
        s("abc").decode::<u32>().unwrap_err().to_string(),
        "invalid value: string \"abc\", expected u32"
    );
    assert_eq!(
        Value::Array(vec![])
            .decode::<String>()
            .unwrap_err()
            .to_string(),
        "invalid type: expected a string, found array"
    );
    assert_eq!(
        map(vec![("name", s("n"))])
            .decode::<Inner>()
            .unwrap_err()
            .to_string(),
        "missing field `weight`"
    );
    // Errors from visitors inside serde use the same variants.
    assert_eq!(
        Value::Int(3).decode::<&str>().unwrap_err(),
        ValueError::InvalidType {
            expected: "a borrowed string".to_owned(),
            found: "string"
        }
    );
}

#[test]
fn value_deserializes_from_other_formats() {
    let v: Value =
        serde_json::from_str(r#"{"a":[1,-2,1.5,"x",null,true],"b":18446744073709551615}"#).unwrap();
    assert_eq!(
        v,
        map(vec![
            (
                "a",
                Value::Array(vec![
                    Value::Int(1),
                    Value::Int(-2),
                    Value::Float(1.5),
                    s("x"),
                    Value::Null,
                    Value::Bool(true),
                ])
            ),
            ("b", Value::UInt(u64::MAX)),
        ])
    );
    assert_eq!(
        serde_json::to_string(&v).unwrap(),
        r#"{"a":[1,-2,1.5,"x",null,true],"b":18446744073709551615}"#
    );
}

/// Any `Value` except NaN floats (which are not equal to themselves), nested a few levels.
fn arb_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        any::<u64>().prop_map(Value::from_u64),
        any::<f64>()
            .prop_filter("NaN is not equal to itself", |f| !f.is_nan())
            .prop_map(Value::Float),
        ".*".prop_map(Value::String),
        proptest::collection::vec(any::<u8>(), 0..16).prop_map(Value::Bytes),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            proptest::collection::vec((inner.clone(), inner), 0..8).prop_map(Value::Map),
        ]
    })
}

proptest! {
    #[test]
    fn value_round_trips(v in arb_value()) {
        prop_assert_eq!(&to_value(&v).unwrap(), &v);
        prop_assert_eq!(&Value::deserialize(&v).unwrap(), &v);
        prop_assert_eq!(&from_value::<Value>(&v).unwrap(), &v);
    }

    #[test]
    fn decoding_never_panics(v in arb_value()) {
        let _ = v.decode::<Outer>();
        let _ = v.decode::<Shape>();
        let _ = v.decode::<(u8, String, Option<f32>)>();
        let _ = v.decode::<Bytes>();
        let _ = v.decode::<HashMap<String, Vec<i64>>>();
        let _ = v.decode::<bool>();
        let _ = v.decode::<char>();
        let _ = v.decode::<u128>();
    }
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
enum Tagged {
    Join {
        port: String,
    },
    Leave {
        port: String,
        reason: Option<String>,
    },
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
enum Loose {
    Number(i64),
    Text(String),
    List(Vec<Self>),
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct WithFlatten {
    id: u8,
    #[serde(flatten)]
    rest: BTreeMap<String, Value>,
}

#[test]
fn buffered_representations_work() {
    round_trip(
        &Tagged::Leave {
            port: "p".to_owned(),
            reason: None,
        },
        &map(vec![
            ("type", s("Leave")),
            ("port", s("p")),
            ("reason", Value::Null),
        ]),
    );
    round_trip(
        &Loose::List(vec![Loose::Number(1), Loose::Text("t".to_owned())]),
        &Value::Array(vec![Value::Int(1), s("t")]),
    );
    let mut rest = BTreeMap::new();
    rest.insert("extra".to_owned(), Value::Bytes(vec![1]));
    round_trip(
        &WithFlatten { id: 3, rest },
        &map(vec![
            ("id", Value::Int(3)),
            ("extra", Value::Bytes(vec![1])),
        ]),
    );
}
