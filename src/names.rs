//! The closed vocabularies several floors share: the names of the supervised workers,
//! the [`Label`] trait by which a domain type names its metric label values,
//! `closed_set!`, which declares such a type once (variants, wire names, label), and
//! [`has_format_char`], the rule that keeps invisible and direction-changing
//! characters out of names shown to people. A leaf: it imports nothing of the crate.

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
    pub const COVERAGE_RECORDER: &str = "coverage_recorder";
    pub const MAINTENANCE: &str = "maintenance";
    pub const STORAGE_SAMPLER: &str = "storage_sampler";
    pub const FLEET: &str = "fleet";
    /// Registered only with `[heartbeat] url`.
    pub const HEARTBEAT: &str = "heartbeat";

    /// Every worker, in registration order (the order the API lists them).
    pub const ALL: [&str; 18] = [
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
        COVERAGE_RECORDER,
        MAINTENANCE,
        STORAGE_SAMPLER,
        FLEET,
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

/// Unicode's format characters (general category Cf): invisible, and some of them
/// (U+202A–U+202E, U+2066–U+2069) reorder the text around them, so a name holding one
/// can show as another name. The ranges as Unicode 15 lists them.
const FORMAT_CHARS: [(u32, u32); 21] = [
    (0x00AD, 0x00AD),
    (0x0600, 0x0605),
    (0x061C, 0x061C),
    (0x06DD, 0x06DD),
    (0x070F, 0x070F),
    (0x0890, 0x0891),
    (0x08E2, 0x08E2),
    (0x180E, 0x180E),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x2064),
    (0x2066, 0x206F),
    (0xFEFF, 0xFEFF),
    (0xFFF9, 0xFFFB),
    (0x110BD, 0x110BD),
    (0x110CD, 0x110CD),
    (0x13430, 0x1343F),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0001, 0xE0001),
    (0xE0020, 0xE007F),
];

/// Whether `s` holds a format character (see [`FORMAT_CHARS`]).
pub fn has_format_char(s: &str) -> bool {
    s.chars().any(|c| {
        let c = u32::from(c);
        FORMAT_CHARS.iter().any(|&(lo, hi)| (lo..=hi).contains(&c))
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn direction_overrides_and_invisible_characters_are_format_characters() {
        assert!(super::has_format_char("door\u{202E}gpj.exe"));
        assert!(super::has_format_char("front\u{200B}door"));
        assert!(super::has_format_char("\u{FEFF}porch"));
        assert!(!super::has_format_char("Front Door"));
        assert!(!super::has_format_char("Café Küche 前门"));
    }
}
