//! The dead man's switch: the `heartbeat` worker pings `heartbeat.url` every
//! `heartbeat.interval_seconds` while no critical alert fires, so a service outside
//! (healthchecks.io, an Uptime Kuma push monitor, a Gatus external endpoint) tells
//! when the pings stop: when watchpost, or the box it runs on, died. While a
//! critical alert fires (not held by a silence or a maintenance window) it pings
//! `fail_url` instead (default `url` + `/fail`): at once when one starts firing, then
//! each interval; the success ping comes at once when the last one resolves. A ping
//! that fails is counted and shown with the notifiers; the next comes on time.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use prometheus::IntCounterVec;
use tokio::time::Instant;

use crate::alerts::{outside_client, AlertEngine};
use crate::config::{secs, HeartbeatConfig};
use crate::events::Severity;
use crate::names::{closed_set, workers, Label};
use crate::prom::Metrics;
use crate::supervisor::WorkerSpec;

/// How often the firing alerts are looked at (a critical one is told within this).
const LOOK_EVERY: Duration = Duration::from_secs(1);

closed_set! {
    /// Which URL a ping went to.
    pub enum Ping {
        Success = "success",
        Fail = "fail",
    }
}

closed_set! {
    /// What became of a ping.
    pub enum PingResult {
        Sent = "sent",
        Failed = "failed",
    }
}

/// The dead man's switch as `GET /api/system/notifiers` shows it.
#[derive(Debug, Clone, Default, serde::Serialize, utoipa::ToSchema)]
pub struct HeartbeatView {
    /// The addresses, as `scheme://host[:port]` (their paths hold the check's id).
    pub url: String,
    pub fail_url: String,
    #[serde(serialize_with = "crate::time::whole_seconds")]
    pub interval_seconds: f64,
    /// A critical alert fires: `fail_url` is pinged.
    pub failing: bool,
    pub last_ping_at: Option<DateTime<Utc>>,
    pub last_ping: Option<Ping>,
    pub last_error: Option<String>,
    pub pings_sent: u64,
    pub pings_failed: u64,
}

pub struct Heartbeat {
    cfg: HeartbeatConfig,
    http: reqwest::Client,
    engine: Arc<AlertEngine>,
    pings: IntCounterVec,
    view: Mutex<HeartbeatView>,
}

impl Heartbeat {
    /// `None` without `heartbeat.url`.
    pub fn new(
        cfg: &HeartbeatConfig,
        engine: Arc<AlertEngine>,
        metrics: &Metrics,
    ) -> Option<Arc<Self>> {
        if !cfg.enabled() {
            return None;
        }
        let pings = metrics.counters(
            "heartbeat_pings_total",
            "Pings of the dead man's switch (heartbeat.url, or fail_url while a critical alert fires), by what became of them.",
            &["ping", "result"],
        );
        for p in Ping::all() {
            for r in PingResult::all() {
                pings.with_label_values(&[p.label(), r.label()]);
            }
        }
        Some(Arc::new(Self {
            http: outside_client(secs(cfg.timeout_seconds)),
            view: Mutex::new(HeartbeatView {
                url: crate::redact::origin(&cfg.url),
                fail_url: crate::redact::origin(&cfg.fail()),
                interval_seconds: cfg.interval_seconds,
                ..HeartbeatView::default()
            }),
            cfg: cfg.clone(),
            engine,
            pings,
        }))
    }

    fn lock(&self) -> MutexGuard<'_, HeartbeatView> {
        self.view.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn view(&self) -> HeartbeatView {
        self.lock().clone()
    }

    /// Whether a critical alert fires that nothing holds back.
    fn critical(&self) -> bool {
        self.engine
            .firing()
            .iter()
            .any(|a| a.severity == Severity::Critical && a.silenced_by.is_empty())
    }

    pub fn worker(self: &Arc<Self>, critical: bool) -> WorkerSpec {
        WorkerSpec::shared(
            workers::HEARTBEAT,
            critical,
            Arc::clone(self),
            |me, ctx| async move {
                let every = secs(me.cfg.interval_seconds);
                let mut told: Option<bool> = None;
                let mut due = Instant::now();
                loop {
                    let failing = me.critical();
                    if told != Some(failing) || Instant::now() >= due {
                        ctx.beat_while(every + LOOK_EVERY, me.ping(failing)).await;
                        told = Some(failing);
                        due = Instant::now() + every;
                    }
                    if !ctx.idle(LOOK_EVERY).await {
                        return Ok(());
                    }
                }
            },
        )
    }

    async fn ping(&self, failing: bool) {
        let (kind, url) = if failing {
            (Ping::Fail, self.cfg.fail())
        } else {
            (Ping::Success, self.cfg.url.clone())
        };
        let req = if self.cfg.method == "POST" {
            self.http.post(&url)
        } else {
            self.http.get(&url)
        };
        let result = match req.send().await {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => Err(format!("answered {}", r.status().as_u16())),
            Err(e) => Err(crate::redact::error(&e.without_url())),
        };
        let outcome = if result.is_ok() {
            PingResult::Sent
        } else {
            PingResult::Failed
        };
        self.pings
            .with_label_values(&[kind.label(), outcome.label()])
            .inc();
        let mut v = self.lock();
        let was_failing = v.last_error.is_some();
        v.failing = failing;
        v.last_ping_at = Some(crate::time::now());
        v.last_ping = Some(kind);
        match result {
            Ok(()) => {
                v.pings_sent += 1;
                if was_failing {
                    tracing::info!(url = %v.url, "the dead man's switch is reached again");
                }
                v.last_error = None;
            }
            Err(why) => {
                v.pings_failed += 1;
                if !was_failing {
                    tracing::warn!(url = %v.url, error = %why, "the dead man's switch was not reached; the next ping comes on time");
                }
                v.last_error = Some(why);
            }
        }
    }
}
