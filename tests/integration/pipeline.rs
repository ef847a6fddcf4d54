//! The pipeline end to end on the real binary: real Redis and PostgreSQL, the fake AI
//! server, short windows through env overrides. Images in, security events out, and
//! nothing lost through Redis/PostgreSQL outages, restarts and a killed worker.

use crate::support::fake_ai::{FakeAiStack, Mode};
use crate::support::{
    eventually, image_bytes, json, metrics, promtool_check_metrics, wait_all_batched, wait_rows,
    watching, write_image, Postgres, Redis, Stack,
};
use serde_json::Value;
use std::sync::atomic::Ordering;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_images_become_detections_batches_and_events() {
    let stack = Stack::new(&[]);
    let wp = stack.start(tempfile::tempdir().expect("dir"));
    let root = wp.dir.path().join("cameras");
    watching(&wp).await;
    let base = wp.url();
    let cameras = ["Front Door", "backyard", "Garage-2"];
    let mut paths = Vec::new();
    for i in 0..50 {
        paths.push(write_image(
            &root,
            cameras[i % 3],
            &format!("img{i:03}.png"),
        ));
    }
    // While batches are open they are listed exactly as the contract shows.
    let open = eventually("open batches visible", || {
        let base = base.clone();
        async move {
            let p = json(format!("{base}/api/system/pipeline")).await;
            (p["batch_aggregator"]["active_batches"].as_u64() > Some(0)).then_some(p)
        }
    })
    .await;
    let batch = &open["batch_aggregator"]["batches"][0];
    for key in [
        "batch_id",
        "camera_id",
        "detection_count",
        "started_at",
        "age_seconds",
        "last_activity_seconds",
    ] {
        assert!(!batch[key].is_null(), "{key} missing: {batch}");
    }
    assert!(
        batch["started_at"].is_f64(),
        "started_at is unix seconds: {batch}"
    );
    assert!(["front_door", "backyard", "garage_2"]
        .contains(&batch["camera_id"].as_str().unwrap_or_default()));
    assert_eq!(
        open["batch_aggregator"]["batch_window_seconds"],
        serde_json::json!(3),
        "whole seconds are integers"
    );
    assert_eq!(open["batch_aggregator"]["idle_timeout_seconds"], 1.5);
    assert_eq!(open["file_watcher"]["observer_type"], "native");
    assert!(open["file_watcher"]["camera_root"]
        .as_str()
        .is_some_and(|r| r.ends_with("cameras")));
    assert!(open["timestamp"].as_str().is_some());

    wait_rows(&stack, "detections", 50).await;
    assert_eq!(
        stack.count("select count(distinct file_path) from detections"),
        50
    );
    assert_eq!(
        stack
            .pg
            .psql("select string_agg(distinct camera_id, ',' order by camera_id) from detections"),
        "backyard,front_door,garage_2"
    );
    // The registry writes a new camera at its next check.
    wait_rows(&stack, "cameras", 3).await;
    wait_all_batched(&stack, 50).await;
    assert_eq!(
        stack.count("select count(*) from events where risk_score = 72 and risk_level = 'high'"),
        stack.rows("events")
    );

    // A duplicate, a too-small file and a text file are not processed.
    std::fs::copy(&paths[0], root.join("backyard").join("copy-of-0.png")).expect("copy");
    std::fs::write(root.join("backyard").join("tiny.jpg"), image_bytes(2_000)).expect("tiny");
    std::fs::write(root.join("backyard").join("notes.txt"), vec![b'x'; 20_000]).expect("txt");
    std::fs::write(root.join("in-root.png"), image_bytes(12_000)).expect("root file");
    let wpr = &wp;
    eventually("duplicate and rejects counted", || async move {
        let m = metrics(wpr).await;
        let has = |r: &str| {
            m.contains(&format!(
                "watchpost_watcher_files_total{{result=\"{r}\"}} 1"
            ))
        };
        (has("duplicate")
            && has("rejected_size")
            && has("rejected_extension")
            && has("ignored_root"))
        .then_some(())
    })
    .await;
    assert!(metrics(&wp)
        .await
        .contains("watchpost_watcher_files_total{result=\"queued\"} 50"));
    assert_eq!(stack.rows("detections"), 50);
    promtool_check_metrics(&metrics(&wp).await);
}

