//! The camera pipeline: file watcher → detection queue → detection worker → Postgres
//! `detections` + batch aggregator → analysis queue → analysis worker → Postgres
//! `events` → `event.created`. Each stage is a supervised worker; so are the queue
//! replayer, the degradation manager and the cleanup service. [`Pipeline`] builds the
//! parts and registers their workers.

pub mod analysis;
pub mod batch;
pub mod camera_fs;
pub mod cleanup;
pub mod consume;
pub mod detection;
pub mod measure;
pub mod metrics;
pub mod queue;
pub mod retention;
pub mod retention_db;
pub mod thumbnail;
pub mod watcher;

use serde::Serialize;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::ai::AiClients;
use crate::cameras::CameraRegistry;
use crate::config::Config;
use crate::events::EventBus;
use crate::names::workers;
use crate::prom::Metrics;
use crate::redis::RedisLink;
use crate::store::{Store, StoreError};
use crate::supervisor::{Supervisor, SupervisorError, WorkerError, WorkerSpec};
use analysis::AnalysisWorker;
use batch::{BatchAggregator, OpenBatch};
use cleanup::CleanupService;
use detection::DetectionWorker;
use queue::{FallbackStats, Queue, QueueError};
use watcher::{FileWatcher, ObserverType};

/// What the pipeline is built on.
pub struct Deps {
    pub store: Arc<Store>,
    pub redis: Arc<RedisLink>,
    pub ai: Arc<AiClients>,
    pub fallback: Arc<FallbackStats>,
    pub events: EventBus,
    pub metrics: Arc<Metrics>,
    /// The cameras the watcher finds and the stages report on.
    pub cameras: Arc<CameraRegistry>,
    /// Where the pipeline's own measurements go (the performance view's windows).
    pub times: Arc<dyn measure::PipelineTimes>,
}

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Consumer names are stable across restarts of this instance (`queue.consumer_id`, or
/// the host name), so a restarted worker first gets back the items it had taken and
/// not acknowledged.
fn consumer_name(consumer_id: &str, worker: &str) -> String {
    format!("{}:{worker}", instance_name(consumer_id))
}

/// This instance's name in the queues' groups: `queue.consumer_id`, or the host name.
fn instance_name(consumer_id: &str) -> String {
    if consumer_id.is_empty() {
        host_name()
    } else {
        consumer_id.to_string()
    }
}

/// This machine's host name (`/etc/hostname`, else `$HOSTNAME`, else `watchpost`).
pub fn host_name() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "watchpost".into())
}

