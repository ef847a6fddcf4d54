//! Foundation: start-up without dependencies, error contract, auth, config, shutdown.

use crate::support::{
    client, detail, eventually, free_port, get, get_text, post, promtool_check_metrics, Watchpost,
};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_health_metrics_and_openapi_with_no_dependency_running() {
    let wp = Watchpost::start(&[]);
    let (status, body) = get(&format!("{}/health", wp.url())).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("alive")));
    let (status, body) = get(&format!("{}/api/system/health/live", wp.url())).await;
    assert_eq!(status, 200);
    assert!(
        body["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{body}"
    );

    let metrics = get_text(format!("{}/metrics", wp.url())).await;
    assert!(metrics.contains("watchpost_build_info{version=\"0.1.0\"} 1"));
    assert!(metrics.contains("watchpost_process_resident_memory_bytes"));
    assert!(metrics.contains(
        "watchpost_http_requests_total{method=\"GET\",route=\"/health\",status=\"200\"}"
    ));
    promtool_check_metrics(&metrics);

    let (status, doc) = get(&format!("{}/openapi.json", wp.url())).await;
    assert_eq!(status, 200);
    assert!(doc["paths"]["/api/system/supervisor"]["get"].is_object());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_is_a_json_detail_with_the_right_status() {
    let wp = Watchpost::start(&[]);
    let base = wp.url();
    let (s, b) = get(&format!("{base}/no/such/route")).await;
    assert_eq!(s, 404);
    assert!(detail(&b).contains("/no/such/route"));

    let resp = client()
        .delete(format!("{base}/health"))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status().as_u16(), 405);
    assert_eq!(resp.headers()["allow"], "GET, HEAD");
    let head = client()
        .head(format!("{base}/health"))
        .send()
        .await
        .expect("HEAD");
    assert_eq!(head.status().as_u16(), 200);
    assert!(head.bytes().await.expect("body").is_empty());
    let b: Value = resp.json().await.expect("json body");
    assert!(detail(&b).contains("DELETE"));

    let (s, b) = post(&format!("{base}/api/system/supervisor"), None).await;
    assert_eq!(s, 405, "{b}");

    for (query, param) in [
        ("limit=abc", "limit"),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("offset=-1", "offset"),
    ] {
        let (s, b) = get(&format!(
            "{base}/api/system/supervisor/restart-history?{query}"
        ))
        .await;
        assert_eq!(s, 400, "{query}: {b}");
        assert!(detail(&b).contains(param), "{query}: {b}");
    }
    let (s, b) = post(
        &format!("{base}/api/system/supervisor/workers/9lives/start"),
        None,
    )
    .await;
    assert_eq!(s, 400);
    assert!(detail(&b).contains("9lives"));
    let (s, b) = post(
        &format!("{base}/api/system/supervisor/workers/ghost/stop"),
        None,
    )
    .await;
    assert_eq!(s, 404);
    assert_eq!(detail(&b), "Worker 'ghost' not found");

    // Recent events: bounded limit; PostgreSQL away is a 503 that says so.
    for query in ["limit=0", "limit=101", "limit=x"] {
        let (s, b) = get(&format!("{base}/api/system/events/recent?{query}")).await;
        assert_eq!(s, 400, "{query}: {b}");
        assert!(detail(&b).contains("limit"), "{b}");
    }
    let (s, b) = get(&format!("{base}/api/system/events/recent")).await;
    assert_eq!(s, 503, "{b}");
    assert!(detail(&b).starts_with("Events cannot be read now"), "{b}");
    // Dead letters live in Redis: with Redis away, listing them is a 503 that says so.
    let (s, b) = get(&format!(
        "{base}/api/system/pipeline/dead-letters/detection"
    ))
    .await;
    assert_eq!(s, 503, "{b}");
    assert!(detail(&b).starts_with("Cannot read dead letters"), "{b}");
    let (s, b) = post(
        &format!("{base}/api/system/pipeline/dead-letters/detection/requeue"),
        None,
    )
    .await;
    assert_eq!(s, 503, "{b}");
    assert!(detail(&b).to_lowercase().contains("redis"), "{b}");

    // Readiness, under both paths: 503 with the reasons, naming what is down.
    for path in ["/ready", "/api/system/health/ready"] {
        let b = eventually("readiness names PostgreSQL and Redis", || async {
            let (s, b) = get(&format!("{base}{path}")).await;
            assert_eq!(s, 503, "{path}: {b}");
            let reasons = b["reasons"].to_string().to_lowercase();
            (reasons.contains("postgres") && reasons.contains("redis")).then_some(b)
        })
        .await;
        assert_eq!(b["ready"], false, "{b}");
    }

    // The WebSocket route without an upgrade: a JSON 400 that says what is missing.
    let (s, b) = get(&format!("{base}/ws")).await;
    assert_eq!(s, 400, "{b}");
    assert!(detail(&b).contains("WebSocket upgrade"), "{b}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posts_need_a_valid_api_key_when_keys_are_configured() {
    let wp = Watchpost::start(&[("WATCHPOST_API_KEYS", "k-one-secret,k-two-secret")]);
    let url = format!("{}/api/system/supervisor/reset/ghost", wp.url());
    let (s, b) = post(&url, None).await;
    assert_eq!(s, 401, "{b}");
    assert!(detail(&b).contains("API key"));
    let (s, _) = post(&url, Some("wrong")).await;
    assert_eq!(s, 401);
    // A valid key passes auth and reaches the handler (unknown worker → 404).
    let (s, _) = post(&url, Some("k-two-secret")).await;
    assert_eq!(s, 404);
    let resp = client()
        .post(&url)
        .header("Authorization", "Bearer k-one-secret")
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status().as_u16(), 404);
    // Reads stay open by default.
    let (s, _) = get(&format!("{}/api/system/supervisor", wp.url())).await;
    assert_eq!(s, 200);
    let log = wp.log();
    assert!(
        !log.contains("k-one-secret") && !log.contains("k-two-secret"),
        "key leaked into log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protect_reads_guards_gets_but_not_probes() {
    let wp = Watchpost::start(&[
        ("WATCHPOST_API_KEYS", "readkey"),
        ("WATCHPOST_AUTH__PROTECT_READS", "true"),
    ]);
    let (s, _) = get(&format!("{}/api/system/supervisor", wp.url())).await;
    assert_eq!(s, 401);
    let (s, _) = get(&format!("{}/health", wp.url())).await;
    assert_eq!(s, 200);
    let resp = client()
        .get(format!("{}/metrics", wp.url()))
        .header("X-API-Key", "readkey")
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status().as_u16(), 200);
}

