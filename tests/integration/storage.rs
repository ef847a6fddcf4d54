//! Before the disk fills and when the box dies: a real tmpfs as the camera root,
//! filled at a fixed rate (the forecast and `WatchpostStorageFillingUp` against the
//! moment it really is full), and the dead man's switch against a local receiver.

use std::io::Write;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::support::disk::Tmpfs;
use crate::support::images::image_bytes;
use crate::support::notify::HttpReceiver;
use crate::support::{eventually, eventually_for, json, watching, Stack};

const MIB: usize = 1024 * 1024;

/// Write 1 MiB every 2 s into `dir` until the file system refuses; when it did.
async fn fill(dir: std::path::PathBuf) -> DateTime<Utc> {
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    let chunk = vec![7u8; MIB];
    for n in 0.. {
        tick.tick().await;
        let path = dir.join(format!("{n:04}.bin"));
        let wrote = std::fs::File::create(&path).and_then(|mut f| {
            f.write_all(&chunk)?;
            f.sync_all()
        });
        if wrote.is_err() {
            return Utc::now();
        }
    }
    unreachable!("a 64 MiB file system fills")
}

fn at_of(v: &Value) -> Option<DateTime<Utc>> {
    v.as_str()?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filling_volume_is_forecast_and_told_a_minute_before_it_is_full() {
    let disk = Tmpfs::mount(64 * MIB as u64);
    let root = disk.path().join("cameras");
    std::fs::create_dir_all(&root).expect("camera root");
    let ballast = disk.path().join("ballast");
    std::fs::create_dir_all(&ballast).expect("ballast dir");
    let root_text = root.display().to_string();
    let stack = Stack::new(&[
        ("WATCHPOST_FILE_WATCHER__CAMERA_ROOT", &root_text),
        ("WATCHPOST_STORAGE__SAMPLE_INTERVAL_SECONDS", "2"),
        ("WATCHPOST_STORAGE__FORECAST_WINDOW_SECONDS", "60"),
        ("WATCHPOST_STORAGE__ALERT_LEAD_SECONDS", "60"),
        ("WATCHPOST_ALERTS__FOR_WARNING_SECONDS", "0"),
        ("WATCHPOST_ALERTS__EVALUATE_INTERVAL_SECONDS", "0.2"),
    ]);
    let wp = stack.start(tempfile::tempdir().expect("dir"));
    let camera_root = |v: Value| {
        v["volumes"]
            .as_array()?
            .iter()
            .find(|x| x["name"] == "camera_root")
            .cloned()
    };
    eventually("the camera root measured", || async {
        camera_root(json(format!("{}/api/system/storage", wp.url())).await)
            .filter(|v| v["samples"].as_u64() >= Some(1))
    })
    .await;
    let full = tokio::spawn(fill(ballast));

    // Every forecast once 10 samples are in, until the alert, and when it fired.
    let seen: std::sync::Mutex<Vec<(DateTime<Utc>, DateTime<Utc>)>> = Default::default();
    let fired = eventually_for(
        Duration::from_secs(180),
        "WatchpostStorageFillingUp",
        || {
            let url = wp.url();
            let seen = &seen;
            async move {
                let v = camera_root(json(format!("{url}/api/system/storage")).await)?;
                if v["samples"].as_u64() >= Some(10) {
                    if let Some(full_at) = at_of(&v["full_at"]) {
                        seen.lock().expect("lock").push((Utc::now(), full_at));
                    }
                }
                let page = json(format!(
                    "{url}/api/system/alerts?state=firing&source=storage:camera_root"
                ))
                .await;
                page["items"]
                    .as_array()?
                    .iter()
                    .find(|a| a["alertname"] == "WatchpostStorageFillingUp")
                    .and_then(|a| at_of(&a["started_at"]))
            }
        },
    )
    .await;
    let full = full.await.expect("the filler");
    let forecasts = seen.into_inner().expect("lock");
    let lead = (full - fired).num_milliseconds() as f64 / 1000.0;
    crate::support::figure("storage_alert_lead_seconds", lead, "s");
    assert!(
        (54.0..=66.0).contains(&lead),
        "fired {lead:.1} s before the volume was full (54 to 66 s wanted)"
    );
    assert!(forecasts.len() >= 5, "{forecasts:?}");
    let worst = forecasts
        .iter()
        .map(|(when, said)| {
            let left = (full - *when).num_milliseconds() as f64;
            (*said - full).num_milliseconds().abs() as f64 / left
        })
        .fold(0.0, f64::max);
    crate::support::figure("storage_forecast_worst_error_ratio", worst, "");
    for (when, said) in &forecasts {
        let left = (full - *when).num_milliseconds() as f64 / 1000.0;
        let off = (*said - full).num_milliseconds().abs() as f64 / 1000.0;
        assert!(
            off <= 0.1 * left,
            "at {when} the forecast was {said}, {off:.1} s from the true {full} ({left:.0} s ahead)"
        );
    }
    let m = crate::support::metrics(&wp).await;
    for series in [
        "watchpost_storage_free_bytes{volume=\"camera_root\"}",
        "watchpost_storage_growth_bytes_per_second{volume=\"camera_root\"}",
        "watchpost_storage_full_at_timestamp_seconds{volume=\"camera_root\"}",
    ] {
        assert!(m.contains(series), "{series}");
    }
}

/// The dead man's switch: pinged every interval; `fail_url` within 5 s of a critical
/// alert, `url` again once it resolves; nothing once watchpost is killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dead_man_s_switch_is_pinged_told_of_a_critical_alert_and_stops_with_watchpost() {
    let rx = HttpReceiver::start().await;
    let url = rx.url("/ping/check-1");
    let stack = Stack::new(&[
        ("WATCHPOST_HEARTBEAT__URL", &url),
        ("WATCHPOST_HEARTBEAT__INTERVAL_SECONDS", "1"),
        ("WATCHPOST_ALERTS__EVALUATE_INTERVAL_SECONDS", "0.2"),
    ]);
    let wp = stack.start(tempfile::tempdir().expect("dir"));
    let pings = |path: &str| rx.on(path);
    eventually("three pings", || async {
        (pings("/ping/check-1").len() >= 3).then_some(())
    })
    .await;
    let at: Vec<_> = pings("/ping/check-1").iter().map(|r| r.at).collect();
    for pair in at.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap >= Duration::from_millis(700) && gap <= Duration::from_millis(2500),
            "one ping an interval: {gap:?}"
        );
    }

    // YOLO26 (critical) refuses: its critical alert pings fail_url within 5 s.
    stack.ai.get("yolo26").refuse().await;
    let started = eventually_for(Duration::from_secs(60), "YOLO26's critical alert", || {
        let url = wp.url();
        async move {
            let page = json(format!(
                "{url}/api/system/alerts?state=firing&source=ai:yolo26"
            ))
            .await;
            page["items"]
                .as_array()?
                .iter()
                .find(|a| a["severity"] == "critical")
                .and_then(|a| at_of(&a["started_at"]))
        }
    })
    .await;
    let told = eventually("the fail ping", || async {
        pings("/ping/check-1/fail").first().map(|_| Utc::now())
    })
    .await;
    let within = (told - started).num_milliseconds() as f64 / 1000.0;
    crate::support::figure("heartbeat_fail_ping_within_seconds", within, "s");
    assert!(
        within <= 5.0,
        "fail_url pinged {within:.1} s after the alert fired"
    );
    let list = json(format!("{}/api/system/notifiers", wp.url())).await;
    assert_eq!(list["heartbeat"]["failing"], true, "{list}");
    assert!(
        !list.to_string().contains("check-1"),
        "the check's id is not shown: {list}"
    );

    // It resolves: the success URL is pinged again, after the fail pings.
    stack.ai.get("yolo26").accept().await;
    eventually_for(
        Duration::from_secs(60),
        "a success ping after the fail",
        || async {
            let all = rx.all();
            let last_fail = all.iter().rposition(|r| r.path == "/ping/check-1/fail")?;
            all[last_fail..]
                .iter()
                .any(|r| r.path == "/ping/check-1")
                .then_some(())
        },
    )
    .await;

    // Killed: no more pings (three intervals without one).
    drop(wp.kill());
    let killed = std::time::Instant::now();
    let before = rx.all().len();
    eventually("three intervals since the kill", || async {
        (killed.elapsed() >= Duration::from_secs(3)).then_some(())
    })
    .await;
    assert_eq!(rx.all().len(), before, "no ping after the kill");
}

