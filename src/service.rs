//! Composition root: builds the shared state, registers the supervised workers, starts
//! the HTTP server, and shuts everything down on SIGTERM/SIGINT (HTTP and workers
//! together, within the grace period). Starting never waits for Redis,
//! PostgreSQL, Prometheus or the AI services.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::actions::Actions;
use crate::ai::{AiClients, SERVICE_NAMES};
use crate::alerts::{
    AiPaceProblems, AlertEngine, CameraProblems, Causes, FleetProblems, HealthProblems, Identity,
    ProblemSource, Sender, Silences, StorageProblems,
};
use crate::api::{self, HttpServer};
use crate::breaker::BreakerRegistry;
use crate::cameras::{CameraRegistry, Watchdog};
use crate::config::{AlertingConfig, Config};
use crate::coverage::{Coverage, CoverageMetrics, Recorder};
use crate::events::EventBus;
use crate::fleet::{self, Fleet};
use crate::health::degradation::DegradationManager;
use crate::health::prober::Prober;
use crate::health::Health;
use crate::names::workers;
use crate::notify::Heartbeat;
use crate::notify::{Notifiers, NotifyDeps, NotifyError};
use crate::perf::sampler::PerfSampler;
use crate::perf::window::InferenceWindows;
use crate::pipeline::queue::FallbackStats;
use crate::pipeline::{Deps as PipelineDeps, Pipeline, PipelineError};
use crate::prom::client::PromClient;
use crate::prom::Metrics;
use crate::quiet::Quiet;
use crate::redis::RedisLink;
use crate::state::AppState;
use crate::storage::{Storage, StorageMetrics};
use crate::store::Store;
use crate::supervisor::{Supervisor, SupervisorError};
use crate::ws::{EventBroadcaster, Hub, SystemBroadcaster};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {bind}: {source}")]
    Bind {
        bind: String,
        source: std::io::Error,
    },
    #[error("cannot register worker: {0}")]
    Worker(#[from] SupervisorError),
    #[error("cannot set up the pipeline: {0}")]
    Pipeline(#[from] PipelineError),
    #[error("cannot set up the notifiers: {0}")]
    Notify(#[from] NotifyError),
}

pub struct Service {
    state: Arc<AppState>,
    http: HttpServer,
}

impl Service {
    /// Start with the production workers.
    pub async fn start(config: Config) -> Result<Self, StartError> {
        Self::start_with(config, |_| Ok(())).await
    }

    /// Start, letting `extra` register additional workers before they are started
    /// (used by tests that need a worker they can crash on purpose).
    pub async fn start_with(
        config: Config,
        extra: impl FnOnce(&Supervisor) -> Result<(), SupervisorError>,
    ) -> Result<Self, StartError> {
        let config = Arc::new(config);
        let metrics = Arc::new(Metrics::new());
        let events = EventBus::new();
        let supervisor = Supervisor::new(&config.supervisor, metrics.clone(), events.clone());
        let breakers = Arc::new(BreakerRegistry::new(
            &SERVICE_NAMES,
            &config.breaker,
            metrics.clone(),
            events.clone(),
        ));
        // The performance view's windows: owned by perf, handed down to what measures.
        let inference = Arc::new(InferenceWindows::default());
        let ai = Arc::new(AiClients::new(
            &config,
            breakers.clone(),
            metrics.clone(),
            inference.clone(),
        ));
        let redis = Arc::new(RedisLink::new(&config.redis.url));
        let store = Arc::new(Store::new(&config.postgres.url).map_err(PipelineError::from)?);
        let fallback = Arc::new(FallbackStats::default());
        let prober = Prober::new(
            &config.health,
            store.clone(),
            redis.clone(),
            ai.clone(),
            metrics.clone(),
        );
        let degradation = Arc::new(DegradationManager::new(
            &config,
            Arc::new(prober.clone()),
            fallback.clone(),
            metrics.clone(),
            events.clone(),
        ));
        let instance = fleet::instance_id(
            &config.server.instance_id,
            &config.queue.consumer_id,
            &crate::pipeline::host_name(),
            &config.server.bind,
        );
        let cameras = CameraRegistry::new(
            &config.cameras,
            store.clone(),
            events.clone(),
            &metrics,
            &instance,
        );
        let pipeline = Arc::new(
            Pipeline::build(
                &config,
                PipelineDeps {
                    store: store.clone(),
                    redis: redis.clone(),
                    ai: ai.clone(),
                    fallback: fallback.clone(),
                    events: events.clone(),
                    metrics: metrics.clone(),
                    cameras: cameras.clone(),
                    times: inference.clone(),
                },
            )
            .await?,
        );
        let health = Arc::new(Health::new(
            prober,
            breakers.clone(),
            supervisor.clone(),
            pipeline.watcher.status().clone(),
            degradation.clone(),
        ));
        let hub = Hub::new(
            config.websocket.client_buffer,
            config.websocket.max_clients,
            metrics.clone(),
        );
        let event_broadcaster = EventBroadcaster::new(
            hub.clone(),
            events.clone(),
            redis.clone(),
            &config.redis.url,
            &config.breaker,
            metrics.clone(),
        );
        let system_broadcaster = SystemBroadcaster::new(
            hub.clone(),
            events.clone(),
            health.clone(),
            degradation.clone(),
            supervisor.clone(),
            pipeline.clone(),
        );
        let storage = Storage::new(&config, store.clone(), StorageMetrics::new(&metrics));
        let perf = PerfSampler::new(
            &config,
            store.clone(),
            redis.clone(),
            health.prober().clone(),
            ai.clone(),
            inference,
            pipeline.clone(),
        );
        let watchdog = Watchdog::new(&config.cameras, cameras.clone());
        let (detection_consumer, analysis_consumer) = pipeline.consumer_names();
        let fleet = Arc::new(Fleet::new(
            fleet::Me {
                id: instance,
                address: config.server.bind.clone(),
                started_at: crate::time::now(),
            },
            config.fleet.clone(),
            redis.clone(),
            store.clone(),
            cameras.clone(),
            fleet::Queues {
                detection: pipeline.detection_queue.clone(),
                analysis: pipeline.analysis_queue.clone(),
                detection_consumer,
                analysis_consumer,
                batches: pipeline.batches.clone(),
            },
            &metrics,
        ));
        let alerts_changed = Arc::new(tokio::sync::Notify::new());
        let quiet = Quiet::new(
            &config.maintenance,
            config.cameras.groups.clone(),
            store.clone(),
            redis.clone(),
        );
        let silences = Silences::new(store.clone(), alerts_changed.clone(), quiet.clone());
        // A silence made or ended on another instance applies here within 2 s.
        let weak = Arc::downgrade(&silences);
        quiet.on_change(move || {
            let silences = weak.upgrade();
            Box::pin(async move {
                if let Some(s) = silences {
                    if let Err(e) = s.reload().await {
                        tracing::debug!(error = %e, "silences not read again yet");
                    }
                }
            })
        });
        let alerts = AlertEngine::new(
            &config.alerts,
            health.clone(),
            // What can go wrong, each capability's own: one line per source.
            vec![
                Arc::new(HealthProblems(health.clone())) as Arc<dyn ProblemSource>,
                Arc::new(CameraProblems(cameras.clone())),
                Arc::new(StorageProblems(perf.clone(), storage.clone())),
                Arc::new(AiPaceProblems(ai.clone())),
                Arc::new(FleetProblems(fleet.clone())),
            ],
            silences.clone(),
            Causes::new(
                config.ai.services().map(|(name, s)| (name, s.url.as_str())),
                &config.cameras.groups,
            ),
            alerts_changed.clone(),
            store.clone(),
            events.clone(),
            &metrics,
        );
        alerts.link_runbooks_under(&config.alerting.runbook_base_url);
        alerts.on_host(fleet.id());
        let sender = Sender::new(
            &config.alerting,
            alerts.clone(),
            silences.clone(),
            quiet.clone(),
            store.clone(),
            alerts_changed,
        );
        // What the dependencies' availability lists: the stores and each AI service.
        let dependencies = ["postgres", "redis"]
            .into_iter()
            .chain(SERVICE_NAMES)
            .map(String::from)
            .collect();
        let coverage = Coverage::new(store.clone(), config.coverage.min_gap_seconds, dependencies);
        let actions = Actions::new(
            &config.alerting.external_url,
            config.notify.action_ttl_seconds,
            store.clone(),
            quiet.clone(),
            silences.clone(),
        );
        let notifiers = Notifiers::new(
            &config.notify,
            NotifyDeps {
                alerts: config.alerts.clone(),
                engine: alerts.clone(),
                silences: silences.clone(),
                health: health.clone(),
                cameras: cameras.clone(),
                redis: redis.clone(),
                store: store.clone(),
                metrics: metrics.clone(),
                coverage: coverage.clone(),
                actions: actions.clone(),
                quiet: quiet.clone(),
            },
        )?;
        let recorder = Recorder::new(
            &config.coverage,
            cameras.clone(),
            health.clone(),
            store.clone(),
            coverage.clone(),
            quiet.clone(),
            CoverageMetrics::new(&metrics, config.cameras.max_cameras, &cameras),
        );
        // A snooze's end is told, with what in its scope still fires.
        let (told_to, engine) = (Arc::downgrade(&notifiers), alerts.clone());
        let scopes = quiet.clone();
        quiet.on_snooze_end(move |w| {
            let still: Vec<String> = engine
                .firing()
                .into_iter()
                .filter(|a| scopes.covers(&w, &a.source))
                .map(|a| a.summary)
                .collect();
            if let Some(n) = told_to.upgrade() {
                let summary = if still.is_empty() {
                    format!("Snooze on {} ended", w.scope)
                } else {
                    format!(
                        "Snooze on {} ended; still firing: {}",
                        w.scope,
                        still.join("; ")
                    )
                };
                let body = if still.is_empty() {
                    "Nothing in its scope fires: alerts are told again as they fire.".to_string()
                } else {
                    format!("Still firing, now told again:\n- {}", still.join("\n- "))
                };
                n.notice(&format!("snooze-{}", w.id), &summary, &body);
            }
            Box::pin(async {})
        });
        // What each in-memory structure holds (`watchpost_memory_entries`); weak, so
        // the registry keeps none of them alive.
        let weak_len = |weak: std::sync::Weak<dyn MemoryEntries>| {
            move || weak.upgrade().map_or(0, |s| s.memory_entries())
        };
        metrics.entries("perf_history", weak_len(Arc::downgrade(&perf) as _));
        metrics.entries("alert_engine", weak_len(Arc::downgrade(&alerts) as _));
        metrics.entries("notifier", weak_len(Arc::downgrade(&notifiers) as _));
        metrics.entries("websocket_hub", weak_len(Arc::downgrade(&hub) as _));
        metrics.entries(
            "coverage_recorder",
            weak_len(Arc::downgrade(&recorder) as _),
        );
        let critical = |name: &str| config.is_critical_worker(name);
        pipeline.register(&supervisor, &config)?;
        supervisor.register(degradation.worker(critical(workers::DEGRADATION_MANAGER)))?;
        supervisor.register(event_broadcaster.worker(critical(workers::EVENT_BROADCASTER)))?;
        supervisor.register(system_broadcaster.worker(critical(workers::SYSTEM_BROADCASTER)))?;
        supervisor.register(perf.worker(critical(workers::PERFORMANCE_SAMPLER)))?;
        supervisor.register(watchdog.worker(critical(workers::CAMERA_WATCHDOG)))?;
        supervisor.register(alerts.worker(critical(workers::ALERT_ENGINE)))?;
        supervisor.register(sender.worker(critical(workers::ALERT_SENDER)))?;
        supervisor.register(notifiers.worker(critical(workers::NOTIFIER)))?;
        supervisor.register(recorder.worker(critical(workers::COVERAGE_RECORDER)))?;
        supervisor.register(quiet.worker(critical(workers::MAINTENANCE)))?;
        supervisor.register(storage.worker(critical(workers::STORAGE_SAMPLER)))?;
        supervisor.register(fleet.worker(critical(workers::FLEET)))?;
        let heartbeat = Heartbeat::new(&config.heartbeat, alerts.clone(), &metrics);
        if let Some(h) = &heartbeat {
            supervisor.register(h.worker(critical(workers::HEARTBEAT)))?;
        }
        extra(&supervisor)?;
        let state = Arc::new(AppState {
            config: config.clone(),
            metrics,
            events,
            supervisor,
            breakers,
            ai,
            redis,
            store,
            fallback,
            degradation,
            pipeline,
            health,
            hub,
            event_broadcaster,
            system_broadcaster,
            prometheus: Arc::new(PromClient::new(&config.prometheus)),
            perf,
            alerts,
            silences,
            cameras,
            notifiers: notifiers.clone(),
            coverage,
            quiet,
            actions,
            storage,
            fleet,
            heartbeat,
        });
        let http = api::serve(state.clone()).map_err(|source| StartError::Bind {
            bind: config.server.bind.clone(),
            source,
        })?;
        let who = identity(&config.alerting, http.local_addr());
        notifiers.identify(who.clone());
        sender.identify(who);
        state.supervisor.start_all();
        tracing::info!(addr = %http.local_addr(), version = env!("CARGO_PKG_VERSION"), "watchpost listening");
        Ok(Self { state, http })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.http.local_addr()
    }

    pub fn state(&self) -> &Arc<AppState> {
        &self.state
    }

    /// Serve until `shutdown` resolves (see [`shutdown_signal`]), then shut down
    /// gracefully.
    pub async fn run_until(
        mut self,
        shutdown: impl std::future::Future<Output = &'static str>,
    ) -> std::io::Result<()> {
        tokio::select! {
            why = shutdown => tracing::info!(signal = why, "shutting down"),
            res = self.http.stopped() => {
                tracing::error!(result = ?res, "HTTP server stopped unexpectedly");
                self.state.supervisor.shutdown().await;
                return res;
            }
        }
        self.shutdown().await;
        Ok(())
    }

    /// Stop accepting requests and stop every worker, together, so the whole
    /// shutdown takes at most `shutdown_grace_seconds`: in-flight requests and current
    /// items get the grace period, then they are aborted.
    pub async fn shutdown(self) {
        tokio::join!(self.http.stop(), self.state.supervisor.shutdown());
        tracing::info!("watchpost stopped");
    }
}

/// Install SIGTERM and SIGINT handlers now (before serving, so an early signal is never
/// lost to the default action) and return a future that resolves on the first one.
#[cfg(unix)]
pub fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = &'static str>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        }
    })
}

