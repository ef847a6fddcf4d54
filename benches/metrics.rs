//! Encoding `/metrics`: the live exposition of a running service (every known series
//! published at start), and the same registry grown to twice its series count. The
//! figure that matters is the time per series.
//!
//! `cargo bench --bench metrics`

#[path = "../tests/support/mod.rs"]
mod support;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn series(text: &str) -> usize {
    text.lines().filter(|l| !l.starts_with('#')).count()
}

fn encode(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("dir");
    // Every dependency on a closed port: the series are those published at start.
    let cfg = support::base_config(dir.path());
    let service = rt
        .block_on(watchpost::Service::start(cfg))
        .expect("service");
    let metrics = service.state().metrics.clone();
    let live = series(&metrics.render());
    let bytes = metrics.render().len();
    let mut group = c.benchmark_group("metrics");
    group.throughput(Throughput::Elements(live as u64));
    group.bench_function(format!("render_live_{live}_series_{bytes}_bytes"), |b| {
        b.iter(|| metrics.render())
    });
    // Twice the series: more workers and breakers, as a larger deployment would have.
    let workers = watchpost::supervisor::metrics::SupervisorMetrics::new(&metrics);
    let breakers = watchpost::breaker::metrics::BreakerMetrics::new(&metrics);
    let mut i = 0;
    while series(&metrics.render()) < 2 * live {
        workers.registered(&format!("extra_worker_{i}"), 5, false);
        breakers.registered(&format!("extra_breaker_{i}"));
        i += 1;
    }
    let double = series(&metrics.render());
    group.throughput(Throughput::Elements(double as u64));
    group.bench_function(format!("render_{double}_series"), |b| {
        b.iter(|| metrics.render())
    });
    group.finish();
    rt.block_on(service.shutdown());
}

criterion_group!(benches, encode);
criterion_main!(benches);
