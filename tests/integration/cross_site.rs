//! Browser protection on the real binary (bound to loopback, as by default): foreign
//! origins cannot write or open the WebSocket, foreign Host names are not answered
//! (DNS rebinding), and CORS answers exist only for listed origins.

use crate::support::{client, Watchpost};
use reqwest::header::HeaderMap;
use serde_json::Value;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// Send `method path` to `wp` with extra headers; status, headers and JSON body.
async fn send(
    wp: &Watchpost,
    method: reqwest::Method,
    path: &str,
    headers: &[(&str, String)],
) -> (u16, HeaderMap, Value) {
    let mut req = client().request(method, format!("{}{path}", wp.url()));
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let h = resp.headers().clone();
    (status, h, resp.json().await.unwrap_or(Value::Null))
}

const STOP: &str = "/api/system/supervisor/workers/cleanup_service/stop";
const START: &str = "/api/system/supervisor/workers/cleanup_service/start";

async fn cleanup_status(wp: &Watchpost) -> String {
    let (_, _, s) = send(wp, reqwest::Method::GET, "/api/system/supervisor", &[]).await;
    s["workers"]
        .as_array()
        .and_then(|ws| ws.iter().find(|w| w["name"] == "cleanup_service"))
        .and_then(|w| w["status"].as_str())
        .unwrap_or("missing")
        .to_string()
}

