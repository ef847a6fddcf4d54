//! Overhead of one call through a circuit breaker (admission, timeout wrapper, outcome
//! bookkeeping, metrics) compared with awaiting the same ready future directly.
//!
//! `cargo bench --bench breaker`

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use std::sync::Arc;
use std::time::Duration;
use watchpost::breaker::CircuitBreaker;
use watchpost::config::BreakerConfig;
use watchpost::events::EventBus;
use watchpost::prom::Metrics;

fn breaker_overhead(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let breaker = rt.block_on(async {
        CircuitBreaker::new(
            "bench",
            &BreakerConfig::default(),
            Arc::new(Metrics::new()),
            EventBus::new(),
        )
    });
    let mut group = c.benchmark_group("breaker");
    group.bench_function("direct_call", |b| {
        b.iter(|| rt.block_on(async { black_box(async { Ok::<u32, ()>(1) }.await) }))
    });
    group.bench_function("through_breaker", |b| {
        b.iter(|| {
            rt.block_on(async {
                black_box(
                    breaker
                        .call(Duration::from_secs(30), |_: &()| true, async {
                            Ok::<u32, ()>(1)
                        })
                        .await,
                )
            })
        })
    });
    group.finish();
}

criterion_group!(benches, breaker_overhead);
criterion_main!(benches);
