//! Supervisor benchmarks:
//!
//! - crash-to-restart latency, excluding backoff: the time from a worker run returning
//!   an error to the next run's first poll, with a zero backoff so only the
//!   supervisor's own work (monitor wake-up, `on_exit`, relaunch, spawn) counts;
//! - restart-history pagination over a full history (1,000 events, the default
//!   `history_size`): a page at the start, one at the end, one filtered by worker,
//!   and the page serialised as `GET /api/system/supervisor/restart-history` sends it.
//!
//! `cargo bench --bench supervisor`

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Notify};
use watchpost::config::SupervisorConfig;
use watchpost::events::EventBus;
use watchpost::prom::Metrics;
use watchpost::supervisor::{Supervisor, WorkerError, WorkerSpec};

fn crash_to_restart(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let crash = Arc::new(Notify::new());
    let (started_tx, mut started_rx) = mpsc::unbounded_channel::<Instant>();
    let sup = rt.block_on(async {
        let cfg = SupervisorConfig {
            max_restarts: u32::MAX,
            backoff_base_seconds: 0.0,
            backoff_max_seconds: 0.0,
            ..SupervisorConfig::default()
        };
        let sup = Supervisor::new(&cfg, Arc::new(Metrics::new()), EventBus::new());
        let crash = crash.clone();
        sup.register(WorkerSpec::new("bench", false, move |_ctx| {
            let crash = crash.clone();
            let started = started_tx.clone();
            async move {
                let _ = started.send(Instant::now());
                crash.notified().await;
                Err(WorkerError::new("crash"))
            }
        }))
        .expect("register");
        sup.start_all();
        started_rx.recv().await.expect("first start");
        sup
    });
    c.bench_function("crash_to_restart_excluding_backoff", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let crashed = Instant::now();
                    crash.notify_one();
                    let restarted = started_rx.recv().await.expect("restart");
                    total += restarted - crashed;
                }
                total
            })
        })
    });
    rt.block_on(sup.shutdown());
}

fn history_pagination(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let cfg = SupervisorConfig {
        max_restarts: u32::MAX,
        backoff_base_seconds: 0.0,
        backoff_max_seconds: 0.0,
        ..SupervisorConfig::default()
    };
    let sup = rt.block_on(async {
        let sup = Supervisor::new(&cfg, Arc::new(Metrics::new()), EventBus::new());
        for name in ["crashy_a", "crashy_b"] {
            sup.register(WorkerSpec::new(name, false, |_ctx| async {
                tokio::task::yield_now().await;
                Err(WorkerError::new("crash"))
            }))
            .expect("register");
        }
        sup.start_all();
        // Each crash adds two events (crashed, success); wait for a full, rolling history.
        while sup.history(None, 1, 0).pagination.total < cfg.history_size {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        sup.shutdown().await;
        sup
    });
    let total = sup.history(None, 1, 0).pagination.total;
    let mut group = c.benchmark_group(format!("restart_history_{total}_events"));
    group.bench_function("first_page_limit_50", |b| {
        b.iter(|| black_box(sup.history(None, 50, 0)))
    });
    group.bench_function("last_page_limit_50", |b| {
        b.iter(|| black_box(sup.history(None, 50, total - 50)))
    });
    group.bench_function("filtered_by_worker_limit_50", |b| {
        b.iter(|| black_box(sup.history(Some("crashy_b"), 50, 100)))
    });
    group.bench_function("first_page_limit_50_as_json", |b| {
        b.iter(|| black_box(serde_json::to_vec(&sup.history(None, 50, 0)).expect("json")))
    });
    group.finish();
}

criterion_group!(benches, crash_to_restart, history_pagination);
criterion_main!(benches);
