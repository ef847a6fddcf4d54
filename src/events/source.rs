//! What an alert (or a health problem) is about: a typed source. It is written as a
//! string only at the edges (the JSON the API and the notifiers send, the history's
//! column, label values: `postgres`, `redis`, `ai:yolo26`, `worker:file_watcher`,
//! `breaker:yolo26`, `camera:front_door`, `storage:camera_root`, `prometheus`,
//! `notifier:phone`, `instance:camera-box-2`), and read back from one only there ([`Source::parse`]).

use std::fmt;

use crate::names::closed_set;

closed_set! {
    /// The kind of thing a source is: a bounded metric label
    /// (`watchpost_alerts_total{source_kind}`).
    pub enum SourceKind {
        Postgres = "postgres",
        Redis = "redis",
        Ai = "ai",
        Worker = "worker",
        Breaker = "breaker",
        Camera = "camera",
        Storage = "storage",
        Prometheus = "prometheus",
        Notifier = "notifier",
        Cause = "cause",
        Instance = "instance",
    }
}

/// What an alert is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    Postgres,
    Redis,
    /// An AI service, by its configured name.
    Ai(String),
    /// A supervised worker, by name.
    Worker(String),
    /// An AI service's circuit breaker, by name.
    Breaker(String),
    /// A camera, by id.
    Camera(String),
    /// A volume watchpost writes or depends on (`camera_root`, `spool`, …).
    Storage(String),
    /// Received through Alertmanager's webhook (Prometheus's rules).
    Prometheus,
    /// A notifier's test message.
    Notifier(String),
    /// What several alerts have in common (`ai_host:10.0.0.5`, `postgres`,
    /// `camera_group:poe_switch_1`): what one notification about them is about.
    Cause(String),
    /// Another instance of the fleet, by its id.
    Instance(String),
}

impl SourceKind {
    /// About something of one instance (its AI services, workers, breakers, cameras,
    /// volumes, notifiers), not of what the fleet shares (PostgreSQL, Redis, the
    /// instances, Prometheus): such an alert is decided, held and resolved by the
    /// instance it names in its `host` label alone.
    pub fn is_host_local(self) -> bool {
        matches!(
            self,
            Self::Ai | Self::Worker | Self::Breaker | Self::Camera | Self::Storage | Self::Notifier
        )
    }
}

impl Source {
    pub fn kind(&self) -> SourceKind {
        match self {
            Self::Postgres => SourceKind::Postgres,
            Self::Redis => SourceKind::Redis,
            Self::Ai(_) => SourceKind::Ai,
            Self::Worker(_) => SourceKind::Worker,
            Self::Breaker(_) => SourceKind::Breaker,
            Self::Camera(_) => SourceKind::Camera,
            Self::Storage(_) => SourceKind::Storage,
            Self::Prometheus => SourceKind::Prometheus,
            Self::Notifier(_) => SourceKind::Notifier,
            Self::Cause(_) => SourceKind::Cause,
            Self::Instance(_) => SourceKind::Instance,
        }
    }

    /// The thing's own name (`yolo26`, `front_door`), when it has one.
    pub fn subject(&self) -> Option<&str> {
        match self {
            Self::Ai(s)
            | Self::Worker(s)
            | Self::Breaker(s)
            | Self::Camera(s)
            | Self::Storage(s)
            | Self::Notifier(s)
            | Self::Cause(s)
            | Self::Instance(s) => Some(s),
            Self::Postgres | Self::Redis | Self::Prometheus => None,
        }
    }

    /// One of watchpost's own (not received through the webhook).
    pub fn is_own(&self) -> bool {
        !matches!(self, Self::Prometheus)
    }

    /// Read a source written by [`fmt::Display`] (the history's column); `None` for
    /// any other text.
    pub fn parse(text: &str) -> Option<Self> {
        let (kind, subject) = match text.split_once(':') {
            Some((k, s)) if !s.is_empty() => (k, Some(s.to_string())),
            Some(_) => return None,
            None => (text, None),
        };
        Some(match (SourceKind::parse(kind)?, subject) {
            (SourceKind::Postgres, None) => Self::Postgres,
            (SourceKind::Redis, None) => Self::Redis,
            (SourceKind::Prometheus, None) => Self::Prometheus,
            (SourceKind::Ai, Some(s)) => Self::Ai(s),
            (SourceKind::Worker, Some(s)) => Self::Worker(s),
            (SourceKind::Breaker, Some(s)) => Self::Breaker(s),
            (SourceKind::Camera, Some(s)) => Self::Camera(s),
            (SourceKind::Storage, Some(s)) => Self::Storage(s),
            (SourceKind::Notifier, Some(s)) => Self::Notifier(s),
            (SourceKind::Cause, Some(s)) => Self::Cause(s),
            (SourceKind::Instance, Some(s)) => Self::Instance(s),
            _ => return None,
        })
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.subject() {
            Some(s) => write!(f, "{}:{s}", self.kind().as_str()),
            None => f.write_str(self.kind().as_str()),
        }
    }
}

impl serde::Serialize for Source {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Source {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("not a source: {text:?}")))
    }
}

impl utoipa::PartialSchema for Source {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some(
                "^(postgres|redis|prometheus|(ai|worker|breaker|camera|storage|notifier|cause|instance):.+)$",
            ))
            .description(Some(
                "What it is about: postgres, redis, prometheus, or kind:name (ai:yolo26, worker:file_watcher, breaker:yolo26, camera:front_door, storage:camera_root, cause:ai_host:10.0.0.5, instance:camera-box-2)",
            ))
            .into()
    }
}

impl utoipa::ToSchema for Source {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_is_written_and_read_back_the_same() {
        for s in [
            Source::Postgres,
            Source::Redis,
            Source::Prometheus,
            Source::Ai("yolo26".into()),
            Source::Worker("file_watcher".into()),
            Source::Breaker("clip".into()),
            Source::Camera("front_door".into()),
            Source::Storage("camera_root".into()),
            Source::Notifier("phone".into()),
            Source::Cause("ai_host:10.0.0.5".into()),
            Source::Instance("camera-box-2:8000".into()),
        ] {
            assert_eq!(Source::parse(&s.to_string()), Some(s.clone()), "{s}");
        }
        assert_eq!(Source::Ai("yolo26".into()).to_string(), "ai:yolo26");
        for bad in ["", "ai", "ai:", "postgres:x", "elsewhere:x", "camera"] {
            assert_eq!(Source::parse(bad), None, "{bad}");
        }
    }
}
