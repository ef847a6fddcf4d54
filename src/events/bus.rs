//! The event table (`events!`: every event type, its payload and channel), the
//! envelope a client receives, and the bus. See the folder's `mod.rs`.

use super::payloads::*;
use chrono::{DateTime, Utc};
use serde::ser::SerializeStruct;
use serde::Serialize;
use tokio::sync::broadcast;

/// Capacity of the broadcast ring; a subscriber more than this many events behind lags.
const BUS_CAPACITY: usize = 1024;

crate::names::closed_set! {
    /// The six channels clients subscribe to.
    pub enum Channel {
        Detections = "detections",
        Events = "events",
        Alerts = "alerts",
        Cameras = "cameras",
        Jobs = "jobs",
        System = "system",
    }
}

impl Channel {
    /// Who a channel's events are for: the pipeline channels are shared by every
    /// instance on one Redis (the event broadcaster relays them through it); the
    /// others describe this instance (the system broadcaster hands them to its own
    /// clients only). The one place that decides.
    pub fn reach(self) -> Reach {
        match self {
            Self::Detections | Self::Events | Self::Cameras | Self::Jobs => Reach::Shared,
            Self::Alerts | Self::System => Reach::Local,
        }
    }
}

/// Whether a channel's events go to every instance on one Redis or stay on this one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    Shared,
    Local,
}

/// Declares every event type once: variant, wire name, channel, payload, description,
/// and for deprecated names the type that replaces them.
macro_rules! events {
    (
        current { $( $variant:ident = $name:literal on $channel:ident, $payload:ty, $desc:literal; )* }
        deprecated { $( $old:ident = $old_name:literal on $old_channel:ident, $old_payload:ty, replaced_by $new:ident, $old_desc:literal; )* }
    ) => {
        /// One event, with its payload.
        #[derive(Debug, Clone)]
        pub enum Event {
            $( $variant($payload), )*
        }

        /// Every registered event type, deprecated ones included.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum EventType {
            $( $variant, )*
            $( $old, )*
        }

        impl Event {
            pub fn kind(&self) -> EventType {
                match self {
                    $( Self::$variant(_) => EventType::$variant, )*
                }
            }

            fn serialize_data<S: serde::ser::SerializeStruct>(&self, s: &mut S) -> Result<(), S::Error> {
                match self {
                    $( Self::$variant(p) => s.serialize_field("data", p), )*
                }
            }
        }

        impl EventType {
            pub const ALL: &'static [EventType] = &[ $( Self::$variant, )* $( Self::$old, )* ];

            /// The wire name (`type` of every message).
            pub fn name(self) -> &'static str {
                match self {
                    $( Self::$variant => $name, )*
                    $( Self::$old => $old_name, )*
                }
            }

            pub fn channel(self) -> Channel {
                match self {
                    $( Self::$variant => Channel::$channel, )*
                    $( Self::$old => Channel::$old_channel, )*
                }
            }

            pub fn description(self) -> &'static str {
                match self {
                    $( Self::$variant => $desc, )*
                    $( Self::$old => $old_desc, )*
                }
            }

            /// The type that replaces a deprecated one.
            pub fn replaced_by(self) -> Option<EventType> {
                match self {
                    $( Self::$old => Some(Self::$new), )*
                    _ => None,
                }
            }

            /// JSON Schema of the payload, generated from its struct.
            pub fn payload_schema(self) -> serde_json::Value {
                match self {
                    $( Self::$variant => schema_of::<$payload>(), )*
                    $( Self::$old => schema_of::<$old_payload>(), )*
                }
            }

            /// An example payload.
            pub fn example(self) -> serde_json::Value {
                match self {
                    $( Self::$variant => example_of::<$payload>(), )*
                    $( Self::$old => example_of::<$old_payload>(), )*
                }
            }

            pub fn parse(name: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|t| t.name() == name)
            }
        }
    };
}

