//! The closed vocabularies several floors share: the names of the supervised workers,
//! the [`Label`] trait by which a domain type names its metric label values, and
//! `closed_set!`, which declares such a type once (variants, wire names, label). A
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
    pub const CAMERA_WATCHDOG: &str = "camera_watchdog";
    pub const ALERT_ENGINE: &str = "alert_engine";
    pub const ALERT_SENDER: &str = "alert_sender";
    pub const NOTIFIER: &str = "notifier";

    /// Every worker, in registration order (the order the API lists them).
    pub const ALL: [&str; 14] = [
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
        CAMERA_WATCHDOG,
        ALERT_ENGINE,
        ALERT_SENDER,
        NOTIFIER,
    ];
}

/// Declares a closed set: a `Copy` enum whose variants serialise as the given names
/// (the wire strings; the JSON schema lists them as its `enum`), with `ALL`,
/// `as_str`, `parse` and its [`Label`] rendering. Extra attributes (more derives, doc
/// comments) go before `pub enum`.
macro_rules! closed_set {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $text:tt, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, utoipa::ToSchema)]
        pub enum $name {
            $( $(#[$vmeta])* #[serde(rename = $text)] $variant, )+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The wire name (also the metric label value).
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)+
                }
            }

            /// The value whose wire name is `text` (not every set is read back).
            #[allow(dead_code)]
            pub fn parse(text: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.as_str() == text)
            }
        }

        impl $crate::names::Label for $name {
            fn label(self) -> &'static str {
                self.as_str()
            }
            fn all() -> &'static [Self] {
                Self::ALL
            }
        }
    };
}
pub(crate) use closed_set;