/// A non-loopback caller cannot be produced over real sockets here without sending
/// traffic to a non-loopback address, so this drives the real `App` in-process with
/// a remote peer address.
#[actix_web::test]
async fn posts_from_non_loopback_are_forbidden_when_no_key_is_configured() {
    use actix_web::test;
    let dir = tempfile::tempdir().expect("temp dir");
    let service =
        watchpost::Service::start_with(crate::support::base_config(dir.path()), |_| Ok(()))
            .await
            .expect("start");
    let app = test::init_service(watchpost::api::app(service.state().clone())).await;
    let remote = "192.0.2.7:5555".parse().expect("addr");
    let req = test::TestRequest::post()
        .uri("/api/system/supervisor/reset/ghost")
        .peer_addr(remote)
        .to_request();
    let resp = test::call_service(&app, req).await;
    assert_eq!(resp.status().as_u16(), 403);
    let body: Value = test::read_body_json(resp).await;
    assert!(detail(&body).contains("localhost"));
    // Reads from the same remote peer are fine.
    let req = test::TestRequest::get()
        .uri("/api/system/supervisor")
        .peer_addr(remote)
        .to_request();
    assert_eq!(test::call_service(&app, req).await.status().as_u16(), 200);
    // And the same POST from loopback reaches the handler.
    let req = test::TestRequest::post()
        .uri("/api/system/supervisor/reset/ghost")
        .peer_addr("127.0.0.1:5555".parse().expect("addr"))
        .to_request();
    assert_eq!(test::call_service(&app, req).await.status().as_u16(), 404);
    service.shutdown().await;
}

