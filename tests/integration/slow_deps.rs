//! Slow and hung dependencies on the real binary (real Redis and PostgreSQL, the fake
//! AI server): no worker is killed for waiting, breakers are fed by real work only, an
//! item in hand is never taken by another consumer, and a judged file is never judged
//! twice.

use crate::support::fake_ai::Mode;
use crate::support::{client, eventually, json, metrics, wait_rows, write_image, Stack};
use serde_json::Value;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// A worker's restart history; the endpoint failing fails the test (an error answer is
/// not an empty history).
async fn history(base: &str, worker: &str) -> Vec<Value> {
    let answer = json(format!(
        "{base}/api/system/supervisor/restart-history?worker_name={worker}&limit=100"
    ))
    .await;
    answer["items"]
        .as_array()
        .cloned()
        .unwrap_or_else(|| panic!("no restart history in {answer}"))
}

async fn breaker_state(base: &str, name: &str) -> String {
    json(format!("{base}/api/system/circuit-breakers")).await["circuit_breakers"][name]["state"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn service<'a>(pipeline: &'a Value, name: &str) -> &'a Value {
    pipeline["degradation"]["services"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == name))
        .unwrap_or(&Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_llm_slower_than_the_heartbeat_still_writes_its_own_event() {
    let stack = Stack::new(&[
        ("WATCHPOST_SUPERVISOR__HEARTBEAT_TIMEOUT_SECONDS", "3"),
        ("WATCHPOST_AI__ANALYSIS_TIMEOUT_SECONDS", "20"),
    ]);
    stack
        .ai
        .get("nemotron")
        .set_route_mode("completion", Mode::Slow(Duration::from_secs(6)));
    let wp = stack.start(tempfile::tempdir().expect("dir"));
    write_image(&wp.dir.path().join("cameras"), "porch", "a.png");
    wait_rows(&stack, "events", 1).await;
    assert_eq!(
        stack.count("select count(*) from events where risk_score = 72"),
        1,
        "the service's own answer, not the fallback"
    );
    assert_eq!(
        stack
            .ai
            .get("nemotron")
            .counters()
            .completion
            .load(Ordering::SeqCst),
        1,
        "one call, never retried or repeated"
    );
    assert!(
        history(&wp.url(), "analysis_worker").await.is_empty(),
        "analysis_worker never crashed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_detect_opens_the_breaker_while_health_answers_and_recovers_by_itself() {
    let stack = Stack::new(&[
        ("WATCHPOST_AI__DETECT_TIMEOUT_SECONDS", "1"),
        ("WATCHPOST_SUPERVISOR__HEARTBEAT_TIMEOUT_SECONDS", "2"),
        ("WATCHPOST_BREAKER__RECOVERY_TIMEOUT_SECONDS", "3"),
    ]);
    let yolo = stack.ai.get("yolo26").clone();
    yolo.set_route_mode("detect", Mode::Hang);
    let wp = stack.start(tempfile::tempdir().expect("dir"));
    let base = wp.url();
    let root = wp.dir.path().join("cameras");
    for i in 0..3 {
        write_image(&root, "drive", &format!("hung{i}.png"));
    }
    eventually(
        "the yolo26 breaker opens on timed-out /detect calls",
        || {
            let base = base.clone();
            async move { (breaker_state(&base, "yolo26").await == "open").then_some(()) }
        },
    )
    .await;
    assert!(
        yolo.counters().health.load(Ordering::SeqCst) > 0,
        "/health answered all along"
    );
    // The open breaker is the probe's answer: unhealthy without a call.
    eventually("the probe reports the open breaker", || {
        let base = base.clone();
        async move {
            let p = json(format!("{base}/api/system/pipeline")).await;
            service(&p, "yolo26")["error_message"]
                .as_str()
                .is_some_and(|e| e.starts_with("circuit breaker open"))
                .then_some(())
        }
    })
    .await;

    yolo.set_mode(Mode::Normal);
    wait_rows(&stack, "detections", 3).await;
    eventually(
        "the breaker closes by itself after trials by real work",
        || {
            let base = base.clone();
            async move { (breaker_state(&base, "yolo26").await == "closed").then_some(()) }
        },
    )
    .await;
    assert_eq!(
        stack.count("select count(distinct file_path) from detections"),
        3,
        "every image detected exactly once"
    );
    let heartbeat_kills = history(&base, "detection_worker")
        .await
        .iter()
        .filter(|e| e["error"] == "heartbeat timeout")
        .count();
    assert_eq!(
        heartbeat_kills, 0,
        "detection_worker was never killed for waiting"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_service_that_came_back_is_healthy_after_the_recovery_timeout() {
    let stack = Stack::new(&[
        ("WATCHPOST_AI__DETECT_TIMEOUT_SECONDS", "1"),
        ("WATCHPOST_BREAKER__FAILURE_THRESHOLD", "2"),
        ("WATCHPOST_BREAKER__RECOVERY_TIMEOUT_SECONDS", "4"),
    ]);
    let yolo = stack.ai.get("yolo26").clone();
    let wp = stack.start(tempfile::tempdir().expect("dir"));
    let base = wp.url();
    yolo.refuse().await;
    let root = wp.dir.path().join("cameras");
    write_image(&root, "yard", "one.png");
    write_image(&root, "yard", "two.png");
    eventually("real work opens the breaker", || {
        let base = base.clone();
        async move { (breaker_state(&base, "yolo26").await == "open").then_some(()) }
    })
    .await;
    // No real work from here on: the system is idle.
    let stopped = client()
        .post(format!(
            "{base}/api/system/supervisor/workers/detection_worker/stop"
        ))
        .send()
        .await
        .expect("stop");
    assert_eq!(stopped.status().as_u16(), 200);
    eventually("the probe reports the open breaker without a call", || {
        let base = base.clone();
        async move {
            let p = json(format!("{base}/api/system/pipeline")).await;
            service(&p, "yolo26")["error_message"]
                .as_str()
                .is_some_and(|e| e.starts_with("circuit breaker open"))
                .then_some(())
        }
    })
    .await;
    yolo.accept().await;
    let p = eventually("healthy again, while the breaker waits for a trial", || {
        let base = base.clone();
        async move {
            let p = json(format!("{base}/api/system/pipeline")).await;
            let s = service(&p, "yolo26");
            (s["status"] == "healthy" && s["error_message"].is_null()).then_some(p)
        }
    })
    .await;
    assert_eq!(service(&p, "yolo26")["consecutive_failures"], 0, "{p}");
    assert_eq!(p["file_watcher"]["pending_tasks"], 0, "{p}");
    assert_eq!(
        breaker_state(&base, "yolo26").await,
        "half_open",
        "the snapshot shows half_open once the recovery timeout has passed"
    );
    // The next real call is the breaker's trial.
    let started = client()
        .post(format!(
            "{base}/api/system/supervisor/workers/detection_worker/start"
        ))
        .send()
        .await
        .expect("start");
    assert_eq!(started.status().as_u16(), 200);
    wait_rows(&stack, "detections", 2).await;
    eventually("two trial successes close the breaker", || {
        let base = base.clone();
        async move { (breaker_state(&base, "yolo26").await == "closed").then_some(()) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_skipped_before_a_restart_during_a_redis_outage_stays_skipped() {
    let mut stack = Stack::new(&[]);
    let wp = stack.start(tempfile::tempdir().expect("dir"));
    let root = wp.dir.path().join("cameras");
    let original = write_image(&root, "hall", "a.png");
    wait_rows(&stack, "detections", 1).await;
    std::fs::copy(&original, root.join("hall").join("a-copy.png")).expect("copy");
    let wpr = &wp;
    eventually("the copy is skipped as a duplicate", || async move {
        metrics(wpr)
            .await
            .contains("watchpost_watcher_files_total{result=\"duplicate\"} 1")
            .then_some(())
    })
    .await;

    stack.redis.stop();
    let dir = wp.stop();
    let wp = stack.start(dir);
    // The catch-up scan skips both judged files (the ledger), so a queued copy would
    // have entered the spool before `b.png`, and been replayed before it.
    write_image(&root, "hall", "b.png");
    stack.redis.start_again();
    wait_rows(&stack, "detections", 2).await;
    assert_eq!(
        stack.count("select count(*) from detections where file_path like '%a-copy.png'"),
        0,
        "the duplicate was never processed"
    );
    assert_eq!(
        stack.count("select count(distinct file_path) from detections"),
        2
    );
    assert!(
        metrics(&wp)
            .await
            .contains("watchpost_watcher_files_total{result=\"queued\"} 1"),
        "after the restart only the new image was queued"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_item_held_longer_than_claim_idle_is_never_taken_by_another_consumer() {
    let stack = Stack::new(&[("WATCHPOST_QUEUE__CLAIM_IDLE_SECONDS", "1")]);
    let nemotron = stack.ai.get("nemotron").clone();
    nemotron.set_route_mode("completion", Mode::Slow(Duration::from_millis(3500)));
    let shared = tempfile::tempdir().expect("shared camera root");
    let a = stack.instance("instance-a", shared.path());
    let b = stack.instance("instance-b", shared.path());
    write_image(shared.path(), "lane", "held.png");
    wait_rows(&stack, "events", 1).await;
    assert_eq!(
        nemotron.counters().completion.load(Ordering::SeqCst),
        1,
        "one analysis: the item in hand was never claimed by the other instance"
    );
    for wp in [&a, &b] {
        let m = metrics(wp).await;
        assert!(
            m.contains("watchpost_queue_items_total{event=\"redelivered\",queue=\"analysis\"} 0")
                || !m.contains("event=\"redelivered\",queue=\"analysis\""),
            "no redelivery of the analysis item"
        );
    }
    assert_eq!(stack.rows("events"), 1);
}