/// Retention by size on a tmpfs: past `cleanup.max_media_bytes` the oldest processed
/// images go, until the camera root is under the cap; the newest event's images
/// stay; each deletion is counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_by_size_keeps_the_camera_root_under_its_cap_oldest_first() {
    const CAP: usize = 20 * MIB;
    let disk = Tmpfs::mount(64 * MIB as u64);
    let root = disk.path().join("cameras");
    std::fs::create_dir_all(&root).expect("camera root");
    let root_text = root.display().to_string();
    let cap = CAP.to_string();
    let stack = Stack::new(&[
        ("WATCHPOST_FILE_WATCHER__CAMERA_ROOT", &root_text),
        ("WATCHPOST_FILE_WATCHER__MAX_FILE_BYTES", "4194304"),
        ("WATCHPOST_CLEANUP__MAX_MEDIA_BYTES", &cap),
        ("WATCHPOST_CLEANUP__KEEP_EVIDENCE_DAYS", "0"),
        ("WATCHPOST_CLEANUP__SIZE_CHECK_SECONDS", "1"),
    ]);
    let wp = stack.start(tempfile::tempdir().expect("dir"));
    watching(&wp).await;
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let names: Vec<String> = (0..40).map(|i| format!("img-{i:03}.png")).collect();
    std::fs::create_dir_all(root.join("porch")).expect("camera dir");
    for name in &names {
        tick.tick().await;
        std::fs::write(root.join("porch").join(name), image_bytes(MIB)).expect("write");
    }
    // Everything detected, and the events of the last batch made.
    eventually_for(Duration::from_secs(90), "every image detected", || async {
        (stack.count("select count(distinct file_path) from detections") == 40).then_some(())
    })
    .await;
    eventually_for(Duration::from_secs(60), "an event", || async {
        (stack.count("select count(*) from events") >= 1).then_some(())
    })
    .await;
    let run = eventually_for(Duration::from_secs(60), "under the cap", || async {
        let v = json(format!("{}/api/system/storage", wp.url())).await;
        let run = v["cleanup"].clone();
        (run["media_bytes_after"].as_u64()? <= CAP as u64
            && run["media_bytes_before"].as_u64()? <= CAP as u64)
            .then_some(run)
    })
    .await;
    assert_eq!(run["max_media_bytes"], CAP as u64, "{run}");
    let left: Vec<&String> = names
        .iter()
        .filter(|n| root.join("porch").join(n).exists())
        .collect();
    let used: u64 = left.len() as u64 * MIB as u64;
    assert!(used <= CAP as u64, "{} files left", left.len());
    // Nothing went before analysis was done with it: every deleted image is in a
    // batch that has its event. The newest event's images are kept.
    let porch = |n: &String| root.join("porch").join(n).display().to_string();
    let in_events: Vec<String> = stack
        .pg
        .psql(
            "select string_agg(distinct d.file_path, '|') from detections d join events e on e.batch_id = d.batch_id",
        )
        .split('|')
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect();
    for n in names
        .iter()
        .filter(|n| !root.join("porch").join(n).exists())
    {
        assert!(
            in_events.contains(&porch(n)),
            "{n} was deleted before its event was made"
        );
    }
    let evidence = stack.pg.psql(
        "select string_agg(d.file_path, '|') from detections d join events e on d.id = any(e.detection_ids) where e.id = (select max(id) from events)",
    );
    let evidence: Vec<&str> = evidence.split('|').filter(|p| !p.is_empty()).collect();
    assert!(!evidence.is_empty(), "the newest event names its images");
    for p in &evidence {
        assert!(std::path::Path::new(p).exists(), "evidence {p} was deleted");
    }
    // Oldest first: no image was deleted while an older one was kept, but for
    // images that were the newest event's when a run looked (kept as evidence then).
    let newest_deleted = names
        .iter()
        .rposition(|n| !root.join("porch").join(n).exists())
        .expect("something deleted");
    let all_events = stack.pg.psql(
        "select string_agg(d.file_path, '|') from detections d join events e on d.id = any(e.detection_ids)",
    );
    for n in &names[..newest_deleted] {
        assert!(
            !root.join("porch").join(n).exists() || all_events.contains(&porch(n)),
            "{n} kept while a newer image was deleted"
        );
    }
    let deleted = 40 - left.len() as u64;
    let m = crate::support::metrics(&wp).await;
    assert_eq!(
        crate::support::metric(
            &m,
            "watchpost_cleanup_deleted_total{kind=\"media\",reason=\"size\"}"
        ),
        Some(deleted as f64),
        "each deletion counted"
    );
}

