//! Batch aggregator: the cost of adding a detection to its camera's open batch, and of
//! the add that fills a batch and closes it (claim, hand-off to the analysis sink,
//! forget), with batches in a real Redis (started like the test harness does) and in
//! the in-process fallback used while Redis is down. The sink discards batches, so only
//! the aggregator's own work is measured.
//!
//! `cargo bench --bench batch`

#[path = "../tests/support/mod.rs"]
mod support;

use criterion::{criterion_group, criterion_main, Criterion};
use futures_util::future::BoxFuture;
use std::sync::Arc;
use std::time::{Duration, Instant};
use watchpost::config::BatchConfig;
use watchpost::events::EventBus;
use watchpost::pipeline::batch::{BatchAggregator, BatchSink, ClosedBatch};
use watchpost::prom::Metrics;
use watchpost::redis::RedisLink;

/// Detections per batch before it closes at its size limit.
const MAX: u64 = 50;

struct Discard;

impl BatchSink for Discard {
    fn hand_off(&self, _batch: &ClosedBatch) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }
}

fn aggregator(redis: Option<Arc<RedisLink>>) -> BatchAggregator {
    let cfg = BatchConfig {
        window_seconds: 3600.0,
        idle_timeout_seconds: 3600.0,
        max_detections: MAX,
    };
    BatchAggregator::new(
        &cfg,
        redis,
        Arc::new(Discard),
        EventBus::new(),
        Arc::new(Metrics::new()),
    )
}

fn bench_store(c: &mut Criterion, rt: &tokio::runtime::Runtime, name: &str, agg: BatchAggregator) {
    let mut group = c.benchmark_group(format!("batch_{name}"));
    let mut next_id = 0i64;
    // Adds that do not close: each camera's batch is closed after MAX - 1 of them, untimed.
    group.bench_function("add", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut timed = Duration::ZERO;
                let mut in_batch = 0u64;
                for _ in 0..iters {
                    next_id += 1;
                    let t = Instant::now();
                    agg.add("front_door", next_id).await.expect("add");
                    timed += t.elapsed();
                    in_batch += 1;
                    if in_batch == MAX - 1 {
                        next_id += 1;
                        agg.add("front_door", next_id).await.expect("close");
                        in_batch = 0;
                    }
                }
                if in_batch > 0 {
                    for _ in in_batch..MAX {
                        next_id += 1;
                        agg.add("front_door", next_id).await.expect("close");
                    }
                }
                timed
            })
        })
    });
    // The add that fills the batch and closes it; the MAX - 1 adds before it are untimed.
    group.bench_function("add_and_close_at_max_size", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut timed = Duration::ZERO;
                for _ in 0..iters {
                    for _ in 1..MAX {
                        next_id += 1;
                        agg.add("backyard", next_id).await.expect("add");
                    }
                    next_id += 1;
                    let t = Instant::now();
                    agg.add("backyard", next_id).await.expect("close");
                    timed += t.elapsed();
                }
                timed
            })
        })
    });
    group.finish();
}

fn batches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    bench_store(c, &rt, "memory", aggregator(None));
    let redis = support::Redis::start();
    let link = rt.block_on(async { Arc::new(RedisLink::new(&redis.url())) });
    bench_store(c, &rt, "redis", aggregator(Some(link)));
}

criterion_group!(benches, batches);
criterion_main!(benches);