/// Take over the detection streams this instance used before: the one stream of
/// the versions before detection queues were scoped by camera root, and this
/// instance's previous scope (recorded in Redis under its name), when its camera
/// root's identity changed (a new marker, or a root it could not mark then).
async fn adopt_earlier_detection_streams(queue: &Queue, link: &RedisLink, host: &str) {
    let record = format!("watchpost:instance:{host}:detection_stream");
    let mut earlier = vec!["watchpost:queue:detection".to_string()];
    if let Ok(mut conn) = link.conn().await {
        let previous: Option<String> = redis::cmd("SET")
            .arg(&record)
            .arg(queue.stream_key())
            .arg("GET")
            .query_async(&mut conn)
            .await
            .ok()
            .flatten();
        earlier.extend(previous.filter(|p| p != queue.stream_key()));
    }
    queue.adopt(earlier).await;
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FileWatcherView {
    pub running: bool,
    pub camera_root: String,
    pub pending_tasks: usize,
    /// `native` or `polling`: the observer in use, or while the watcher is not running
    /// the last one used (the configured one before the first start).
    pub observer_type: ObserverType,
    /// Why the watcher is not watching (e.g. the root is not a directory), or null.
    pub error: Option<String>,
    /// Files refused in the last hour, by why (`rejected_size`: smaller than
    /// `file_watcher.min_file_bytes`; `rejected_extension`: not a .jpg, .jpeg or .png;
    /// `ignored_root`: not in a camera's folder; …).
    pub refused_last_hour: std::collections::BTreeMap<String, u64>,
}

/// Items waiting in each queue's dead-letter stream (failed permanently or too often).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DeadLettersView {
    pub detection: u64,
    pub analysis: u64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BatchAggregatorView {
    pub active_batches: usize,
    pub batches: Vec<OpenBatch>,
    #[serde(serialize_with = "crate::time::whole_seconds")]
    pub batch_window_seconds: f64,
    #[serde(serialize_with = "crate::time::whole_seconds")]
    pub idle_timeout_seconds: f64,
}

pub struct Pipeline {
    pub store: Arc<Store>,
    pub detection_queue: Arc<Queue>,
    pub analysis_queue: Arc<Queue>,
    pub watcher: Arc<FileWatcher>,
    pub batches: Arc<BatchAggregator>,
    /// Small pictures of the camera root's images, for the page.
    pub thumbnails: Arc<thumbnail::Thumbnails>,
    detection: Arc<DetectionWorker>,
    analysis: Arc<AnalysisWorker>,
    cleanup: Arc<CleanupService>,
}

impl Pipeline {
    pub async fn build(config: &Config, deps: Deps) -> Result<Self, PipelineError> {
        let Deps {
            store,
            redis,
            ai,
            fallback,
            events,
            metrics,
            cameras,
            times,
        } = deps;
        let stages = metrics::StageMetrics::new(&metrics);
        // Detection items go to the instances that see this camera root (and only
        // those: the picture is on its disk); analysis items to any instance.
        let host = instance_name(&config.queue.consumer_id);
        let identity = watcher::root_identity(Path::new(&config.file_watcher.camera_root), &host);
        if let watcher::RootIdentity::Own { why, .. } = &identity {
            tracing::warn!(reason = %why, marker = watcher::MARKER, "the camera root's marker cannot be used: this instance keeps a detection queue of its own");
        }
        let open = |name: &'static str, scope: Option<String>| {
            let (redis, fallback, metrics) = (redis.clone(), fallback.clone(), metrics.clone());
            async move {
                Queue::open(
                    name,
                    scope.as_deref(),
                    &config.queue,
                    redis,
                    fallback,
                    metrics,
                )
                .await
            }
        };
        cameras.set_scope(identity.scope());
        let detection_queue =
            Arc::new(open("detection", Some(identity.scope().to_string())).await?);
        let analysis_queue = Arc::new(open("analysis", None).await?);
        adopt_earlier_detection_streams(&detection_queue, &redis, &host).await;
        let watcher = Arc::new(FileWatcher::new(
            config,
            detection_queue.clone(),
            cameras.clone(),
            redis.clone(),
            metrics.clone(),
        ));
        let batches = Arc::new(
            BatchAggregator::new(
                &config.batch,
                Some(redis.clone()),
                analysis_queue.clone(),
                events.clone(),
                metrics.clone(),
            )
            .with_recovery(store.clone()),
        );
        let detection = Arc::new(DetectionWorker {
            queue: detection_queue.clone(),
            ai: ai.clone(),
            times: times.clone(),
            store: store.clone(),
            batches: batches.clone(),
            cameras: cameras.clone(),
            events: events.clone(),
            metrics: stages.clone(),
            consumer_name: consumer_name(&config.queue.consumer_id, workers::DETECTION_WORKER),
            camera_root: watcher.root().to_path_buf(),
            max_file_bytes: config.file_watcher.max_file_bytes,
            max_deliveries: config.queue.max_deliveries,
        });
        let analysis = Arc::new(AnalysisWorker {
            queue: analysis_queue.clone(),
            ai,
            times,
            store: store.clone(),
            cameras,
            events: events.clone(),
            metrics: stages,
            consumer_name: consumer_name(&config.queue.consumer_id, workers::ANALYSIS_WORKER),
            max_deliveries: config.queue.max_deliveries,
        });
        let deleted = metrics.counters(
            "cleanup_deleted_total",
            "What the cleanup deleted: detections, events, media (camera images), alerts (resolved), by reason (age: past cleanup.retention_days; size: past cleanup.max_media_bytes or cleanup.max_database_bytes).",
            &["kind", "reason"],
        );
        for kind in ["detections", "events", "media"] {
            for reason in ["age", "size"] {
                deleted.with_label_values(&[kind, reason]);
            }
        }
        deleted.with_label_values(&["alerts", "size"]);
        let by_size = (config.cleanup.max_media_bytes > 0).then(|| {
            Arc::new(retention::MediaBySize {
                root: watcher.root().to_path_buf(),
                cap: config.cleanup.max_media_bytes,
                keep_evidence: chrono::Duration::days(config.cleanup.keep_evidence_days.into()),
                store: store.clone(),
                judged: watcher.judged(),
                detection: detection_queue.clone(),
                deleted: deleted.clone(),
                last: std::sync::Mutex::new(None),
            })
        });
        let database_by_size = (config.cleanup.max_database_bytes > 0).then(|| {
            Arc::new(retention_db::DatabaseBySize {
                cap: config.cleanup.max_database_bytes,
                keep_evidence: chrono::Duration::days(config.cleanup.keep_evidence_days.into()),
                alertmanager: !config.alerting.alertmanager_urls.is_empty(),
                store: store.clone(),
                deleted: deleted.clone(),
                last: std::sync::Mutex::new(None),
            })
        });
        let cleanup = Arc::new(CleanupService {
            store: store.clone(),
            config: config.cleanup.clone(),
            camera_root: watcher.root().to_path_buf(),
            events,
            deleted,
            by_size,
            database_by_size,
        });
        let thumbnails = Arc::new(thumbnail::Thumbnails::new(
            watcher.root(),
            config.file_watcher.max_file_bytes,
        ));
        Ok(Self {
            store,
            detection_queue,
            analysis_queue,
            watcher,
            batches,
            thumbnails,
            detection,
            analysis,
            cleanup,
        })
    }

    /// Register every pipeline worker, in the order of docs/behaviour.md §1.
    pub fn register(&self, sup: &Supervisor, config: &Config) -> Result<(), SupervisorError> {
        let critical = |name: &str| config.is_critical_worker(name);
        sup.register(self.watcher.worker(critical(workers::FILE_WATCHER)))?;
        sup.register(self.detection.worker(critical(workers::DETECTION_WORKER)))?;
        sup.register(self.analysis.worker(critical(workers::ANALYSIS_WORKER)))?;
        sup.register(self.batches.worker(critical(workers::BATCH_AGGREGATOR)))?;
        sup.register(self.cleanup.worker(critical(workers::CLEANUP_SERVICE)))?;
        sup.register(self.replayer(critical(workers::QUEUE_REPLAYER)))?;
        Ok(())
    }

    /// `queue_replayer`: moves fallback items into Redis once it is back (checked
    /// every second), and refreshes the queue depth gauges every other second (the
    /// dead letters, which a dead-lettering or requeue updates at once anyway, every
    /// tenth).
    fn replayer(&self, critical: bool) -> WorkerSpec {
        let queues = [self.detection_queue.clone(), self.analysis_queue.clone()];
        WorkerSpec::new(workers::QUEUE_REPLAYER, critical, move |ctx| {
            let queues = queues.clone();
            async move {
                let mut round: u64 = 0;
                loop {
                    round = round.wrapping_add(1);
                    for q in &queues {
                        if q.fallback_len().await > 0 || q.adopting() {
                            if let Err(e) = q.replay().await {
                                tracing::debug!(queue = q.name(), error = %e, "replay postponed");
                            }
                        }
                        if round % 2 == 1 {
                            q.refresh_depth(round % 10 == 1).await;
                        }
                    }
                    if !ctx.idle(Duration::from_secs(1)).await {
                        return Ok::<(), WorkerError>(());
                    }
                }
            }
        })
    }

    pub fn file_watcher_view(&self, running: bool) -> FileWatcherView {
        let status = self.watcher.status();
        FileWatcherView {
            running: running && status.is_active(),
            camera_root: self.watcher.root().display().to_string(),
            pending_tasks: status.pending_tasks(),
            observer_type: status.observer_type(),
            error: status.problem(),
            refused_last_hour: self.watcher.refused_last_hour(),
        }
    }

    /// This instance's consumers in the detection and analysis queues' groups.
    pub fn consumer_names(&self) -> (String, String) {
        (
            self.detection.consumer_name.clone(),
            self.analysis.consumer_name.clone(),
        )
    }

    /// What the last retention run by size did (none without `cleanup.max_media_bytes`).
    pub fn size_run(&self) -> Option<retention::SizeRun> {
        self.cleanup.by_size.as_ref().and_then(|m| m.last())
    }

    /// What the last retention run of the database by size did (none without
    /// `cleanup.max_database_bytes`).
    pub fn database_size_run(&self) -> Option<retention_db::DatabaseRun> {
        self.cleanup
            .database_by_size
            .as_ref()
            .and_then(|d| d.last())
    }

    /// Dead letters per queue, as of the replayer's last look (no I/O).
    pub fn dead_letters(&self) -> DeadLettersView {
        DeadLettersView {
            detection: self.detection_queue.dead_letters(),
            analysis: self.analysis_queue.dead_letters(),
        }
    }

    /// The queue called `name` (`detection` or `analysis`).
    pub fn queue(&self, name: &str) -> Option<&Arc<Queue>> {
        [&self.detection_queue, &self.analysis_queue]
            .into_iter()
            .find(|q| q.name() == name)
    }

    /// The open batches as of the aggregator's last tick (no I/O).
    pub fn batch_view(&self) -> BatchAggregatorView {
        let batches = self.batches.open_batches();
        BatchAggregatorView {
            active_batches: batches.len(),
            batches,
            batch_window_seconds: self.batches.window_seconds(),
            idle_timeout_seconds: self.batches.idle_timeout_seconds(),
        }
    }
}
