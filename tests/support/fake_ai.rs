//! Our fake of the GPU-backed AI services (docs/behaviour.md §3): one small HTTP server per
//! service speaking the real API (`GET /health`, YOLO26 `POST /detect` multipart,
//! llama.cpp `POST /completion`), which a test can switch to fail (500), answer a chosen
//! status, answer slowly, hang, or refuse connections (listener closed, same port kept).
//!
//! Used in-process by the integration tests and as `cargo run --example fake_ai` for
//! the local demo stack.
#![allow(dead_code)]

use actix_multipart::Multipart;
use actix_web::dev::ServerHandle;
use actix_web::{web, App, HttpResponse, HttpServer};
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Largest image the fake accepts before answering 413.
pub const MAX_IMAGE_BYTES: usize = 8 * 1024 * 1024;

/// The five services and their default ports (docs/behaviour.md §3).
pub const SERVICES: [(&str, u16); 5] = [
    ("yolo26", 8095),
    ("nemotron", 8091),
    ("florence", 8092),
    ("clip", 8093),
    ("enrichment", 8094),
];

#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    /// Answer normally.
    Normal,
    /// Answer every request with this status and a JSON `detail`.
    Status(u16),
    /// Wait this long, then answer normally.
    Slow(Duration),
    /// Never answer (the connection stays open).
    Hang,
}

#[derive(Default)]
pub struct Counters {
    pub health: AtomicU64,
    pub detect: AtomicU64,
    pub completion: AtomicU64,
}

struct Shared {
    name: String,
    mode: Mutex<Mode>,
    /// Per-route overrides of `mode` (`health`, `detect`, `completion`).
    route_modes: Mutex<std::collections::HashMap<&'static str, Mode>>,
    detections: Mutex<Value>,
    completion: Mutex<String>,
    counters: Counters,
    /// SHA-256 of every image received on `/detect`, with when (Unix seconds).
    uploads: Mutex<Vec<(String, f64)>>,
    /// A GPU: each detection holds it this long, one at a time (`None`: no wait).
    gpu: Mutex<Option<Duration>>,
    gpu_busy: tokio::sync::Mutex<()>,
}

/// One fake service on a fixed loopback port.
pub struct FakeAi {
    shared: Arc<Shared>,
    addr: SocketAddr,
    handle: Mutex<Option<ServerHandle>>,
}

impl FakeAi {
    /// Start on a free loopback port.
    pub fn start(name: &str) -> Arc<Self> {
        Self::start_on(name, "127.0.0.1:0").expect("bind fake AI server")
    }