fn own_origin(wp: &Watchpost) -> String {
    format!("http://127.0.0.1:{}", wp.port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_origin_posts_are_refused_and_change_nothing() {
    let wp = Watchpost::start(&[]);
    let post = reqwest::Method::POST;
    let (s, h, body) = send(
        &wp,
        post.clone(),
        STOP,
        &[("Origin", "http://evil.example".into())],
    )
    .await;
    assert_eq!(s, 403, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("server.allowed_origins")),
        "{body}"
    );
    assert!(h.get("access-control-allow-origin").is_none());
    assert_eq!(cleanup_status(&wp).await, "running", "nothing changed");

    let (s, _, body) = send(
        &wp,
        post.clone(),
        STOP,
        &[("Sec-Fetch-Site", "cross-site".into())],
    )
    .await;
    assert_eq!(s, 403, "{body}");
    assert_eq!(cleanup_status(&wp).await, "running");

    // Watchpost's own origin, under either loopback name, may write.
    let (s, _, body) = send(&wp, post.clone(), STOP, &[("Origin", own_origin(&wp))]).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(cleanup_status(&wp).await, "stopped");
    let (s, _, body) = send(
        &wp,
        post.clone(),
        START,
        &[
            ("Host", format!("localhost:{}", wp.port)),
            ("Origin", format!("http://localhost:{}", wp.port)),
            ("Sec-Fetch-Site", "same-origin".into()),
        ],
    )
    .await;
    assert_eq!(s, 200, "{body}");
    // A client that is not a browser (no Origin) is unaffected.
    let (s, _, body) = send(&wp, post.clone(), STOP, &[]).await;
    assert_eq!(s, 200, "{body}");
    let (s, _, _) = send(&wp, post, START, &[]).await;
    assert_eq!(s, 200);
    assert_eq!(cleanup_status(&wp).await, "running");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_does_not_make_a_cross_origin_post_acceptable() {
    let wp = Watchpost::start(&[("WATCHPOST_API_KEYS", "k-cross-site-test")]);
    let key = ("X-API-Key", "k-cross-site-test".to_string());
    let (s, _, body) = send(
        &wp,
        reqwest::Method::POST,
        STOP,
        &[key.clone(), ("Origin", "http://evil.example".into())],
    )
    .await;
    assert_eq!(s, 403, "{body}");
    assert_eq!(cleanup_status(&wp).await, "running");
    let (s, _, body) = send(&wp, reqwest::Method::POST, STOP, &[key]).await;
    assert_eq!(s, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_loopback_host_names_are_answered() {
    let wp = Watchpost::start(&[]);
    let get = reqwest::Method::GET;
    for host in ["evil.example", &format!("evil.example:{}", wp.port)] {
        let (s, _, body) = send(
            &wp,
            get.clone(),
            "/api/system/supervisor",
            &[("Host", host.to_string())],
        )
        .await;
        assert_eq!(s, 403, "{host}: {body}");
        assert!(
            body["detail"]
                .as_str()
                .is_some_and(|d| d.contains("server.allowed_hosts")),
            "{body}"
        );
    }
    for host in [
        format!("localhost:{}", wp.port),
        format!("127.0.0.1:{}", wp.port),
        format!("[::1]:{}", wp.port),
    ] {
        let (s, _, body) = send(
            &wp,
            get.clone(),
            "/api/system/supervisor",
            &[("Host", host.clone())],
        )
        .await;
        assert_eq!(s, 200, "{host}: {body}");
    }
    // Probes answer whatever the Host (orchestrators probe by address).
    let (s, _, _) = send(&wp, get, "/health", &[("Host", "10.1.2.3:8000".into())]).await;
    assert_eq!(s, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listed_hosts_are_answered_too() {
    let wp = Watchpost::start(&[("WATCHPOST_SERVER__ALLOWED_HOSTS", "watchpost.lan")]);
    let (s, _, body) = send(
        &wp,
        reqwest::Method::GET,
        "/api/system/pipeline",
        &[("Host", format!("watchpost.lan:{}", wp.port))],
    )
    .await;
    assert_eq!(s, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_answers_only_listed_origins() {
    let preflight = |origin: &str| {
        vec![
            ("Origin", origin.to_string()),
            ("Access-Control-Request-Method", "POST".to_string()),
            ("Access-Control-Request-Headers", "x-api-key".to_string()),
        ]
    };
    // Off by default: no CORS header anywhere.
    let plain = Watchpost::start(&[]);
    let (_, h, _) = send(
        &plain,
        reqwest::Method::OPTIONS,
        STOP,
        &preflight("http://dash.example"),
    )
    .await;
    assert!(
        h.keys().all(|k| !k.as_str().starts_with("access-control-")),
        "{h:?}"
    );
    let (_, h, _) = send(
        &plain,
        reqwest::Method::GET,
        "/api/system/supervisor",
        &[("Origin", "http://dash.example".into())],
    )
    .await;
    assert!(
        h.keys().all(|k| !k.as_str().starts_with("access-control-")),
        "{h:?}"
    );
    drop(plain);

    let wp = Watchpost::start(&[("WATCHPOST_SERVER__ALLOWED_ORIGINS", "http://dash.example")]);
    let (s, h, _) = send(
        &wp,
        reqwest::Method::OPTIONS,
        STOP,
        &preflight("http://dash.example"),
    )
    .await;
    assert_eq!(s, 204);
    let header = |name: &str| {
        h.get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    assert_eq!(header("access-control-allow-origin"), "http://dash.example");
    assert!(
        header("access-control-allow-methods").contains("POST"),
        "{h:?}"
    );
    assert!(
        header("access-control-allow-headers")
            .to_ascii_lowercase()
            .contains("x-api-key"),
        "{h:?}"
    );
    assert!(header("vary").contains("Origin"), "{h:?}");

    let (s, h, body) = send(
        &wp,
        reqwest::Method::OPTIONS,
        STOP,
        &preflight("http://other.example"),
    )
    .await;
    assert_eq!(s, 403, "{body}");
    assert!(h.get("access-control-allow-origin").is_none(), "{h:?}");

    // The listed origin may then POST, and reads carry its CORS header.
    let (s, h, body) = send(
        &wp,
        reqwest::Method::POST,
        STOP,
        &[("Origin", "http://dash.example".into())],
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(
        h.get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok()),
        Some("http://dash.example")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_upgrade_from_a_foreign_origin_is_refused() {
    let wp = Watchpost::start(&[]);
    let url = format!("ws://127.0.0.1:{}/ws", wp.port);
    let with_origin = |origin: String| {
        let mut req = url.as_str().into_client_request().expect("request");
        req.headers_mut()
            .insert("origin", origin.parse().expect("header value"));
        req
    };
    match tokio_tungstenite::connect_async(with_origin("http://evil.example".into())).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status().as_u16(), 403);
        }
        Err(e) => panic!("expected a 403 answer, got {e}"),
        Ok(_) => panic!("a foreign origin opened the WebSocket"),
    }
    let (ws, _) = tokio_tungstenite::connect_async(with_origin(own_origin(&wp)))
        .await
        .expect("own origin opens the socket");
    drop(ws);
}
