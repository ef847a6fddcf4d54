//! A stuck AI told apart from a slow one, on the real binary with the defaults
//! (`ai.stuck_factor` 10, `ai.stuck_floor_seconds` 30): YOLO26 ten times slower but
//! answering is never stuck over two minutes; YOLO26 hung is stuck within 40 s.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::support::fake_ai::Mode;
use crate::support::{eventually_for, json, watching, write_image, Stack, Watchpost};

async fn ai_alerts(wp: &Watchpost, alertname: &str) -> Vec<Value> {
    let page = json(format!(
        "{}/api/system/alerts?state=firing&source=ai:yolo26",
        wp.url()
    ))
    .await;
    page["items"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|x| x["alertname"] == alertname)
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_yolo_is_never_stuck_and_a_hung_one_is_stuck_within_forty_seconds() {
    let stack = Stack::new(&[("WATCHPOST_ALERTS__EVALUATE_INTERVAL_SECONDS", "0.5")]);
    let root = tempfile::tempdir().expect("root");
    let wp = stack.instance("a", root.path());
    watching(&wp).await;
    let yolo = stack.ai.get("yolo26");
    // Its usual pace first.
    for i in 0..20 {
        write_image(root.path(), "porch", &format!("fast-{i}.png"));
    }
    eventually_for(Duration::from_secs(60), "twenty detections", || async {
        (yolo
            .counters()
            .detect
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 20)
            .then_some(())
    })
    .await;

    // Ten times slower (well above its usual milliseconds), answering: for two
    // minutes, an image every two seconds, and never stuck.
    yolo.set_route_mode("detect", Mode::Slow(Duration::from_millis(500)));
    let until = std::time::Instant::now() + Duration::from_secs(120);
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    let mut n = 0;
    while std::time::Instant::now() < until {
        tick.tick().await;
        write_image(root.path(), "porch", &format!("slow-{n}.png"));
        n += 1;
        let stuck = ai_alerts(&wp, "WatchpostAIStuck").await;
        assert!(stuck.is_empty(), "slow is not stuck: {stuck:?}");
    }

    // Hung: it takes the request and never answers.
    yolo.set_route_mode("detect", Mode::Hang);
    let hung_at = Utc::now();
    write_image(root.path(), "porch", "hung.png");
    let alert = eventually_for(Duration::from_secs(60), "WatchpostAIStuck", || async {
        ai_alerts(&wp, "WatchpostAIStuck").await.into_iter().next()
    })
    .await;
    let started: DateTime<Utc> = alert["started_at"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("started_at");
    let after = (started - hung_at).num_milliseconds() as f64 / 1000.0;
    crate::support::figure("ai_stuck_told_after_seconds", after, "s");
    assert!(after <= 40.0, "stuck told {after:.1} s after the hang");
    assert_eq!(alert["severity"], "critical", "YOLO26 is critical: {alert}");
    let m = crate::support::metrics(&wp).await;
    let age = crate::support::metric(
        &m,
        "watchpost_ai_oldest_request_age_seconds{service=\"yolo26\"}",
    )
    .expect("the age is published");
    assert!(age >= 30.0, "{age}");
    // The image it took waits in the detection queue, and its age shows.
    let waiting = crate::support::metric(
        &m,
        "watchpost_queue_oldest_item_age_seconds{queue=\"detection\"}",
    )
    .expect("the queue's oldest item");
    assert!(waiting >= 25.0, "{waiting}");
}
