//! The harness's own cost on the smoke cell (resnet50, batch 1, 128 px):
//! building the model and its seeded weights. Each runtime's crate times its
//! session creation and forward pass on the same cell (`runtimes/*/benches`).
//! `cargo bench` (criterion keeps baselines in target/criterion; `cargo
//! bench -- --save-baseline NAME` / `--baseline NAME` compare them).

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use speedbench::frameworks::conformance::{SMOKE_MODEL, SMOKE_SIZE};
use speedbench::zoo;

fn harness(c: &mut Criterion) {
    let models = zoo::Catalog::built_in().expect("the built-in models load");
    let mut g = c.benchmark_group("smoke-cell");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    g.bench_function("model build + seeded weights", |b| {
        b.iter(|| zoo::load(&models, SMOKE_MODEL, SMOKE_SIZE, None, 0).expect("model builds"))
    });
    g.finish();
}

criterion_group!(benches, harness);
criterion_main!(benches);
