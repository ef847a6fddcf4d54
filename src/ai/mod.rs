//! Clients of the AI services (docs/behaviour.md §3): YOLO26 detection, Nemotron risk
//! analysis, and `GET /health` for all five. One shared reqwest client; every request
//! goes through the service's circuit breaker, bounded by a timeout. Detection and
//! analysis retry (`max_attempts`, waits `retry_base · 2^n`) but never on a 4xx answer
//! or an open breaker.
//!
//! Must not: decide what the pipeline does with a failure (the analysis fallback
//! values are offered by [`AiClients::analyze_or_fallback`], the caller chooses).

mod attempt;
mod detection;
mod llm;
pub mod metrics;
mod pace;
mod slots;

use attempt::{json_or_status, Attempt};
use detection::WireDetectResponse;
pub use detection::{BoundingBox, Detection, DetectionResult};
pub use pace::{Pace, PaceView};
use pace::{PaceRules, Paces};
pub use slots::LlmSlots;
use slots::MAX_SLOTS_BODY;

pub use llm::{parse_llm_content, RiskAssessment, RiskLevel, FALLBACK_SUMMARY};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::breaker::{BreakerRegistry, BreakerState, CallError};
use crate::config::{secs, Config};
use crate::prom::Metrics;
use metrics::{AiMetrics, Operation, Outcome};

#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum AiError {
    #[error("{service} rejected the request ({status}): {detail}")]
    BadRequest {
        service: String,
        status: u16,
        detail: String,
    },
    #[error("{service} circuit breaker is open")]
    CircuitOpen { service: String },
    #[error("{service} is unavailable: {why}")]
    Unavailable { service: String, why: String },
    #[error("unknown AI service '{0}'")]
    UnknownService(String),
}

#[derive(Deserialize)]
struct WireCompletion {
    content: String,
}

/// The largest `/health` body kept as details.
const MAX_HEALTH_BODY: u64 = 16 * 1024;

/// One `GET /health` result.
#[derive(Debug, Clone, Serialize)]
pub struct HealthCheck {
    pub name: String,
    pub healthy: bool,
    pub response_time_ms: Option<f64>,
    pub error: Option<String>,
    pub circuit_state: BreakerState,
    pub checked_at: DateTime<Utc>,
    /// The service's own JSON answer (model, device, slots, …), when it sent one.
    pub details: Option<serde_json::Value>,
}

/// A configured AI service.
#[derive(Debug, Clone)]
pub struct AiService {
    pub name: &'static str,
    pub display_name: String,
    pub url: String,
    pub critical: bool,
}

struct Settings {
    confidence_threshold: f64,
    detect_timeout: Duration,
    analysis_timeout: Duration,
    probe_timeout: Duration,
    max_attempts: u32,
    retry_base: Duration,
}

pub struct AiClients {
    http: reqwest::Client,
    times: Arc<dyn CallTimes>,
    services: Vec<AiService>,
    breakers: Arc<BreakerRegistry>,
    metrics: AiMetrics,
    settings: Settings,
    /// The last failure of a real call, per service (what an open breaker is about).
    last_failure: std::sync::Mutex<std::collections::HashMap<String, String>>,
    /// Requests in flight and answer times: stuck or slow (`pace.rs`).
    paces: Arc<Paces>,
}

/// Where the duration of every successful work call goes.
pub trait CallTimes: Send + Sync {
    fn call_done(&self, service: &str, millis: f64);
}

/// The names of the AI services, in registry order.
pub const SERVICE_NAMES: [&str; 5] = ["yolo26", "nemotron", "florence", "clip", "enrichment"];

