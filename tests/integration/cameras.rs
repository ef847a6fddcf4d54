//! Cameras on the real binary, with real PostgreSQL and Redis and the fake AI, on
//! short silences: a camera that goes silent is stale then offline (each announced
//! once, one alert), a heartbeat camera keeps its deadline, a frozen picture and a
//! flood are seen, the camera limit holds, and a restart forgets nothing.

use crate::support::{
    client, eventually, image_bytes, metric, metrics, next, subscribed, write_image, Stack,
    Watchpost, Ws,
};
use serde_json::Value;
use sha2::Digest;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Every message a WebSocket client receives, kept for the test to look at.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Value>>>);

impl Recorder {
    fn start(mut ws: Ws) -> Self {
        let r = Self::default();
        let seen = r.0.clone();
        tokio::spawn(async move {
            while let Some(m) = next(&mut ws).await {
                seen.lock().expect("lock").push(m);
            }
        });
        r
    }

    /// The `data` of every message of `kind` about `camera` (`camera_id`, or the
    /// alert's `source` `camera:<id>`).
    fn of(&self, kind: &str, camera: &str) -> Vec<Value> {
        let source = format!("camera:{camera}");
        self.0
            .lock()
            .expect("lock")
            .iter()
            .filter(|m| m["type"] == kind)
            .map(|m| m["data"].clone())
            .filter(|d| d["camera_id"] == camera || d["source"] == source.as_str())
            .collect()
    }

    fn statuses(&self, camera: &str) -> Vec<(Value, Value)> {
        self.of("camera.status_changed", camera)
            .into_iter()
            .map(|d| (d["previous_status"].clone(), d["status"].clone()))
            .collect()
    }
}

/// Writes a new image to each camera every half second while it is on.
struct Sender {
    on: Vec<(String, Arc<AtomicBool>)>,
    stop: Arc<AtomicBool>,
}

