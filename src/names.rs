//! The closed vocabularies several floors share: the names of the supervised workers,
//! and the [`Label`] trait by which a domain type names its metric label values. A
//! leaf: it imports nothing of the crate.

/// A closed set of label values, owned by the domain type it describes (a worker
/// state, a queue placement, a pipeline stage, a close reason, …). Metric methods take
/// the domain value and render it here, so call sites never pass or compare label
/// strings, and every value can be published at 0 from the start (`all`).
pub trait Label: Copy + 'static {
    fn label(self) -> &'static str;
    fn all() -> &'static [Self];
}

/// The supervised workers, by the name the API, the metrics and the config use.
pub mod workers {
    pub const FILE_WATCHER: &str = "file_watcher";
    pub const DETECTION_WORKER: &str = "detection_worker";
    pub const ANALYSIS_WORKER: &str = "analysis_worker";
    pub const BATCH_AGGREGATOR: &str = "batch_aggregator";
    pub const CLEANUP_SERVICE: &str = "cleanup_service";
    pub const QUEUE_REPLAYER: &str = "queue_replayer";
    pub const DEGRADATION_MANAGER: &str = "degradation_manager";
    pub const EVENT_BROADCASTER: &str = "event_broadcaster";
    pub const SYSTEM_BROADCASTER: &str = "system_broadcaster";
    pub const PERFORMANCE_SAMPLER: &str = "performance_sampler";
    pub const ALERT_ENGINE: &str = "alert_engine";

    /// Every worker, in registration order (the order the API lists them).
    pub const ALL: [&str; 11] = [
        FILE_WATCHER,
        DETECTION_WORKER,
        ANALYSIS_WORKER,
        BATCH_AGGREGATOR,
        CLEANUP_SERVICE,
        QUEUE_REPLAYER,
        DEGRADATION_MANAGER,
        EVENT_BROADCASTER,
        SYSTEM_BROADCASTER,
        PERFORMANCE_SAMPLER,
        ALERT_ENGINE,
    ];
}