events! {
    current {
    DetectionNew = "detection.new" on Detections, DetectionNew,
        "A detection from YOLO26 was stored and added to its camera's batch";
    DetectionBatch = "detection.batch" on Detections, DetectionBatch,
        "A camera's batch closed and was handed to risk analysis";
    EventCreated = "event.created" on Events, EventCreated,
        "A security event was created from an analysed batch";
    EventUpdated = "event.updated" on Events, EventUpdated,
        "A security event was modified (kept for clients of the upstream API; watchpost never rewrites an event)";
    AlertCreated = "alert.created" on Alerts, AlertCreated,
        "A problem began: a dependency, worker or circuit breaker needs attention";
    AlertResolved = "alert.resolved" on Alerts, AlertResolved,
        "A problem announced by alert.created is over";
    CameraStatusChanged = "camera.status_changed" on Cameras, CameraStatusChanged,
        "A camera folder appeared (online) or its status changed";
    JobStarted = "job.started" on Jobs, JobStarted, "A background job (cleanup) started";
    JobProgress = "job.progress" on Jobs, JobProgress, "A background job made progress";
    JobCompleted = "job.completed" on Jobs, JobCompleted, "A background job finished";
    JobFailed = "job.failed" on Jobs, JobFailed, "A background job failed";
    SystemHealthChanged = "system.health_changed" on System, SystemHealthChanged,
        "The overall health status or the degradation mode changed";
    SystemStatus = "system.status" on System, SystemStatus,
        "Periodic summary of this instance (every 5 s)";
    ServiceStatusChanged = "service.status_changed" on System, ServiceStatusChanged,
        "An AI service became healthy or unhealthy";
    WorkerStatusChanged = "worker.status_changed" on System, WorkerStatusChanged,
        "A supervised worker changed state";
    CircuitBreakerStateChanged = "circuit_breaker.state_changed" on System, CircuitBreakerStateChanged,
        "A circuit breaker changed state";
    SystemSubscribed = "system.subscribed" on System, SystemSubscribed,
        "Reply to a subscribe or unsubscribe: the channels this connection now receives";
    SystemError = "system.error" on System, SystemError,
        "Reply to a message the server could not act on (unknown action or channel, bad JSON)";
    }
    deprecated {
    Event = "event" on Events, EventCreated, replaced_by EventCreated,
        "Legacy name of event.created";
    ServiceStatus = "service_status" on System, ServiceStatusChanged, replaced_by ServiceStatusChanged,
        "Legacy name of service.status_changed";
    }
}

fn schema_of<T: utoipa::PartialSchema>() -> serde_json::Value {
    serde_json::to_value(T::schema()).unwrap_or(serde_json::Value::Null)
}

fn example_of<T: Example + Serialize>() -> serde_json::Value {
    serde_json::to_value(T::example()).unwrap_or(serde_json::Value::Null)
}

/// An event as sent: `{"type", "channel", "data", "timestamp"}`.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub event: Event,
    pub timestamp: DateTime<Utc>,
}

impl Envelope {
    pub fn new(event: Event) -> Self {
        Self {
            event,
            timestamp: crate::time::now(),
        }
    }

    pub fn kind(&self) -> EventType {
        self.event.kind()
    }

    pub fn channel(&self) -> Channel {
        self.kind().channel()
    }

    /// The payload as JSON (for tests and inspection).
    pub fn data(&self) -> serde_json::Value {
        serde_json::to_value(self)
            .map(|mut v| v["data"].take())
            .unwrap_or_default()
    }

    /// The JSON text sent to clients.
    pub fn to_json(&self) -> String {
        // Plain data serialises into a string without fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

impl Serialize for Envelope {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("Envelope", 4)?;
        s.serialize_field("type", self.kind().name())?;
        s.serialize_field("channel", self.channel().as_str())?;
        self.event.serialize_data(&mut s)?;
        s.serialize_field("timestamp", &self.timestamp)?;
        s.end()
    }
}

#[derive(Clone)]
pub struct EventBus {
    tx: broadcast::Sender<Envelope>,
}

impl EventBus {
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(BUS_CAPACITY);
        Self { tx }
    }

    pub fn publish(&self, event: Event) {
        // `send` only fails when nobody listens, which is fine.
        let _ = self.tx.send(Envelope::new(event));
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Envelope> {
        self.tx.subscribe()
    }
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_envelope_is_type_channel_data_timestamp() {
        let env = Envelope::new(Event::CameraStatusChanged(CameraStatusChanged {
            camera_id: "front_door".into(),
            status: crate::events::CameraStatus::Online,
            previous_status: None,
            reason: "first image from this folder".into(),
            folder: "Front Door".into(),
        }));
        let v: serde_json::Value = serde_json::from_str(&env.to_json()).expect("json");
        assert_eq!(v["type"], "camera.status_changed");
        assert_eq!(v["channel"], "cameras");
        assert_eq!(v["data"]["camera_id"], "front_door");
        assert!(v["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')));
    }

    #[test]
    fn names_are_unique_and_every_deprecated_type_names_its_replacement() {
        let mut names: Vec<&str> = EventType::ALL.iter().map(|t| t.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), EventType::ALL.len());
        for t in EventType::ALL {
            if let Some(new) = t.replaced_by() {
                assert!(new.replaced_by().is_none(), "{} → {}", t.name(), new.name());
                assert_eq!(t.channel(), new.channel());
            }
        }
    }
}
