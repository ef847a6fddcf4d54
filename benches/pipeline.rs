//! Pipeline benchmark (not a test): with real Redis and PostgreSQL (started like the
//! test harness does) and the fake AI server answering instantly, on the default
//! watcher settings (native watcher, 500 ms debounce, 2 s stability unless
//! close-after-write is seen):
//!
//! 1. file-to-queue latency of 1,000 images: the detection worker is stopped, the
//!    images are written, and each one's Redis stream entry id (Redis server time, ms)
//!    is compared with the time the file was written;
//! 2. throughput: the detection worker is started and the time until all 1,000
//!    detections are stored gives detections per second through watcher → queue →
//!    YOLO26 → PostgreSQL → batch aggregator.
//!
//! `cargo bench --bench pipeline` (prints figures; asserts nothing about time).
//! `cargo test --all-targets` runs it once in test mode, like criterion's benches: 20
//! images, and a failure if they do not all come through.

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use support::fake_ai::FakeAiStack;
use support::{base_config, Postgres, Redis};

/// Images of a measuring run (`cargo bench`), and of the test-mode run.
const BENCH_IMAGES: usize = 1000;
const TEST_IMAGES: usize = 20;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` runs this without it.
    let measuring = std::env::args().any(|a| a == "--bench");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let images = if measuring { BENCH_IMAGES } else { TEST_IMAGES };
    let (queued, detected) = rt.block_on(run(images));
    if !measuring {
        assert_eq!(
            (queued, detected),
            (images, images),
            "test mode: every image queued and detected"
        );
        println!("pipeline bench: test mode passed ({images} images)");
    }
}

/// Returns how many images were queued and how many detections were stored.
async fn run(images: usize) -> (usize, usize) {
    let redis = Redis::start();
    let pg = Postgres::start();
    let ai = FakeAiStack::start();
    let dir = tempfile::tempdir().expect("dir");
    let mut cfg = base_config(dir.path());
    cfg.redis.url = redis.url();
    cfg.postgres.url = pg.url();
    cfg.ai.yolo26.url = ai.get("yolo26").url();
    cfg.ai.nemotron.url = ai.get("nemotron").url();
    let root = dir.path().join("cameras");
    let service = watchpost::Service::start(cfg).await.expect("start");
    let state = service.state().clone();
    state
        .supervisor
        .stop_worker("detection_worker")
        .await
        .expect("stop detection worker");
    while !state.pipeline.watcher.status().is_active() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for cam in ["front_door", "backyard", "garage", "porch"] {
        std::fs::create_dir_all(root.join(cam)).expect("camera dir");
    }
    tokio::time::sleep(Duration::from_millis(200)).await; // let the new folders' watches settle

    let mut written: HashMap<String, f64> = HashMap::new();
    let cams = ["front_door", "backyard", "garage", "porch"];
    for i in 0..images {
        let path = root.join(cams[i % 4]).join(format!("img{i:05}.png"));
        let mut bytes = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
        bytes.extend_from_slice(&(i as u64).to_le_bytes());
        bytes.resize(20_000, (i % 251) as u8);
        std::fs::write(&path, &bytes).expect("write");
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("time")
            .as_secs_f64();
        written.insert(path.display().to_string(), t);
        // Roughly what a handful of busy cameras produce, not a burst of 1,000 at once.
        if i % 20 == 19 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let client = redis::Client::open(redis.url()).expect("redis");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("conn");
    let stream = state.pipeline.detection_queue.stream_key().to_string();
    let started = Instant::now();
    loop {
        let n: usize = redis::cmd("XLEN")
            .arg(&stream)
            .query_async(&mut conn)
            .await
            .unwrap_or(0);
        if n >= images || started.elapsed() > Duration::from_secs(120) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let entries: Vec<(String, HashMap<String, String>)> = redis::cmd("XRANGE")
        .arg(&stream)
        .arg("-")
        .arg("+")
        .query_async::<redis::streams::StreamRangeReply>(&mut conn)
        .await
        .expect("XRANGE")
        .ids
        .into_iter()
        .map(|e| {
            let map = e
                .map
                .iter()
                .filter_map(|(k, v)| {
                    redis::from_redis_value_ref::<String>(v)
                        .ok()
                        .map(|v| (k.clone(), v))
                })
                .collect();
            (e.id, map)
        })
        .collect();
    let mut latencies: Vec<f64> = entries
        .iter()
        .filter_map(|(id, fields)| {
            let ms: f64 = id.split('-').next()?.parse().ok()?;
            let item: serde_json::Value = serde_json::from_str(fields.get("p")?).ok()?;
            let at = written.get(item["file_path"].as_str()?)?;
            Some(ms / 1000.0 - at)
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    println!(
        "file-to-queue latency over {} images (native watcher, defaults):",
        latencies.len()
    );
    println!(
        "  p50 {:.0} ms   p99 {:.0} ms   max {:.0} ms",
        percentile(&latencies, 0.5) * 1000.0,
        percentile(&latencies, 0.99) * 1000.0,
        latencies.last().copied().unwrap_or(0.0) * 1000.0
    );

    let t0 = Instant::now();
    state
        .supervisor
        .start_worker("detection_worker")
        .expect("start detection worker");
    let detected = loop {
        let n: u64 = pg
            .psql("select count(*) from detections")
            .parse()
            .unwrap_or(0);
        if n as usize >= images || t0.elapsed() > Duration::from_secs(300) {
            let secs = t0.elapsed().as_secs_f64();
            println!(
                "throughput: {n} detections stored in {secs:.2} s = {:.0} detections/s (fake YOLO26 answering instantly)",
                n as f64 / secs
            );
            break n as usize;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    service.shutdown().await;
    (entries.len(), detected)
}
