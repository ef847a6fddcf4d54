//! The performance sampler (`performance_sampler` worker): one snapshot every
//! `performance.sample_interval_seconds` into the history ring. Parts are read
//! concurrently, each bounded in time; blocking ones (sysinfo, statvfs, NVML) run on
//! the blocking pool. AI model states come from the shared prober's latest round,
//! Nemotron's slots from the LLM server's `/slots` (one bounded call per sample),
//! latencies from watchpost's own windows.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::Instant;

use super::databases::{self, PgSample};
use super::host::{round2, Host};
use super::snapshot::{
    alerts, AiModels, Databases, History, Inference, LatencyStats, NemotronModel,
    PerformanceSnapshot, PipelineLatency, QueueDepths, Throughput, Yolo26Model,
};
use super::window::{InferenceWindows, Window};
use crate::ai::{AiClients, LlmSlots};
use crate::config::{secs, Config, ThresholdsConfig};
use crate::health::prober::{AiServiceHealth, Prober};
use crate::health::HealthState;
use crate::pipeline::Pipeline;
use crate::redis::RedisLink;
use crate::store::Store;
use crate::supervisor::{WorkerContext, WorkerError, WorkerSpec};

/// Bound on each part of a sample.
const PART_TIMEOUT: Duration = Duration::from_secs(2);

pub struct PerfSampler {
    host: Arc<Host>,
    data_dir: PathBuf,
    store: Arc<Store>,
    redis: Arc<RedisLink>,
    prober: Arc<Prober>,
    ai: Arc<AiClients>,
    inference: Arc<InferenceWindows>,
    pipeline: Arc<Pipeline>,
    thresholds: ThresholdsConfig,
    interval: Duration,
    history: Mutex<History>,
    /// Bumped with every sample (for memoised answers).
    version: AtomicU64,
    /// When freed memory was last handed back (`allocator::trim`).
    last_trim: Mutex<Instant>,
    /// The previous PostgreSQL transaction total, for the rate.
    last_transactions: Mutex<Option<(Instant, i64)>>,
}

