//! Local runtime paths: send→callback throughput and port creation, per message / per port.
//!
//! Run with `cargo bench -p aemp --bench local`. The same scenarios back `aemp bench local`
//! and `aemp bench ports`, which also report memory per port.

use std::time::Duration;

use aemp::Node;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime starts")
}

fn local_send(c: &mut Criterion) {
    let rt = runtime();
    let node = rt
        .block_on(async { Node::builder().id("bench-local").start() })
        .expect("node starts");
    let mut group = c.benchmark_group("local");
    group.throughput(Throughput::Elements(1));
    group.bench_function("send_to_callback", |b| {
        b.iter_custom(|iters| rt.block_on(aemp::bench::local_throughput(&node, iters, 1000)));
    });
    group.finish();
}

fn port_create(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("ports");
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("create_idle_callback_port", |b| {
        b.iter_custom(|iters| {
            // A fresh node per sample, so the port table does not grow without bound.
            rt.block_on(async {
                let node = Node::builder().start().expect("node starts");
                let elapsed = aemp::bench::create_idle_ports(&node, iters).await;
                node.shutdown();
                elapsed
            })
        });
    });
    group.finish();
}

criterion_group!(benches, local_send, port_create);
criterion_main!(benches);