impl AiClients {
    /// `times` receives the duration of every successful work call (the performance
    /// view's windows: `perf` owns them and hands them in).
    pub fn new(
        config: &Config,
        breakers: Arc<BreakerRegistry>,
        metrics: Arc<Metrics>,
        times: Arc<dyn CallTimes>,
    ) -> Self {
        let ai = &config.ai;
        let paces = Paces::new(PaceRules {
            stuck_factor: ai.stuck_factor,
            stuck_floor: secs(ai.stuck_floor_seconds),
            slow_factor: ai.slow_factor,
        });
        let oldest = metrics.float_gauges(
            "ai_oldest_request_age_seconds",
            "Age of the oldest request in flight to each AI service (its retries included); 0 when none.",
            &["service"],
        );
        let names: Vec<&'static str> = ai.services().iter().map(|(n, _)| *n).collect();
        for n in &names {
            oldest.with_label_values(&[n]);
        }
        let weak = Arc::downgrade(&paces);
        metrics.on_scrape(move || {
            if let Some(p) = weak.upgrade() {
                for n in &names {
                    let age = p.judge(n).oldest_request_seconds.unwrap_or(0.0);
                    oldest.with_label_values(&[n]).set(age);
                }
            }
        });
        let weak = Arc::downgrade(&paces);
        metrics.entries("ai_paces", move || {
            weak.upgrade().map_or(0, |p| p.entries())
        });
        let metrics = AiMetrics::new(&metrics);
        for (name, _) in ai.services() {
            let ops: &[Operation] = match name {
                "yolo26" => &[Operation::Detect, Operation::Health],
                "nemotron" => &[Operation::Completion, Operation::Health],
                _ => &[Operation::Health],
            };
            metrics.service_known(name, ops);
        }
        let http = reqwest::Client::builder()
            .connect_timeout(secs(ai.connect_timeout_seconds))
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(concat!("watchpost/", env!("CARGO_PKG_VERSION")))
            .build()
            // Building a client only fails when TLS roots cannot load; rustls with
            // bundled roots cannot fail that way, so fall back to defaults if it does.
            .unwrap_or_default();
        Self {
            http,
            times,
            services: ai
                .services()
                .into_iter()
                .map(|(name, s)| AiService {
                    name,
                    display_name: s.display_name.clone(),
                    url: s.url.trim_end_matches('/').to_string(),
                    critical: s.critical,
                })
                .collect(),
            breakers,
            metrics,
            last_failure: std::sync::Mutex::default(),
            paces,
            settings: Settings {
                confidence_threshold: ai.detection_confidence_threshold,
                detect_timeout: secs(ai.detect_timeout_seconds),
                analysis_timeout: secs(ai.analysis_timeout_seconds),
                probe_timeout: secs(config.health.probe_timeout_seconds),
                max_attempts: ai.max_attempts.max(1),
                retry_base: secs(ai.retry_base_seconds),
            },
        }
    }

    pub fn services(&self) -> &[AiService] {
        &self.services
    }

    /// Whether each service is stuck, slow or answering as usual (memory only).
    pub fn paces(&self) -> Vec<PaceView> {
        self.services
            .iter()
            .map(|s| self.paces.judge(s.name))
            .collect()
    }

    fn service(&self, name: &str) -> Result<&AiService, AiError> {
        self.services
            .iter()
            .find(|s| s.name == name)
            .ok_or_else(|| AiError::UnknownService(name.to_string()))
    }

    /// One attempt through the breaker, timed into the AI latency histogram.
    async fn attempt<T, F>(
        &self,
        service: &str,
        operation: Operation,
        timeout: Duration,
        call: F,
    ) -> Result<T, CallError<Attempt>>
    where
        F: std::future::Future<Output = Result<T, Attempt>>,
    {
        let Some(breaker) = self.breakers.get(service) else {
            return Err(CallError::Rejected(service.to_string()));
        };
        let started = Instant::now();
        let result = breaker.call(timeout, Attempt::is_failure, call).await;
        let outcome = match &result {
            Ok(_) => Outcome::Ok,
            Err(CallError::Rejected(_)) => Outcome::Rejected,
            Err(CallError::Timeout(_)) => Outcome::Timeout,
            Err(CallError::Inner(a)) => a.outcome(),
        };
        let elapsed = started.elapsed().as_secs_f64();
        self.metrics.request(service, operation, outcome, elapsed);
        let failure = match &result {
            Err(CallError::Timeout(_)) => Some("timed out".to_string()),
            Err(CallError::Inner(a)) if a.is_failure() => Some(a.describe()),
            _ => None,
        };
        if let Some(why) = failure {
            self.last_failure
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(service.to_string(), why);
        }
        if outcome == Outcome::Ok {
            self.times.call_done(service, elapsed * 1000.0);
            self.paces.answered(service, elapsed);
        }
        result
    }