/// Images detected together are batched in one round trip; a batch still closes at
/// `max_detections` exactly, never above it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_closes_batches_at_max_detections_exactly() {
    let stack = Stack::new(&[("WATCHPOST_BATCH__MAX_DETECTIONS", "4")]);
    let wp = stack.start(tempfile::tempdir().expect("dir"));
    let root = wp.dir.path().join("cameras");
    watching(&wp).await;
    for i in 0..10 {
        write_image(&root, "porch", &format!("burst{i:02}.png"));
    }
    wait_rows(&stack, "detections", 10).await;
    wait_all_batched(&stack, 10).await;
    assert_eq!(
        stack.count("select coalesce(max(cardinality(detection_ids)), 0) from events"),
        4,
        "no batch above max_detections"
    );
    assert!(
        stack.count("select count(*) from events where cardinality(detection_ids) = 4") >= 2,
        "the burst filled batches: {}",
        stack
            .pg
            .psql("select string_agg(cardinality(detection_ids)::text, ',') from events")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_observer_when_configured() {
    let stack = Stack::new(&[
        ("WATCHPOST_FILE_WATCHER__POLLING", "true"),
        ("WATCHPOST_FILE_WATCHER__POLLING_INTERVAL_SECONDS", "0.2"),
    ]);
    let wp = stack.start(tempfile::tempdir().expect("dir"));
    let base = wp.url();
    eventually("polling observer", || {
        let base = base.clone();
        async move {
            let p = json(format!("{base}/api/system/pipeline")).await;
            (p["file_watcher"]["observer_type"] == "polling").then_some(())
        }
    })
    .await;
    write_image(&wp.dir.path().join("cameras"), "porch", "a.jpg");
    wait_rows(&stack, "detections", 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_and_a_restart_lose_and_duplicate_nothing() {
    let mut stack = Stack::new(&[]);
    let wp = stack.start(tempfile::tempdir().expect("dir"));
    let root = wp.dir.path().join("cameras");
    for i in 0..5 {
        write_image(&root, "driveway", &format!("before{i}.png"));
    }
    wait_rows(&stack, "detections", 5).await;
    wait_all_batched(&stack, 5).await;

    stack.redis.stop();
    for i in 0..30 {
        write_image(&root, "driveway", &format!("during{i:02}.png"));
    }
    let base = wp.url();
    let p = eventually("30 items in the fallback, mode degraded", || {
        let base = base.clone();
        async move {
            let p = json(format!("{base}/api/system/pipeline")).await;
            let d = &p["degradation"];
            (d["mode"] == "degraded" && d["fallback_queues"]["detection"] == 30).then_some(p)
        }
    })
    .await;
    assert!(p["degradation"]["memory_queue_size"].as_u64() > Some(0));
    assert_eq!(p["degradation"]["redis_healthy"], false);
    assert_eq!(p["degradation"]["is_degraded"], true);

    // Restart watchpost during the outage: the spool carries the items over.
    let dir = wp.stop();
    let wp = stack.start(dir);
    let base = wp.url();
    let p = json(format!("{base}/api/system/pipeline")).await;
    assert_eq!(p["degradation"]["fallback_queues"]["detection"], 30, "{p}");

    stack.redis.start_again();
    wait_rows(&stack, "detections", 35).await;
    assert_eq!(
        stack.count("select count(distinct file_path) from detections"),
        35
    );
    wait_all_batched(&stack, 35).await;
    let p = json(format!("{base}/api/system/pipeline")).await;
    assert_eq!(p["degradation"]["fallback_queues"], serde_json::json!({}));
    assert_eq!(p["degradation"]["memory_queue_size"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_between_take_and_ack_processes_the_item_exactly_once() {
    let stack = Stack::new(&[]);
    let wp = stack.start(tempfile::tempdir().expect("dir"));
    let yolo = stack.ai.get("yolo26").clone();
    yolo.set_mode(Mode::Slow(std::time::Duration::from_secs(30)));
    write_image(&wp.dir.path().join("cameras"), "gate", "slow.png");
    eventually("the detection worker has taken the item", || {
        let yolo = yolo.clone();
        async move { (yolo.counters().detect.load(Ordering::SeqCst) >= 1).then_some(()) }
    })
    .await;
    let dir = wp.kill();
    yolo.set_mode(Mode::Normal);
    let wp = stack.start(dir);
    wait_rows(&stack, "detections", 1).await;
    wait_all_batched(&stack, 1).await;
    assert_eq!(stack.rows("detections"), 1);
    assert_eq!(stack.rows("events"), 1);
    drop(wp);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outage_delays_work_and_loses_nothing() {
    let mut stack = Stack::new(&[]);
    let wp = stack.start(tempfile::tempdir().expect("dir"));
    let root = wp.dir.path().join("cameras");
    write_image(&root, "shed", "first.png");
    wait_rows(&stack, "detections", 1).await;
    stack.pg.stop();
    for i in 0..5 {
        write_image(&root, "shed", &format!("while-down{i}.png"));
    }
    // Eight backed-off retries (0.2 s doubling to 10 s) keep PostgreSQL away for
    // about 22 s: a real outage, measured by the service's own retries, not a sleep.
    let wpr = &wp;
    let outage = std::time::Instant::now();
    crate::support::eventually_for(
        std::time::Duration::from_secs(60),
        "eight retries while postgres is down",
        || async move {
            let m = metrics(wpr).await;
            m.lines()
                .find(|l| {
                    l.starts_with(
                        "watchpost_pipeline_items_total{result=\"retried\",stage=\"detection\"}",
                    )
                })
                .and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
                .filter(|n| *n >= 8)
        },
    )
    .await;
    crate::support::figure(
        "postgres_outage_for_eight_retries",
        outage.elapsed().as_secs_f64(),
        "s",
    );

    stack.pg.start_again();
    wait_rows(&stack, "detections", 6).await;
    wait_all_batched(&stack, 6).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missed_cleanup_runs_at_start_and_deletes_only_old_rows_and_media() {
    let stack = Stack::new(&[
        ("WATCHPOST_CLEANUP__DELETE_MEDIA", "true"),
        ("WATCHPOST_CLEANUP__RETENTION_DAYS", "7"),
    ]);
    let wp = stack.start(tempfile::tempdir().expect("dir"));
    let root = wp.dir.path().join("cameras");
    let fresh = write_image(&root, "yard", "fresh.png");
    wait_rows(&stack, "detections", 1).await;
    eventually("first cleanup recorded", || async {
        (stack.rows("job_runs") == 1).then_some(())
    })
    .await;
    let dir = wp.stop();
    // Old data, with its image, and a cleanup that never ran since.
    let old_image = root.join("yard").join("old.png");
    std::fs::write(&old_image, b"old").expect("old image");
    stack.pg.psql(&format!(
        "insert into detections (camera_id, file_path, file_hash, seq, object_type, confidence, bbox, detected_at)
         values ('yard', '{}', 'h-old', 0, 'person', 0.9, '{{}}', now() - interval '30 days')",
        old_image.display()
    ));
    stack.pg.psql(
        "insert into events (batch_id, camera_id, started_at, ended_at, risk_score, risk_level, summary, reasoning, detection_ids, created_at)
         values ('old-batch', 'yard', now() - interval '30 days', now() - interval '30 days', 10, 'low', 's', 'r', '{}', now() - interval '30 days')",
    );
    stack.pg.psql("delete from job_runs");
    let wp = stack.start(dir);
    eventually("the missed cleanup ran at start", || async {
        (stack.rows("job_runs") == 1
            && stack.count("select count(*) from events where batch_id = 'old-batch'") == 0)
            .then_some(())
    })
    .await;
    assert_eq!(
        stack.count("select count(*) from detections where file_hash = 'h-old'"),
        0
    );
    assert_eq!(stack.rows("detections"), 1, "recent detections are kept");
    assert!(
        !old_image.exists(),
        "media of deleted detections is deleted"
    );
    assert!(fresh.exists(), "media of kept detections stays");
    drop(wp);
}

/// The pipeline publishes its events on the internal bus (the WebSocket relays them):
/// a new camera folder, each stored detection, the closed batch and the new event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipeline_events_are_published_in_order() {
    let redis = Redis::start();
    let pg = Postgres::start();
    let ai = FakeAiStack::start();
    let dir = tempfile::tempdir().expect("dir");
    let mut cfg = crate::support::base_config(dir.path());
    cfg.redis.url = redis.url();
    cfg.postgres.url = pg.url();
    cfg.ai.yolo26.url = ai.get("yolo26").url();
    cfg.ai.nemotron.url = ai.get("nemotron").url();
    cfg.batch.idle_timeout_seconds = 0.5;
    cfg.file_watcher.debounce_ms = 50;
    let service = watchpost::Service::start(cfg).await.expect("start");
    let mut rx = service.state().events.subscribe();
    let state = service.state().clone();
    eventually("watcher running", || {
        let state = state.clone();
        async move { state.pipeline.watcher.status().is_active().then_some(()) }
    })
    .await;
    write_image(&dir.path().join("cameras"), "Side Gate", "a.png");
    let mut seen: Vec<(String, Value)> = Vec::new();
    let deadline = tokio::time::Instant::now() + crate::support::patience();
    while !seen.iter().any(|(t, _)| t == "event.created") {
        let ev = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .expect("events arrive within the patience")
            .expect("bus open");
        let kind = ev.kind().name();
        if !kind.starts_with("worker.")
            && !kind.starts_with("system.")
            && !kind.starts_with("alert.")
        {
            seen.push((kind.to_string(), ev.data()));
        }
    }
    let types: Vec<&str> = seen.iter().map(|(t, _)| t.as_str()).collect();
    let pos = |t: &str| {
        types
            .iter()
            .position(|x| *x == t)
            .unwrap_or_else(|| panic!("{t} missing in {types:?}"))
    };
    assert!(pos("camera.status_changed") < pos("detection.new"));
    assert!(pos("detection.new") < pos("detection.batch"));
    assert!(pos("detection.batch") < pos("event.created"));
    let camera = &seen[pos("camera.status_changed")].1;
    assert_eq!(
        (camera["camera_id"].as_str(), camera["status"].as_str()),
        (Some("side_gate"), Some("online"))
    );
    let det = &seen[pos("detection.new")].1;
    assert_eq!(det["object_type"], "person");
    assert!(det["detection_id"].is_i64() && det["confidence"].is_f64());
    let batch = &seen[pos("detection.batch")].1;
    assert_eq!(
        (batch["reason"].as_str(), batch["detection_count"].as_u64()),
        (Some("idle"), Some(1))
    );
    let event = &seen[pos("event.created")].1;
    assert_eq!(event["camera_id"], "side_gate");
    assert_eq!(event["risk_score"], 72);
    assert_eq!(event["batch_id"], batch["batch_id"]);
    assert!(event["event_id"].is_i64());
    service.shutdown().await;
}

#[test]
fn test_images_are_real_pictures_of_the_size_asked() {
    for len in [2_000, 12_000, 20_000] {
        let bytes = image_bytes(len);
        assert_eq!(bytes.len(), len);
        let decoded = image::load_from_memory(&bytes).expect("a real PNG");
        assert_eq!((decoded.width(), decoded.height()), (16, 12));
    }
    assert_ne!(
        image_bytes(12_000),
        image_bytes(12_000),
        "each one distinct"
    );
}