#[test]
fn bad_config_exits_2_and_lists_every_bad_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("bad.toml");
    std::fs::write(
        &file,
        "[server]\nworkers = \"two\"\n[batch]\nwindow_seconds = 0\n[breaker]\nfailure_threshold = -3\n[typo_section]\nx = 1\n",
    )
    .expect("write config");
    let out = Watchpost::command(dir.path(), free_port())
        .arg("--config")
        .arg(&file)
        .env("WATCHPOST_HEALTH__PROBE_TIMEOUT_SECONDS", "soon")
        .output()
        .expect("run watchpost");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for key in [
        "server.workers",
        "breaker.failure_threshold",
        "typo_section",
        "health.probe_timeout_seconds (from WATCHPOST_HEALTH__PROBE_TIMEOUT_SECONDS)",
    ] {
        assert!(stderr.contains(key), "{key} not listed in:\n{stderr}");
    }
    // Semantic errors are reported once types are right.
    std::fs::write(
        &file,
        "[batch]\nwindow_seconds = 0\n[cleanup]\ntime = \"24:61\"\n",
    )
    .expect("write");
    let out = Watchpost::command(dir.path(), free_port())
        .arg("--config")
        .arg(&file)
        .output()
        .expect("run watchpost");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("batch.window_seconds") && stderr.contains("cleanup.time"),
        "{stderr}"
    );
    // Infinite or huge durations and absurd counts are refused, not a panic (exit
    // 101), and an unparseable key is never printed back.
    let out = Watchpost::command(dir.path(), free_port())
        .env("WATCHPOST_QUEUE__CLAIM_IDLE_SECONDS", "inf")
        .env("WATCHPOST_SUPERVISOR__HEARTBEAT_TIMEOUT_SECONDS", "1e300")
        .env("WATCHPOST_CLEANUP__RETENTION_DAYS", "4000000000")
        .env("WATCHPOST_API_KEYS", "[Sup3rS3cretKey")
        .output()
        .expect("run watchpost");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("Sup3rS3cretKey"), "{stderr}");
    assert!(stderr.contains("auth.api_keys"), "{stderr}");
}

#[test]
fn absurd_values_exit_2_listing_each() {
    let dir = tempfile::tempdir().expect("temp dir");
    for (var, key) in [
        (
            "WATCHPOST_QUEUE__CLAIM_IDLE_SECONDS",
            "queue.claim_idle_seconds",
        ),
        (
            "WATCHPOST_SUPERVISOR__HEARTBEAT_TIMEOUT_SECONDS",
            "supervisor.heartbeat_timeout_seconds",
        ),
    ] {
        for value in ["inf", "1e300"] {
            let out = Watchpost::command(dir.path(), free_port())
                .env(var, value)
                .output()
                .expect("run watchpost");
            assert_eq!(out.status.code(), Some(2), "{var}={value}");
            assert!(String::from_utf8_lossy(&out.stderr).contains(key));
        }
    }
    let out = Watchpost::command(dir.path(), free_port())
        .env("WATCHPOST_CLEANUP__RETENTION_DAYS", "4000000000")
        .output()
        .expect("run watchpost");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cleanup.retention_days"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environment_overrides_beat_the_config_file() {
    let file_port = free_port();
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("watchpost.toml");
    std::fs::write(
        &file,
        format!("[server]\nbind = \"127.0.0.1:{file_port}\"\n[supervisor]\nmax_restarts = 7\n"),
    )
    .expect("write");
    // Watchpost::start sets WATCHPOST_SERVER__BIND to its own port; the file says another.
    let wp = Watchpost::start(&[("WATCHPOST_CONFIG", file.to_str().expect("utf-8 path"))]);
    let (s, status) = get(&format!("{}/api/system/supervisor", wp.url())).await;
    assert_eq!(s, 200);
    // The file was read (a key only it sets took effect)…
    assert!(
        status["workers"]
            .as_array()
            .is_some_and(|w| !w.is_empty() && w.iter().all(|w| w["max_restarts"] == 7)),
        "{status}"
    );
    // …and the environment won where both speak.
    assert!(client()
        .get(format!("http://127.0.0.1:{file_port}/health"))
        .send()
        .await
        .is_err());
}

#[test]
fn sigterm_stops_the_service_cleanly() {
    let mut wp = Watchpost::start(&[]);
    let status = wp.terminate().expect("exit status");
    assert!(status.success(), "exit status {status:?}");
    let log = wp.log();
    assert!(
        log.contains("watchpost stopped"),
        "status {status:?} log: {log}"
    );
}

#[test]
fn openapi_documents_exactly_the_registered_routes() {
    let doc: Value = serde_json::from_str(watchpost::api::openapi_document()).expect("json");
    let mut documented: Vec<String> = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            documented.push(format!("{} {path}", method.to_uppercase()));
        }
    }
    let mut registered: Vec<String> = watchpost::api::routes()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    documented.sort();
    registered.sort();
    assert_eq!(documented, registered);
}
