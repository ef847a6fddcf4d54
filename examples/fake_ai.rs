//! The fake AI services for the local demo stack: YOLO26, Nemotron, Florence, CLIP and
//! Enrichment on their default ports (8095, 8091, 8092, 8093, 8094), speaking the real
//! APIs of docs/behaviour.md §3. The same module drives the integration tests.
//!
//! `cargo run --example fake_ai [-- --host 127.0.0.1] [--base-port P] [--gpu-ms N]`:
//! with `--base-port`, the five services listen on P, P+1, … in the order above;
//! with `--gpu-ms`, YOLO26 detects like one GPU, N ms a picture, one at a time.

#[path = "../tests/support/fake_ai.rs"]
mod fake_ai;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let host = args
        .iter()
        .position(|a| a == "--host")
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| "127.0.0.1".into());
    let base: Option<u16> = args
        .iter()
        .position(|a| a == "--base-port")
        .and_then(|i| args.get(i + 1))
        .and_then(|p| p.parse().ok());
    let gpu_ms: Option<u64> = args
        .iter()
        .position(|a| a == "--gpu-ms")
        .and_then(|i| args.get(i + 1))
        .and_then(|p| p.parse().ok());
    let mut running = Vec::new();
    for (i, (name, port)) in fake_ai::SERVICES.into_iter().enumerate() {
        let port = base.map_or(port, |b| b + i as u16);
        let svc = fake_ai::FakeAi::start_on(name, &format!("{host}:{port}"))?;
        if let (Some(ms), "yolo26") = (gpu_ms, name) {
            svc.set_gpu(std::time::Duration::from_millis(ms));
        }
        println!("fake {name} listening on {}", svc.url());
        running.push(svc);
    }
    tokio::signal::ctrl_c().await?;
    Ok(())
}
