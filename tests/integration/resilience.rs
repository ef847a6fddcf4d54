//! Circuit breakers, AI clients and the degradation manager against the fake AI
//! server (refusing, 500, slow, hanging, 400) and a real Redis.

use crate::support::fake_ai::{FakeAiStack, Mode};
use crate::support::{client, eventually, Redis};
use bytes::Bytes;
use serde_json::Value;
use std::sync::atomic::Ordering;
use watchpost::ai::{AiError, RiskLevel, FALLBACK_SUMMARY};
use watchpost::health::degradation::Mode as DegMode;
use watchpost::{Config, Service};

fn config(
    stack: &FakeAiStack,
    redis_url: &str,
    keys: &[&str],
    check_interval: f64,
) -> (Config, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut c = crate::support::base_config(dir.path());
    c.redis.url = redis_url.into();
    for (name, url) in stack
        .services
        .iter()
        .map(|s| (s.name().to_string(), s.url()))
    {
        match name.as_str() {
            "yolo26" => c.ai.yolo26.url = url,
            "nemotron" => c.ai.nemotron.url = url,
            "florence" => c.ai.florence.url = url,
            "clip" => c.ai.clip.url = url,
            _ => c.ai.enrichment.url = url,
        }
    }
    c.ai.retry_base_seconds = 0.02;
    c.ai.detect_timeout_seconds = 0.5;
    c.ai.analysis_timeout_seconds = 0.5;
    c.health.probe_timeout_seconds = 0.3;
    c.breaker.recovery_timeout_seconds = 0.3;
    c.degradation.check_interval_seconds = check_interval;
    c.auth.api_keys = keys.iter().map(|k| k.to_string()).collect();
    (c, dir)
}

/// A fake AI stack, a real Redis and the service pointed at both, after the
/// degradation manager's first round (`check_interval` seconds between rounds).
struct Setup {
    stack: FakeAiStack,
    redis: Redis,
    service: Service,
    _dir: tempfile::TempDir,
}

async fn setup(keys: &[&str], check_interval: f64) -> Setup {
    let stack = FakeAiStack::start();
    let redis = Redis::start();
    let (cfg, dir) = config(&stack, &redis.url(), keys, check_interval);
    let service = Service::start(cfg).await.expect("start");
    first_round_done(&service).await;
    Setup {
        stack,
        redis,
        service,
        _dir: dir,
    }
}

fn png() -> Bytes {
    Bytes::from(crate::harness::tiny_png(640, 480, 12_000))
}

/// Wait for the degradation manager's first round (so health checks do not race the
/// counts a test asserts).
async fn first_round_done(service: &Service) {
    let state = service.state().clone();
    eventually("first degradation round", || {
        let state = state.clone();
        async move {
            let snap = state.degradation.snapshot();
            snap.services
                .iter()
                .all(|s| s.last_check.is_some())
                .then_some(())
        }
    })
    .await;
}

async fn breakers(base: &str) -> Value {
    client()
        .get(format!("{base}/api/system/circuit-breakers"))
        .send()
        .await
        .expect("GET breakers")
        .json()
        .await
        .expect("json")
}

