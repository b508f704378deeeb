// Included by each runtime's benches/session.rs after it defines
// `frameworks()`: the smoke cell's session creation and one forward pass,
// per framework of that runtime (criterion, as the core's benches/harness.rs).

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use speedbench::frameworks::conformance::smoke_cell;

fn session(c: &mut Criterion) {
    let cell = smoke_cell().expect("the smoke cell builds");
    let mut g = c.benchmark_group("smoke-cell");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    for fw in frameworks() {
        let name = fw.name();
        g.bench_function(format!("{name}: session creation"), |b| {
            b.iter(|| {
                fw.prepare(&cell.loaded.graph, &cell.loaded.weights, &cell.options)
                    .expect("prepares")
            })
        });
        let mut prepared = fw
            .prepare(&cell.loaded.graph, &cell.loaded.weights, &cell.options)
            .expect("prepares");
        g.bench_function(format!("{name}: forward pass"), |b| {
            b.iter(|| prepared.run(&cell.input).expect("runs"))
        });
    }
    g.finish();
}

criterion_group!(benches, session);
criterion_main!(benches);
