//! The harness's own costs on the smoke cell (resnet50, batch 1, 128 px), per
//! built-in framework: building the model, creating the session, one
//! forward pass. `cargo bench` (criterion keeps baselines in target/criterion;
//! `cargo bench -- --save-baseline NAME` / `--baseline NAME` compare them).

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use speedbench::frameworks::{self, Device, Mode, PrepareOptions};
use speedbench::io::seeded_input;
use speedbench::zoo;

const MODEL: &str = "resnet50";
const SIZE: usize = 128;

fn options() -> PrepareOptions {
    PrepareOptions::new(
        Device::Cpu,
        Mode::Sequential,
        speedbench::frameworks::Optimize::Default,
        speedbench::record::env::cores(),
        1,
        false,
    )
}

fn harness(c: &mut Criterion) {
    let models = zoo::Catalog::built_in().expect("the built-in models load");
    let mut g = c.benchmark_group("smoke-cell");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    g.bench_function("model build + seeded weights", |b| {
        b.iter(|| zoo::load(&models, MODEL, SIZE, None, 0).expect("model builds"))
    });
    let loaded = zoo::load(&models, MODEL, SIZE, None, 0).expect("model builds");
    let input = seeded_input(1, SIZE, 0);
    for name in frameworks::built_in() {
        let fw = frameworks::by_name(name).expect("built in");
        g.bench_function(format!("{name}: session creation"), |b| {
            b.iter(|| {
                fw.prepare(&loaded.graph, &loaded.weights, &options())
                    .expect("prepares")
            })
        });
        let mut prepared = fw
            .prepare(&loaded.graph, &loaded.weights, &options())
            .expect("prepares");
        g.bench_function(format!("{name}: forward pass"), |b| {
            b.iter(|| prepared.run(&input).expect("runs"))
        });
    }
    g.finish();
}

criterion_group!(benches, harness);
criterion_main!(benches);