fn breaker<'a>(all: &'a Value, name: &str) -> &'a Value {
    all["circuit_breakers"]
        .get(name)
        .filter(|b| b["name"] == name)
        .unwrap_or_else(|| panic!("{name} missing in {all}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detection_retries_then_the_breaker_opens_and_rejects() {
    let Setup {
        stack,
        redis: _redis,
        service,
        _dir,
    } = setup(&["k"], 3600.0).await;
    let base = format!("http://{}", service.local_addr());
    let ai = service.state().ai.clone();
    let yolo = stack.get("yolo26");

    let ok = ai.detect(png(), "a.png").await.expect("detect");
    assert_eq!(
        ok.detections.len(),
        1,
        "the 0.30 car is below the 0.5 threshold"
    );
    assert_eq!(ok.detections[0].object_type, "person");

    yolo.set_mode(Mode::Status(500));
    let before = yolo.counters().detect.load(Ordering::SeqCst);
    let err = ai.detect(png(), "a.png").await.expect_err("500s");
    assert!(matches!(err, AiError::Unavailable { .. }), "{err}");
    assert_eq!(
        yolo.counters().detect.load(Ordering::SeqCst) - before,
        3,
        "three attempts"
    );
    // Two more failures reach the threshold of 5; the third attempt is rejected.
    let err = ai.detect(png(), "a.png").await.expect_err("opens");
    assert!(matches!(err, AiError::CircuitOpen { .. }), "{err}");
    assert_eq!(yolo.counters().detect.load(Ordering::SeqCst) - before, 5);
    let err = ai.detect(png(), "a.png").await.expect_err("rejected");
    assert!(matches!(err, AiError::CircuitOpen { .. }));
    assert_eq!(
        yolo.counters().detect.load(Ordering::SeqCst) - before,
        5,
        "no call while open"
    );

    let all = breakers(&base).await;
    assert_eq!(
        (all["total_count"].as_u64(), all["open_count"].as_u64()),
        (Some(5), Some(1))
    );
    // Keyed by name, in registry order (checked on the text: a parsed map sorts).
    let text = crate::support::get_text(format!("{base}/api/system/circuit-breakers")).await;
    let at: Vec<usize> = ["yolo26", "nemotron", "florence", "clip", "enrichment"]
        .iter()
        .map(|n| text.find(&format!("\"{n}\":{{")).expect("keyed by name"))
        .collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "registry order: {text}");
    let b = breaker(&all, "yolo26");
    assert_eq!(b["state"], "open");
    assert_eq!(b["failure_count"], 5);
    assert_eq!(b["rejected_calls"], 2);
    assert!(b["total_calls"].as_u64().is_some_and(|n| n >= 8), "{b}");
    for key in ["last_failure_time", "opened_at"] {
        assert!(b[key].as_f64().is_some_and(|t| t > 1.7e9), "{key}: {b}");
    }
    assert!(breaker(&all, "nemotron")["opened_at"].is_null());
    for key in ["last_failure", "last_state_change"] {
        assert!(
            b[key]
                .as_str()
                .is_some_and(|t| t.ends_with('Z') && t.contains('T')),
            "{key}: {b}"
        );
    }
    assert_eq!(
        b["config"],
        serde_json::json!({"failure_threshold": 5, "recovery_timeout": 0.3, "half_open_max_calls": 3, "success_threshold": 2, "recovery_timeout_seconds": 0.3})
    );
    assert_eq!(breaker(&all, "nemotron")["state"], "closed");

    // After the recovery timeout a healthy service closes the breaker again.
    yolo.set_mode(Mode::Normal);
    let breaker_handle = service
        .state()
        .breakers
        .get("yolo26")
        .expect("breaker")
        .clone();
    eventually("yolo26 breaker closes after recovery", || {
        let (ai, b) = (ai.clone(), breaker_handle.clone());
        async move {
            let _ = ai.detect(png(), "a.png").await;
            (b.state().as_str() == "closed").then_some(())
        }
    })
    .await;
    assert_eq!(breaker(&breakers(&base).await, "yolo26")["state"], "closed");
    service.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_errors_are_not_retried_and_do_not_count() {
    let Setup {
        stack,
        redis: _redis,
        service,
        _dir,
    } = setup(&[], 3600.0).await;
    let ai = service.state().ai.clone();
    let yolo = stack.get("yolo26");
    let before = yolo.counters().detect.load(Ordering::SeqCst);
    // A real 400 from the fake: not an image.
    for _ in 0..8 {
        let err = ai
            .detect(Bytes::from_static(b"plain text"), "a.jpg")
            .await
            .expect_err("400");
        assert!(
            matches!(err, AiError::BadRequest { status: 400, .. }),
            "{err}"
        );
    }
    assert_eq!(
        yolo.counters().detect.load(Ordering::SeqCst) - before,
        8,
        "no retries on 4xx"
    );
    let b = service
        .state()
        .breakers
        .get("yolo26")
        .expect("breaker")
        .snapshot();
    assert_eq!((b.state.as_str(), b.failure_count), ("closed", 0));
    service.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_refused_and_hanging_services_behave_within_their_timeouts() {
    let Setup {
        stack,
        redis: _redis,
        service,
        _dir,
    } = setup(&[], 3600.0).await;
    let ai = service.state().ai.clone();
    let yolo = stack.get("yolo26");
    // Slow but within the timeout: just slower.
    yolo.set_mode(Mode::Slow(std::time::Duration::from_millis(150)));
    ai.detect(png(), "a.png")
        .await
        .expect("slow answer within the timeout");
    yolo.set_mode(Mode::Hang);
    match ai.detect(png(), "a.png").await {
        Err(AiError::Unavailable { why, .. }) => assert!(why.contains("timed out"), "{why}"),
        other => panic!("expected a timeout, got {other:?}"),
    }
    yolo.set_mode(Mode::Normal);
    yolo.refuse().await;
    // A refused connection is reported as one. (The three timeouts above already
    // counted against the breaker, which would open on the fifth failure: start from a
    // closed, zeroed breaker so the refusals are what this call reports.)
    let breaker = service.state().breakers.get("yolo26").expect("breaker");
    breaker.reset();
    match ai.detect(png(), "a.png").await {
        Err(AiError::Unavailable { why, .. }) => {
            assert!(why.contains("connection failed"), "{why}")
        }
        other => panic!("expected a connection failure, got {other:?}"),
    }
    // Two more calls (six refused attempts) pass the threshold of five failures: the
    // breaker opened (`opened_at` stays set through half-open, whatever the timing).
    breaker.reset();
    for _ in 0..2 {
        let _ = ai.detect(png(), "a.png").await;
    }
    assert!(
        breaker.snapshot().opened_at.is_some(),
        "five failures open the breaker"
    );
    yolo.accept().await;
    service.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn breaker_reset_needs_the_key_and_reports_the_previous_state() {
    let Setup {
        stack,
        redis: _redis,
        service,
        _dir,
    } = setup(&["resetkey"], 3600.0).await;
    let base = format!("http://{}", service.local_addr());
    stack.get("nemotron").set_mode(Mode::Status(503));
    for _ in 0..2 {
        let _ = service.state().ai.analyze("prompt").await;
    }
    assert_eq!(
        service
            .state()
            .breakers
            .get("nemotron")
            .expect("b")
            .state()
            .as_str(),
        "open"
    );

    let url = format!("{base}/api/system/circuit-breakers/nemotron/reset");
    let resp = client().post(&url).send().await.expect("POST");
    assert_eq!(resp.status().as_u16(), 401);
    let resp = client()
        .post(&url)
        .header("X-API-Key", "resetkey")
        .send()
        .await
        .expect("POST");
    assert_eq!(resp.status().as_u16(), 200);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["name"], "nemotron");
    assert_eq!(body["previous_state"], "open");
    assert_eq!(body["new_state"], "closed");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert!(body["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')));
    assert_eq!(
        breaker(&breakers(&base).await, "nemotron")["state"],
        "closed"
    );

    let resp = client()
        .post(format!("{base}/api/system/circuit-breakers/ghost/reset"))
        .header("X-API-Key", "resetkey")
        .send()
        .await
        .expect("POST");
    assert_eq!(resp.status().as_u16(), 404);
    let body: Value = resp.json().await.expect("json");
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("yolo26, nemotron, florence, clip, enrichment")),
        "{body}"
    );
    for bad in ["bad%20name", &"x".repeat(65)] {
        let resp = client()
            .post(format!("{base}/api/system/circuit-breakers/{bad}/reset"))
            .header("X-API-Key", "resetkey")
            .send()
            .await
            .expect("POST");
        assert_eq!(resp.status().as_u16(), 400, "{bad}");
    }
    service.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analysis_parses_the_llm_and_falls_back_when_it_fails() {
    let Setup {
        stack,
        redis: _redis,
        service,
        _dir,
    } = setup(&[], 3600.0).await;
    let ai = service.state().ai.clone();
    let llm = stack.get("nemotron");

    let r = ai.analyze_or_fallback("Camera front_door: 1 person").await;
    assert_eq!(
        (r.risk_score, r.risk_level, r.fallback),
        (72, RiskLevel::High, false)
    );
    assert_eq!(r.summary, "Person at the front door");

    llm.set_mode(Mode::Status(500));
    let r = ai.analyze_or_fallback("x").await;
    assert_eq!(
        (r.risk_score, r.risk_level, r.summary.as_str(), r.fallback),
        (50, RiskLevel::Medium, FALLBACK_SUMMARY, true)
    );

    // An answer without JSON is retried, then falls back, without opening the breaker.
    service.state().breakers.get("nemotron").expect("b").reset();
    llm.set_mode(Mode::Normal);
    llm.set_completion("I cannot comply.");
    let before = llm.counters().completion.load(Ordering::SeqCst);
    let r = ai.analyze_or_fallback("x").await;
    assert!(r.fallback);
    assert_eq!(llm.counters().completion.load(Ordering::SeqCst) - before, 3);
    assert_eq!(
        service
            .state()
            .breakers
            .get("nemotron")
            .expect("b")
            .state()
            .as_str(),
        "closed"
    );
    service.shutdown().await;
}

async fn wait_mode(service: &Service, mode: DegMode, features: &[&str]) {
    let state = service.state().clone();
    let want: Vec<String> = features.iter().map(|f| f.to_string()).collect();
    eventually(&format!("mode {mode:?} with {features:?}"), || {
        let (state, want) = (state.clone(), want.clone());
        async move {
            let snap = state.degradation.snapshot();
            (snap.mode == mode && snap.available_features == want).then_some(())
        }
    })
    .await;
    let metrics =
        crate::support::get_text(format!("http://{}/metrics", service.local_addr())).await;
    let line = format!("watchpost_degradation_mode{{mode=\"{}\"}} 1", mode.as_str());
    assert!(metrics.contains(&line), "missing {line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn degradation_moves_through_every_mode_and_back() {
    let stack = FakeAiStack::start();
    let mut redis = Redis::start();
    let (cfg, _dir) = config(&stack, &redis.url(), &[], 0.1);
    let service = Service::start(cfg).await.expect("start");
    let all = ["detection", "analysis", "entity_tracking", "enrichment"];
    wait_mode(&service, DegMode::Normal, &all).await;
    let snap = service.state().degradation.snapshot();
    assert!(snap.redis_healthy && !snap.is_degraded);
    assert_eq!(snap.memory_queue_size, 0);
    assert!(snap.fallback_queues.is_empty());

    for name in ["florence", "clip", "enrichment"] {
        stack.get(name).set_mode(Mode::Status(500));
    }
    wait_mode(&service, DegMode::Degraded, &["detection", "analysis"]).await;
    let snap = service.state().degradation.snapshot();
    let clip = snap
        .services
        .iter()
        .find(|s| s.name == "clip")
        .expect("clip");
    assert!(clip.consecutive_failures >= 3 && clip.error_message.is_some());

    stack.get("yolo26").refuse().await;
    wait_mode(&service, DegMode::Minimal, &["analysis"]).await;

    stack.get("nemotron").set_mode(Mode::Hang);
    wait_mode(&service, DegMode::Offline, &[]).await;

    stack.get("yolo26").accept().await;
    for s in &stack.services {
        s.set_mode(Mode::Normal);
    }
    wait_mode(&service, DegMode::Normal, &all).await;

    redis.stop();
    wait_mode(&service, DegMode::Degraded, &all).await;
    assert!(!service.state().degradation.snapshot().redis_healthy);
    redis.start_again();
    wait_mode(&service, DegMode::Normal, &all).await;
    service.shutdown().await;
}
