//! Throughput of the `json` framing: encoding and decoding a small and a 1 KiB message.
//!
//! Run with `cargo bench -p aemp-proto --bench json_codec`. Every iteration handles one
//! message; decoding appends the wire bytes to a reused `BytesMut` (as a socket read would)
//! and decodes one [`Frame`](aemp_proto::Frame) from it.

use std::hint::black_box;

use aemp_proto::Value;
use aemp_proto::framing::json::{JsonDecoder, encode_frame};
use bytes::BytesMut;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn messages() -> [(&'static str, Vec<Value>); 2] {
    [
        ("small", vec![Value::from("0123456789")]),
        ("1KiB", vec![Value::from("x".repeat(1024))]),
    ]
}

fn bench_encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("json_encode");
    for (name, elements) in messages() {
        let mut out = Vec::with_capacity(4096);
        encode_frame("sink", &elements, &mut out);
        group.throughput(Throughput::Elements(1));
        group.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                encode_frame(black_box("sink"), black_box(&elements), &mut out);
                black_box(out.len())
            });
        });
    }
    group.finish();
}

fn bench_decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("json_decode");
    for (name, elements) in messages() {
        let mut wire = Vec::new();
        encode_frame("sink", &elements, &mut wire);
        let mut decoder = JsonDecoder::new(64 * 1024 * 1024);
        let mut buf = BytesMut::with_capacity(4096);
        group.throughput(Throughput::Elements(1));
        group.bench_function(name, |b| {
            b.iter(|| {
                buf.extend_from_slice(black_box(&wire));
                let frame = decoder.decode(&mut buf);
                debug_assert!(matches!(frame, Ok(Some(_))));
                black_box(frame)
            });
        });
    }
    group.finish();
}

/// The reference point of the issue's bar: serde_json parsing the same bytes into its own
/// `Value` (no framing, no stream buffer).
fn bench_serde_json_reference(c: &mut Criterion) {
    let mut group = c.benchmark_group("serde_json_reference");
    let wire = br#"["sink","0123456789"]"#;
    group.throughput(Throughput::Elements(1));
    group.bench_function("small_into_serde_json_value", |b| {
        b.iter(|| black_box(serde_json::from_slice::<serde_json::Value>(black_box(wire))))
    });
    group.finish();
}

criterion_group!(
    benches,
    bench_encode,
    bench_decode,
    bench_serde_json_reference
);
criterion_main!(benches);
