//! Health and live events against real PostgreSQL and Redis and the fake AI server:
//! full health and readiness, the event registry, and the WebSocket hub (channels,
//! schemas, slow clients, Redis outages, two instances on one Redis).

use crate::support::fake_ai::Mode;
use crate::support::{client, eventually, get, wait_rows, write_image, Stack, Watchpost, Ws};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

async fn connect(wp: &Watchpost, channels: &[&str]) -> Ws {
    let mut ws = subscribe(wp.port, channels).await;
    let ack = next_json(&mut ws).await.expect("ack");
    assert_eq!(ack["type"], "system.subscribed", "{ack}");
    ws
}

/// Open a socket on `port` and send a subscribe (its answer is left unread).
async fn subscribe(port: u16, channels: &[&str]) -> Ws {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/ws"))
        .await
        .expect("websocket");
    let msg = serde_json::json!({"action": "subscribe", "channels": channels}).to_string();
    ws.send(Message::Text(msg.into())).await.expect("send");
    ws
}

/// The next JSON message within the patience, or `None`.
async fn next_json(ws: &mut Ws) -> Option<Value> {
    let deadline = Instant::now() + crate::support::patience();
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        match tokio::time::timeout(left, ws.next()).await.ok()?? {
            Ok(Message::Text(t)) => return serde_json::from_str(&t).ok(),
            Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => continue,
            _ => return None,
        }
    }
}

/// Read messages until one of type `kind` arrives; every message read is returned too.
async fn until_type(ws: &mut Ws, kind: &str) -> (Value, Vec<Value>) {
    let mut seen = Vec::new();
    loop {
        let m = next_json(ws)
            .await
            .unwrap_or_else(|| panic!("no {kind} among {seen:?}"));
        if m["type"] == kind {
            return (m, seen);
        }
        seen.push(m);
    }
}

