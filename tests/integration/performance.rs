//! The performance endpoints against real PostgreSQL and Redis and the fake AI
//! server: every field with its type, alerts from thresholds, and the history.

use crate::pipeline::{json, wait_rows, write_image, Stack};
use crate::support::{client, eventually};
use serde_json::Value;

fn is_number_or_null(v: &Value) -> bool {
    v.is_number() || v.is_null()
}

fn check_snapshot(p: &Value) {
    assert!(p["gpu"].is_null(), "no NVML here: {}", p["gpu"]);
    let ai = &p["ai_models"];
    assert!(ai["yolo26"]["status"].is_string() && ai["yolo26"]["vram_gb"].is_number());
    assert!(ai["yolo26"]["model"].is_string() && ai["yolo26"]["device"].is_string());
    for k in ["slots_active", "slots_total", "context_size"] {
        assert!(ai["nemotron"][k].is_i64(), "nemotron.{k}: {ai}");
    }
    assert!(ai["nemotron"]["status"].is_string());
    let inf = &p["inference"];
    for svc in ["yolo26_latency_ms", "nemotron_latency_ms"] {
        for k in ["avg", "p95", "p99"] {
            assert!(is_number_or_null(&inf[svc][k]), "{svc}.{k}");
        }
    }
    for k in ["avg", "p95"] {
        assert!(is_number_or_null(&inf["pipeline_latency_ms"][k]));
    }
    assert!(inf["throughput"]["images_per_min"].is_number());
    assert!(inf["throughput"]["events_per_min"].is_number());
    assert!(inf["queues"]["detection"].is_u64() && inf["queues"]["analysis"].is_u64());
    let pg = &p["databases"]["postgresql"];
    assert_eq!(pg["status"], "healthy", "{p}");
    assert!(pg["connections_active"].is_i64() && pg["connections_max"].as_i64() > Some(0));
    assert!(pg["cache_hit_ratio"]
        .as_f64()
        .is_some_and(|r| (0.0..=1.0).contains(&r)));
    assert!(pg["transactions_per_min"].is_number());
    let redis = &p["databases"]["redis"];
    assert_eq!(redis["status"], "healthy");
    assert!(redis["connected_clients"].as_i64() > Some(0));
    assert!(redis["memory_mb"].as_f64() > Some(0.0));
    assert!(redis["hit_ratio"].is_number() && redis["blocked_clients"].is_i64());
    let host = &p["host"];
    for k in [
        "cpu_percent",
        "ram_used_gb",
        "ram_total_gb",
        "ram_percent",
        "disk_used_gb",
        "disk_total_gb",
        "disk_percent",
    ] {
        assert!(host[k].is_number(), "host.{k}: {host}");
    }
    assert!(p["containers"].is_array());
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
    let wp = stack.start(tempfile::tempdir().expect("dir"));
    write_image(&wp.dir.path().join("cameras"), "porch", "a.png");
    wait_rows(&stack, "events", 1).await;
    let url = format!("{}/api/system/performance", wp.url());
    let p = eventually("a sample with the pipeline's latencies", || {
        let url = url.clone();
        async move {
            let p = json(url).await;
            (p["inference"]["yolo26_latency_ms"]["p95"].is_number()
                && p["inference"]["nemotron_latency_ms"]["avg"].is_number()
                && p["ai_models"]["yolo26"]["status"] == "healthy")
                .then_some(p)
        }
    })
    .await;
    check_snapshot(&p);
    assert_eq!(
        p["ai_models"]["yolo26"]["model"], "yolo26",
        "from the service's own /health"
    );
    assert!(
        p["inference"]["throughput"]["images_per_min"].as_f64() >= Some(1.0),
        "{p}"
    );
    assert!(p["inference"]["pipeline_latency_ms"]["avg"].is_number());
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
    check_snapshot(&snaps[snaps.len() - 1]);
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
