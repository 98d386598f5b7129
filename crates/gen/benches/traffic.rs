//! Event generation throughput: messages per second of the deterministic traffic iterator.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use playsource_gen::{GenConfig, Traffic};

fn generate(c: &mut Criterion) {
    let cfg = GenConfig {
        members: 2_000,
        videos: 5_000,
        events: Some(50_000),
        duplicate_share: 0.01,
        malformed_share: 0.001,
        ..Default::default()
    };
    let mut group = c.benchmark_group("traffic");
    group.throughput(Throughput::Elements(50_000));
    group.sample_size(10);
    group.bench_function("50k_messages", |b| {
        b.iter(|| {
            let t = Traffic::new(&cfg).expect("valid config");
            t.map(|m| m.payload.len()).sum::<usize>()
        })
    });
    group.finish();
}

criterion_group!(benches, generate);
criterion_main!(benches);