/// `n` batches of ten detections each, with their events, created now (as analysis
/// writes them), numbered from `from`.
fn fill_rows(stack: &Stack, from: u64, n: u64) {
    let to = from + n - 1;
    stack.pg.psql(&format!(
        "INSERT INTO events (batch_id, camera_id, started_at, ended_at, risk_score, risk_level, summary, reasoning, detection_ids)
           SELECT 'fill-' || g, 'porch', now(), now(), 10, 'low', repeat('s', 120), repeat('r', 300), '{{}}'
           FROM generate_series({from}, {to}) g;
         INSERT INTO detections (camera_id, file_path, file_hash, seq, object_type, confidence, bbox, detected_at, batch_id)
           SELECT 'porch', '/cameras/porch/fill-' || g || '.jpg', md5(g::text), s, 'person', 0.9,
                  '{{\"x\": 10, \"y\": 20, \"width\": 30, \"height\": 40}}', now(), 'fill-' || g
           FROM generate_series({from}, {to}) g, generate_series(0, 9) s;"
    ));
}

fn database_size(stack: &Stack) -> u64 {
    stack.count("select pg_database_size(current_database())")
}

/// Retention of the database by size: a database filled past `cleanup.max_database_bytes`
/// is brought under it oldest first (an event with its detections), and while rows
/// keep arriving its files level off instead of growing; then resolved alerts go too,
/// never a firing one or the newest event's detections. Each deletion is counted; the
/// page shows the last run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_by_size_keeps_the_database_flat_while_rows_keep_arriving() {
    const CAP: u64 = 24 * MIB as u64;
    let cap = CAP.to_string();
    let stack = Stack::new(&[
        ("WATCHPOST_CLEANUP__MAX_DATABASE_BYTES", &cap),
        ("WATCHPOST_CLEANUP__KEEP_EVIDENCE_DAYS", "0"),
        ("WATCHPOST_CLEANUP__SIZE_CHECK_SECONDS", "1"),
    ]);
    let wp = stack.start(tempfile::tempdir().expect("dir"));
    watching(&wp).await;
    eventually("the schema", || async {
        (stack
            .pg
            .psql("select to_regclass('detections') is not null")
            == "t")
            .then_some(())
    })
    .await;
    let empty = database_size(&stack);
    let run = |v: &Value| v["database_cleanup"].clone();

    // Filled well past the cap at once: 60,000 detections in 6,000 batches.
    fill_rows(&stack, 0, 6_000);
    let filled = database_size(&stack);
    assert!(filled > CAP + 8 * MIB as u64, "filled to {filled} bytes");
    let per_row = (filled - empty) as f64 / 66_000.0;
    let first = eventually_for(Duration::from_secs(60), "under the cap", || async {
        let v = json(format!("{}/api/system/storage", wp.url())).await;
        let r = run(&v);
        (r["data_bytes_before"].as_u64()? <= CAP).then_some(r)
    })
    .await;
    assert_eq!(first["max_database_bytes"], CAP, "{first}");
    assert!(
        first["database_bytes"].as_u64().is_some_and(|b| b > 0),
        "{first}"
    );
    // Oldest first: what is left of the detections is the newest run of them.
    assert_eq!(
        stack
            .pg
            .psql("select count(*) = max(id) - min(id) + 1 from detections"),
        "t",
        "the detections left are the newest"
    );
    assert_eq!(
        stack.count("select count(*) from detections d where not exists (select 1 from events e where e.batch_id = d.batch_id)"),
        0,
        "an event goes with its detections"
    );
    assert_eq!(
        stack
            .pg
            .psql("select count(*) = max(id) - min(id) + 1 from events"),
        "t",
        "the events left are the newest"
    );

    // Rows keep arriving, about 40 % of the cap in all; the files level off.
    let before = database_size(&stack);
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let mut next = 6_000;
    for _ in 0..20 {
        tick.tick().await;
        fill_rows(&stack, next, 100);
        next += 100;
    }
    let arrived = 20.0 * 1_100.0 * per_row;
    let settled = eventually_for(Duration::from_secs(60), "under the cap again", || async {
        let v = json(format!("{}/api/system/storage", wp.url())).await;
        let r = run(&v);
        (r["data_bytes_before"].as_u64()? <= CAP).then_some(r)
    })
    .await;
    let after = database_size(&stack);
    let grew = after.saturating_sub(before) as f64;
    crate::support::figure("database_growth_while_capped_bytes", grew, "B");
    crate::support::figure("database_rows_arrived_bytes", arrived, "B");
    assert!(
        grew < arrived / 4.0,
        "the database grew {grew} bytes while {arrived} bytes of rows arrived"
    );
    assert!(
        settled["data_bytes_after"].as_u64() <= Some(CAP),
        "{settled}"
    );
    let newest = stack.count(
        "select count(*) from detections d join events e on e.batch_id = d.batch_id where e.id = (select max(id) from events)",
    );
    assert_eq!(newest, 10, "the newest event's detections are kept");

    // Resolved alerts go once events have nothing more to give (the newest is
    // kept); a firing one stays.
    stack.pg.psql(
        "INSERT INTO alerts (id, fingerprint, alertname, source, severity, summary, description, labels, started_at, ended_at, end_sent_at)
           SELECT 'old-' || g, md5(g::text), 'WatchpostDependencyDown', 'ai:yolo26', 'warning', repeat('s', 200), repeat('d', 600),
                  '{\"alertname\": \"WatchpostDependencyDown\"}', now() - interval '2 hours', now() - interval '1 hour' + g * interval '1 ms', now()
           FROM generate_series(1, 40000) g;
         INSERT INTO alerts (id, fingerprint, alertname, source, severity, summary, description, labels, started_at)
           VALUES ('still-firing', 'f0f0', 'WatchpostCameraOffline', 'camera:porch', 'warning', 's', 'd', '{}', now() - interval '3 hours');",
    );
    let alerts_run = eventually_for(
        Duration::from_secs(60),
        "resolved alerts deleted",
        || async {
            let v = json(format!("{}/api/system/storage", wp.url())).await;
            let r = run(&v);
            (r["alerts_deleted"].as_u64()? > 0 && r["data_bytes_after"].as_u64()? <= CAP)
                .then_some(r)
        },
    )
    .await;
    assert!(alerts_run["reason"].as_str().is_some_and(|r| !r.is_empty()));
    assert_eq!(
        stack.count("select count(*) from alerts where id = 'still-firing'"),
        1,
        "a firing alert is never deleted"
    );
    let oldest_left = stack.pg.psql("select min(ended_at) > (select now() - interval '1 hour') from alerts where id like 'old-%'");
    assert!(
        oldest_left == "t" || oldest_left.is_empty(),
        "the oldest went first"
    );
    assert_eq!(
        stack.count(
            "select count(*) from detections d join events e on e.batch_id = d.batch_id where e.id = (select max(id) from events)"
        ),
        10
    );

    // Counted, per kind.
    let m = crate::support::metrics(&wp).await;
    let counted = |kind: &str| {
        crate::support::metric(
            &m,
            &format!("watchpost_cleanup_deleted_total{{kind=\"{kind}\",reason=\"size\"}}"),
        )
        .unwrap_or(0.0) as u64
    };
    assert_eq!(
        counted("detections"),
        next * 10 - stack.count("select count(*) from detections")
    );
    assert_eq!(
        counted("events"),
        next - stack.count("select count(*) from events")
    );
    assert_eq!(
        counted("alerts"),
        40_001 - stack.count("select count(*) from alerts")
    );

    // The page's storage panel shows the run.
    let b = crate::support::browser::Browser::start(1280, 1400).await;
    b.goto(&format!("{}/", wp.url())).await;
    b.wait_for("#storage li[data-run=\"database\"]").await;
    let shown = b.text("#storage li[data-run=\"database\"]").await;
    assert!(
        shown.contains("database retention by size") && shown.contains("cap 24"),
        "{shown}"
    );
}
