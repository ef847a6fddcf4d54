//! Live events:
//!
//! - serialisation of one envelope (`{"type","channel","data","timestamp"}`) for a
//!   small event, a batch of 50 detections and the periodic `system.status`;
//! - hub fan-out to 1,000 subscribed clients: serialise once, queue on every client,
//!   and drain every client's queue (no sockets);
//! - socket fan-out to 1,000 real WebSocket clients of a running service: from
//!   publishing a `detection.new` on the event bus until the last client has read it.
//!   The clients run in the same process and runtime as the server (2 worker
//!   threads), so the figure includes their share of the machine.
//!
//! `cargo bench --bench events`

#[path = "../tests/support/mod.rs"]
mod support;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use futures_util::{SinkExt, StreamExt};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use watchpost::events::{DetectionBatch, DetectionNew, Envelope, Event, Example, SystemStatus};
use watchpost::prom::Metrics;
use watchpost::ws::Hub;

const CLIENTS: usize = 1000;

fn detection() -> Event {
    Event::DetectionNew(DetectionNew::example())
}

fn serialisation(c: &mut Criterion) {
    let mut batch = DetectionBatch::example();
    batch.detection_ids = (1..=50).collect();
    batch.detection_count = 50;
    let cases = [
        ("detection_new", Envelope::new(detection())),
        (
            "detection_batch_50_ids",
            Envelope::new(Event::DetectionBatch(batch)),
        ),
        (
            "system_status",
            Envelope::new(Event::SystemStatus(SystemStatus::example())),
        ),
    ];
    let mut group = c.benchmark_group("event_to_json");
    for (name, envelope) in &cases {
        group.bench_function(*name, |b| b.iter(|| black_box(envelope.to_json())));
    }
    group.finish();
}

fn hub_fanout(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let _guard = rt.enter();
    let hub = Hub::new(256, 2_000, Arc::new(Metrics::new()));
    let mut conns: Vec<_> = (0..CLIENTS).map(|_| hub.connect()).collect();
    for conn in &conns {
        conn.handle_text(r#"{"action":"subscribe","channels":["detections"]}"#);
    }
    let envelope = Envelope::new(detection());
    c.bench_function("hub_fanout_1000_clients", |b| {
        b.iter(|| {
            hub.publish(&envelope);
            for conn in &mut conns {
                black_box(conn.rx.try_recv().expect("delivered"));
            }
        })
    });
    assert_eq!(hub.client_count(), CLIENTS, "no client was dropped");
}

fn socket_fanout(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("dir");
    let (service, mut arrivals) = rt.block_on(async {
        let mut cfg = support::base_config(dir.path());
        cfg.websocket.max_clients = 2 * CLIENTS;
        let service = watchpost::Service::start(cfg).await.expect("start");
        let url = format!("ws://{}/ws", service.local_addr());
        let (tx, rx) = mpsc::unbounded_channel::<Instant>();
        for _ in 0..CLIENTS {
            let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str())
                .await
                .expect("connect");
            ws.send(Message::text(
                r#"{"action":"subscribe","channels":["detections"]}"#,
            ))
            .await
            .expect("subscribe");
            loop {
                match ws.next().await {
                    Some(Ok(Message::Text(t))) if t.contains("system.subscribed") => break,
                    Some(Ok(_)) => {}
                    other => panic!("no subscribe answer: {other:?}"),
                }
            }
            let tx = tx.clone();
            tokio::spawn(async move {
                while let Some(Ok(msg)) = ws.next().await {
                    if matches!(&msg, Message::Text(t) if t.contains("detection.new"))
                        && tx.send(Instant::now()).is_err()
                    {
                        break;
                    }
                }
            });
        }
        (service, rx)
    });
    let state = service.state().clone();
    assert_eq!(state.hub.client_count(), CLIENTS);
    let mut group = c.benchmark_group("socket_fanout");
    group.sample_size(20);
    group.bench_function("publish_to_last_of_1000_clients", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let published = Instant::now();
                    state.events.publish(detection());
                    let mut last = published;
                    for _ in 0..CLIENTS {
                        last = last.max(arrivals.recv().await.expect("arrival"));
                    }
                    total += last - published;
                }
                total
            })
        })
    });
    group.finish();
    assert_eq!(state.hub.client_count(), CLIENTS, "no client was dropped");
    rt.block_on(service.shutdown());
}

criterion_group!(benches, serialisation, hub_fanout, socket_fanout);
criterion_main!(benches);
