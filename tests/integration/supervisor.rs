//! Supervisor endpoints over real HTTP against the real service (in-process, so the
//! test can register a worker it can crash on demand).

use crate::support::{eventually, get, post, promtool_check_metrics};
use serde_json::Value;
use std::sync::Arc;
use tokio::sync::Notify;
use watchpost::supervisor::{WorkerError, WorkerSpec};
use watchpost::{Config, Service};

/// A worker that runs (beating) until `crash` is notified, then returns an error.
fn crashy(name: &str, crash: Arc<Notify>) -> WorkerSpec {
    WorkerSpec::new(name, true, move |ctx| {
        let crash = crash.clone();
        async move {
            loop {
                tokio::select! {
                    _ = crash.notified() => return Err(WorkerError::new("Connection reset by peer")),
                    _ = ctx.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(std::time::Duration::from_millis(200)) => ctx.beat(),
                }
            }
        }
    })
}

fn config(dir: &std::path::Path, keys: &[&str]) -> Config {
    let mut c = crate::support::base_config(dir);
    c.supervisor.backoff_base_seconds = 0.05;
    c.supervisor.backoff_max_seconds = 0.2;
    c.supervisor.max_restarts = 20;
    c.auth.api_keys = keys.iter().map(|k| k.to_string()).collect();
    c
}

struct Harness {
    _dir: tempfile::TempDir,
    service: Service,
    crash: Arc<Notify>,
    base: String,
}

async fn start(keys: &[&str]) -> Harness {
    let dir = tempfile::tempdir().expect("temp dir");
    let crash = Arc::new(Notify::new());
    let c = crash.clone();
    let service = Service::start_with(config(dir.path(), keys), move |sup| {
        sup.register(crashy("crashy", c))?;
        sup.register(crashy("steady", Arc::new(Notify::new())))
    })
    .await
    .expect("start service");
    let base = format!("http://{}", service.local_addr());
    Harness {
        _dir: dir,
        service,
        crash,
        base,
    }
}

fn worker<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["workers"]
        .as_array()
        .and_then(|ws| ws.iter().find(|w| w["name"] == name))
        .unwrap_or_else(|| panic!("{name} not in {status}"))
}

