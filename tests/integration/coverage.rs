//! Coverage: which minutes went unwatched, and why, on the real binary. The scripted
//! timeline holds each condition for a set time (the scenario's own durations, not
//! waits for something to happen: those poll with `eventually`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::support::fake_ai::Mode;
use crate::support::{eventually, get, json, post, watching, write_image, Stack, Watchpost};

const ENV: [(&str, &str); 8] = [
    // A heartbeat camera: stale after 4 + 8 s of silence, offline after 2 × 4 + 8 s
    // (so the 10 s without a watcher, or the restart, leave it online or stale).
    (
        "WATCHPOST_CAMERAS__OVERRIDES__PORCH__HEARTBEAT_SECONDS",
        "4",
    ),
    ("WATCHPOST_CAMERAS__HEARTBEAT_GRACE_SECONDS", "8"),
    ("WATCHPOST_CAMERAS__CHECK_INTERVAL_SECONDS", "0.2"),
    ("WATCHPOST_CAMERAS__PERSIST_INTERVAL_SECONDS", "0.5"),
    // A breaker that closes at the first success a second after YOLO is back.
    ("WATCHPOST_BREAKER__RECOVERY_TIMEOUT_SECONDS", "1"),
    ("WATCHPOST_BREAKER__SUCCESS_THRESHOLD", "1"),
    ("WATCHPOST_BREAKER__HALF_OPEN_MAX_CALLS", "1"),
    ("WATCHPOST_COVERAGE__MIN_GAP_SECONDS", "0"),
];