/// Who watchpost is in the alerts it sends: `alerting.instance` or `<host>:<port>`,
/// and its page: `alerting.external_url` or `http://<bound address>/`.
fn identity(cfg: &AlertingConfig, bound: SocketAddr) -> Identity {
    let host = api::site::machine_host_names()
        .into_iter()
        .next()
        .unwrap_or_else(|| bound.ip().to_string());
    Identity {
        instance: if cfg.instance.is_empty() {
            format!("{host}:{}", bound.port())
        } else {
            cfg.instance.clone()
        },
        external_url: if cfg.external_url.is_empty() {
            format!("http://{bound}/")
        } else {
            cfg.external_url.clone()
        },
    }
}

/// A structure's size, as `watchpost_memory_entries` reports it.
trait MemoryEntries: Send + Sync {
    fn memory_entries(&self) -> usize;
}

impl MemoryEntries for PerfSampler {
    fn memory_entries(&self) -> usize {
        self.history_entries()
    }
}

impl MemoryEntries for AlertEngine {
    fn memory_entries(&self) -> usize {
        self.entries()
    }
}

impl MemoryEntries for Notifiers {
    fn memory_entries(&self) -> usize {
        self.entries()
    }
}

impl MemoryEntries for Hub {
    fn memory_entries(&self) -> usize {
        self.entries()
    }
}

impl MemoryEntries for Recorder {
    fn memory_entries(&self) -> usize {
        self.entries()
    }
}
