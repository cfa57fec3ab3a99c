//! Benchmarks of the `cbor` framing: encode, decode, and both, for a small message
//! (`["sink", "0123456789"]`) and a 1 KiB one (`["sink", <1024-byte string>]`).
//!
//! Run with `cargo bench -p aemp-proto --bench cbor_codec`. Each iteration handles one
//! message; the reported time is per message.

use std::hint::black_box;

use aemp_proto::Value;
use aemp_proto::framing::cbor::{CborDecoder, encode_frame};
use bytes::BytesMut;
use criterion::{Criterion, criterion_group, criterion_main};

fn bench_message(c: &mut Criterion, name: &str, elements: &[Value]) {
    let mut wire = Vec::new();
    encode_frame("sink", elements, &mut wire);

    c.bench_function(&format!("cbor/{name}/encode"), |b| {
        let mut out = Vec::with_capacity(4096);
        b.iter(|| {
            out.clear();
            encode_frame(black_box("sink"), black_box(elements), &mut out);
            black_box(&out);
        });
    });

    c.bench_function(&format!("cbor/{name}/decode"), |b| {
        let mut decoder = CborDecoder::new(64 * 1024 * 1024);
        let mut buf = BytesMut::with_capacity(4096);
        b.iter(|| {
            buf.extend_from_slice(black_box(&wire));
            black_box(decoder.decode(&mut buf))
        });
    });

    c.bench_function(&format!("cbor/{name}/encode+decode"), |b| {
        let mut decoder = CborDecoder::new(64 * 1024 * 1024);
        let mut out = Vec::with_capacity(4096);
        let mut buf = BytesMut::with_capacity(4096);
        b.iter(|| {
            out.clear();
            encode_frame(black_box("sink"), black_box(elements), &mut out);
            buf.extend_from_slice(&out);
            black_box(decoder.decode(&mut buf))
        });
    });
}

fn cbor_codec(c: &mut Criterion) {
    bench_message(c, "small", &[Value::from("0123456789")]);
    bench_message(c, "1KiB", &[Value::from("x".repeat(1024))]);
}

criterion_group!(benches, cbor_codec);
criterion_main!(benches);
