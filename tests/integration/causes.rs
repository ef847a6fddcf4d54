//! One root cause, one notification, on the real binary with a real ntfy-format
//! receiver: an AI box that goes away is one push naming its five services and one
//! resolution; a told firing gets its resolution through a silence and a SIGKILL.

use crate::support::disk::Tmpfs;
use crate::support::notify::{HttpReceiver, Received};
use crate::support::{client, eventually, json, Stack, Watchpost};
use serde_json::Value;
use std::time::{Duration, Instant};

const NAMES: [&str; 5] = ["yolo26", "nemotron", "florence", "clip", "enrichment"];

fn ntfy_hook(rx: &HttpReceiver) -> (&'static str, String) {
    (
        "WATCHPOST_NOTIFY__WEBHOOKS",
        format!(
            "[{{name = \"phone\", format = \"ntfy\", url = \"{}\"}}]",
            rx.url("/phone")
        ),
    )
}

fn titles(pushes: &[Received]) -> Vec<String> {
    pushes
        .iter()
        .map(|r| r.header("title").unwrap_or("").to_string())
        .collect()
}

async fn alerts(wp: &Watchpost, state: &str) -> Vec<Value> {
    let page = json(format!(
        "{}/api/system/alerts?state={state}&limit=100",
        wp.url()
    ))
    .await;
    page["items"].as_array().cloned().unwrap_or_default()
}

