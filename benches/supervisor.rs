//! Crash-to-restart latency of the supervisor, excluding backoff: the time from a
//! worker run returning an error to the next run's first poll, with a zero backoff so
//! only the supervisor's own work (monitor wake-up, `on_exit`, relaunch, spawn) counts.
//!
//! `cargo bench --bench supervisor`

use criterion::{criterion_group, criterion_main, Criterion};
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

criterion_group!(benches, crash_to_restart);
criterion_main!(benches);