impl PerfSampler {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        config: &Config,
        store: Arc<Store>,
        redis: Arc<RedisLink>,
        prober: Arc<Prober>,
        ai: Arc<AiClients>,
        inference: Arc<InferenceWindows>,
        pipeline: Arc<Pipeline>,
    ) -> Arc<Self> {
        let data_dir = pipeline.watcher.root().to_path_buf();
        Arc::new(Self {
            host: Arc::new(Host::default()),
            data_dir,
            store,
            redis,
            prober,
            inference,
            ai,
            pipeline,
            thresholds: config.performance.thresholds.clone(),
            interval: secs(config.performance.sample_interval_seconds),
            history: Mutex::new(History::new(config.performance.history_size)),
            version: AtomicU64::new(0),
            last_trim: Mutex::new(Instant::now()),
            last_transactions: Mutex::new(None),
        })
    }

    fn history_lock(&self) -> MutexGuard<'_, History> {
        // Each critical section leaves the ring whole; survive a poisoned lock.
        self.history.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn worker(self: &Arc<Self>, critical: bool) -> WorkerSpec {
        WorkerSpec::shared(
            crate::names::workers::PERFORMANCE_SAMPLER,
            critical,
            Arc::clone(self),
            |me, ctx| async move { me.run(&ctx).await },
        )
    }

    async fn run(&self, ctx: &WorkerContext) -> Result<(), WorkerError> {
        loop {
            let started = Instant::now();
            ctx.beat_while(PART_TIMEOUT * 3, self.sample_once()).await;
            if !ctx
                .idle(self.interval.saturating_sub(started.elapsed()))
                .await
            {
                return Ok(());
            }
        }
    }

    /// Samples in the ring (for `watchpost_memory_entries`).
    pub fn history_entries(&self) -> usize {
        self.history_lock().entries()
    }

    /// The latest sample (no I/O); `None` before the first.
    pub fn latest(&self) -> Option<Arc<PerformanceSnapshot>> {
        self.history_lock().latest()
    }

    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Relaxed)
    }

    /// The samples of the last `window`, thinned to at most 60, oldest first.
    pub fn history(&self, window: Duration) -> Vec<Arc<PerformanceSnapshot>> {
        self.history_lock().window(window, Instant::now())
    }

    /// Take one sample and add it to the ring.
    pub async fn sample_once(&self) -> Arc<PerformanceSnapshot> {
        let (host, dir) = (self.host.clone(), self.data_dir.clone());
        let trim = {
            let mut last = self.last_trim.lock().unwrap_or_else(|p| p.into_inner());
            let due = last.elapsed() >= super::allocator::TRIM_EVERY;
            if due {
                *last = Instant::now();
            }
            due
        };
        let local = tokio::task::spawn_blocking(move || {
            if trim {
                super::allocator::trim();
            }
            (host.sample(&dir), super::gpu::sample())
        });
        let (local, containers, pg, redis, slots) = tokio::join!(
            tokio::time::timeout(PART_TIMEOUT, local),
            super::containers::sample(),
            tokio::time::timeout(PART_TIMEOUT, databases::postgres(&self.store)),
            tokio::time::timeout(PART_TIMEOUT, databases::redis(&self.redis)),
            tokio::time::timeout(PART_TIMEOUT, self.ai.llm_slots()),
        );
        let (host, gpu) = match local {
            Ok(Ok(parts)) => parts,
            _ => (None, None),
        };
        let pg = pg.ok().flatten();
        let redis = redis.ok().flatten();
        let mut snapshot = PerformanceSnapshot {
            gpu,
            ai_models: self.ai_models(slots.ok().flatten()),
            inference: Some(self.inference()),
            databases: Some(Databases {
                postgresql: pg.map(|p| {
                    let rate = self.transactions_per_min(&p);
                    p.stats(rate)
                }),
                redis,
            }),
            host,
            containers,
            alerts: Vec::new(),
            timestamp: crate::time::now(),
        };
        snapshot.alerts = alerts(&snapshot, &self.thresholds);
        let snapshot = Arc::new(snapshot);
        self.history_lock().push(Instant::now(), snapshot.clone());
        self.version.fetch_add(1, Ordering::Relaxed);
        snapshot
    }

    fn transactions_per_min(&self, p: &PgSample) -> f64 {
        let now = Instant::now();
        let mut last = self
            .last_transactions
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let rate = match *last {
            Some((at, before)) if now > at && p.transactions >= before => {
                (p.transactions - before) as f64 / now.duration_since(at).as_secs_f64() * 60.0
            }
            _ => 0.0,
        };
        *last = Some((now, p.transactions));
        rate
    }

    fn inference(&self) -> Inference {
        let stats = |w: &Window| {
            let s = w.summary();
            LatencyStats {
                avg: s.map_or(0.0, |s| round2(s.avg)),
                p95: s.map_or(0.0, |s| round2(s.p95)),
                p99: s.map_or(0.0, |s| round2(s.p99)),
                samples: s.map_or(0, |s| s.count as u64),
            }
        };
        let pipeline = self.inference.pipeline.summary();
        let minute = Duration::from_secs(60);
        Inference {
            yolo26_latency_ms: stats(&self.inference.yolo26),
            nemotron_latency_ms: stats(&self.inference.nemotron),
            pipeline_latency_ms: PipelineLatency {
                avg: pipeline.map_or(0.0, |s| round2(s.avg)),
                p95: pipeline.map_or(0.0, |s| round2(s.p95)),
                samples: pipeline.map_or(0, |s| s.count as u64),
            },
            throughput: Throughput {
                images_per_min: self.inference.pipeline.count_within(minute) as f64,
                events_per_min: self.inference.events.count_within(minute) as f64,
            },
            queues: QueueDepths {
                detection: self.pipeline.detection_queue.depth(),
                analysis: self.pipeline.analysis_queue.depth(),
            },
        }
    }

    /// From the prober's latest round and the LLM's slots: unknown values are `0` or
    /// `"unknown"`, never null (clients of this API require every field). The model
    /// servers name their model `model_name` (YOLO26) or `model`; llama.cpp servers old
    /// enough to put slot counts in `/health` are read from there when `/slots` is off.
    fn ai_models(&self, slots: Option<LlmSlots>) -> Option<AiModels> {
        let round = self.prober.latest()?;
        let find = |name: &str| round.ai_services.iter().find(|s| s.name == name);
        let text = |h: Option<&AiServiceHealth>, keys: &[&str]| {
            h.and_then(|h| h.details.as_ref())
                .and_then(|d| keys.iter().find_map(|k| d[*k].as_str()))
                .unwrap_or("unknown")
                .to_string()
        };
        let number = |h: Option<&AiServiceHealth>, keys: &[&str]| {
            h.and_then(|h| h.details.as_ref())
                .and_then(|d| keys.iter().find_map(|k| d[*k].as_f64()))
                .unwrap_or(0.0)
        };
        let (yolo, nemo) = (find("yolo26"), find("nemotron"));
        let slots = slots.unwrap_or_else(|| {
            let active = number(nemo, &["slots_processing"]);
            LlmSlots {
                total: (active + number(nemo, &["slots_idle"])) as i64,
                active: active as i64,
                context_size: number(nemo, &["n_ctx", "context_size"]) as i64,
            }
        });
        Some(AiModels {
            yolo26: Yolo26Model {
                status: model_status(yolo),
                vram_gb: number(yolo, &["vram_used_gb", "vram_gb"]),
                model: text(yolo, &["model_name", "model"]),
                device: text(yolo, &["device"]),
            },
            nemotron: NemotronModel {
                status: model_status(nemo),
                slots_active: slots.active,
                slots_total: slots.total,
                context_size: slots.context_size,
            },
        })
    }
}

/// `healthy`; `unhealthy` when it answered with an error; `unreachable` otherwise.
fn model_status(h: Option<&AiServiceHealth>) -> String {
    match h {
        Some(h) if h.status == HealthState::Healthy => "healthy",
        Some(h) if h.error.as_deref().is_some_and(|e| e.starts_with("HTTP ")) => "unhealthy",
        _ => "unreachable",
    }
    .into()
}