impl Harness {
    /// Crash `crashy` and wait until it is running again with `count` restarts.
    async fn crash_and_wait(&self, count: u64) {
        self.crash.notify_one();
        let url = format!("{}/api/system/supervisor", self.base);
        eventually("crashy restarted", || {
            let url = url.clone();
            async move {
                let (_, s) = get(url).await;
                let w = worker(&s, "crashy").clone();
                (w["status"] == "running" && w["restart_count"] == count).then_some(())
            }
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashed_worker_is_restarted_and_history_shows_crashed_then_success() {
    let h = start(&[]).await;
    let (s, status) = get(format!("{}/api/system/supervisor", h.base)).await;
    assert_eq!(s, 200);
    assert_eq!(status["running"], true);
    // The production workers, in registration order (their one definition), then the
    // two test workers.
    let names: Vec<&str> = status["workers"]
        .as_array()
        .expect("workers")
        .iter()
        .filter_map(|w| w["name"].as_str())
        .collect();
    let mut want: Vec<&str> = watchpost::names::workers::ALL.to_vec();
    want.extend(["crashy", "steady"]);
    assert_eq!(names, want);
    assert_eq!(status["worker_count"], want.len());
    let w = worker(&status, "crashy");
    assert_eq!(w["status"], "running");
    assert_eq!(w["max_restarts"], 20);
    assert!(w["last_started_at"]
        .as_str()
        .is_some_and(|t| t.ends_with('Z')));
    assert!(w["last_crashed_at"].is_null() && w["error"].is_null());
    assert!(status["timestamp"].as_str().is_some());

    h.crash_and_wait(1).await;
    let (_, status) = get(format!("{}/api/system/supervisor/status", h.base)).await;
    let w = worker(&status, "crashy");
    assert_eq!(w["error"], "Connection reset by peer");
    assert!(w["last_crashed_at"].as_str().is_some());

    let (s, page) = get(format!(
        "{}/api/system/supervisor/restart-history?worker_name=crashy",
        h.base
    ))
    .await;
    assert_eq!(s, 200);
    let items = page["items"].as_array().expect("items");
    assert_eq!(items.len(), 2, "{page}");
    assert_eq!(
        (items[0]["status"].as_str(), items[0]["attempt"].as_u64()),
        (Some("success"), Some(1))
    );
    assert_eq!(
        (items[1]["status"].as_str(), items[1]["attempt"].as_u64()),
        (Some("crashed"), Some(0))
    );
    assert_eq!(items[1]["error"], "Connection reset by peer");
    assert!(items[0]["error"].is_null());
    assert_eq!(page["pagination"]["total"], 2);

    let metrics = crate::support::get_text(format!("{}/metrics", h.base)).await;
    for line in [
        "watchpost_worker_state{state=\"running\",worker=\"crashy\"} 1",
        "watchpost_worker_state{state=\"failed\",worker=\"crashy\"} 0",
        "watchpost_worker_consecutive_restarts{worker=\"crashy\"} 1",
        "watchpost_worker_max_restarts{worker=\"crashy\"} 20",
        "watchpost_worker_restarts_total{kind=\"automatic\",worker=\"crashy\"} 1",
        "watchpost_worker_crashes_total{cause=\"error\",worker=\"crashy\"} 1",
        "watchpost_worker_restart_latency_seconds_count{worker=\"crashy\"} 1",
    ] {
        assert!(metrics.contains(line), "missing {line}");
    }
    assert!(metrics.contains("watchpost_worker_uptime_seconds{worker=\"steady\"}"));
    promtool_check_metrics(&metrics);
    h.service.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_history_pagination_is_exact_at_page_boundaries() {
    let h = start(&[]).await;
    for n in 1..=3 {
        h.crash_and_wait(n).await;
    }
    let page = |q: &str| {
        get(format!(
            "{}/api/system/supervisor/restart-history?{q}",
            h.base
        ))
    };
    let (_, p) = page("limit=4&offset=0").await;
    assert_eq!(
        p["pagination"],
        serde_json::json!({"total": 6, "limit": 4, "offset": 0, "items_count": 4, "has_more": true})
    );
    let (_, p) = page("limit=4&offset=4").await;
    assert_eq!(
        p["pagination"],
        serde_json::json!({"total": 6, "limit": 4, "offset": 4, "items_count": 2, "has_more": false})
    );
    let (_, p) = page("limit=3&offset=3").await;
    assert_eq!(
        (
            p["pagination"]["items_count"].as_u64(),
            p["pagination"]["has_more"].as_bool()
        ),
        (Some(3), Some(false))
    );
    let (_, p) = page("offset=6").await;
    assert_eq!(
        (
            p["pagination"]["items_count"].as_u64(),
            p["pagination"]["has_more"].as_bool()
        ),
        (Some(0), Some(false))
    );
    assert_eq!(p["pagination"]["limit"], 50);
    let (_, p) = page("worker_name=steady").await;
    assert_eq!(p["pagination"]["total"], 0);
    let (_, p) = page("limit=100").await;
    let statuses: Vec<&str> = p["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["status"].as_str())
        .collect();
    assert_eq!(
        statuses,
        ["success", "crashed", "success", "crashed", "success", "crashed"]
    );
    for bad in [
        "limit=0",
        "limit=101",
        "limit=-5",
        "offset=-1",
        "offset=x",
        "worker_name=no-such%20name",
    ] {
        let (s, b) = page(bad).await;
        assert_eq!(s, 400, "{bad}: {b}");
    }
    h.service.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_endpoints_follow_the_state_rules() {
    let h = start(&[]).await;
    let url = |op: &str| format!("{}/api/system/supervisor/workers/crashy/{op}", h.base);

    let (s, b) = post(url("stop"), None).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        b,
        serde_json::json!({"success": true, "message": "Worker 'crashy' stopped successfully", "worker_name": "crashy"})
    );
    let (_, status) = get(format!("{}/api/system/supervisor", h.base)).await;
    assert_eq!(worker(&status, "crashy")["status"], "stopped");
    let (s, b) = post(url("stop"), None).await;
    assert_eq!(
        (s, b["detail"].as_str()),
        (400, Some("Worker 'crashy' is not running"))
    );

    let (s, b) = post(url("start"), None).await;
    assert_eq!(
        (s, b["message"].as_str()),
        (200, Some("Worker 'crashy' started successfully"))
    );
    let (s, b) = post(url("start"), None).await;
    assert_eq!(
        (s, b["detail"].as_str()),
        (400, Some("Worker 'crashy' is already running"))
    );

    h.crash_and_wait(1).await;
    let (s, b) = post(url("restart"), None).await;
    assert_eq!(
        (s, b["message"].as_str()),
        (200, Some("Worker 'crashy' restarted successfully"))
    );
    let (_, status) = get(format!("{}/api/system/supervisor", h.base)).await;
    assert_eq!(worker(&status, "crashy")["restart_count"], 0);
    let (_, p) = get(format!(
        "{}/api/system/supervisor/restart-history?limit=1",
        h.base
    ))
    .await;
    assert_eq!(p["items"][0]["status"], "manual");

    let (s, b) = post(
        format!("{}/api/system/supervisor/reset/crashy", h.base),
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(
        b,
        serde_json::json!({"success": true, "message": "Worker 'crashy' restart count reset"})
    );

    for path in [
        "workers/ghost/start",
        "workers/ghost/stop",
        "workers/ghost/restart",
        "reset/ghost",
    ] {
        let (s, b) = post(format!("{}/api/system/supervisor/{path}", h.base), None).await;
        assert_eq!(
            (s, b["detail"].as_str()),
            (404, Some("Worker 'ghost' not found")),
            "{path}"
        );
    }
    for path in [
        "workers/_x/start",
        "workers/a-b/stop",
        "workers/9a/restart",
        "reset/a%20b",
    ] {
        let (s, b) = post(format!("{}/api/system/supervisor/{path}", h.base), None).await;
        assert_eq!(s, 400, "{path}: {b}");
        assert!(
            b["detail"]
                .as_str()
                .is_some_and(|d| d.starts_with("Invalid worker name")),
            "{path}: {b}"
        );
    }

    // Supervisor shutting down → 503 on control calls; status still answers.
    h.service.state().supervisor.shutdown().await;
    for path in [
        "workers/crashy/start",
        "workers/crashy/stop",
        "workers/crashy/restart",
        "reset/crashy",
    ] {
        let (s, b) = post(format!("{}/api/system/supervisor/{path}", h.base), None).await;
        assert_eq!(
            (s, b["detail"].as_str()),
            (503, Some("Worker supervisor is not running")),
            "{path}"
        );
    }
    let (s, status) = get(format!("{}/api/system/supervisor", h.base)).await;
    assert_eq!((s, status["running"].as_bool()), (200, Some(false)));
    h.service.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_posts_need_the_api_key_when_configured() {
    let h = start(&["opsecret"]).await;
    let url = format!("{}/api/system/supervisor/workers/crashy/restart", h.base);
    assert_eq!(post(url.clone(), None).await.0, 401);
    assert_eq!(post(url.clone(), Some("nope")).await.0, 401);
    assert_eq!(post(url, Some("opsecret")).await.0, 200);
    h.service.shutdown().await;
}
