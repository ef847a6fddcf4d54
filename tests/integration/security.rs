//! The security review's attacks, as regression tests on the real binary: the ones it
//! found open (a percent-encoded `/ws`, WebSocket clients that never read, DNS
//! rebinding on a public bind, credentials in configured URLs) and the ones that held
//! (foreign and `null` origins, cross-site fetches, Host spellings, CORS preflights,
//! hostile dead-letter names, requeued items pointing outside the camera root,
//! oversized and fragmented frames).

use crate::support::fake_ai::FakeAi;
use crate::support::{client, eventually, free_port, json, Stack, Watchpost};
use futures_util::StreamExt;
use reqwest::header::HeaderMap;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
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

// ------------------------------------------------------------ raw HTTP and WebSocket

const UPGRADE: [(&str, &str); 4] = [
    ("Connection", "Upgrade"),
    ("Upgrade", "websocket"),
    ("Sec-WebSocket-Version", "13"),
    ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
];

/// A client frame (masked), as RFC 6455 §5.2 lays it out.
fn frame(opcode: u8, fin: bool, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![if fin { 0x80 } else { 0 } | opcode];
    let n = payload.len();
    if n < 126 {
        f.push(0x80 | n as u8);
    } else if n <= usize::from(u16::MAX) {
        f.push(0x80 | 126);
        f.extend((n as u16).to_be_bytes());
    } else {
        f.push(0x80 | 127);
        f.extend((n as u64).to_be_bytes());
    }
    let mask = [0x5a, 0x17, 0xc3, 0x08];
    f.extend(mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

const TEXT: u8 = 0x1;
const CONTINUATION: u8 = 0x0;
const CLOSE: u8 = 0x8;

/// A WebSocket over a bare TCP stream: the handshake written by hand, frames built
/// and read by hand, so a test can do what a well-behaved client library never does.
struct RawWs {
    stream: tokio::net::TcpStream,
    buf: Vec<u8>,
}

impl RawWs {
    /// Send the upgrade request for `path` with `headers` and read the answer's status.
    async fn open(port: u16, path: &str, headers: &[(&str, &str)]) -> (u16, RawWs) {
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        let mut ws = RawWs {
            stream,
            buf: Vec::new(),
        };
        ws.stream
            .write_all(upgrade_request(port, path, headers).as_bytes())
            .await
            .expect("handshake");
        let status = ws.read_head().await;
        (status, ws)
    }

    async fn read_more(&mut self) -> bool {
        let mut chunk = [0u8; 8192];
        match tokio::time::timeout(crate::support::patience(), self.stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
            _ => false,
        }
    }

    async fn read_head(&mut self) -> u16 {
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..end]).to_string();
                self.buf.drain(..end + 4);
                return head
                    .split_whitespace()
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .expect("status");
            }
            assert!(self.read_more().await, "no answer to the upgrade");
        }
    }

    async fn send(&mut self, bytes: &[u8]) -> bool {
        self.stream.write_all(bytes).await.is_ok()
    }

    /// The next server frame (opcode, payload), or `None` once the connection ended.
    async fn next_frame(&mut self) -> Option<(u8, Vec<u8>)> {
        loop {
            if self.buf.len() >= 2 {
                let opcode = self.buf[0] & 0x0f;
                let (len, head) = match self.buf[1] & 0x7f {
                    126 if self.buf.len() >= 4 => (
                        usize::from(u16::from_be_bytes([self.buf[2], self.buf[3]])),
                        4,
                    ),
                    127 if self.buf.len() >= 10 => {
                        let mut b = [0u8; 8];
                        b.copy_from_slice(&self.buf[2..10]);
                        (u64::from_be_bytes(b) as usize, 10)
                    }
                    n @ 0..=125 => (usize::from(n), 2),
                    _ => (usize::MAX, 0),
                };
                if head > 0 && self.buf.len() >= head + len {
                    let payload = self.buf[head..head + len].to_vec();
                    self.buf.drain(..head + len);
                    return Some((opcode, payload));
                }
            }
            if !self.read_more().await {
                return None;
            }
        }
    }

    /// The next text frame's JSON, skipping pings; `None` at a close or the end.
    async fn next_json(&mut self) -> Option<Value> {
        loop {
            let (op, payload) = self.next_frame().await?;
            match op {
                TEXT => return serde_json::from_slice(&payload).ok(),
                CLOSE => return None,
                _ => continue,
            }
        }
    }
}

