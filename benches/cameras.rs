//! The camera watchdog's pass: judging every camera once (its deadlines from the
//! learned rhythm, its status, the counts by status), over 1,000 cameras that each
//! sent a day of images every 30 s; and the registry's work for one arriving image.
//! Also `GET /api/system/cameras`'s work: listing 64 cameras.
//!
//! `cargo bench --bench cameras`

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use std::sync::Arc;
use watchpost::cameras::CameraRegistry;
use watchpost::config::CamerasConfig;
use watchpost::events::EventBus;
use watchpost::prom::Metrics;
use watchpost::store::Store;

const T0: f64 = 1_800_000_000.0;

/// Images per camera: a day every 30 s under `cargo bench`; a few under `cargo test
/// --all-targets`, which runs each bench once to prove it works.
fn history() -> u32 {
    if std::env::args().any(|a| a == "--bench") {
        2880
    } else {
        20
    }
}

fn registry(cameras: usize) -> Arc<CameraRegistry> {
    // A closed port: nothing here reads or writes PostgreSQL.
    let store = Arc::new(Store::new("postgres://u:p@127.0.0.1:1/x").expect("store"));
    let cfg = CamerasConfig {
        max_cameras: cameras,
        ..CamerasConfig::default()
    };
    let r = CameraRegistry::new(&cfg, store, EventBus::new(), &Metrics::new(), "bench");
    // A day of history each: an image every 30 s (2,880 gaps learned per camera).
    for i in 0..cameras {
        let id = format!("cam{i:04}");
        for k in 0..history() {
            r.admit_at(&id, &id, T0 + f64::from(k) * 30.0 + i as f64 * 0.001);
        }
    }
    r
}

fn watchdog(c: &mut Criterion) {
    let mut group = c.benchmark_group("cameras");
    group.sample_size(20);
    let big = registry(1000);
    let end = T0 + f64::from(history()) * 30.0;
    group.bench_function("liveness_pass_1000_cameras", |b| {
        b.iter(|| big.check_at(black_box(end)))
    });
    let mut t = end;
    group.bench_function("one_image_arrives", |b| {
        b.iter(|| {
            t += 30.0;
            black_box(big.admit_at("cam0001", "cam0001", t))
        })
    });
    let small = registry(64);
    group.bench_function("list_64_cameras_as_json", |b| {
        b.iter(|| serde_json::to_vec(&small.list(false)).map(|v| v.len()))
    });
    group.finish();
}

criterion_group!(benches, watchdog);
criterion_main!(benches);
