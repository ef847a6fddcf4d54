//! The harness itself: real servers start, stop and restart; the fake AI server's
//! failure modes behave as advertised.

use crate::support::fake_ai::{FakeAi, Mode};
use crate::support::{client, eventually, Postgres, Prometheus, Redis, Watchpost};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_can_be_stopped_and_started_again_on_the_same_port() {
    let mut redis = Redis::start();
    let client = redis::Client::open(redis.url()).expect("client");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query_async(&mut conn)
        .await
        .expect("SET");
    redis.stop();
    assert!(client.get_multiplexed_async_connection().await.is_err());
    redis.start_again();
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("reconnect");
    let pong: String = redis::cmd("PING")
        .query_async(&mut conn)
        .await
        .expect("PING");
    assert_eq!(pong, "PONG");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_can_be_stopped_and_started_again() {
    let mut pg = Postgres::start();
    assert_eq!(pg.psql("select 40 + 2"), "42");
    let connect =
        |url: String| async move { tokio_postgres::connect(&url, tokio_postgres::NoTls).await };
    let (c, conn) = connect(pg.url()).await.expect("connect");
    tokio::spawn(conn);
    let row = c.query_one("select 1::int4 + 1", &[]).await.expect("query");
    assert_eq!(row.get::<_, i32>(0), 2);
    pg.stop();
    assert!(connect(pg.url()).await.is_err());
    pg.start_again();
    assert!(connect(pg.url()).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_the_real_service() {
    let wp = Watchpost::start(&[]);
    let prom = Prometheus::start(&format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: watchpost\n    static_configs:\n      - targets: ['127.0.0.1:{}']\n",
        wp.port
    ));
    let url = format!("{}/api/v1/query?query=watchpost_build_info", prom.url());
    let value = eventually("prometheus has scraped watchpost_build_info", || {
        let url = url.clone();
        async move {
            let body: serde_json::Value =
                client().get(&url).send().await.ok()?.json().await.ok()?;
            body["data"]["result"][0]["value"][1]
                .as_str()
                .map(str::to_string)
        }
    })
    .await;
    assert_eq!(value, "1");
}

/// A minimal PNG header (signature + IHDR) followed by padding.
pub fn tiny_png(width: u32, height: u32, total_len: usize) -> Vec<u8> {
    let mut v = vec![
        0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, b'I', b'H', b'D', b'R',
    ];
    v.extend_from_slice(&width.to_be_bytes());
    v.extend_from_slice(&height.to_be_bytes());
    v.resize(total_len.max(v.len()), 0);
    v
}

async fn detect(url: &str, bytes: Vec<u8>) -> Result<reqwest::Response, reqwest::Error> {
    let part = reqwest::multipart::Part::bytes(bytes)
        .file_name("x.png")
        .mime_str("image/png")
        .expect("mime");
    client()
        .post(format!("{url}/detect"))
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .timeout(Duration::from_secs(2))
        .send()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fake_ai_speaks_the_real_apis_and_fails_on_command() {
    let yolo = FakeAi::start("yolo26");
    let url = yolo.url();

    let ok = detect(&url, tiny_png(640, 480, 20_000))
        .await
        .expect("detect");
    assert_eq!(ok.status().as_u16(), 200);
    let body: serde_json::Value = ok.json().await.expect("json");
    assert_eq!(body["image_width"], 640);
    assert_eq!(body["detections"][0]["class"], "person");
    assert!(body["detections"][0]["bbox"]["width"].is_number());

    let bad = detect(&url, b"not an image".to_vec())
        .await
        .expect("detect");
    assert_eq!(bad.status().as_u16(), 400);

    let llm = client()
        .post(format!("{url}/completion"))
        .json(&serde_json::json!({"prompt": "x", "temperature": 0.1, "n_predict": 256, "stop": []}))
        .send()
        .await
        .expect("completion");
    let content = llm.json::<serde_json::Value>().await.expect("json")["content"]
        .as_str()
        .map(str::to_string);
    assert!(content.is_some_and(|c| c.contains("risk_score")));

    yolo.set_mode(Mode::Status(500));
    let failed = client()
        .get(format!("{url}/health"))
        .send()
        .await
        .expect("health");
    assert_eq!(failed.status().as_u16(), 500);

    // Slow: a client that will not wait that long gives up, one that waits is answered.
    yolo.set_mode(Mode::Slow(Duration::from_millis(800)));
    let impatient = client()
        .get(format!("{url}/health"))
        .timeout(Duration::from_millis(100))
        .send()
        .await;
    assert!(
        impatient.is_err_and(|e| e.is_timeout()),
        "answered before the delay"
    );
    let slow = client()
        .get(format!("{url}/health"))
        .send()
        .await
        .expect("health");
    assert_eq!(slow.status().as_u16(), 200);

    yolo.set_mode(Mode::Hang);
    let hung = client()
        .get(format!("{url}/health"))
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    assert!(hung.expect_err("hangs").is_timeout());

    yolo.set_mode(Mode::Normal);
    yolo.refuse().await;
    let refused = client().get(format!("{url}/health")).send().await;
    assert!(refused.expect_err("refused").is_connect());
    yolo.accept().await;
    let back = client()
        .get(format!("{url}/health"))
        .send()
        .await
        .expect("health");
    assert_eq!(back.status().as_u16(), 200);
    assert!(
        yolo.counters()
            .health
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 4
    );
}