    /// Retry policy shared by detection and analysis.
    async fn with_retries<T, F, Fut>(
        &self,
        service: &str,
        operation: Operation,
        timeout: Duration,
        mut make: F,
    ) -> Result<T, AiError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, Attempt>>,
    {
        let mut last = String::new();
        // In flight from the first attempt to the last retry.
        let _in_flight = self.paces.begin(service);
        for n in 0..self.settings.max_attempts {
            if n > 0 {
                tokio::time::sleep(self.retry_backoff().after(n - 1)).await;
            }
            match self.attempt(service, operation, timeout, make()).await {
                Ok(v) => return Ok(v),
                Err(CallError::Rejected(_)) => {
                    return Err(AiError::CircuitOpen {
                        service: service.to_string(),
                    })
                }
                Err(CallError::Inner(Attempt::Status(status, detail)))
                    if (400..500).contains(&status) && status != 408 && status != 429 =>
                {
                    return Err(AiError::BadRequest {
                        service: service.to_string(),
                        status,
                        detail,
                    })
                }
                Err(CallError::Timeout(t)) => {
                    last = format!("timed out after {:.1} s", t.as_secs_f64())
                }
                Err(CallError::Inner(a)) => last = a.describe(),
            }
            // Per attempt: debug. The service's outage is logged once, when the
            // degradation manager finds it unreachable, and once when it is back.
            tracing::debug!(service, operation = operation.as_str(), attempt = n + 1, error = %last, "AI call failed");
        }
        Err(AiError::Unavailable {
            service: service.to_string(),
            why: last,
        })
    }

    /// YOLO26 `POST /detect` with the image as multipart part `file`.
    pub async fn detect(&self, image: Bytes, file_name: &str) -> Result<DetectionResult, AiError> {
        let svc = self.service("yolo26")?;
        let url = format!("{}/detect", svc.url);
        let mime = if file_name.to_ascii_lowercase().ends_with(".png") {
            "image/png"
        } else {
            "image/jpeg"
        };
        let timeout = self.settings.detect_timeout;
        let wire: WireDetectResponse = self
            .with_retries("yolo26", Operation::Detect, timeout, || {
                let part = reqwest::multipart::Part::stream_with_length(
                    reqwest::Body::from(image.clone()),
                    image.len() as u64,
                )
                .file_name(file_name.to_string())
                .mime_str(mime);
                let req = self.http.post(&url).timeout(timeout);
                async move {
                    let part = part.map_err(|e| Attempt::Invalid(e.to_string()))?;
                    let resp = req
                        .multipart(reqwest::multipart::Form::new().part("file", part))
                        .send()
                        .await
                        .map_err(Attempt::from_reqwest)?;
                    json_or_status(resp).await
                }
            })
            .await?;
        let threshold = self.settings.confidence_threshold;
        Ok(DetectionResult {
            detections: wire
                .detections
                .into_iter()
                .filter(|d| d.confidence >= threshold)
                .map(|d| Detection {
                    object_type: d.class,
                    confidence: d.confidence,
                    bbox: d.bbox,
                })
                .collect(),
            inference_time_ms: wire.inference_time_ms,
            image_width: wire.image_width,
            image_height: wire.image_height,
        })
    }

    /// Nemotron `POST /completion`; the answer's JSON parsed into a risk assessment.
    pub async fn analyze(&self, prompt: &str) -> Result<RiskAssessment, AiError> {
        let svc = self.service("nemotron")?;
        let url = format!("{}/completion", svc.url);
        let body = serde_json::json!({
            "prompt": prompt,
            "temperature": 0.2,
            "n_predict": 1536,
            "stop": ["<|im_end|>", "</s>"],
        });
        let timeout = self.settings.analysis_timeout;
        self.with_retries("nemotron", Operation::Completion, timeout, || {
            let req = self.http.post(&url).timeout(timeout).json(&body);
            async move {
                let resp = req.send().await.map_err(Attempt::from_reqwest)?;
                let wire: WireCompletion = json_or_status(resp).await?;
                parse_llm_content(&wire.content).map_err(Attempt::Unparseable)
            }
        })
        .await
    }