impl Sender {
    fn start(root: &Path, cameras: &[&str]) -> Self {
        let on: Vec<(String, Arc<AtomicBool>)> = cameras
            .iter()
            .map(|c| (c.to_string(), Arc::new(AtomicBool::new(true))))
            .collect();
        let stop = Arc::new(AtomicBool::new(false));
        let (root, cams, halt) = (root.to_path_buf(), on.clone(), stop.clone());
        tokio::spawn(async move {
            let mut n = 0;
            while !halt.load(Ordering::Relaxed) {
                for (c, on) in &cams {
                    if on.load(Ordering::Relaxed) {
                        write_image(&root, c, &format!("{c}-{n:05}.png"));
                    }
                }
                n += 1;
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
        });
        Self { on, stop }
    }

    fn set(&self, camera: &str, on: bool) {
        if let Some((_, flag)) = self.on.iter().find(|(c, _)| c == camera) {
            flag.store(on, Ordering::Relaxed);
        }
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

async fn cameras(wp: &Watchpost) -> Value {
    crate::support::json(format!("{}/api/system/cameras", wp.url())).await
}

async fn camera(wp: &Watchpost, id: &str) -> Option<Value> {
    cameras(wp).await["cameras"]
        .as_array()?
        .iter()
        .find(|c| c["id"] == id)
        .cloned()
}

/// One camera with everything the detail endpoint adds.
async fn detail(wp: &Watchpost, id: &str) -> Value {
    crate::support::json(format!("{}/api/system/cameras/{id}", wp.url())).await
}

async fn wait_status(wp: &Watchpost, id: &str, status: &str) -> Value {
    eventually(&format!("camera {id} {status}"), || async move {
        camera(wp, id).await.filter(|c| c["status"] == status)
    })
    .await
}

/// Silences of 3 to 4 s, judged every 0.1 s; camera warnings fire at once.
const SHORT: [(&str, &str); 6] = [
    ("WATCHPOST_CAMERAS__MIN_SILENCE_SECONDS", "3"),
    ("WATCHPOST_CAMERAS__MAX_SILENCE_SECONDS", "4"),
    ("WATCHPOST_CAMERAS__CHECK_INTERVAL_SECONDS", "0.1"),
    ("WATCHPOST_CAMERAS__PERSIST_INTERVAL_SECONDS", "0.5"),
    ("WATCHPOST_ALERTS__FOR_WARNING_SECONDS", "0"),
    ("WATCHPOST_ALERTS__EVALUATE_INTERVAL_SECONDS", "0.2"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_camera_goes_stale_then_offline_once_and_a_restart_forgets_nothing() {
    let mut env = SHORT.to_vec();
    // `a` is the control that never goes quiet: a fixed 30 s, so a busy machine that
    // writes its images late cannot make it stale.
    env.push(("WATCHPOST_CAMERAS__OVERRIDES__A__MAX_SILENCE_SECONDS", "30"));
    let stack = Stack::new(&env);
    let wp = stack.start(tempfile::tempdir().expect("dir"));
    let root = wp.dir.path().join("cameras");
    let rec = Recorder::start(subscribed(&wp, &["cameras", "alerts"]).await);
    let sender = Sender::start(&root, &["a", "b"]);
    // Enough history for b to have learned its rhythm: a gap every half second.
    eventually("b has learned its rhythm", || async {
        (detail(&wp, "b").await["expected_silence_basis"] == "learned").then_some(())
    })
    .await;
    sender.set("b", false);
    let offline = wait_status(&wp, "b", "offline").await;
    assert!(
        offline["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("no image for")),
        "{offline}"
    );
    let alert = eventually("one alert for b", || async {
        rec.of("alert.created", "b").first().cloned()
    })
    .await;
    assert_eq!(alert["alertname"], "WatchpostCameraOffline");
    assert_eq!(alert["severity"], "warning");
    assert_eq!(
        rec.statuses("b"),
        vec![
            (Value::Null, "online".into()),
            ("online".into(), "stale".into()),
            ("stale".into(), "offline".into()),
        ]
    );
    assert_eq!(rec.statuses("a"), vec![(Value::Null, "online".into())]);
    assert_eq!(camera(&wp, "a").await.expect("a")["status"], "online");
    let before = detail(&wp, "b").await;
    // Once: let the engine evaluate a few more times with b offline (a worker's alert
    // fired and resolved is two later evaluations, at least), then count.
    let worker = |action: &str| {
        let url = format!(
            "{}/api/system/supervisor/workers/cleanup_service/{action}",
            wp.url()
        );
        async move { client().post(url).send().await.expect("POST").status() }
    };
    let seen_worker_alert = |kind: &str| {
        let kind = kind.to_string();
        let rec = rec.clone();
        async move {
            rec.0.lock().expect("lock").iter().any(|m| {
                m["type"] == kind.as_str() && m["data"]["source"] == "worker:cleanup_service"
            })
        }
    };
    assert_eq!(worker("stop").await, 200);
    eventually("the worker's alert fired", || async {
        seen_worker_alert("alert.created").await.then_some(())
    })
    .await;
    assert_eq!(worker("start").await, 200);
    eventually("the worker's alert resolved", || async {
        seen_worker_alert("alert.resolved").await.then_some(())
    })
    .await;
    assert_eq!(rec.of("alert.created", "b").len(), 1, "one alert for b");

    // Restart while b is offline: it stays offline, learned, with no second alert.
    let dir = wp.stop();
    let wp = stack.start(dir);
    let rec2 = Recorder::start(subscribed(&wp, &["cameras", "alerts"]).await);
    eventually("the stored cameras read back", || async {
        (cameras(&wp).await["loaded"] == true).then_some(())
    })
    .await;
    let after = detail(&wp, "b").await;
    for key in [
        "status",
        "status_since",
        "last_image_at",
        "expected_silence_seconds",
        "expected_silence_basis",
    ] {
        assert_eq!(after[key], before[key], "{key}");
    }
    // b sends again: online, and the same alert resolves (it was taken over, not
    // fired again).
    write_image(&root, "b", "b-back.png");
    wait_status(&wp, "b", "online").await;
    let resolved = eventually("b's alert resolved", || async {
        rec2.of("alert.resolved", "b").first().cloned()
    })
    .await;
    assert_eq!(resolved["alert_id"], alert["alert_id"]);
    assert!(rec2.of("alert.created", "b").is_empty());
    assert_eq!(
        rec2.statuses("b"),
        vec![("offline".into(), "online".into())]
    );
    let m = metrics(&wp).await;
    assert_eq!(
        metric(
            &m,
            "watchpost_alerts_total{severity=\"warning\",source_kind=\"camera\"}"
        ),
        Some(0.0),
        "no camera alert fired in the restarted process"
    );
    drop(sender);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heartbeat_camera_keeps_its_deadline_and_a_frozen_picture_is_seen() {
    let mut env = SHORT.to_vec();
    env.push(("WATCHPOST_CAMERAS__OVERRIDES__GATE__HEARTBEAT_SECONDS", "2"));
    env.push(("WATCHPOST_CAMERAS__HEARTBEAT_GRACE_SECONDS", "1"));
    // The gate is critical: its offline alert is too.
    env.push(("WATCHPOST_CAMERAS__OVERRIDES__GATE__CRITICAL", "true"));
    let stack = Stack::new(&env);
    let wp = stack.start(tempfile::tempdir().expect("dir"));
    let root = wp.dir.path().join("cameras");
    let rec = Recorder::start(subscribed(&wp, &["cameras", "alerts"]).await);

    write_image(&root, "gate", "snap.png");
    wait_status(&wp, "gate", "online").await;
    assert_eq!(
        detail(&wp, "gate").await["expected_silence_basis"],
        "heartbeat"
    );
    eventually("gate offline", || async {
        rec.statuses("gate")
            .contains(&("stale".into(), "offline".into()))
            .then_some(())
    })
    .await;
    // Not before two heartbeats and the grace after its last image (as watchpost
    // saw it arrive); stale after one.
    let gate = camera(&wp, "gate").await.expect("gate");
    let last = time(&gate["last_image_at"]);
    let stale_at = event_time(&rec, "gate", "stale");
    let offline_at = event_time(&rec, "gate", "offline");
    assert!(stale_at - last >= 3.0, "stale after {} s", stale_at - last);
    assert!(
        offline_at - last >= 5.0,
        "offline after {} s",
        offline_at - last
    );
    // How much later than the deadline it came depends on the machine's load: a
    // figure, not a bound.
    crate::support::figure("camera_offline_after_s", offline_at - last, "s");
    let alert = eventually("the gate's alert", || async {
        rec.of("alert.created", "gate").first().cloned()
    })
    .await;
    assert_eq!(
        (alert["alertname"].as_str(), alert["severity"].as_str()),
        (Some("WatchpostCameraOffline"), Some("critical")),
        "a critical camera's offline alert is critical"
    );

    // Six identical pictures in a row: frozen; a new picture: online.
    let same = image_bytes(12_000);
    let dir = root.join("porch");
    std::fs::create_dir_all(&dir).expect("dir");
    for i in 0..6 {
        std::fs::write(dir.join(format!("same-{i}.png")), &same).expect("write");
    }
    let frozen = wait_status(&wp, "porch", "frozen").await;
    assert!(
        frozen["reason"]
            .as_str()
            .is_some_and(|r| r.contains("with the same picture")),
        "{frozen}"
    );
    let frozen_alert = eventually("the porch's frozen alert", || async {
        rec.of("alert.created", "porch").first().cloned()
    })
    .await;
    assert_eq!(
        (
            frozen_alert["alertname"].as_str(),
            frozen_alert["severity"].as_str()
        ),
        (Some("WatchpostCameraFrozen"), Some("warning"))
    );
    write_image(&root, "porch", "new.png");
    wait_status(&wp, "porch", "online").await;
    assert!(rec
        .statuses("porch")
        .contains(&("frozen".into(), "online".into())));
    eventually("the frozen alert resolved", || async {
        rec.of("alert.resolved", "porch").first().map(|_| ())
    })
    .await;
}

/// Unix seconds of an RFC 3339 timestamp.
fn time(v: &Value) -> f64 {
    let t =
        chrono::DateTime::parse_from_rfc3339(v.as_str().expect("a timestamp")).expect("RFC 3339");
    t.timestamp_micros() as f64 / 1e6
}

fn event_time(rec: &Recorder, camera: &str, status: &str) -> f64 {
    let all = rec.0.lock().expect("lock").clone();
    let m = all
        .iter()
        .find(|m| {
            m["type"] == "camera.status_changed"
                && m["data"]["camera_id"] == camera
                && m["data"]["status"] == status
        })
        .unwrap_or_else(|| panic!("no {status} for {camera}"));
    time(&m["timestamp"])
}

fn sha256(path: &PathBuf) -> String {
    let bytes = std::fs::read(path).expect("read");
    sha2::Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_is_skipped_without_starving_the_others_and_the_camera_limit_holds() {
    let mut env = SHORT.to_vec();
    env.push(("WATCHPOST_CAMERAS__MAX_IMAGES_PER_MINUTE", "30"));
    env.push(("WATCHPOST_CAMERAS__MAX_CAMERAS", "50"));
    // Judged by the minute, not by silence, here.
    env.push(("WATCHPOST_CAMERAS__MIN_SILENCE_SECONDS", "600"));
    env.push(("WATCHPOST_CAMERAS__MAX_SILENCE_SECONDS", "600"));
    let stack = Stack::new(&env);
    let wp = stack.start(tempfile::tempdir().expect("dir"));
    let root = wp.dir.path().join("cameras");

    // The calm camera's images arrive in the middle of the flood.
    let mut calm: Vec<PathBuf> = Vec::new();
    let mut flood_images: Vec<PathBuf> = Vec::new();
    for i in 0..100 {
        flood_images.push(write_image(&root, "flood", &format!("flood-{i:03}.png")));
        if i % 10 == 5 {
            calm.push(write_image(&root, "calm", &format!("calm-{i}.png")));
        }
    }
    let flood = wait_status(&wp, "flood", "flooding").await;
    assert!(
        flood["reason"]
            .as_str()
            .is_some_and(|r| r.contains("at most 30 are taken")),
        "{flood}"
    );
    let flooding = eventually("the flooding alert", || async {
        let (_, page) = crate::support::alerts(&wp, "?source=camera:flood").await;
        crate::support::of(&page, "camera:flood").cloned()
    })
    .await;
    assert_eq!(flooding["alertname"], "WatchpostCameraFlooding");
    assert_eq!(flooding["severity"], "warning");
    eventually("70 images of the flood skipped", || async {
        let m = metrics(&wp).await;
        (metric(
            &m,
            "watchpost_camera_images_skipped_total{camera=\"flood\",reason=\"flooding\"}",
        ) == Some(70.0)
            && metric(
                &m,
                "watchpost_watcher_files_total{result=\"skipped_flooding\"}",
            ) == Some(70.0))
        .then_some(())
    })
    .await;
    // Every calm image reaches detection, and exactly 30 of the flood's: counted
    // once the detection queue is empty, as sets of distinct pictures.
    let wanted: std::collections::BTreeSet<String> = calm.iter().map(sha256).collect();
    let flooded: std::collections::BTreeSet<String> = flood_images.iter().map(sha256).collect();
    let yolo = stack.ai.get("yolo26").clone();
    eventually(
        "every queued image acknowledged, the calm ones among them",
        || {
            let (yolo, wanted) = (yolo.clone(), wanted.clone());
            let wp = &wp;
            async move {
                let m = metrics(wp).await;
                let queued = metric(&m, "watchpost_watcher_files_total{result=\"queued\"}");
                let acked = metric(
                    &m,
                    "watchpost_queue_items_total{event=\"acked\",queue=\"detection\"}",
                );
                let up: std::collections::BTreeSet<String> = yolo.uploads().into_iter().collect();
                (queued.is_some() && queued == acked && wanted.is_subset(&up)).then_some(())
            }
        },
    )
    .await;
    let up: std::collections::BTreeSet<String> = yolo.uploads().into_iter().collect();
    assert_eq!(up.len(), 40, "10 calm and 30 of the flood, each once");
    assert_eq!(up.intersection(&flooded).count(), 30);

    // 100 more folders with 48 places left: 48 cameras, 52 refused, no series for them.
    for i in 0..100 {
        write_image(&root, &format!("extra{i:03}"), "x.png");
    }
    eventually("50 cameras and the rest refused", || async {
        let m = metrics(&wp).await;
        (cameras(&wp).await["count"] == 50
            && metric(
                &m,
                "watchpost_camera_folders_refused_total{reason=\"too_many_cameras\"}",
            ) == Some(52.0))
        .then_some(())
    })
    .await;
    let m = metrics(&wp).await;
    let labelled: std::collections::BTreeSet<&str> = m
        .lines()
        .filter(|l| l.starts_with("watchpost_camera_status{"))
        .filter_map(|l| l.split("camera=\"").nth(1)?.split('"').next())
        .collect();
    assert_eq!(labelled.len(), 50, "{labelled:?}");
    assert_eq!(
        metric(
            &m,
            "watchpost_watcher_files_total{result=\"too_many_cameras\"}"
        ),
        Some(52.0)
    );

    // Removing a camera makes room; disabling one skips its images. Which 48 of the
    // extra folders got a place depends on the order their files became stable: take
    // one that did.
    let extra = cameras(&wp).await["cameras"]
        .as_array()
        .and_then(|all| {
            all.iter()
                .filter_map(|c| c["id"].as_str())
                .find(|id| id.starts_with("extra"))
                .map(str::to_string)
        })
        .expect("an extra camera");
    let r = client()
        .delete(format!("{}/api/system/cameras/{extra}", wp.url()))
        .send()
        .await
        .expect("DELETE");
    assert_eq!(r.status(), 200);
    // Gone: from the list and from the metrics.
    assert!(camera(&wp, &extra).await.is_none());
    let after = metrics(&wp).await;
    assert!(
        !after.contains(&format!("camera=\"{extra}\"")),
        "{}",
        after
            .lines()
            .filter(|l| l.contains(&format!("camera=\"{extra}\"")))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let r = client()
        .post(format!("{}/api/system/cameras/calm/disable", wp.url()))
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.expect("json")["status"], "disabled");
    // A disabled camera's next image is skipped and counted, never detected.
    let late = write_image(&root, "calm", "calm-late.png");
    eventually("the disabled camera's image skipped", || async {
        let m = metrics(&wp).await;
        (metric(
            &m,
            "watchpost_camera_images_skipped_total{camera=\"calm\",reason=\"disabled\"}",
        ) == Some(1.0))
        .then_some(())
    })
    .await;
    assert!(!yolo.uploads().contains(&sha256(&late)));
    assert_eq!(
        camera(&wp, "calm").await.expect("calm")["status"],
        "disabled"
    );
    for (method, path, status) in [
        ("GET", "/api/system/cameras/nope", 404),
        ("GET", "/api/system/cameras/Not%20Valid", 400),
        ("POST", "/api/system/cameras/nope/enable", 404),
        ("DELETE", "/api/system/cameras/nope", 404),
    ] {
        let r = client()
            .request(
                method.parse().expect("method"),
                format!("{}{path}", wp.url()),
            )
            .send()
            .await
            .expect("request");
        assert_eq!(r.status(), status, "{method} {path}");
        let body: Value = r.json().await.expect("json");
        assert!(body["detail"].is_string(), "{method} {path}: {body}");
    }
    let detail = crate::support::json(format!("{}/api/system/cameras/flood", wp.url())).await;
    assert_eq!(detail["hourly_images"].as_array().map(Vec::len), Some(24));
    assert_eq!(
        detail["hourly_images"]
            .as_array()
            .map(|h| h.iter().filter_map(Value::as_u64).sum::<u64>()),
        Some(100)
    );
    assert!(detail["recent_events"].is_array(), "{detail}");
}

/// Item 9 of the integrity review: `Front Door`, `front-door` and `FRONT_DOOR` were
/// one camera, so a look-alike folder kept an offline camera online; a folder name
/// with a right-to-left override showed reversed on the page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_look_alike_folder_cannot_keep_a_camera_alive_and_a_spoofing_name_is_refused() {
    let stack = Stack::new(&SHORT);
    let wp = stack.start(tempfile::tempdir().expect("dir"));
    let root = wp.dir.path().join("cameras");
    write_image(&root, "Front Door", "a.png");
    wait_status(&wp, "front_door", "online").await;
    // The real camera dies; a look-alike keeps sending.
    let stop = Arc::new(AtomicBool::new(false));
    let feeder = {
        let (root, stop) = (root.clone(), stop.clone());
        tokio::spawn(async move {
            let mut n = 0;
            let mut tick = tokio::time::interval(std::time::Duration::from_millis(500));
            while !stop.load(Ordering::SeqCst) {
                tick.tick().await;
                write_image(&root, "FRONT_DOOR", &format!("spoof{n}.png"));
                n += 1;
            }
        })
    };
    let off = wait_status(&wp, "front_door", "offline").await;
    assert_eq!(off["folder"], "Front Door");
    stop.store(true, Ordering::SeqCst);
    feeder.await.expect("feeder");
    // Right-to-left override: "gate<RLO>gnp.exe" would show as "gateexe.png".
    write_image(&root, "gate\u{202E}roop", "b.png");
    let list = eventually("both folders listed as not taken", || async {
        let list = cameras(&wp).await;
        (list["refused_folders"].as_array()?.len() == 2).then_some(list)
    })
    .await;
    let refused: Vec<(String, String)> = list["refused_folders"]
        .as_array()
        .expect("refused")
        .iter()
        .map(|f| {
            (
                f["folder"].as_str().unwrap_or("").into(),
                f["reason"].as_str().unwrap_or("").into(),
            )
        })
        .collect();
    assert!(
        refused.contains(&("FRONT_DOOR".into(), "id_taken".into())),
        "{refused:?}"
    );
    assert!(
        refused.contains(&("gate\\u{202e}roop".into(), "bad_name".into())),
        "{refused:?}"
    );
    assert_eq!(list["count"], 1, "{list}");
    let m = metrics(&wp).await;
    assert_eq!(
        metric(
            &m,
            "watchpost_camera_folders_refused_total{reason=\"id_taken\"}"
        ),
        Some(1.0)
    );
}

/// Eight cameras behind one PoE switch (`[cameras.groups]`) that go silent together
/// are one push naming them and one resolution, not sixteen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_cameras_of_one_group_going_silent_together_are_one_push_and_one_resolution() {
    let rx = crate::support::notify::HttpReceiver::start().await;
    let hook = format!(
        "[{{name = \"phone\", format = \"ntfy\", url = \"{}\"}}]",
        rx.url("/phone")
    );
    let cams: Vec<String> = (1..=8).map(|i| format!("cam{i}")).collect();
    let group = cams.join(",");
    let mut env = SHORT.to_vec();
    env.push(("WATCHPOST_CAMERAS__GROUPS__POE_SWITCH_1", &group));
    env.push(("WATCHPOST_ALERTS__GROUP_WAIT_SECONDS", "3"));
    env.push(("WATCHPOST_NOTIFY__WEBHOOKS", &hook));
    let stack = Stack::new(&env);
    let wp = stack.start(tempfile::tempdir().expect("dir"));
    let root = wp.dir.path().join("cameras");
    let names: Vec<&str> = cams.iter().map(String::as_str).collect();
    let sender = Sender::start(&root, &names);
    for c in &names {
        eventually(&format!("{c} has learned its rhythm"), || async {
            (detail(&wp, c).await["expected_silence_basis"] == "learned").then_some(())
        })
        .await;
    }
    for c in &names {
        sender.set(c, false);
    }
    let firing = eventually("the group's push", || async {
        rx.on("/phone").first().cloned()
    })
    .await;
    let title = firing.header("title").unwrap_or("").to_string();
    assert!(
        title.starts_with("[FIRING] WatchpostCameraGroupOffline: camera group poe_switch_1: "),
        "{title}"
    );
    for c in &names {
        assert!(title.contains(c), "{c} in {title}");
    }
    for c in &names {
        wait_status(&wp, c, "offline").await;
    }
    for c in &names {
        sender.set(c, true);
    }
    let resolved = eventually("the group's resolution", || async {
        let p = rx.on("/phone");
        (p.len() >= 2).then(|| p[1].clone())
    })
    .await;
    assert!(resolved
        .header("title")
        .is_some_and(|t| t.starts_with("[RESOLVED] WatchpostCameraGroupOffline")));
    eventually("all online, nothing firing, all sent", || async {
        let page =
            crate::support::json(format!("{}/api/system/alerts?state=firing", wp.url())).await;
        let list = crate::support::json(format!("{}/api/system/notifiers", wp.url())).await;
        (page["items"].as_array().is_some_and(Vec::is_empty)
            && list["notifiers"][0]["queue_depth"] == 0)
            .then_some(())
    })
    .await;
    let pushes = rx.on("/phone");
    assert_eq!(
        pushes.len(),
        2,
        "{:?}",
        pushes.iter().map(|p| p.header("title")).collect::<Vec<_>>()
    );
}
