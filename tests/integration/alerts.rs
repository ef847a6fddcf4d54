//! The alert engine on the real binary, with real PostgreSQL and Redis and the fake AI:
//! one place decides (reads announce nothing), alerts fire without any reader, the
//! history survives a restart, and a PostgreSQL outage loses no transition.

use crate::support::{
    alerts, client, eventually, metric, metrics, next, of, subscribed, Stack, Watchpost, Ws,
};
use futures_util::StreamExt;
use serde_json::Value;

/// A short `for:` for warnings, so the tests wait seconds, not half a minute.
const FAST: [(&str, &str); 1] = [("WATCHPOST_ALERTS__FOR_WARNING_SECONDS", "1")];

/// Messages until one of `kind` about `source` arrives (it included).
async fn until(ws: &mut Ws, kind: &str, source: &str) -> Vec<Value> {
    let mut seen = Vec::new();
    loop {
        let m = next(ws)
            .await
            .unwrap_or_else(|| panic!("no {kind} for {source} among {seen:?}"));
        let done = m["type"] == kind && m["data"]["source"] == source;
        seen.push(m);
        if done {
            return seen;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_announce_nothing_and_an_alert_fires_with_no_reader_at_all() {
    let stack = Stack::new(&FAST);
    let wp = stack.start(tempfile::tempdir().expect("dir"));
    // Both channels a read could wrongly announce on.
    let mut ws = subscribed(&wp, &["alerts", "system"]).await;
    // Healthy first: nothing fires.
    eventually("the first evaluation, nothing firing", || async {
        let (s, page) = alerts(&wp, "").await;
        (s == 200 && page["items"] == serde_json::json!([])).then_some(())
    })
    .await;

    // No one reads health: the engine decides on the prober's own rounds.
    stack.ai.get("florence").refuse().await;
    let page = eventually("florence's alert, with no health reader", || async {
        let (_, page) = alerts(&wp, "").await;
        of(&page, "ai:florence").is_some().then_some(page)
    })
    .await;
    let a = of(&page, "ai:florence").expect("listed");
    assert_eq!(a["severity"], "warning");
    assert_eq!(a["alertname"], "WatchpostDependencyDown");
    assert_eq!(a["labels"]["dependency"], "florence");
    assert_eq!(a["state"], "firing");
    assert_eq!(a["stored"], true);
    assert!(a["duration_seconds"].as_f64() >= Some(0.0));

    // 200 reads of full health during the outage: still one alert.created.
    let url = format!("{}/api/system/health/full", wp.url());
    let reads = futures_util::stream::iter(0..200)
        .map(|_| {
            let url = url.clone();
            async move { client().get(url).send().await.map(|r| r.status().as_u16()) }
        })
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await;
    assert!(
        reads.iter().all(|r| matches!(r, Ok(200))),
        "degraded is 200"
    );
    let m = metrics(&wp).await;
    assert_eq!(
        metric(&m, "watchpost_alerts_firing{severity=\"warning\"}"),
        Some(1.0)
    );
    stack.ai.get("florence").accept().await;
    let seen = until(&mut ws, "alert.resolved", "ai:florence").await;
    let created: Vec<&Value> = seen
        .iter()
        .filter(|m| m["type"] == "alert.created" && m["data"]["source"] == "ai:florence")
        .collect();
    assert_eq!(created.len(), 1, "{seen:#?}");
    assert_eq!(created[0]["data"]["alert_id"], a["id"]);
    // Health is announced when it changes (degraded, then healthy again), never
    // because it was read: 200 reads announced nothing.
    let changes: Vec<(&Value, &Value)> = seen
        .iter()
        .filter(|m| m["type"] == "system.health_changed")
        .map(|m| (&m["data"]["status"], &m["data"]["mode"]))
        .collect();
    assert!(
        changes.len() <= 3 && changes.windows(2).all(|w| w[0] != w[1]),
        "{changes:?}"
    );
    assert!(
        changes.iter().any(|(s, _)| *s == "degraded"),
        "florence down was announced: {changes:?}"
    );
    assert_eq!(seen.last().expect("resolved")["data"]["alert_id"], a["id"]);
    let m = metrics(&wp).await;
    assert_eq!(
        metric(
            &m,
            "watchpost_alerts_total{severity=\"warning\",source_kind=\"ai\"}"
        ),
        Some(1.0)
    );

    // The history: resolved, with its duration; filters and their refusals.
    let (_, resolved) = alerts(&wp, "?state=resolved&source=ai").await;
    let r = of(&resolved, "ai:florence").expect("in the history");
    assert!(r["ended_at"].is_string() && r["duration_seconds"].as_f64() > Some(0.0));
    assert_eq!(resolved["pagination"]["total"], 1);
    let (_, none) = alerts(&wp, "?state=all&since=2999-01-01T00:00:00Z").await;
    assert_eq!(none["items"], serde_json::json!([]));
    for bad in [
        "?state=open",
        "?since=yesterday",
        "?source=a%20b",
        "?limit=0",
        "?limit=101",
        "?offset=-1",
    ] {
        let (s, body) = alerts(&wp, bad).await;
        assert_eq!(s, 400, "{bad}: {body}");
        assert!(body["detail"].is_string(), "{bad}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_a_firing_alert_and_resolves_it_once_the_cause_is_gone() {
    let stack = Stack::new(&FAST);
    let wp = stack.start(tempfile::tempdir().expect("dir"));
    let florence = stack.ai.get("florence").clone();
    florence.refuse().await;
    let before = eventually("florence's alert stored", || async {
        let (_, page) = alerts(&wp, "").await;
        of(&page, "ai:florence")
            .filter(|a| a["stored"] == true)
            .cloned()
    })
    .await;
    let dir = wp.stop();

    // The same problem after a restart: the same alert, not a new one.
    let wp = stack.start(dir);
    let mut ws = subscribed(&wp, &["alerts"]).await;
    eventually("the stored alert taken over and evaluated", || async {
        let m = metrics(&wp).await;
        (metric(&m, "watchpost_alerts_firing{severity=\"warning\"}") == Some(1.0)).then_some(())
    })
    .await;
    let m = metrics(&wp).await;
    assert_eq!(
        metric(
            &m,
            "watchpost_alerts_total{severity=\"warning\",source_kind=\"ai\"}"
        ),
        Some(0.0),
        "nothing fired anew in this run (every firing counts, and publishes alert.created)"
    );
    let (_, page) = alerts(&wp, "").await;
    let after = of(&page, "ai:florence").expect("still firing");
    assert_eq!(after["id"], before["id"]);
    assert_eq!(after["started_at"], before["started_at"]);
    let fp = before["fingerprint"].as_str().expect("fingerprint");
    assert_eq!(
        stack.count(&format!(
            "select count(*) from alerts where fingerprint = '{fp}'"
        )),
        1
    );

    florence.accept().await;
    let seen = until(&mut ws, "alert.resolved", "ai:florence").await;
    assert!(
        !seen.iter().any(|m| m["type"] == "alert.created"),
        "{seen:#?}"
    );
    assert_eq!(
        seen.last().expect("resolved")["data"]["alert_id"],
        before["id"]
    );
    let id = before["id"].as_str().expect("id");
    assert_eq!(
        stack.count(&format!(
            "select count(*) from alerts where id = '{id}' and ended_at is not null"
        )),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_outage_loses_no_transition() {
    let mut stack = Stack::new(&FAST);
    let wp = stack.start(tempfile::tempdir().expect("dir"));
    eventually("the history is reachable", || async {
        (alerts(&wp, "").await.0 == 200).then_some(())
    })
    .await;
    stack.pg.stop();
    let florence = stack.ai.get("florence").clone();
    florence.refuse().await;
    let memory = eventually("florence fires, listed from memory", || async {
        let (s, page) = alerts(&wp, "").await;
        (s == 503 && of(&page, "ai:florence").is_some()).then_some(page)
    })
    .await;
    assert_eq!(memory["from_memory"], true);
    assert!(memory["detail"]
        .as_str()
        .is_some_and(|d| d.contains("PostgreSQL")));
    assert_eq!(of(&memory, "ai:florence").expect("listed")["stored"], false);
    florence.accept().await;
    eventually("florence resolved (still in memory only)", || async {
        let (_, page) = alerts(&wp, "").await;
        of(&page, "ai:florence").is_none().then_some(())
    })
    .await;

    stack.pg.start_again();
    eventually("both of florence's transitions reach the table", || async {
        (stack.count(
            "select count(*) from alerts where source = 'ai:florence' and ended_at is not null",
        ) == 1)
            .then_some(())
    })
    .await;
    eventually(
        "and PostgreSQL's own alert, opened and closed while it was away",
        || async {
            (stack.count(
                "select count(*) from alerts where source = 'postgres' and ended_at is not null",
            ) == 1)
                .then_some(())
        },
    )
    .await;
    let (s, page) = alerts(&wp, "?state=resolved").await;
    assert_eq!(s, 200);
    assert_eq!(page["pagination"]["total"], 2, "{page}");
}

/// POST a silence; its status and answer.
async fn silence(wp: &Watchpost, body: &Value) -> (u16, Value) {
    let r = client()
        .post(format!("{}/api/system/alerts/silences", wp.url()))
        .json(body)
        .send()
        .await
        .expect("POST silence");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Item 8 of the integrity review: a far-future `starts_at` panicked the request;
/// 1,200 concurrent creates gave 1,001 × 201 against the 1,000 limit; ended rows were
/// never deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silences_are_bounded_in_time_and_number_and_ended_ones_go_after_a_week() {
    let stack = Stack::new(&[]);
    let wp = stack.start(tempfile::tempdir().expect("dir"));
    let (status, answer) = silence(
        &wp,
        &serde_json::json!({"matchers": {"source": "ai:clip"}, "starts_at": "+262142-12-31T23:30:00Z"}),
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["detail"]
            .as_str()
            .is_some_and(|d| d.contains("starts_at")),
        "{answer}"
    );

    // 1,200 creates at once, 100 in flight at a time.
    let results: Vec<u16> = futures_util::stream::iter(0..1200)
        .map(|n| {
            let wp = &wp;
            async move {
                let body = serde_json::json!({"matchers": {"camera": format!("cam{n}")}});
                silence(wp, &body).await.0
            }
        })
        .buffer_unordered(100)
        .collect()
        .await;
    let count = |s: u16| results.iter().filter(|r| **r == s).count();
    assert_eq!((count(201), count(409)), (1000, 200), "{results:?}");
    assert_eq!(stack.count("select count(*) from silences"), 1000);

    // Ended rows: one a week and a day ago goes, one two days ago stays (listed).
    for (id, days) in [
        ("00000000-0000-0000-0000-00000000000a", 8),
        ("00000000-0000-0000-0000-00000000000b", 2),
    ] {
        stack.pg.psql(&format!(
            "insert into silences (id, matchers, starts_at, ends_at, comment, created_at, remote)
             values ('{id}', '{{\"source\": \"x\"}}', now() - interval '{} days', now() - interval '{days} days', '', now(), '{{}}')",
            days + 1
        ));
    }
    let dir = wp.stop();
    let wp = stack.start(dir);
    eventually("the week-old silence deleted", || async {
        (stack.count(
            "select count(*) from silences where id = '00000000-0000-0000-0000-00000000000a'",
        ) == 0)
            .then_some(())
    })
    .await;
    assert_eq!(
        stack.count(
            "select count(*) from silences where id = '00000000-0000-0000-0000-00000000000b'"
        ),
        1
    );
    let listed: Value = client()
        .get(format!("{}/api/system/alerts/silences", wp.url()))
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("json");
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(1001));
}

/// Silences live in PostgreSQL: while it is away they can be neither listed nor made
/// (503, nothing changed); one made before a restart holds after it (read back at
/// start).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silences_wait_for_postgres_and_are_read_back_at_start() {
    let mut stack = Stack::new(&FAST);
    let wp = stack.start(tempfile::tempdir().expect("dir"));
    let (status, made) = silence(
        &wp,
        &serde_json::json!({"matchers": {"source": "ai:clip"}, "duration_seconds": 3600}),
    )
    .await;
    assert_eq!(status, 201, "{made}");
    stack.pg.stop();
    let (status, answer) = silence(&wp, &serde_json::json!({"matchers": {"source": "ai:x"}})).await;
    assert_eq!(status, 503, "{answer}");
    assert!(answer["detail"]
        .as_str()
        .is_some_and(|d| d.contains("nothing was changed")));
    let r = client()
        .get(format!("{}/api/system/alerts/silences", wp.url()))
        .send()
        .await
        .expect("GET");
    assert_eq!(r.status(), 503);
    stack.pg.start_again();
    // A restart: the silence is read back, and clip's alert fires silenced.
    let dir = wp.stop();
    let wp = stack.start(dir);
    stack
        .ai
        .get("clip")
        .set_mode(crate::support::fake_ai::Mode::Status(503));
    let a = eventually("clip's alert, silenced", || async {
        let (_, page) = alerts(&wp, "?source=ai:clip").await;
        of(&page, "ai:clip")
            .filter(|a| a["silenced_by"].as_array().is_some_and(|s| !s.is_empty()))
            .cloned()
    })
    .await;
    assert_eq!(a["silenced_by"], serde_json::json!([made["id"].clone()]));
    assert_eq!(
        stack.count("select count(*) from silences"),
        1,
        "the refused one was not stored"
    );
}

/// The alerts of a worker that is not running and of an open breaker fire like any
/// other, with their names and subjects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_worker_and_an_open_breaker_raise_their_alerts() {
    let stack = Stack::new(&FAST);
    let wp = stack.start(tempfile::tempdir().expect("dir"));
    let r = client()
        .post(format!(
            "{}/api/system/supervisor/workers/cleanup_service/stop",
            wp.url()
        ))
        .send()
        .await
        .expect("stop");
    assert_eq!(r.status(), 200);
    let worker = eventually("the worker's alert", || async {
        let (_, page) = alerts(&wp, "?source=worker:cleanup_service").await;
        of(&page, "worker:cleanup_service").cloned()
    })
    .await;
    assert_eq!(worker["alertname"], "WatchpostWorkerNotRunning");
    assert_eq!(worker["labels"]["worker"], "cleanup_service");
    // YOLO26 fails every detection: its breaker opens.
    stack
        .ai
        .get("yolo26")
        .set_route_mode("detect", crate::support::fake_ai::Mode::Status(500));
    let root = wp.dir.path().join("cameras");
    for i in 0..10 {
        crate::support::write_image(&root, "porch", &format!("p{i}.png"));
    }
    let breaker = eventually("the breaker's alert", || async {
        let (_, page) = alerts(&wp, "?source=breaker").await;
        page["items"]
            .as_array()?
            .iter()
            .find(|a| a["alertname"] == "WatchpostCircuitBreakerOpen")
            .cloned()
    })
    .await;
    assert_eq!(breaker["labels"]["breaker"], "yolo26");
}