    /// [`AiClients::analyze`], or the fallback event values of docs/behaviour.md §3.
    pub async fn analyze_or_fallback(&self, prompt: &str) -> RiskAssessment {
        match self.analyze(prompt).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "risk analysis unavailable; using fallback values");
                RiskAssessment::fallback(&e.to_string())
            }
        }
    }

    /// The LLM server's slots (llama.cpp `GET /slots`): how many, how many busy, and
    /// the context size of each. Like a health probe it never feeds the breaker and is
    /// not called while the breaker blocks probes; `None` when the server does not
    /// answer it (it can be disabled with `--no-slots`) or the answer is not a list.
    pub async fn llm_slots(&self) -> Option<LlmSlots> {
        let svc = self.service("nemotron").ok()?;
        if self
            .breakers
            .get("nemotron")
            .is_some_and(|b| b.blocks_probe())
        {
            return None;
        }
        let timeout = self.settings.probe_timeout;
        let call = async {
            let resp = self
                .http
                .get(format!("{}/slots", svc.url))
                .timeout(timeout)
                .send()
                .await
                .ok()?;
            if !resp.status().is_success()
                || resp.content_length().is_some_and(|n| n > MAX_SLOTS_BODY)
            {
                return None;
            }
            let body = resp.bytes().await.ok()?;
            if body.len() as u64 > MAX_SLOTS_BODY {
                return None;
            }
            LlmSlots::parse(&serde_json::from_slice(&body).ok()?)
        };
        tokio::time::timeout(timeout, call).await.ok().flatten()
    }

    /// `GET /health` of one service. Probes never feed the service's breaker: their
    /// answer counts as neither a success nor a failure and never takes a half-open
    /// trial slot (a healthy `/health` says nothing about a hung `/detect`). While the
    /// breaker is open and inside its recovery timeout the service is reported
    /// unhealthy without a call; afterwards `/health` is called as usual.
    pub async fn check_health(&self, name: &str) -> Result<HealthCheck, AiError> {
        let svc = self.service(name)?;
        let circuit_state = || {
            self.breakers
                .get(name)
                .map(|b| b.state())
                .unwrap_or(BreakerState::Closed)
        };
        if self.breakers.get(name).is_some_and(|b| b.blocks_probe()) {
            return Ok(HealthCheck {
                name: name.to_string(),
                healthy: false,
                response_time_ms: None,
                error: Some(
                    match self
                        .last_failure
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .get(name)
                    {
                        Some(why) => format!("circuit breaker open (last failure: {why})"),
                        None => "circuit breaker open".to_string(),
                    },
                ),
                circuit_state: BreakerState::Open,
                checked_at: crate::time::now(),
                details: None,
            });
        }
        let url = format!("{}/health", svc.url);
        let timeout = self.settings.probe_timeout;
        let started = Instant::now();
        let req = self.http.get(&url).timeout(timeout);
        let call = async {
            let resp = req.send().await.map_err(Attempt::from_reqwest)?;
            let status = resp.status();
            if !status.is_success() {
                return Err(Attempt::Status(status.as_u16(), status.to_string()));
            }
            // The body describes the model (what the performance view shows); a
            // large or non-JSON body is simply not kept.
            let small = resp.content_length().is_none_or(|n| n <= MAX_HEALTH_BODY);
            let details = if small {
                resp.bytes()
                    .await
                    .ok()
                    .filter(|b| b.len() as u64 <= MAX_HEALTH_BODY)
                    .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            } else {
                None
            };
            Ok(details)
        };
        let result = match tokio::time::timeout(timeout, call).await {
            Err(_) => Err(Attempt::Timeout),
            Ok(r) => r,
        };
        let elapsed = started.elapsed().as_secs_f64();
        let outcome = match &result {
            Ok(_) => Outcome::Ok,
            Err(a) => a.outcome(),
        };
        self.metrics
            .request(name, Operation::Health, outcome, elapsed);
        let (result, details) = match result {
            Ok(d) => (Ok(()), d),
            Err(e) => (Err(e), None),
        };
        let elapsed_ms = elapsed * 1000.0;
        let (healthy, response_time_ms, error) = match result {
            Ok(()) => (true, Some(elapsed_ms), None),
            Err(Attempt::Timeout) => (
                false,
                None,
                Some(format!(
                    "Timeout after {}s",
                    crate::time::seconds_text(timeout)
                )),
            ),
            Err(Attempt::Connect(e)) if e.to_ascii_lowercase().contains("refused") => {
                (false, None, Some("Connection refused".to_string()))
            }
            Err(Attempt::Status(code, _)) => {
                (false, Some(elapsed_ms), Some(format!("HTTP {code}")))
            }
            Err(a) => (false, None, Some(a.describe())),
        };
        Ok(HealthCheck {
            name: name.to_string(),
            healthy,
            response_time_ms,
            error,
            circuit_state: circuit_state(),
            checked_at: crate::time::now(),
            details,
        })
    }

    /// The longest one `detect` may take: every attempt's timeout plus the waits
    /// between attempts.
    pub fn detect_budget(&self) -> Duration {
        self.retry_budget(self.settings.detect_timeout)
    }

    /// The longest one `analyze` may take (see [`AiClients::detect_budget`]).
    pub fn analysis_budget(&self) -> Duration {
        self.retry_budget(self.settings.analysis_timeout)
    }

    /// `retry_base · 2ⁿ` between attempts (the attempts themselves are bounded).
    fn retry_backoff(&self) -> crate::time::Backoff {
        crate::time::Backoff::new(self.settings.retry_base, Duration::MAX)
    }

    fn retry_budget(&self, per_attempt: Duration) -> Duration {
        let n = self.settings.max_attempts;
        let waits: Duration = (1..n).map(|k| self.retry_backoff().after(k - 1)).sum();
        per_attempt * n + waits
    }
}