    pub fn start_on(name: &str, bind: &str) -> std::io::Result<Arc<Self>> {
        let listener = TcpListener::bind(bind)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            name: name.to_string(),
            mode: Mutex::new(Mode::Normal),
            route_modes: Mutex::new(std::collections::HashMap::new()),
            detections: Mutex::new(json!([
                {"class": "person", "confidence": 0.92, "bbox": {"x": 10, "y": 20, "width": 100, "height": 200}},
                {"class": "car", "confidence": 0.30, "bbox": {"x": 300, "y": 40, "width": 220, "height": 120}}
            ])),
            completion: Mutex::new(
                "<think>Person near the door at night.</think>{\"risk_score\": 72, \"risk_level\": \"high\", \"summary\": \"Person at the front door\", \"reasoning\": \"Unknown person lingering\"}".to_string(),
            ),
            counters: Counters::default(),
            uploads: Mutex::new(Vec::new()),
            gpu: Mutex::new(None),
            gpu_busy: tokio::sync::Mutex::new(()),
        });
        let fake = Arc::new(Self {
            shared,
            addr,
            handle: Mutex::new(None),
        });
        fake.listen(listener)?;
        Ok(fake)
    }

    fn listen(&self, listener: TcpListener) -> std::io::Result<()> {
        let shared = self.shared.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::from(shared.clone()))
                .route("/health", web::get().to(health))
                .route("/detect", web::post().to(detect))
                .route("/completion", web::post().to(completion))
                .route("/slots", web::get().to(slots))
        })
        .workers(1)
        .disable_signals()
        .shutdown_timeout(0)
        .listen(listener)?
        .run();
        *self.handle.lock().expect("lock") = Some(server.handle());
        tokio::spawn(server);
        Ok(())
    }

    pub fn name(&self) -> &str {
        &self.shared.name
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Set the mode of every route (clearing per-route overrides).
    pub fn set_mode(&self, mode: Mode) {
        self.shared.route_modes.lock().expect("lock").clear();
        *self.shared.mode.lock().expect("lock") = mode;
    }

    /// Run detections like one GPU: each takes `per`, one at a time (queued in
    /// arrival order).
    pub fn set_gpu(&self, per: Duration) {
        *self.shared.gpu.lock().expect("lock") = Some(per);
    }

    /// Set the mode of one route (`health`, `detect` or `completion`) only.
    pub fn set_route_mode(&self, route: &'static str, mode: Mode) {
        self.shared
            .route_modes
            .lock()
            .expect("lock")
            .insert(route, mode);
    }

    /// Replace the `detections` array YOLO26 answers with.
    pub fn set_detections(&self, detections: Value) {
        *self.shared.detections.lock().expect("lock") = detections;
    }

    /// Replace the llama.cpp `content` Nemotron answers with.
    pub fn set_completion(&self, content: &str) {
        *self.shared.completion.lock().expect("lock") = content.to_string();
    }

    pub fn counters(&self) -> &Counters {
        &self.shared.counters
    }

    /// SHA-256 (hex) of every image received on `/detect`, in order.
    pub fn uploads(&self) -> Vec<String> {
        self.uploads_at().into_iter().map(|(h, _)| h).collect()
    }

    /// Every upload with when it arrived (Unix seconds).
    pub fn uploads_at(&self) -> Vec<(String, f64)> {
        self.shared.uploads.lock().expect("lock").clone()
    }

    /// Close the listener: connections are refused until [`FakeAi::accept`].
    pub async fn refuse(&self) {
        let handle = self.handle.lock().expect("lock").take();
        if let Some(h) = handle {
            h.stop(false).await;
        }
    }

    /// Listen again on the same port after [`FakeAi::refuse`].
    pub async fn accept(&self) {
        if self.handle.lock().expect("lock").is_some() {
            return;
        }
        for _ in 0..200 {
            if let Ok(listener) = TcpListener::bind(self.addr) {
                self.listen(listener).expect("listen again");
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("port {} did not become free again", self.addr.port());
    }
}

/// Apply the current mode of `route`; `Some(response)` short-circuits the handler.
async fn gate(shared: &Shared, route: &'static str) -> Option<HttpResponse> {
    let over = shared.route_modes.lock().expect("lock").get(route).cloned();
    let mode = over.unwrap_or_else(|| shared.mode.lock().expect("lock").clone());
    match mode {
        Mode::Normal => None,
        Mode::Slow(d) => {
            tokio::time::sleep(d).await;
            None
        }
        Mode::Hang => {
            tokio::time::sleep(Duration::from_secs(24 * 3600)).await;
            None
        }
        Mode::Status(code) => {
            let status = actix_web::http::StatusCode::from_u16(code)
                .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR);
            Some(
                HttpResponse::build(status)
                    .json(json!({"detail": format!("fake {} answering {code}", shared.name)})),
            )
        }
    }
}

/// What each fake reports about its model, as the real servers do.
pub mod model {
    /// YOLO26's `/health` (`model_name`, `device`, `vram_used_gb`, …).
    pub const YOLO26_MODEL: &str = "yolo26m.engine";
    pub const DEVICE: &str = "cuda:0";
    pub const YOLO26_VRAM_GB: f64 = 1.84;
    /// llama.cpp's `/slots`: two slots of this context size, the first one busy.
    pub const LLM_SLOTS: i64 = 2;
    pub const LLM_SLOTS_BUSY: i64 = 1;
    pub const LLM_CONTEXT: i64 = 8192;
}

async fn health(shared: web::Data<Shared>) -> HttpResponse {
    shared.counters.health.fetch_add(1, Ordering::Relaxed);
    if let Some(resp) = gate(&shared, "health").await {
        return resp;
    }
    HttpResponse::Ok().json(match shared.name.as_str() {
        // The detector server's HealthResponse.
        "yolo26" => json!({
            "status": "healthy", "model_loaded": true, "device": model::DEVICE,
            "cuda_available": true, "model_name": model::YOLO26_MODEL,
            "vram_used_gb": model::YOLO26_VRAM_GB, "gpu_utilization": 12.0,
            "temperature": 55, "power_watts": 88.5, "tensorrt_enabled": true,
        }),
        // llama.cpp's server: `/health` says only that it is up.
        "nemotron" => json!({"status": "ok"}),
        // Florence, CLIP and the enrichment server.
        name => json!({
            "status": "healthy", "model": name, "model_loaded": true,
            "device": model::DEVICE, "cuda_available": true, "vram_used_gb": 1.1,
        }),
    })
}

/// llama.cpp's `GET /slots` (the fields watchpost reads, and a few of the rest).
async fn slots(shared: web::Data<Shared>) -> HttpResponse {
    if shared.name != "nemotron" {
        return HttpResponse::NotFound().json(json!({"detail": "Not Found"}));
    }
    if let Some(resp) = gate(&shared, "health").await {
        return resp;
    }
    let slots: Vec<_> = (0..model::LLM_SLOTS)
        .map(|id| {
            json!({
                "id": id, "n_ctx": model::LLM_CONTEXT, "speculative": false,
                "is_processing": id < model::LLM_SLOTS_BUSY,
                "params": {"n_predict": -1, "temperature": 0.7},
            })
        })
        .collect();
    HttpResponse::Ok().json(slots)
}

fn image_size(bytes: &[u8]) -> Option<(u32, u32)> {
    if bytes.starts_with(&[0x89, b'P', b'N', b'G']) && bytes.len() >= 24 {
        let w = u32::from_be_bytes([bytes[16], bytes[17], bytes[18], bytes[19]]);
        let h = u32::from_be_bytes([bytes[20], bytes[21], bytes[22], bytes[23]]);
        return Some((w, h));
    }
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Some((1920, 1080));
    }
    None
}