async fn outbox_empty(wp: &Watchpost) -> bool {
    let list = json(format!("{}/api/system/notifiers", wp.url())).await;
    list["notifiers"][0]["queue_depth"] == 0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ai_box_down_for_40_seconds_is_one_push_naming_its_five_services_and_one_resolution() {
    let rx = HttpReceiver::start().await;
    let hook = ntfy_hook(&rx);
    // The defaults but a shorter gathering: warnings keep their 30 s `for:`, which
    // the box's critical services confirm at once.
    let stack = Stack::new(&[
        ("WATCHPOST_ALERTS__GROUP_WAIT_SECONDS", "3"),
        (hook.0, &hook.1),
    ]);
    let wp = stack.start(tempfile::tempdir().expect("dir"));
    eventually("every AI service up", || async {
        let h = json(format!("{}/api/system/health/full", wp.url())).await;
        let up = h["ai_services"]
            .as_array()?
            .iter()
            .all(|s| s["status"] == "healthy");
        up.then_some(())
    })
    .await;

    let stopped = Instant::now();
    for s in NAMES {
        stack.ai.get(s).refuse().await;
    }
    let firing = eventually("the box's push", || async {
        rx.on("/phone").first().cloned()
    })
    .await;
    let title = firing.header("title").unwrap_or("").to_string();
    assert!(
        title.starts_with("[FIRING] WatchpostAIHostDown: AI host 127.0.0.1: "),
        "{title}"
    );
    for s in NAMES {
        assert!(title.contains(s), "{s} named in {title}");
    }
    assert_eq!(
        firing.header("priority"),
        Some("5"),
        "critical services inside"
    );
    // Every alert is still decided, listed and marked with its cause.
    eventually("five alerts listed with their cause", || async {
        let firing = alerts(&wp, "firing").await;
        let ai: Vec<&Value> = firing
            .iter()
            .filter(|a| a["source"].as_str().is_some_and(|s| s.starts_with("ai:")))
            .collect();
        (ai.len() == 5
            && ai
                .iter()
                .all(|a| a["labels"]["cause"] == "ai_host:127.0.0.1"))
        .then_some(())
    })
    .await;
    // The page marks each alert with the cause it was told under.
    let b = crate::support::browser::Browser::start(1280, 1400).await;
    b.goto(&format!("{}/", wp.url())).await;
    eventually("the page says what caused them", || async {
        let text = b.text("#alerts-firing").await;
        (text.matches("caused by AI host 127.0.0.1").count() == 5).then_some(())
    })
    .await;
    // The box stays off for 40 s: that is the outage being told, not a wait for
    // something to happen.
    tokio::time::sleep_until((stopped + Duration::from_secs(40)).into()).await;
    for s in NAMES {
        stack.ai.get(s).accept().await;
    }
    let resolved = eventually("the box's resolution", || async {
        let pushes = rx.on("/phone");
        (pushes.len() >= 2).then(|| pushes[1].clone())
    })
    .await;
    assert!(
        resolved
            .header("title")
            .is_some_and(|t| t.starts_with("[RESOLVED] WatchpostAIHostDown: AI host 127.0.0.1")),
        "{:?}",
        resolved.header("title")
    );
    eventually("everything resolved and sent", || async {
        let none_firing = alerts(&wp, "firing").await.is_empty();
        (none_firing && outbox_empty(&wp).await).then_some(())
    })
    .await;
    let pushes = rx.on("/phone");
    assert_eq!(pushes.len(), 2, "{:?}", titles(&pushes));
}

/// Silence every alert of `source` (exact matcher); the silence's id.
async fn silence(wp: &Watchpost, source: &str) -> String {
    let r = client()
        .post(format!("{}/api/system/alerts/silences", wp.url()))
        .json(&serde_json::json!({"matchers": {"source": source}, "comment": "working on it"}))
        .send()
        .await
        .expect("silence");
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.expect("json");
    v["id"].as_str().expect("id").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_told_firing_is_told_resolved_through_a_silence_and_across_a_sigkill() {
    let rx = HttpReceiver::start().await;
    let hook = ntfy_hook(&rx);
    let fast = [
        ("WATCHPOST_ALERTS__FOR_WARNING_SECONDS", "0"),
        ("WATCHPOST_ALERTS__EVALUATE_INTERVAL_SECONDS", "0.2"),
    ];
    let mut env = fast.to_vec();
    env.push((hook.0, &hook.1));
    let stack = Stack::ai_apart(&env);
    let wp = stack.start(tempfile::tempdir().expect("dir"));

    // Told, then silenced, then resolved: the resolution is told.
    stack.ai.get("clip").refuse().await;
    eventually("clip's firing told", || async {
        (titles(&rx.on("/phone")) == ["[FIRING] WatchpostDependencyDown: ai:clip"]).then_some(())
    })
    .await;
    silence(&wp, "ai:clip").await;
    stack.ai.get("clip").accept().await;
    eventually("clip's resolution told though silenced", || async {
        (titles(&rx.on("/phone")).get(1).map(String::as_str)
            == Some("[RESOLVED] WatchpostDependencyDown: ai:clip"))
        .then_some(())
    })
    .await;

    // The same across a SIGKILL: told, silenced, killed, resolved while it was away.
    stack.ai.get("florence").refuse().await;
    eventually("florence's firing told", || async {
        titles(&rx.on("/phone"))
            .contains(&"[FIRING] WatchpostDependencyDown: ai:florence".to_string())
            .then_some(())
    })
    .await;
    silence(&wp, "ai:florence").await;
    // Its delivery recorded in the outbox (a delivery not yet recorded at a kill is
    // sent again: the outbox is at-least-once).
    eventually("florence's firing acknowledged", || async {
        outbox_empty(&wp).await.then_some(())
    })
    .await;
    let dir = wp.kill();
    stack.ai.get("florence").accept().await;
    let wp = stack.start(dir);
    eventually("florence's resolution told after the restart", || async {
        titles(&rx.on("/phone"))
            .contains(&"[RESOLVED] WatchpostDependencyDown: ai:florence".to_string())
            .then_some(())
    })
    .await;
    eventually("all sent", || async {
        outbox_empty(&wp).await.then_some(())
    })
    .await;
    let told = titles(&rx.on("/phone"));
    assert_eq!(told.len(), 4, "each once: {told:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disk_over_its_threshold_fires_disk_space_low_and_tells_the_notifiers() {
    let disk = Tmpfs::mount(8 * 1024 * 1024);
    let root = disk.path().join("cameras");
    std::fs::create_dir_all(&root).expect("camera root");
    let rx = HttpReceiver::start().await;
    let hook = ntfy_hook(&rx);
    let root_text = root.display().to_string();
    let stack = Stack::new(&[
        ("WATCHPOST_FILE_WATCHER__CAMERA_ROOT", &root_text),
        ("WATCHPOST_PERFORMANCE__SAMPLE_INTERVAL_SECONDS", "0.5"),
        (
            "WATCHPOST_PERFORMANCE__THRESHOLDS__DISK_PERCENT_WARNING",
            "50",
        ),
        (
            "WATCHPOST_PERFORMANCE__THRESHOLDS__DISK_PERCENT_CRITICAL",
            "95",
        ),
        ("WATCHPOST_ALERTS__FOR_WARNING_SECONDS", "0"),
        ("WATCHPOST_ALERTS__EVALUATE_INTERVAL_SECONDS", "0.2"),
        (hook.0, &hook.1),
    ]);
    let wp = stack.start(tempfile::tempdir().expect("dir"));
    eventually("the disk measured", || async {
        let m = crate::support::metrics(&wp).await;
        m.contains("watchpost_storage_free_bytes{volume=\"camera_root\"}")
            .then_some(())
    })
    .await;
    // Something else on the share fills it past the warning.
    let ballast = disk.path().join("ballast");
    std::fs::write(&ballast, vec![7u8; 5 * 1024 * 1024]).expect("fill the disk");
    let firing = eventually("the disk's alert told", || async {
        rx.on("/phone").first().cloned()
    })
    .await;
    assert_eq!(
        firing.header("title"),
        Some("[FIRING] WatchpostDiskSpaceLow: storage:camera_root")
    );
    assert!(firing.body.contains("% full"), "{}", firing.body);
    let listed = alerts(&wp, "firing").await;
    let a = listed
        .iter()
        .find(|a| a["source"] == "storage:camera_root")
        .expect("listed");
    assert_eq!(a["severity"], "warning");
    assert_eq!(a["labels"]["volume"], "camera_root");
    std::fs::remove_file(&ballast).expect("free the disk");
    eventually("its resolution told", || async {
        titles(&rx.on("/phone"))
            .contains(&"[RESOLVED] WatchpostDiskSpaceLow: storage:camera_root".to_string())
            .then_some(())
    })
    .await;
}
