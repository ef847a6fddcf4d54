//! The performance endpoints against real PostgreSQL and Redis and the fake AI
//! server: every value compared with its source (the fake's own `/health` and
//! `/slots`, PostgreSQL's settings, Redis's INFO, the kernel's memory and disk
//! figures, the delays the fake adds), alerts from thresholds, and the history.

use crate::support::fake_ai::{model, Mode};
use crate::support::{client, eventually, json, wait_rows, write_image, Stack};
use serde_json::Value;
use std::time::Duration;

const GB: f64 = 1024.0 * 1024.0 * 1024.0;

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// What the snapshot must say, read from the sources themselves.
struct Truth {
    pg_max_connections: i64,
    ram_total_gb: f64,
    disk_total_gb: f64,
    redis_memory_mb: f64,
}

fn truth(stack: &Stack, camera_root: &std::path::Path) -> Truth {
    let meminfo = std::fs::read_to_string("/proc/meminfo").expect("meminfo");
    let kib: f64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("MemTotal");
    let df = std::process::Command::new("df")
        .args(["-B1", "--output=size"])
        .arg(camera_root)
        .output()
        .expect("df");
    let disk: f64 = String::from_utf8_lossy(&df.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .expect("df size");
    let info = std::process::Command::new(crate::support::require("redis-cli", "redis-server"))
        .args(["-p", &stack.redis.port.to_string(), "INFO", "memory"])
        .output()
        .expect("redis-cli");
    let used: f64 = String::from_utf8_lossy(&info.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("used_memory");
    Truth {
        pg_max_connections: stack.pg.psql("show max_connections").parse().expect("int"),
        ram_total_gb: round2(kib * 1024.0 / GB),
        disk_total_gb: round2(disk / GB),
        redis_memory_mb: used / (1024.0 * 1024.0),
    }
}

/// The GPU part: `null` without NVML; on a machine with a GPU, a consistent reading.
fn check_gpu(gpu: &Value) {
    if gpu.is_null() {
        return;
    }
    let (used, total) = (
        gpu["vram_used_gb"].as_f64().expect("vram_used_gb"),
        gpu["vram_total_gb"].as_f64().expect("vram_total_gb"),
    );
    assert!(total > 0.0 && used <= total, "{gpu}");
    let percent = gpu["vram_percent"].as_f64().expect("vram_percent");
    assert!((percent - used / total * 100.0).abs() < 1.0, "{gpu}");
    assert!(gpu["name"].is_string() && gpu["temperature"].is_i64() && gpu["power_watts"].is_i64());
    assert!((0.0..=100.0).contains(&gpu["utilization"].as_f64().expect("utilization")));
}

/// Every part of a snapshot, compared with its source.
fn check_snapshot(p: &Value, truth: &Truth) {
    check_gpu(&p["gpu"]);
    let yolo = &p["ai_models"]["yolo26"];
    assert_eq!(yolo["status"], "healthy", "{p}");
    assert_eq!(yolo["model"], model::YOLO26_MODEL, "from YOLO26's /health");
    assert_eq!(yolo["device"], model::DEVICE);
    assert_eq!(yolo["vram_gb"], model::YOLO26_VRAM_GB);
    let nemo = &p["ai_models"]["nemotron"];
    assert_eq!(nemo["status"], "healthy");
    assert_eq!(
        nemo["slots_total"],
        model::LLM_SLOTS,
        "from llama.cpp's /slots"
    );
    assert_eq!(nemo["slots_active"], model::LLM_SLOTS_BUSY);
    assert_eq!(nemo["context_size"], model::LLM_CONTEXT);
    let inf = &p["inference"];
    for svc in ["yolo26_latency_ms", "nemotron_latency_ms"] {
        for k in ["avg", "p95", "p99"] {
            assert!(inf[svc][k].is_number(), "{svc}.{k} is a number: {inf}");
        }
        assert!(inf[svc]["samples"].is_u64(), "{svc}.samples");
    }
    assert!(inf["queues"]["detection"].is_u64() && inf["queues"]["analysis"].is_u64());
    let pg = &p["databases"]["postgresql"];
    assert_eq!(pg["status"], "healthy", "{p}");
    assert_eq!(
        pg["connections_max"], truth.pg_max_connections,
        "SHOW max_connections"
    );
    let active = pg["connections_active"]
        .as_i64()
        .expect("connections_active");
    assert!(active >= 1 && active <= truth.pg_max_connections, "{pg}");
    assert!(pg["cache_hit_ratio"]
        .as_f64()
        .is_some_and(|r| (0.0..=1.0).contains(&r)));
    assert!(pg["transactions_per_min"].as_f64() >= Some(0.0));
    let redis = &p["databases"]["redis"];
    assert_eq!(redis["status"], "healthy");
    assert!(
        redis["connected_clients"].as_i64() >= Some(1),
        "watchpost's own connection"
    );
    let memory = redis["memory_mb"].as_f64().expect("memory_mb");
    assert!(
        (memory - truth.redis_memory_mb).abs() < 2.0,
        "Redis INFO says {:.2} MB, the snapshot {memory}",
        truth.redis_memory_mb
    );
    assert!(redis["hit_ratio"]
        .as_f64()
        .is_some_and(|r| (0.0..=1.0).contains(&r)));
    assert!(redis["blocked_clients"].as_i64() >= Some(0));
    let host = &p["host"];
    assert_eq!(
        host["ram_total_gb"], truth.ram_total_gb,
        "MemTotal of /proc/meminfo"
    );
    assert_eq!(
        host["disk_total_gb"], truth.disk_total_gb,
        "df of the camera folder"
    );
    for (used, total, percent) in [
        ("ram_used_gb", "ram_total_gb", "ram_percent"),
        ("disk_used_gb", "disk_total_gb", "disk_percent"),
    ] {
        let (u, t) = (
            host[used].as_f64().expect(used),
            host[total].as_f64().expect(total),
        );
        let pc = host[percent].as_f64().expect(percent);
        assert!(u <= t && (pc - u / t * 100.0).abs() < 0.5, "{host}");
    }
    assert!((0.0..=100.0).contains(&host["cpu_percent"].as_f64().expect("cpu")));
    assert_eq!(
        p["containers"],
        serde_json::json!([]),
        "no container runtime here"
    );
    assert!(p["alerts"].is_array());
    assert!(p["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn performance_shows_every_part_and_its_history() {
    let stack = Stack::new(&[
        ("WATCHPOST_PERFORMANCE__SAMPLE_INTERVAL_SECONDS", "0.5"),
        // Far below the current value: this alert must appear.
        (
            "WATCHPOST_PERFORMANCE__THRESHOLDS__RAM_PERCENT_WARNING",
            "0.5",
        ),
        (
            "WATCHPOST_PERFORMANCE__THRESHOLDS__RAM_PERCENT_CRITICAL",
            "100",
        ),
    ]);
    // The fake AI takes this long: watchpost's latencies must show at least that.
    stack
        .ai
        .get("yolo26")
        .set_route_mode("detect", Mode::Slow(Duration::from_millis(60)));
    stack
        .ai
        .get("nemotron")
        .set_route_mode("completion", Mode::Slow(Duration::from_millis(120)));
    let wp = stack.start(tempfile::tempdir().expect("dir"));
    // Before any inference: every latency is 0, with 0 samples (numbers, as clients
    // of the contract read them), in the history too.
    let history_url = format!("{}/api/system/performance/history", wp.url());
    let first = eventually("a first sample in the history", || async {
        let h = json(history_url.clone()).await;
        h["snapshots"].as_array()?.first().cloned()
    })
    .await;
    let inf = &first["inference"];
    for (svc, keys) in [
        ("yolo26_latency_ms", &["avg", "p95", "p99"][..]),
        ("nemotron_latency_ms", &["avg", "p95", "p99"][..]),
        ("pipeline_latency_ms", &["avg", "p95"][..]),
    ] {
        for k in keys {
            assert_eq!(inf[svc][*k].as_f64(), Some(0.0), "{svc}.{k}: {inf}");
        }
        assert_eq!(inf[svc]["samples"], 0, "{svc}: {inf}");
    }
    let root = wp.dir.path().join("cameras");
    write_image(&root, "porch", "a.png");
    wait_rows(&stack, "events", 1).await;
    let url = format!("{}/api/system/performance", wp.url());
    let p = eventually("a sample with the pipeline's latencies", || {
        let url = url.clone();
        async move {
            let p = json(url).await;
            (p["inference"]["yolo26_latency_ms"]["samples"].as_u64() > Some(0)
                && p["inference"]["nemotron_latency_ms"]["samples"].as_u64() > Some(0)
                && p["ai_models"]["yolo26"]["status"] == "healthy")
                .then_some(p)
        }
    })
    .await;
    let truth = truth(&stack, &root);
    check_snapshot(&p, &truth);
    let inf = &p["inference"];
    assert!(
        inf["yolo26_latency_ms"]["avg"].as_f64() >= Some(60.0),
        "{inf}"
    );
    assert!(
        inf["yolo26_latency_ms"]["p99"].as_f64() >= Some(60.0),
        "{inf}"
    );
    assert!(
        inf["nemotron_latency_ms"]["avg"].as_f64() >= Some(120.0),
        "{inf}"
    );
    assert_eq!(
        inf["throughput"]["images_per_min"], 1.0,
        "one image this minute"
    );
    assert_eq!(
        inf["throughput"]["events_per_min"], 1.0,
        "one event this minute"
    );
    assert!(
        inf["pipeline_latency_ms"]["avg"].as_f64() >= Some(60.0),
        "an image's way through includes its detection: {inf}"
    );
    let alert = p["alerts"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["metric"] == "ram_percent"))
        .unwrap_or_else(|| panic!("no ram alert: {}", p["alerts"]));
    assert_eq!(alert["severity"], "warning");
    assert_eq!(alert["threshold"], 0.5);
    assert!(alert["value"].as_f64() > Some(0.5) && alert["message"].is_string());
    assert!(
        !p["alerts"]
            .as_array()
            .expect("alerts")
            .iter()
            .any(|a| a["metric"] == "cpu_percent"
                && a["severity"] == "critical"
                && a["value"].as_f64() < Some(95.0)),
        "only values at or above a threshold"
    );

    let history = format!("{}/api/system/performance/history", wp.url());
    let h = eventually("a few samples in the history", || {
        let history = history.clone();
        async move {
            let h = json(history).await;
            (h["count"].as_u64() >= Some(3)).then_some(h)
        }
    })
    .await;
    assert_eq!(h["time_range"], "5m", "the default");
    let snaps = h["snapshots"].as_array().expect("snapshots");
    assert_eq!(h["count"].as_u64(), Some(snaps.len() as u64));
    assert!(snaps.len() <= 60);
    let times: Vec<&str> = snaps
        .iter()
        .filter_map(|s| s["timestamp"].as_str())
        .collect();
    assert!(times.windows(2).all(|w| w[0] < w[1]), "oldest first");
    check_snapshot(&snaps[snaps.len() - 1], &truth);
    for range in ["15m", "60m"] {
        let h = json(format!("{history}?time_range={range}")).await;
        assert_eq!(h["time_range"], range);
    }
    let bad = client()
        .get(format!("{history}?time_range=2h"))
        .send()
        .await
        .expect("GET");
    assert_eq!(bad.status().as_u16(), 400);
    let detail = bad.json::<Value>().await.expect("json")["detail"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        detail.contains("5m, 15m, 60m") && detail.contains("2h"),
        "{detail}"
    );
}