async fn detect(shared: web::Data<Shared>, mut form: Multipart) -> HttpResponse {
    shared.counters.detect.fetch_add(1, Ordering::Relaxed);
    if let Some(resp) = gate(&shared, "detect").await {
        return resp;
    }
    let gpu = *shared.gpu.lock().expect("lock");
    if let Some(per) = gpu {
        let _busy = shared.gpu_busy.lock().await;
        tokio::time::sleep(per).await;
    }
    let mut file: Option<Vec<u8>> = None;
    while let Some(Ok(mut field)) = form.next().await {
        let is_file = field.name() == Some("file");
        let mut buf = Vec::new();
        while let Some(chunk) = field.next().await {
            let Ok(chunk) = chunk else {
                return HttpResponse::BadRequest().json(json!({"detail": "Broken multipart body"}));
            };
            buf.extend_from_slice(&chunk);
            if buf.len() > MAX_IMAGE_BYTES {
                return HttpResponse::PayloadTooLarge().json(json!({"detail": "Image too large"}));
            }
        }
        if is_file {
            file = Some(buf);
        }
    }
    if let Some(bytes) = &file {
        use sha2::Digest;
        let hash = format!("{:x}", sha2::Sha256::digest(bytes));
        let at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        shared.uploads.lock().expect("lock").push((hash, at));
    }
    let Some(bytes) = file else {
        return HttpResponse::BadRequest().json(json!({"detail": "Missing multipart part 'file'"}));
    };
    let Some((w, h)) = image_size(&bytes) else {
        return HttpResponse::BadRequest()
            .json(json!({"detail": "Invalid image: not a JPEG or PNG"}));
    };
    let detections = shared.detections.lock().expect("lock").clone();
    HttpResponse::Ok().json(json!({
        "detections": detections,
        "inference_time_ms": 4.2,
        "image_width": w,
        "image_height": h,
    }))
}

async fn completion(shared: web::Data<Shared>, body: web::Json<Value>) -> HttpResponse {
    shared.counters.completion.fetch_add(1, Ordering::Relaxed);
    if let Some(resp) = gate(&shared, "completion").await {
        return resp;
    }
    if body.get("prompt").and_then(Value::as_str).is_none() {
        return HttpResponse::BadRequest().json(json!({"detail": "Missing 'prompt'"}));
    }
    let content = shared.completion.lock().expect("lock").clone();
    HttpResponse::Ok().json(json!({"content": content, "stop": true, "tokens_predicted": 64}))
}

/// The five services, each on its own port.
pub struct FakeAiStack {
    pub services: Vec<Arc<FakeAi>>,
}

impl FakeAiStack {
    /// The five on one host (127.0.0.1): one AI box, as most users run them.
    pub fn start() -> Self {
        Self {
            services: SERVICES.iter().map(|(n, _)| FakeAi::start(n)).collect(),
        }
    }

    /// Each on a host of its own (127.0.0.2 to 127.0.0.6): five causes, not one.
    pub fn start_apart() -> Self {
        Self {
            services: SERVICES
                .iter()
                .enumerate()
                .map(|(i, (n, _))| {
                    FakeAi::start_on(n, &format!("127.0.0.{}:0", i + 2))
                        .expect("bind fake AI server")
                })
                .collect(),
        }
    }

    /// The five at `ip` (a host's own AI box, reached over a test network).
    pub fn start_at(ip: &str) -> Self {
        Self {
            services: SERVICES
                .iter()
                .map(|(n, _)| FakeAi::start_on(n, &format!("{ip}:0")).expect("bind fake AI server"))
                .collect(),
        }
    }

    pub fn get(&self, name: &str) -> &Arc<FakeAi> {
        self.services
            .iter()
            .find(|s| s.name() == name)
            .expect("known fake AI service")
    }

    /// `WATCHPOST_AI__<NAME>__URL` variables pointing watchpost at this stack.
    pub fn env(&self) -> Vec<(String, String)> {
        self.services
            .iter()
            .map(|s| {
                (
                    format!("WATCHPOST_AI__{}__URL", s.name().to_ascii_uppercase()),
                    s.url(),
                )
            })
            .collect()
    }
}