fn ai_status<'a>(h: &'a Value, name: &str) -> &'a Value {
    h["ai_services"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["name"] == name))
        .unwrap_or(&Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_health_follows_the_contract_rules() {
    let mut stack = Stack::new(&[("WATCHPOST_HEALTH__PROBE_TIMEOUT_SECONDS", "1")]);
    let wp = stack.start(tempfile::tempdir().expect("dir"));
    let url = format!("{}/api/system/health/full", wp.url());

    let (code, h) = eventually("healthy", || {
        let url = url.clone();
        async move {
            let (c, h) = get(url).await;
            (h["status"] == "healthy").then_some((c, h))
        }
    })
    .await;
    assert_eq!(code, 200);
    assert_eq!(h["ready"], true);
    assert_eq!(h["message"], "All systems operational");
    assert_eq!(h["postgres"]["name"], "postgres");
    assert_eq!(
        h["redis"]["details"]["redis_version"]
            .as_str()
            .map(|v| v.contains('.')),
        Some(true)
    );
    assert_eq!(h["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(h["circuit_breakers"]["total"], 5);
    assert_eq!(h["circuit_breakers"]["breakers"]["yolo26"], "closed");
    let yolo = ai_status(&h, "yolo26");
    assert_eq!(yolo["display_name"], "YOLO26 Object Detection");
    assert!(yolo["response_time_ms"].as_f64().is_some() && yolo["last_check"].is_string());
    let workers = h["workers"].as_array().expect("workers");
    assert!(workers
        .iter()
        .any(|w| w["name"] == "file_watcher" && w["critical"] == true && w["running"] == true));
    assert!(workers.iter().all(|w| w["running"] == true), "{workers:?}");

    // A non-critical service down: degraded, still ready.
    stack.ai.get("florence").refuse().await;
    let (code, h) = eventually("degraded", || {
        let url = url.clone();
        async move {
            let (c, h) = get(url).await;
            (h["status"] == "degraded").then_some((c, h))
        }
    })
    .await;
    assert_eq!((code, h["ready"].as_bool()), (200, Some(true)), "{h}");
    assert_eq!(ai_status(&h, "florence")["error"], "Connection refused");
    assert!(h["message"]
        .as_str()
        .is_some_and(|m| m.contains("florence")));
    stack.ai.get("florence").accept().await;

    // A hanging critical service: every request is answered (the probe is bounded by
    // its timeout, which the answer names), never held by the hung service.
    stack.ai.get("yolo26").set_route_mode("health", Mode::Hang);
    let slowest = std::sync::Mutex::new(Duration::ZERO);
    let (code, h) = eventually("yolo26 reported unhealthy", || {
        let (url, slowest) = (url.clone(), &slowest);
        async move {
            let started = Instant::now();
            let (c, h) = get(url).await;
            let mut s = slowest.lock().expect("lock");
            *s = (*s).max(started.elapsed());
            (ai_status(&h, "yolo26")["status"] == "unhealthy").then_some((c, h))
        }
    })
    .await;
    let slowest = *slowest.lock().expect("lock");
    crate::support::figure(
        "full_health_slowest_answer_with_a_hung_service",
        slowest.as_secs_f64(),
        "s",
    );
    assert_eq!(code, 503);
    assert_eq!(h["status"], "unhealthy");
    assert_eq!(ai_status(&h, "yolo26")["error"], "Timeout after 1s");
    assert!(h["message"].as_str().is_some_and(|m| m.contains("yolo26")));
    stack.ai.get("yolo26").set_mode(Mode::Normal);

    // PostgreSQL and Redis down: unhealthy, naming them.
    stack.pg.stop();
    stack.redis.stop();
    let h = eventually("postgres and redis reported down", || {
        let url = url.clone();
        async move {
            let (c, h) = get(url).await;
            (c == 503
                && h["postgres"]["status"] == "unhealthy"
                && h["redis"]["status"] == "unhealthy")
                .then_some(h)
        }
    })
    .await;
    let message = h["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("postgres") && message.contains("redis"),
        "{message}"
    );
    stack.pg.start_again();
    stack.redis.start_again();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_callers_share_probe_rounds_and_ready_flips_with_postgres() {
    let mut stack = Stack::new(&[
        ("WATCHPOST_DEGRADATION__CHECK_INTERVAL_SECONDS", "600"),
        ("WATCHPOST_HEALTH__CACHE_TTL_SECONDS", "1"),
    ]);
    let wp = stack.start(tempfile::tempdir().expect("dir"));
    let url = format!("{}/api/system/health/full", wp.url());
    get(url.clone()).await;
    let florence = stack.ai.get("florence").clone();
    let before = florence.counters().health.load(Ordering::SeqCst);
    let calls = (0..100).map(|_| get(url.clone()));
    let answers = futures_util::future::join_all(calls).await;
    assert!(answers.iter().all(|(c, _)| *c == 200));
    let rounds = florence.counters().health.load(Ordering::SeqCst) - before;
    assert!(
        rounds <= 3,
        "100 concurrent requests caused {rounds} probe rounds"
    );

    // Readiness reads the cached round; it flips once a round sees PostgreSQL down.
    let ready = format!("{}/ready", wp.url());
    eventually("ready", || {
        let ready = ready.clone();
        async move { (get(ready).await.0 == 200).then_some(()) }
    })
    .await;
    stack.pg.stop();
    let body = eventually("not ready without postgres", || {
        let (ready, url) = (ready.clone(), url.clone());
        async move {
            get(url).await; // a new round (readiness itself never probes)
            let (c, b) = get(ready).await;
            (c == 503).then_some(b)
        }
    })
    .await;
    assert_eq!(body["ready"], false);
    assert_eq!(body["status"], "not_ready");
    assert!(
        body["reasons"][0]
            .as_str()
            .is_some_and(|r| r.starts_with("postgres")),
        "{body}"
    );
    stack.pg.start_again();
    eventually("ready again", || {
        let (ready, url) = (ready.clone(), url.clone());
        async move {
            get(url).await;
            let (c, b) = get(ready).await;
            (c == 200 && b["checks"]["database"]["status"] == "healthy").then_some(())
        }
    })
    .await;
    let (code, alias) = get(format!("{}/api/system/health/ready", wp.url())).await;
    assert_eq!((code, alias["ready"].as_bool()), (200, Some(true)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribed_clients_receive_their_channels_with_registered_schemas() {
    let stack = Stack::new(&[]);
    let wp = stack.start(tempfile::tempdir().expect("dir"));
    let (code, registry) = get(format!("{}/api/system/websocket/events", wp.url())).await;
    assert_eq!(code, 200);
    let types = registry["event_types"].as_array().expect("types");
    assert_eq!(registry["total_count"].as_u64(), Some(types.len() as u64));
    assert_eq!(registry["deprecated_count"], 2);
    assert_eq!(registry["channels"].as_array().map(Vec::len), Some(6));
    let schemas: HashMap<String, jsonschema::Validator> = types
        .iter()
        .map(|t| {
            let name = t["type"].as_str().expect("type").to_string();
            let v = jsonschema::validator_for(&t["payload_schema"])
                .unwrap_or_else(|e| panic!("{name}: invalid schema: {e}"));
            assert!(
                v.is_valid(&t["example"]),
                "{name}: its example does not validate"
            );
            (name, v)
        })
        .collect();
    let channel_of: HashMap<String, String> = types
        .iter()
        .map(|t| {
            (
                t["type"].as_str().unwrap_or_default().to_string(),
                t["channel"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();

    let mut events = connect(&wp, &["events", "detections", "cameras", "system", "jobs"]).await;
    let mut system = connect(&wp, &["system"]).await;
    write_image(&wp.dir.path().join("cameras"), "Porch", "a.png");
    let (created, seen) = until_type(&mut events, "event.created").await;
    assert_eq!(created["data"]["camera_id"], "porch");
    assert_eq!(created["channel"], "events");
    for m in seen.iter().chain([&created]) {
        let kind = m["type"].as_str().expect("type");
        let v = schemas
            .get(kind)
            .unwrap_or_else(|| panic!("unregistered type {kind}"));
        assert!(
            v.is_valid(&m["data"]),
            "{kind} does not match its schema: {m}"
        );
        assert_eq!(
            m["channel"].as_str(),
            channel_of.get(kind).map(String::as_str),
            "{m}"
        );
    }
    assert!(
        seen.iter().any(|m| m["type"] == "detection.new"),
        "{seen:?}"
    );
    // The system-only client sees system traffic (status every 5 s) and no pipeline event.
    let (status, system_seen) = until_type(&mut system, "system.status").await;
    assert!(schemas["system.status"].is_valid(&status["data"]));
    for m in system_seen.iter().chain([&status]) {
        assert_eq!(m["channel"], "system", "{m}");
    }
    // Bad requests get an error on the socket, not a disconnect.
    system
        .send(Message::Text(
            r#"{"action":"subscribe","channels":["weather"]}"#.into(),
        ))
        .await
        .expect("send");
    let (err, _) = until_type(&mut system, "system.error").await;
    assert_eq!(err["data"]["code"], "unknown_channel");
    assert!(schemas["system.error"].is_valid(&err["data"]));
    system
        .send(Message::Text("{}".into()))
        .await
        .expect("still open");
    let (err, _) = until_type(&mut system, "system.error").await;
    assert_eq!(err["data"]["code"], "invalid_json");
    wait_rows(&stack, "events", 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_dropped_and_the_others_keep_receiving() {
    let dir = tempfile::tempdir().expect("dir");
    let mut cfg = crate::support::base_config(dir.path());
    cfg.websocket.client_buffer = 16;
    let service = watchpost::Service::start(cfg).await.expect("start");
    let port = service.local_addr().port();
    let stuck = subscribe(port, &["cameras"]).await;
    let mut reader = subscribe(port, &["cameras"]).await;
    let state = service.state().clone();
    eventually("both subscribed", || {
        let state = state.clone();
        async move { (state.hub.client_count() == 2).then_some(()) }
    })
    .await;
    next_json(&mut reader).await; // the ack
                                  // `stuck` never reads again. Large messages fill its socket, then its queue.
    let folder = "x".repeat(64 * 1024);
    let mut received = 0;
    let mut sent = 0;
    let deadline = Instant::now() + crate::support::patience();
    while state.hub.client_count() == 2 {
        assert!(
            Instant::now() < deadline,
            "the stuck client was never dropped"
        );
        for _ in 0..16 {
            state
                .events
                .publish(watchpost::events::Event::CameraStatusChanged(
                    watchpost::events::CameraStatusChanged {
                        camera_id: format!("cam{sent}"),
                        status: watchpost::events::CameraStatus::Online,
                        previous_status: None,
                        reason: "first image from this folder".into(),
                        folder: folder.clone(),
                    },
                ));
            sent += 1;
        }
        while received < sent {
            let Some(m) = next_json(&mut reader).await else {
                break;
            };
            if m["type"] == "camera.status_changed" {
                received += 1;
            }
        }
    }
    assert_eq!(received, sent, "the reading client received every message");
    // Which guard drops it first depends on the machine's pace: its queue filling
    // (`slow`), a write to its full socket timing out, or its missing pongs. Exactly one
    // drop, for one of those reasons, and none counted as a clean close.
    let text = service.state().metrics.render();
    let dropped = |reason: &str| -> u64 {
        let series = format!("watchpost_websocket_clients_dropped_total{{reason=\"{reason}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(series.as_str()))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {series} in the metrics"))
    };
    assert_eq!(
        dropped("slow") + dropped("write_timeout") + dropped("unresponsive"),
        1,
        "the stuck client counted once as a stuck client"
    );
    assert_eq!(dropped("closed"), 0, "nobody closed cleanly yet");
    // And the reader still receives after the drop.
    state
        .events
        .publish(watchpost::events::Event::CameraStatusChanged(
            watchpost::events::CameraStatusChanged {
                camera_id: "after".into(),
                status: watchpost::events::CameraStatus::Online,
                previous_status: None,
                reason: "first image from this folder".into(),
                folder: "after".into(),
            },
        ));
    loop {
        let m = next_json(&mut reader).await.expect("still receiving");
        if m["data"]["camera_id"] == "after" {
            break;
        }
    }
    drop(stuck);
    service.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_down_local_clients_still_get_events_and_the_broadcaster_recovers() {
    let mut stack = Stack::new(&[("WATCHPOST_BREAKER__RECOVERY_TIMEOUT_SECONDS", "1")]);
    let wp = stack.start(tempfile::tempdir().expect("dir"));
    let mut ws = connect(&wp, &["cameras"]).await;
    let health = format!("{}/api/system/health/websocket", wp.url());
    eventually("event broadcaster subscribed", || {
        let health = health.clone();
        async move {
            let (_, h) = get(health).await;
            (h["event_broadcaster"]["state"] == "closed"
                && h["event_broadcaster"]["is_degraded"] == false)
                .then_some(())
        }
    })
    .await;
    let (_, h) = get(health.clone()).await;
    assert_eq!(h["system_broadcaster"]["state"], "closed", "{h}");

    stack.redis.stop();
    let root = wp.dir.path().join("cameras");
    for i in 0..6 {
        // A camera is known from its first image.
        write_image(&root, &format!("cam{i}"), "first.png");
        let (m, _) = until_type(&mut ws, "camera.status_changed").await;
        assert_eq!(
            m["data"]["camera_id"],
            format!("cam{i}"),
            "local delivery with Redis down"
        );
    }
    // Events are relayed a quarter second's worth per PUBLISH: the breaker opens
    // after its threshold of failed ones, however many events they carried.
    // A new camera's first image per poll (an event to relay), until the relay's
    // breaker is in `state`.
    let relay_until = |what: &'static str, state: &'static str, degraded: bool| {
        let (health, root) = (health.clone(), root.clone());
        let mut n = 0;
        eventually(what, move || {
            let (health, root) = (health.clone(), root.clone());
            n += 1;
            let camera = format!("{state}{n}");
            async move {
                write_image(&root, &camera, "first.png");
                let (_, h) = get(health).await;
                (h["event_broadcaster"]["state"] == state
                    && (!degraded || h["event_broadcaster"]["is_degraded"] == true))
                    .then_some(())
            }
        })
    };
    relay_until("the event broadcaster's breaker opens", "open", true).await;
    stack.redis.start_again();
    relay_until("the event broadcaster closes again", "closed", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_of_one_instance_receives_the_events_of_another() {
    let stack = Stack::new(&[]);
    let shared = tempfile::tempdir().expect("shared camera root");
    let a = stack.instance("a", shared.path());
    let b = stack.instance("b", shared.path());
    // B does no pipeline work: whatever reaches its client came from A through Redis.
    for worker in [
        "file_watcher",
        "detection_worker",
        "analysis_worker",
        "batch_aggregator",
    ] {
        let r = client()
            .post(format!(
                "{}/api/system/supervisor/workers/{worker}/stop",
                b.url()
            ))
            .send()
            .await
            .expect("stop");
        assert_eq!(r.status().as_u16(), 200);
    }
    let b_health = format!("{}/api/system/health/websocket", b.url());
    eventually("B subscribed to Redis", || {
        let h = b_health.clone();
        async move { (get(h).await.1["event_broadcaster"]["is_degraded"] == false).then_some(()) }
    })
    .await;
    let mut ws = connect(&b, &["events"]).await;
    write_image(shared.path(), "gate", "a.png");
    let (created, _) = until_type(&mut ws, "event.created").await;
    assert_eq!(created["data"]["camera_id"], "gate");
    drop(a);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_clients_are_bounded_by_max_clients() {
    let wp = Watchpost::start(&[("WATCHPOST_WEBSOCKET__MAX_CLIENTS", "2")]);
    let first = connect(&wp, &["system"]).await;
    let _second = connect(&wp, &["system"]).await;
    match tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{}/ws", wp.port)).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status().as_u16(), 503);
            let body = String::from_utf8_lossy(resp.body().as_deref().unwrap_or_default());
            assert!(body.contains("websocket.max_clients"), "{body}");
        }
        Err(e) => panic!("expected a 503 answer, got {e}"),
        Ok(_) => panic!("a third client was accepted"),
    }
    // A place frees up when a client leaves.
    drop(first);
    eventually("a freed place is taken", || async {
        tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{}/ws", wp.port))
            .await
            .ok()
            .map(|_| ())
    })
    .await;
}