fn upgrade_request(port: u16, path: &str, headers: &[(&str, &str)]) -> String {
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n");
    for (k, v) in UPGRADE.iter().chain(headers) {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req
}

// ------------------------------------------------------------ finding 1

/// The path of `template` with every `{param}` given a valid name that names nothing
/// (404 from every handler, so no request below changes state).
fn concrete(template: &str) -> String {
    template
        .split('/')
        .map(|s| {
            if s.starts_with('{') {
                "no_such_thing"
            } else {
                s
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Every spelling of `path` with one character (never a `/` separator, whose encoded
/// form is data, not a separator) percent-encoded, in upper- and lower-case hex.
fn spellings(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, c) in path.char_indices() {
        if c == '/' {
            continue;
        }
        let upper = format!("%{:02X}", c as u32);
        let lower = upper.to_ascii_lowercase();
        for enc in [upper.clone(), lower].into_iter().collect::<HashSet<_>>() {
            out.push(format!(
                "{}{}{}",
                &path[..i],
                enc,
                &path[i + c.len_utf8()..]
            ));
        }
    }
    out
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Get,
    Post,
    Delete,
    Upgrade,
}

async fn status_of(
    http: &reqwest::Client,
    port: u16,
    kind: Kind,
    path: &str,
    headers: &[(&str, &str)],
) -> u16 {
    let url = format!("http://127.0.0.1:{port}{path}");
    let mut req = match kind {
        Kind::Post => http.post(url),
        Kind::Delete => http.delete(url),
        Kind::Get | Kind::Upgrade => http.get(url),
    };
    if let Kind::Upgrade = kind {
        for (k, v) in UPGRADE {
            req = req.header(k, v);
        }
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.expect("request").status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn percent_encoded_routes_are_judged_like_their_canonical_spelling() {
    const KEY: &str = "k-spelling-test";
    let open = Watchpost::start(&[]);
    let keyed = Watchpost::start(&[("WATCHPOST_API_KEYS", KEY)]);
    let foreign = ("Origin", "http://evil.example");
    let with_key = ("X-API-Key", KEY);
    // (instance, headers): no keys; keys but none sent; the key sent. Each with and
    // without a foreign Origin.
    let setups: Vec<(&Watchpost, Vec<(&str, &str)>)> = vec![
        (&open, vec![]),
        (&open, vec![foreign]),
        (&keyed, vec![]),
        (&keyed, vec![foreign]),
        (&keyed, vec![with_key]),
        (&keyed, vec![with_key, foreign]),
    ];
    let http = client();
    let mut checked = 0usize;
    let mut mismatches = Vec::new();
    for def in watchpost::api::routes() {
        let canonical = concrete(def.path);
        let variants = spellings(&canonical);
        for (wp, headers) in &setups {
            for kind in [Kind::Get, Kind::Post, Kind::Delete, Kind::Upgrade] {
                let want = status_of(&http, wp.port, kind, &canonical, headers).await;
                let got: Vec<(String, u16)> = futures_util::stream::iter(variants.iter())
                    .map(|v| {
                        let http = http.clone();
                        async move { (v.clone(), status_of(&http, wp.port, kind, v, headers).await) }
                    })
                    .buffer_unordered(8)
                    .collect()
                    .await;
                for (v, status) in got {
                    checked += 1;
                    if status != want {
                        mismatches.push(format!(
                            "{kind:?} {v} with {headers:?}: {status}, but {canonical} answers {want}"
                        ));
                    }
                }
            }
        }
    }
    assert!(checked > 5_000, "only {checked} spellings checked");
    crate::support::figure("percent_encoded_spellings_checked", checked as f64, "");
    assert!(
        mismatches.is_empty(),
        "{} of {checked} spellings answered differently, e.g.:\n{}",
        mismatches.len(),
        mismatches[..mismatches.len().min(20)].join("\n")
    );
    // The one the review found: the live feed is not open under another spelling.
    let (status, _) = RawWs::open(keyed.port, "/%77s", &[foreign]).await;
    assert_eq!(status, 403);
    let (status, _) = RawWs::open(keyed.port, "/%77s", &[]).await;
    assert_eq!(status, 401);
    let metrics = crate::support::get_text(format!("{}/metrics", keyed.url())).await;
    assert!(
        metrics
            .contains("watchpost_http_requests_total{method=\"GET\",route=\"/ws\",status=\"401\"}"),
        "the encoded spelling is counted under its route"
    );
}

// ------------------------------------------------------------ finding 2

/// Server-side TCP sockets of the listener on `port` in state ESTABLISHED, keyed by the
/// peer's port (read from the kernel's socket table, as `ss` does).
fn established_peers(port: u16) -> HashSet<u16> {
    let mut peers = HashSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            if cols.len() < 4 || cols[3] != "01" {
                continue;
            }
            let port_of = |addr: &str| {
                addr.rsplit(':')
                    .next()
                    .and_then(|p| u16::from_str_radix(p, 16).ok())
            };
            if port_of(cols[1]) == Some(port) {
                if let Some(peer) = port_of(cols[2]) {
                    peers.insert(peer);
                }
            }
        }
    }
    peers
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// A client that asks for the upgrade, reads the answer's status line, then sends a
/// subscribe every 50 ms and never reads another byte (its receive buffer is small, so
/// it stops acknowledging soon). Returns its port and the answer's status.
async fn never_reading_client(port: u16, stop: Arc<AtomicBool>) -> Option<(u16, u16)> {
    let socket = tokio::net::TcpSocket::new_v4().ok()?;
    socket.set_recv_buffer_size(4096).ok()?;
    let stream = socket
        .connect(std::net::SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .ok()?;
    let local = stream.local_addr().ok()?.port();
    let mut ws = RawWs {
        stream,
        buf: Vec::new(),
    };
    ws.send(upgrade_request(port, "/ws", &[]).as_bytes()).await;
    let status = ws.read_head().await;
    let mut stream = ws.stream;
    tokio::spawn(async move {
        let msg = frame(
            TEXT,
            true,
            br#"{"action":"subscribe","channels":["system","events","detections","alerts","cameras","jobs"]}"#,
        );
        while !stop.load(Ordering::Relaxed) {
            match tokio::time::timeout(std::time::Duration::from_secs(1), stream.write_all(&msg))
                .await
            {
                Ok(Ok(())) => {}
                Ok(Err(_)) => break,
                Err(_) => continue, // our own send buffer is full: keep trying
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    });
    Some((local, status))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_never_read_are_closed_and_never_exceed_max_clients() {
    const MAX: usize = 20;
    let wp = Watchpost::start(&[
        ("WATCHPOST_WEBSOCKET__MAX_CLIENTS", "20"),
        ("WATCHPOST_WEBSOCKET__CLIENT_BUFFER", "2"),
        ("WATCHPOST_WEBSOCKET__PING_INTERVAL_SECONDS", "1"),
    ]);
    let pid = wp.pid().expect("running");
    let fds_before = open_fds(pid);
    let rss_before = wp.rss_kib();

    // A well-behaved client first: it reads (and so answers pings) all along.
    let (mut good, _) = tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{}/ws", wp.port))
        .await
        .expect("good client");
    let good_port = match good.get_ref() {
        tokio_tungstenite::MaybeTlsStream::Plain(s) => s.local_addr().expect("addr").port(),
        _ => unreachable!("plain TCP"),
    };
    futures_util::SinkExt::send(
        &mut good,
        tokio_tungstenite::tungstenite::Message::Text(
            r#"{"action":"subscribe","channels":["system"]}"#.into(),
        ),
    )
    .await
    .expect("subscribe");
    let changes = Arc::new(AtomicUsize::new(0));
    let good_open = Arc::new(AtomicBool::new(true));
    let reader = {
        let (changes, good_open) = (changes.clone(), good_open.clone());
        tokio::spawn(async move {
            while let Some(Ok(m)) = good.next().await {
                if let tokio_tungstenite::tungstenite::Message::Text(t) = m {
                    if t.contains("worker.status_changed") {
                        changes.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            good_open.store(false, Ordering::Relaxed);
        })
    };

    // The socket table, sampled all along.
    let watched: Arc<Mutex<HashSet<u16>>> = Arc::new(Mutex::new(HashSet::from([good_port])));
    let most = Arc::new(AtomicUsize::new(0));
    let first_seen: Arc<Mutex<HashMap<u16, Instant>>> = Arc::default();
    let closed_after: Arc<Mutex<HashMap<u16, f64>>> = Arc::default();
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (watched, most, sampling) = (watched.clone(), most.clone(), sampling.clone());
        let (first_seen, closed_after) = (first_seen.clone(), closed_after.clone());
        let port = wp.port;
        tokio::spawn(async move {
            while sampling.load(Ordering::Relaxed) {
                let peers = established_peers(port);
                let watched = watched.lock().expect("lock").clone();
                let ours: HashSet<u16> = peers.intersection(&watched).copied().collect();
                most.fetch_max(ours.len(), Ordering::Relaxed);
                let now = Instant::now();
                {
                    let mut seen = first_seen.lock().expect("lock");
                    for p in &ours {
                        seen.entry(*p).or_insert(now);
                    }
                    for (p, t) in seen.iter() {
                        if !ours.contains(p) {
                            closed_after
                                .lock()
                                .expect("lock")
                                .entry(*p)
                                .or_insert((now - *t).as_secs_f64());
                        }
                    }
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        })
    };

    // 60 clients that send and never read: three waves of 20, each arriving while the
    // earlier ones still hold their places. The upgraded ones are watched in the socket
    // table (a refused one is answered 503 and closed by the server at once).
    let stop = Arc::new(AtomicBool::new(false));
    let mut attackers: Vec<u16> = Vec::new();
    let mut refused = 0u32;
    for _wave in 0..3 {
        let wave: Vec<(u16, u16)> = futures_util::future::join_all(
            (0..20).map(|_| never_reading_client(wp.port, stop.clone())),
        )
        .await
        .into_iter()
        .flatten()
        .collect();
        assert_eq!(wave.len(), 20, "every client connected");
        for (port, status) in wave {
            match status {
                101 => {
                    watched.lock().expect("lock").insert(port);
                    attackers.push(port);
                }
                503 => refused += 1,
                other => panic!("unexpected answer {other} to an upgrade"),
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    }
    assert!(refused > 0, "some clients found every place taken");

    // While they are connected, the good client keeps receiving.
    let posts = client();
    let worker = |action: &'static str| {
        let (posts, url) = (posts.clone(), wp.url());
        async move {
            posts
                .post(format!(
                    "{url}/api/system/supervisor/workers/cleanup_service/{action}"
                ))
                .send()
                .await
                .expect("POST")
                .status()
                .as_u16()
        }
    };
    assert_eq!(worker("stop").await, 200);
    assert_eq!(worker("start").await, 200);
    eventually("the good client hears both changes", || async {
        (changes.load(Ordering::Relaxed) >= 2).then_some(())
    })
    .await;

    // Every client that never reads is closed by the server.
    eventually("every never-reading client is closed", || async {
        let peers = established_peers(wp.port);
        attackers.iter().all(|p| !peers.contains(p)).then_some(())
    })
    .await;
    let before = changes.load(Ordering::Relaxed);
    assert_eq!(worker("stop").await, 200);
    assert_eq!(worker("start").await, 200);
    eventually("the good client still hears changes", || async {
        (changes.load(Ordering::Relaxed) >= before + 2).then_some(())
    })
    .await;
    assert!(
        good_open.load(Ordering::Relaxed),
        "the good client was kept"
    );
    sampling.store(false, Ordering::Relaxed);
    sampler.await.expect("sampler");
    stop.store(true, Ordering::Relaxed);

    let most = most.load(Ordering::Relaxed);
    assert!(
        most <= MAX,
        "{most} WebSocket connections were established at once (websocket.max_clients = {MAX})"
    );
    // Nothing is left behind: descriptors return to what they were (the good client's
    // socket and a pooled HTTP connection aside).
    eventually("descriptors are released", || async {
        (open_fds(pid) <= fds_before + 3).then_some(())
    })
    .await;
    let longest = closed_after
        .lock()
        .expect("lock")
        .iter()
        .filter(|(p, _)| **p != good_port)
        .map(|(_, s)| *s)
        .fold(0.0, f64::max);
    // Figures for the record (bench/figures.sh); the rules themselves are unit-tested
    // on the paused clock (`ws::hub`).
    let rss_after = wp.rss_kib();
    crate::support::figure("stuck_ws_clients_upgraded", attackers.len() as f64, "");
    crate::support::figure("stuck_ws_clients_refused", f64::from(refused), "");
    crate::support::figure("stuck_ws_most_established_at_once", most as f64, "");
    crate::support::figure("stuck_ws_last_closed_after_ping_interval_1s", longest, "s");
    crate::support::figure(
        "stuck_ws_rss_growth",
        (rss_after as f64 - rss_before as f64) / 1024.0,
        "MiB",
    );
    crate::support::figure(
        "stuck_ws_fds_after_minus_before",
        open_fds(pid) as f64 - fds_before as f64,
        "",
    );
    reader.abort();
}

// ------------------------------------------------------------ finding 3

/// A non-loopback IPv4 address of this machine, if it has one.
fn machine_ip() -> Option<String> {
    let out = std::process::Command::new("hostname")
        .arg("-I")
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .find(|a| {
            a.parse::<std::net::Ipv4Addr>()
                .is_ok_and(|ip| !ip.is_loopback())
        })
        .map(str::to_string)
}

fn machine_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .expect("host name")
        .trim()
        .to_ascii_lowercase()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_bind_refuses_rebinding_names_and_answers_its_own() {
    let port = free_port();
    let bind = format!("0.0.0.0:{port}");
    let wp = Watchpost::start_in(
        tempfile::tempdir().expect("dir"),
        port,
        &[("WATCHPOST_SERVER__BIND".to_string(), bind)],
    );
    let post = reqwest::Method::POST;
    let (s, _, body) = send(
        &wp,
        post.clone(),
        STOP,
        &[
            ("Host", format!("evil.example:{port}")),
            ("Origin", format!("http://evil.example:{port}")),
        ],
    )
    .await;
    assert_eq!(s, 403, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("server.allowed_hosts")),
        "{body}"
    );
    assert_eq!(
        cleanup_status(&wp).await,
        "running",
        "the worker kept running"
    );
    let (s, _, _) = send(
        &wp,
        reqwest::Method::GET,
        "/api/system/supervisor",
        &[("Host", format!("evil.example:{port}"))],
    )
    .await;
    assert_eq!(s, 403, "reads are refused to a rebinding name too");
    let mut req = format!("ws://127.0.0.1:{port}/ws")
        .into_client_request()
        .expect("request");
    req.headers_mut().insert(
        "host",
        format!("evil.example:{port}").parse().expect("header"),
    );
    match tokio_tungstenite::connect_async(req).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(
                resp.status().as_u16(),
                403,
                "the WebSocket is refused to a rebinding name"
            );
        }
        Err(e) => panic!("expected a 403 answer to a rebinding name, got {e}"),
        Ok(_) => panic!("a rebinding name opened the WebSocket"),
    }

    // The machine's own IP (when it has one besides loopback) and host name work, with
    // their own origin.
    let ip = machine_ip().unwrap_or_else(|| "127.0.0.1".into());
    for host in [ip.clone(), machine_name()] {
        let authority = format!("{host}:{port}");
        let (s, _, body) = send(
            &wp,
            post.clone(),
            STOP,
            &[
                ("Host", authority.clone()),
                ("Origin", format!("http://{authority}")),
            ],
        )
        .await;
        assert_eq!(s, 200, "{authority}: {body}");
        let (s, _, body) = send(&wp, post.clone(), START, &[("Host", authority.clone())]).await;
        assert_eq!(s, 200, "{authority}: {body}");
    }
    // Reached at its address from the network side (a LAN client: another host, a
    // network namespace on a bridge), it answers reads; a write from there is not
    // from loopback, so with no API key configured it is refused.
    let mut net = crate::support::netns::Network::new();
    let lan = net.host(20);
    let base = format!("http://{}:{port}", net.gateway());
    let status = lan.http_status("GET", &format!("{base}/api/system/supervisor"));
    assert_eq!(status, 200, "a read from {}", lan.addr);
    let status = lan.http_status("POST", &format!("{base}{STOP}"));
    assert_eq!(status, 403, "a write from {} without a key", lan.addr);
    assert_eq!(cleanup_status(&wp).await, "running");
}

// ------------------------------------------------------------ finding 4

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_in_configured_urls_never_reach_an_answer_the_log_metrics_or_the_page() {
    let florence = FakeAi::start("florence");
    let dead = || format!("127.0.0.1:{}", free_port());
    let secrets = [
        "RedisPass1",
        "PgPass1",
        "PromPass1",
        "AIpass123",
        "ExPass1",
        "QueryTok1",
    ];
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("watchpost.toml");
    std::fs::write(
        &config,
        format!(
            "[[prometheus.exporters]]\nname = \"redis-exporter\"\nendpoint = \"http://exuser:ExPass1@{}\"\n\
             [[prometheus.exporters]]\nname = \"blackbox-exporter\"\nendpoint = \"exuser:ExPass1@{}\"\n",
            dead(),
            dead()
        ),
    )
    .expect("config");
    let florence_url = florence
        .url()
        .replace("http://", "http://aiuser:AIpass123@");
    let mut env: Vec<(String, String)> = vec![
        ("WATCHPOST_CONFIG".into(), config.display().to_string()),
        (
            "WATCHPOST_REDIS__URL".into(),
            format!("redis://ruser:RedisPass1@{}", dead()),
        ),
        (
            "WATCHPOST_POSTGRES__URL".into(),
            format!(
                "postgres://puser:PgPass1@{}/watchpost?password=PgPass1",
                dead()
            ),
        ),
        (
            "WATCHPOST_PROMETHEUS__URL".into(),
            format!("http://promuser:PromPass1@{}/?token=QueryTok1", dead()),
        ),
        ("WATCHPOST_AI__FLORENCE__URL".into(), florence_url),
    ];
    for name in ["yolo26", "nemotron", "clip", "enrichment"] {
        env.push((
            format!("WATCHPOST_AI__{}__URL", name.to_ascii_uppercase()),
            format!("http://aiuser:AIpass123@{}", dead()),
        ));
    }
    let wp = Watchpost::start_in(dir, free_port(), &env);
    // Wait until every dependency has been tried (and failed, or answered).
    eventually("florence is probed healthy", || async {
        let h = json(format!("{}/api/system/health/full", wp.url())).await;
        h["ai_services"]
            .as_array()?
            .iter()
            .any(|s| s["name"] == "florence" && s["status"] == "healthy")
            .then_some(())
    })
    .await;
    let mut seen = String::new();
    for def in watchpost::api::routes() {
        if def.method.as_str() != "GET" || def.path.contains('{') || def.path == "/ws" {
            continue;
        }
        let body = crate::support::get_text(format!("{}{}", wp.url(), def.path)).await;
        seen.push_str(&format!("\n== {}\n{body}", def.path));
    }
    let health = json(format!("{}/api/system/health/full", wp.url())).await;
    let florence_shown = health["ai_services"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["name"] == "florence"))
        .map(|s| s["url"].as_str().unwrap_or_default().to_string())
        .unwrap_or_default();
    assert!(
        florence_shown.starts_with("http://aiuser:***@"),
        "the URL is shown, masked: {florence_shown}"
    );
    let monitoring = json(format!("{}/api/system/monitoring/health", wp.url())).await;
    assert!(
        monitoring["exporters"][0]["endpoint"]
            .as_str()
            .is_some_and(|e| e.contains("exuser:***@")),
        "{monitoring}"
    );

    // The page, as a browser shows it.
    let browser = crate::support::browser::Browser::start(1280, 900).await;
    browser.goto(&format!("{}/", wp.url())).await;
    let page = eventually("the page shows the dependencies", || async {
        let t = browser.text("body").await;
        t.contains("florence").then_some(t)
    })
    .await;
    let log = wp.log();
    for secret in secrets {
        for (what, text) in [("an answer", &seen), ("the log", &log), ("the page", &page)] {
            assert!(!text.contains(secret), "{secret} appears in {what}");
        }
    }
}

// ------------------------------------------------------------ what held

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn null_origins_and_cross_site_fetches_cannot_write_or_open_the_socket() {
    let wp = Watchpost::start(&[]);
    let (s, _, body) = send(
        &wp,
        reqwest::Method::POST,
        STOP,
        &[("Origin", "null".into())],
    )
    .await;
    assert_eq!(s, 403, "{body}");
    for headers in [
        vec![("Origin", "null")],
        vec![("Origin", "http://evil.example")],
        vec![("Sec-Fetch-Site", "cross-site")],
    ] {
        let (status, _) = RawWs::open(wp.port, "/ws", &headers).await;
        assert_eq!(status, 403, "{headers:?}");
    }
    assert_eq!(cleanup_status(&wp).await, "running");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_spellings_that_are_names_are_refused_and_ip_literals_answered() {
    let wp = Watchpost::start(&[]);
    for (host, want) in [
        ("localhost.", 403),
        ("127.0.0.1.nip.io", 403),
        ("127.1", 403),
        ("2130706433", 403),
        ("", 403),
        ("[::ffff:127.0.0.1]", 200),
    ] {
        for authority in [host.to_string(), format!("{host}:{}", wp.port)] {
            if host.is_empty() && !authority.is_empty() {
                continue;
            }
            let (s, _, body) = send(
                &wp,
                reqwest::Method::GET,
                "/api/system/supervisor",
                &[("Host", authority.clone())],
            )
            .await;
            assert_eq!(s, want, "Host {authority:?}: {body}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_dead_letter_names_are_refused_without_touching_a_queue() {
    let wp = Watchpost::start(&[]);
    for name in [
        "..%2fdetection",
        "..%2Fdetection",
        "detection%00",
        "%00",
        "..",
        ".",
    ] {
        for (method, path) in [
            (
                reqwest::Method::GET,
                format!("/api/system/pipeline/dead-letters/{name}"),
            ),
            (
                reqwest::Method::POST,
                format!("/api/system/pipeline/dead-letters/{name}/requeue"),
            ),
        ] {
            let (s, _, body) = send(&wp, method.clone(), &path, &[]).await;
            assert!(
                [400, 404, 405].contains(&s) && body["detail"].is_string(),
                "{method} {path}: {s} {body}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_fragmented_frames_are_bounded() {
    let wp = Watchpost::start(&[]);
    // Fragments of one message are put together (within the limit) and answered.
    let (status, mut ws) = RawWs::open(wp.port, "/ws", &[]).await;
    assert_eq!(status, 101);
    let msg = br#"{"action":"subscribe","channels":["system"]}"#;
    let (a, rest) = msg.split_at(10);
    let (b, c) = rest.split_at(10);
    for f in [
        frame(TEXT, false, a),
        frame(CONTINUATION, false, b),
        frame(CONTINUATION, true, c),
    ] {
        assert!(ws.send(&f).await);
    }
    let ack = ws
        .next_json()
        .await
        .expect("an answer to the fragmented message");
    assert_eq!(ack["type"], "system.subscribed", "{ack}");
    // A message over the per-message limit is an error answer, not a disconnect.
    let big = format!(
        r#"{{"action":"subscribe","channels":["{}"]}}"#,
        "x".repeat(5000)
    );
    assert!(ws.send(&frame(TEXT, true, big.as_bytes())).await);
    // The answer, past any message of the subscribed channel sent meanwhile (the
    // system channel tells health changes as they come).
    let mut err = ws.next_json().await.expect("an error answer");
    for _ in 0..20 {
        if err["data"]["code"].is_string() {
            break;
        }
        err = ws.next_json().await.expect("an error answer");
    }
    assert_eq!(err["data"]["code"], "message_too_large", "{err}");

    // A frame over 64 KiB, or fragments adding up to more, end the connection.
    for frames in [
        vec![frame(TEXT, true, &vec![b'x'; 70 * 1024])],
        (0..5)
            .map(|i| {
                frame(
                    if i == 0 { TEXT } else { CONTINUATION },
                    i == 4,
                    &[b'y'; 20 * 1024],
                )
            })
            .collect(),
    ] {
        let (status, mut ws) = RawWs::open(wp.port, "/ws", &[]).await;
        assert_eq!(status, 101);
        for f in &frames {
            if !ws.send(f).await {
                break;
            }
        }
        assert!(
            ws.next_json().await.is_none(),
            "the connection ends without an answer"
        );
    }
    // The service is unharmed.
    let (status, mut ws) = RawWs::open(wp.port, "/ws", &[]).await;
    assert_eq!(status, 101);
    assert!(ws.send(&frame(TEXT, true, msg)).await);
    assert_eq!(
        ws.next_json().await.expect("answer")["type"],
        "system.subscribed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requeued_items_pointing_outside_the_root_are_never_read() {
    let stack = Stack::new(&[]);
    let wp = stack.start(tempfile::tempdir().expect("dir"));
    let root = wp.dir.path().join("cameras");
    std::fs::create_dir_all(root.join("porch")).expect("camera");
    // An image outside the root, and a link to it inside.
    let outside = wp.dir.path().join("outside");
    std::fs::create_dir_all(&outside).expect("outside");
    let secret = outside.join("secret.png");
    std::fs::write(&secret, crate::support::image_bytes(12_000)).expect("image");
    std::os::unix::fs::symlink(&secret, root.join("porch/link.png")).expect("symlink");
    let redis = |args: &[&str]| {
        let out = std::process::Command::new(crate::support::require("redis-cli", "redis-server"))
            .args(["-p", &stack.redis.port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    // Edited dead letters, as someone with access to Redis could leave them.
    for path in [
        secret.display().to_string(),
        format!("{}/porch/../../outside/secret.png", root.display()),
        root.join("porch/link.png").display().to_string(),
    ] {
        let item = serde_json::json!({
            "file_path": path,
            "camera_id": "porch",
            "file_hash": "0".repeat(64),
            "file_size": 12_000,
            "seen_at": "2026-01-01T00:00:00Z",
        });
        redis(&[
            "XADD",
            &format!("{}:dead", crate::support::stack::detection_stream(&root)),
            "*",
            "p",
            &item.to_string(),
            "reason",
            "keeps_failing",
            "detail",
            "edited",
            "source_id",
            "0-1",
            "deliveries",
            "1",
            "at",
            "2026-01-01T00:00:00Z",
        ]);
    }
    let resp = client()
        .post(format!(
            "{}/api/system/pipeline/dead-letters/detection/requeue",
            wp.url()
        ))
        .send()
        .await
        .expect("requeue");
    assert_eq!(resp.status().as_u16(), 200);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["requeued"], 3, "{body}");
    // Each is dead-lettered again with its reason; the file is never sent anywhere.
    let reasons = eventually("all three dead-lettered again", || async {
        let list = json(format!(
            "{}/api/system/pipeline/dead-letters/detection",
            wp.url()
        ))
        .await;
        let items = list["items"].as_array()?.clone();
        (items.len() == 3).then(|| {
            items
                .iter()
                .map(|i| i["reason"].as_str().unwrap_or("").to_string())
                .collect::<Vec<_>>()
        })
    })
    .await;
    for r in &reasons {
        assert!(
            ["outside_root", "symlink"].contains(&r.as_str()),
            "{reasons:?}"
        );
    }
    assert!(reasons.iter().any(|r| r == "symlink"), "{reasons:?}");
    assert!(
        stack.ai.get("yolo26").uploads().is_empty(),
        "nothing was sent to detection"
    );
    assert_eq!(stack.rows("detections"), 0);
}