/// A camera that sends a new picture every second while `on`; the times it wrote.
struct Sender {
    on: Arc<AtomicBool>,
    written: Arc<Mutex<Vec<DateTime<Utc>>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Sender {
    fn start(root: std::path::PathBuf) -> Self {
        let on = Arc::new(AtomicBool::new(true));
        let written = Arc::new(Mutex::new(Vec::new()));
        let (o, w) = (on.clone(), written.clone());
        let task = tokio::spawn(async move {
            let mut n = 0u64;
            loop {
                if o.load(Ordering::SeqCst) {
                    n += 1;
                    write_image(&root, "porch", &format!("p{n}.png"));
                    w.lock().expect("times").push(Utc::now());
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
        Self { on, written, task }
    }

    fn last(&self) -> DateTime<Utc> {
        *self
            .written
            .lock()
            .expect("times")
            .last()
            .expect("one image written")
    }

    fn count(&self) -> usize {
        self.written.lock().expect("times").len()
    }
}

/// Hold the scenario's current state for `s` seconds.
async fn hold(s: u64) {
    tokio::time::sleep(Duration::from_secs(s)).await;
}

fn t(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().expect("a time"))
        .expect("RFC 3339")
        .with_timezone(&Utc)
}

fn secs(a: DateTime<Utc>, b: DateTime<Utc>) -> f64 {
    (a - b).num_milliseconds() as f64 / 1000.0
}

async fn porch_online(wp: &Watchpost) {
    let url = format!("{}/api/system/cameras/porch", wp.url());
    eventually("porch online", || async {
        let (code, c) = get(&url).await;
        (code == 200 && c["status"] == "online").then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scripted_timeline_lists_exactly_its_gaps_with_their_causes() {
    let stack = Stack::new(&ENV);
    let mut wp = stack.start(tempfile::tempdir().expect("dir"));
    let root = wp.dir.path().join("cameras");
    watching(&wp).await;
    let sender = Sender::start(root.clone());
    porch_online(&wp).await;
    // The history has begun and the camera is stored.
    let begin = eventually("coverage knows the porch", || async {
        let (code, c) = get(format!("{}/api/system/coverage?camera=porch", wp.url())).await;
        (code == 200 && c["cameras"][0]["availability"].is_number()).then_some(())?;
        Some(t(&c["to"]))
    })
    .await;
    hold(3).await;

    // 1. The porch camera is silent for 20 s.
    sender.on.store(false, Ordering::SeqCst);
    let silent_from = sender.last();
    hold(20).await;
    let before = sender.count();
    sender.on.store(true, Ordering::SeqCst);
    eventually("the porch sends again", || async {
        (sender.count() > before).then_some(())
    })
    .await;
    let silent_to = sender.last();
    porch_online(&wp).await;
    hold(3).await;

    // 2. The file watcher is stopped through the API for 10 s.
    let worker = |what: &str| {
        format!(
            "{}/api/system/supervisor/workers/file_watcher/{what}",
            wp.url()
        )
    };
    assert_eq!(post(worker("stop"), None).await.0, 200);
    let watcher_from = Utc::now();
    hold(10).await;
    assert_eq!(post(worker("start"), None).await.0, 200);
    let watcher_to = Utc::now();
    watching(&wp).await;
    hold(3).await;

    // 3. YOLO26 refuses for 15 s.
    stack.ai.get("yolo26").set_mode(Mode::Status(503));
    let yolo_from = Utc::now();
    hold(15).await;
    stack.ai.get("yolo26").set_mode(Mode::Normal);
    let yolo_to = Utc::now();
    let breakers = format!("{}/api/system/circuit-breakers", wp.url());
    eventually("the YOLO26 breaker closed", || async {
        let b = json(breakers.clone()).await;
        let closed = b.to_string().contains("\"open\"");
        (!closed).then_some(())
    })
    .await;
    hold(3).await;

    // 4. Watchpost is killed, and started again 10 s later.
    let killed_at = Utc::now();
    let dir = wp.kill();
    hold(10).await;
    let restarted_at = Utc::now();
    wp = stack.start(dir);
    watching(&wp).await;
    let watching_at = Utc::now();
    porch_online(&wp).await;
    hold(3).await;

    let end = Utc::now();
    let (code, c) = get(format!(
        "{}/api/system/coverage?camera=porch&from={}&to={}",
        wp.url(),
        begin.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        end.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
    ))
    .await;
    assert_eq!(code, 200, "{c}");
    let cam = &c["cameras"][0];
    assert_eq!(cam["camera_id"], "porch", "{c}");
    let gaps = cam["gaps"].as_array().expect("gaps");
    let causes: Vec<&str> = gaps.iter().filter_map(|g| g["cause"].as_str()).collect();
    assert_eq!(
        causes,
        [
            "camera_offline",
            "watcher_down",
            "detection_down",
            "watchpost_down"
        ],
        "{c}"
    );
    let expected = [
        (silent_from, silent_to, 2.0),
        (watcher_from, watcher_to, 2.0),
        (yolo_from, yolo_to, 2.0),
        (killed_at, restarted_at, 3.0),
    ];
    for (g, (from, to, within)) in gaps.iter().zip(expected) {
        let (start, end) = (t(&g["start"]), t(&g["end"]));
        let late = if g["cause"] == "watchpost_down" {
            // The start ends once the restarted process watches.
            secs(end, watching_at).abs().min(secs(end, to).abs())
        } else {
            secs(end, to).abs()
        };
        crate::support::figure(
            &format!(
                "coverage_edge_{}_start_s",
                g["cause"].as_str().unwrap_or("?")
            ),
            secs(start, from),
            "s",
        );
        crate::support::figure(
            &format!("coverage_edge_{}_end_s", g["cause"].as_str().unwrap_or("?")),
            secs(end, to),
            "s",
        );
        assert!(secs(start, from).abs() <= within, "start of {g} vs {from}");
        assert!(late <= within, "end of {g} vs {to}");
        assert!(!g["detail"].as_str().unwrap_or("").is_empty(), "{g}");
    }
    // The availability is the gaps over the interval.
    let sum: f64 = gaps
        .iter()
        .map(|g| secs(t(&g["end"]), t(&g["start"])))
        .sum();
    let unwatched = cam["unwatched_seconds"].as_f64().expect("unwatched");
    let watched = cam["watched_seconds"].as_f64().expect("watched");
    let availability = cam["availability"].as_f64().expect("availability");
    assert!((unwatched - sum).abs() < 0.01, "{unwatched} vs {sum}");
    // Over the known part: from when the camera was first stored.
    let known_from = if cam["since"].is_null() {
        t(&c["from"])
    } else {
        t(&cam["since"])
    };
    let window = secs(t(&c["to"]), known_from);
    assert!((watched + unwatched - window).abs() < 0.01, "{c}");
    assert!(
        (availability - (1.0 - sum / window)).abs() < 0.001,
        "{availability} vs 1 - {sum}/{window}"
    );

    // A window longer than the history: `since`, and the fraction over what is known.
    let a = json(format!("{}/api/system/availability?window=7d", wp.url())).await;
    let since = t(&a["since"]);
    assert!(
        since <= begin && since > Utc::now() - chrono::Duration::minutes(10),
        "{a}"
    );
    let porch = a["cameras"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["camera_id"] == "porch"))
        .expect("the porch in the availability");
    let known = secs(t(&a["to"]), t(&porch["since"]));
    let fraction = porch["availability"].as_f64().expect("a fraction");
    assert!(fraction < 1.0 && fraction > 0.0, "{porch}");
    assert!(
        (fraction - porch["watched_seconds"].as_f64().unwrap_or(0.0) / known).abs() < 0.001,
        "over the known part: {porch}"
    );
    let yolo = a["dependencies"]
        .as_array()
        .and_then(|d| d.iter().find(|d| d["name"] == "yolo26"))
        .expect("yolo26 in the availability");
    assert!(
        yolo["down_seconds"].as_f64().unwrap_or(0.0) >= 13.0,
        "{yolo}"
    );
    // The series, published once the history began: a ratio per camera and window.
    let m = eventually("the availability series", || async {
        let m = crate::support::metrics(&wp).await;
        m.contains("watchpost_camera_availability_ratio{camera=\"porch\",window=\"7d\"}")
            .then_some(m)
    })
    .await;
    assert!(
        m.contains("watchpost_dependency_availability_ratio{dependency=\"yolo26\",window=\"24h\"}"),
        "{m}"
    );
    crate::support::promtool_check_metrics(&m);
    sender.task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coverage_questions_out_of_bounds_get_a_clear_error() {
    let stack = Stack::new(&[]);
    let wp = stack.start(tempfile::tempdir().expect("dir"));
    watching(&wp).await;
    let base = wp.url();
    for (query, status) in [
        ("/api/system/availability?window=1y", 400),
        ("/api/system/coverage?camera=..%2Fetc", 400),
        ("/api/system/coverage?from=yesterday", 400),
        (
            "/api/system/coverage?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z",
            400,
        ),
        (
            "/api/system/coverage?from=2025-01-01T00:00:00Z&to=2026-01-01T00:00:00Z",
            400,
        ),
        ("/api/system/coverage?camera=nobody", 404),
    ] {
        let (code, body) = get(format!("{base}{query}")).await;
        assert_eq!(code, status, "{query}: {body}");
        assert!(
            body["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{query}: {body}"
        );
    }
    let (code, body) = get(format!("{base}/api/system/availability")).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["window"], "24h");
    assert!(
        body["dependencies"]
            .as_array()
            .is_some_and(|d| d.len() == 7),
        "{body}"
    );
}

/// The page draws each camera's 24 hours and 90 days, and the incidents, from the API:
/// a gap's cause is readable by pointing at it or selecting it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_draws_the_strips_the_days_and_the_incidents_from_the_api() {
    use crate::support::browser::Browser;
    let stack = Stack::new(&[
        ("WATCHPOST_ALERTS__FOR_WARNING_SECONDS", "0"),
        ("WATCHPOST_ALERTS__EVALUATE_INTERVAL_SECONDS", "0.2"),
        ("WATCHPOST_CAMERAS__CHECK_INTERVAL_SECONDS", "0.2"),
    ]);
    let wp = stack.start(tempfile::tempdir().expect("dir"));
    let root = wp.dir.path().join("cameras");
    watching(&wp).await;
    write_image(&root, "porch", "a.png");
    let coverage = format!("{}/api/system/coverage?camera=porch", wp.url());
    eventually("coverage knows the porch", || async {
        let (code, c) = get(&coverage).await;
        (code == 200 && c["cameras"][0]["availability"].is_number()).then_some(())
    })
    .await;

    let b = Browser::start(1280, 1400).await;
    b.goto(&format!("{}/", wp.url())).await;
    b.wait_for("#coverage li[data-key=\"porch\"] svg.strip")
        .await;

    // A gap: the porch disabled for a moment; an incident: YOLO26 refusing.
    let cam = |what: &str| format!("{}/api/system/cameras/porch/{what}", wp.url());
    assert_eq!(post(cam("disable"), None).await.0, 200);
    stack.ai.get("yolo26").set_mode(Mode::Status(503));
    let alerts = format!(
        "{}/api/system/alerts?state=firing&source=ai:yolo26",
        wp.url()
    );
    eventually("the YOLO26 alert fires", || async {
        let a = json(alerts.clone()).await;
        a["items"].as_array().filter(|i| !i.is_empty()).map(|_| ())
    })
    .await;
    // Held long enough for the recorder's look each second to see it.
    hold(2).await;
    assert_eq!(post(cam("enable"), None).await.0, 200);
    stack.ai.get("yolo26").set_mode(Mode::Normal);
    let api = eventually("the disabled gap, ended, in the API", || async {
        let (_, c) = get(&coverage).await;
        let gaps = c["cameras"][0]["gaps"].as_array()?.clone();
        gaps.iter()
            .any(|g| g["cause"] == "camera_disabled")
            .then_some(gaps)
    })
    .await;

    let gap = b
        .wait_for(
            "#coverage li[data-key=\"porch\"] svg.strip rect.gap[data-causes~=\"camera_disabled\"]",
        )
        .await;
    b.click(&gap).await;
    let detail = eventually("the gap's cause in words", || async {
        let t = b.text("#coverage-detail").await;
        t.contains("camera disabled").then_some(t)
    })
    .await;
    assert!(detail.contains("porch"), "{detail}");
    // As many gaps drawn in the strip as the API lists in the day.
    let drawn = |css: &'static str| {
        let b = &b;
        async move {
            b.execute(
                "return document.querySelectorAll(arguments[0]).length;",
                serde_json::json!([css]),
            )
            .await
            .as_u64()
            .unwrap_or(0)
        }
    };
    // Each gap the API lists is in a mark of the strip (gaps a few minutes apart
    // share one).
    let causes = b
        .execute(
            "return [...document.querySelectorAll(arguments[0])].map((r) => r.dataset.causes).join(' ');",
            serde_json::json!(["#coverage li[data-key=\"porch\"] svg.strip rect.gap"]),
        )
        .await;
    for g in &api {
        let cause = g["cause"].as_str().unwrap_or("?");
        assert!(
            causes.as_str().unwrap_or("").contains(cause),
            "{cause} not drawn: {causes}"
        );
    }
    assert_eq!(
        drawn("#coverage li[data-key=\"porch\"] svg.days rect.day").await,
        90
    );
    // Today's cell is not all green, and says why.
    let today = b
        .find("#coverage li[data-key=\"porch\"] svg.days rect.day[data-day=\"89\"]")
        .await
        .expect("today's cell");
    b.click(&today).await;
    let said = b.text("#coverage-detail").await;
    assert!(
        said.contains("% watched") && said.contains("camera disabled"),
        "{said}"
    );

    // The incident timeline: YOLO26's alerts, grouped, with how long and what.
    let incident = eventually("the YOLO26 incident", || async {
        let t = b.text("#incidents").await;
        t.contains("ai:yolo26").then_some(t)
    })
    .await;
    assert!(incident.contains("affected"), "{incident}");
    let errors: Vec<(String, String)> = b
        .console()
        .await
        .into_iter()
        .filter(|(level, _)| level == "SEVERE")
        // Full health answers 503 while YOLO26 (critical) refuses: the browser logs it.
        .filter(|(_, m)| !(m.contains("/api/system/health/full") && m.contains("status of 503")))
        .collect();
    assert!(errors.is_empty(), "console errors: {errors:?}");
}

/// The daily digest says yesterday's numbers, the same the API answers for that day,
/// and two instances on one database tell it once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daily_digest_tells_yesterday_as_the_api_does_once_across_two_instances() {
    use chrono::{Local, TimeZone};
    let rx = crate::support::notify::HttpReceiver::start().await;
    let due = Local::now() + chrono::Duration::seconds(25);
    let hooks = format!(
        "[{{name = \"day\", format = \"json\", url = \"{}\"}}]",
        rx.url("/day")
    );
    let at = due.format("%H:%M:%S").to_string();
    let stack = Stack::new(&[
        ("WATCHPOST_NOTIFY__WEBHOOKS", hooks.as_str()),
        ("WATCHPOST_NOTIFY__DIGEST_TIME", at.as_str()),
    ]);
    let root = tempfile::tempdir().expect("root");
    let a = stack.instance("a", root.path());
    let b = stack.instance("b", root.path());
    eventually("the schema", || async {
        (stack
            .pg
            .psql("select to_regclass('coverage_spans') is not null")
            == "t")
            .then_some(())
    })
    .await;

    // Yesterday, as the instances' local days go.
    let day = due.date_naive().pred_opt().expect("yesterday");
    let local = |h: u32, m: u32| {
        Local
            .from_local_datetime(&day.and_hms_opt(h, m, 0).expect("a time"))
            .earliest()
            .expect("a local time")
            .with_timezone(&Utc)
            .to_rfc3339()
    };
    let (y0, y1) = (local(0, 0), {
        Local
            .from_local_datetime(&due.date_naive().and_hms_opt(0, 0, 0).expect("midnight"))
            .earliest()
            .expect("a local time")
            .with_timezone(&Utc)
            .to_rfc3339()
    });
    stack.pg.psql(&format!(
        "insert into cameras (id, folder_name, created_at, last_seen_at)
           values ('porch', 'porch', now() - interval '3 days', now()) on conflict do nothing;
         insert into coverage_history (since) values (now() - interval '3 days')
           on conflict (one) do update set since = excluded.since;
         insert into coverage_spans (id, subject_kind, subject, cause, detail, started_at, ended_at) values
           ('s1', 'camera', 'porch', 'camera_offline', 'no image since 02:10', '{}', '{}'),
           ('s2', 'pipeline', '', 'detection_down', 'YOLO26 unavailable', '{}', '{}'),
           ('s3', 'pipeline', '', 'analysis_down', 'Nemotron unavailable', '{}', '{}');
         insert into events (batch_id, camera_id, started_at, ended_at, risk_score, risk_level, summary, reasoning, detection_ids) values
           ('b1', 'porch', '{}', '{}', 80, 'high', 's', 'r', '{{}}'),
           ('b2', 'porch', '{}', '{}', 75, 'high', 's', 'r', '{{}}'),
           ('b3', 'porch', '{}', '{}', 10, 'low', 's', 'r', '{{}}');
         insert into alerts (id, fingerprint, alertname, source, severity, summary, description, labels, started_at, ended_at) values
           ('a1', 'f1', 'WatchpostCameraOffline', 'camera:porch', 'warning', 's', 'd', '{{}}', '{}', '{}');",
        local(2, 10),
        local(2, 30),
        local(9, 0),
        local(9, 7),
        local(12, 0),
        local(12, 2),
        local(10, 0),
        local(10, 1),
        local(11, 0),
        local(11, 1),
        local(13, 0),
        local(13, 1),
        local(2, 12),
        local(2, 30),
    ));

    let digest = eventually_for_digest(&rx).await;
    // Both instances reached the time: one told it, the other saw it told.
    eventually("both instances past the digest", || async {
        let logs = format!("{}{}", a.log(), b.log());
        (logs.contains("daily digest told")
            && logs.contains("daily digest told by another instance"))
        .then_some(())
    })
    .await;
    let told: Vec<_> = rx
        .on("/day")
        .into_iter()
        .filter(|r| r.json()["notification"] == "digest")
        .collect();
    assert_eq!(told.len(), 1, "one digest across two instances");

    // The numbers of the API for that day.
    let (code, c) = get(format!(
        "{}/api/system/coverage?camera=porch&from={}&to={}",
        a.url(),
        urlencode(&y0),
        urlencode(&y1)
    ))
    .await;
    assert_eq!(code, 200, "{c}");
    let availability = c["cameras"][0]["availability"]
        .as_f64()
        .expect("a fraction");
    let text = digest["description"].as_str().unwrap_or("").to_string();
    assert!(
        text.contains(&format!("- porch: {:.2} %", availability * 100.0)),
        "{availability} in {text}"
    );
    assert!(
        text.contains("camera_offline") && text.contains("detection_down"),
        "{text}"
    );
    assert!(
        !text.contains("analysis_down"),
        "a 2-minute gap is not listed: {text}"
    );
    assert!(text.contains("Events: 2 high, 1 low"), "{text}");
    assert!(
        text.contains("Alerts fired: 1 WatchpostCameraOffline"),
        "{text}"
    );
    assert_eq!(digest["alertname"], "WatchpostDailyDigest");
}

async fn eventually_for_digest(rx: &crate::support::notify::HttpReceiver) -> Value {
    crate::support::eventually_for(Duration::from_secs(90), "the daily digest", || async {
        rx.on("/day")
            .into_iter()
            .map(|r| r.json())
            .find(|j| j["notification"] == "digest")
    })
    .await
}

fn urlencode(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}
