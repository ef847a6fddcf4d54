//! The event registry as `GET /api/system/websocket/events` shows it: every type from
//! the one table in `events/mod.rs`, with counts computed, never written by hand.

use serde::Serialize;

use super::bus::{Channel, EventType};

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EventTypeInfo {
    #[serde(rename = "type")]
    pub event_type: &'static str,
    pub channel: Channel,
    pub description: &'static str,
    pub deprecated: bool,
    /// The type to use instead, for a deprecated one.
    pub replacement: Option<&'static str>,
    /// JSON Schema (2020-12) of `data`.
    #[schema(value_type = Object)]
    pub payload_schema: serde_json::Value,
    #[schema(value_type = Object)]
    pub example: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Registry {
    pub event_types: Vec<EventTypeInfo>,
    pub channels: Vec<Channel>,
    pub total_count: usize,
    pub deprecated_count: usize,
}

/// The registry (built from the table; cheap to build, built once by the caller).
pub fn registry() -> Registry {
    let event_types: Vec<EventTypeInfo> = EventType::ALL
        .iter()
        .map(|t| EventTypeInfo {
            event_type: t.name(),
            channel: t.channel(),
            description: t.description(),
            deprecated: t.replaced_by().is_some(),
            replacement: t.replaced_by().map(EventType::name),
            payload_schema: t.payload_schema(),
            example: t.example(),
        })
        .collect();
    Registry {
        total_count: event_types.len(),
        deprecated_count: event_types.iter().filter(|e| e.deprecated).count(),
        channels: Channel::ALL.to_vec(),
        event_types,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registry_covers_the_contract_and_counts_itself() {
        let r = registry();
        let names: Vec<&str> = r.event_types.iter().map(|e| e.event_type).collect();
        for required in [
            "detection.new",
            "detection.batch",
            "event.created",
            "event.updated",
            "camera.status_changed",
            "job.started",
            "job.progress",
            "job.completed",
            "job.failed",
            "system.health_changed",
            "system.status",
            "service.status_changed",
            "worker.status_changed",
            "circuit_breaker.state_changed",
            "alert.created",
            "alert.resolved",
            "event",
            "service_status",
        ] {
            assert!(names.contains(&required), "{required} missing");
        }
        assert_eq!(r.total_count, r.event_types.len());
        assert_eq!(r.deprecated_count, 2);
        assert_eq!(r.channels.len(), 6);
        for c in Channel::ALL {
            assert!(
                r.event_types.iter().any(|e| e.channel == *c),
                "no type on {c:?}"
            );
        }
        let legacy = r
            .event_types
            .iter()
            .find(|e| e.event_type == "event")
            .expect("legacy");
        assert_eq!(legacy.replacement, Some("event.created"));
        // Schemas are generated, object-typed and stand alone (no references).
        for e in &r.event_types {
            assert_eq!(e.payload_schema["type"], "object", "{}", e.event_type);
            assert!(
                !e.payload_schema.to_string().contains("$ref"),
                "{} schema refers elsewhere",
                e.event_type
            );
        }
        let det = r
            .event_types
            .iter()
            .find(|e| e.event_type == "detection.new")
            .expect("detection.new");
        assert_eq!(
            det.payload_schema["properties"]["detection_id"]["type"],
            "integer"
        );
        assert_eq!(det.example["camera_id"], "front_door");
    }
}

#[cfg(test)]
mod schema_tests {
    use super::*;

    /// Every example validates against its own schema, and a state outside its closed
    /// set does not.
    #[test]
    fn examples_validate_and_states_are_closed_sets() {
        for t in registry().event_types {
            let v = jsonschema::validator_for(&t.payload_schema)
                .unwrap_or_else(|e| panic!("{}: invalid schema: {e}", t.event_type));
            assert!(
                v.is_valid(&t.example),
                "{}: its example does not validate against {}",
                t.event_type,
                t.payload_schema
            );
            if t.event_type == "worker.status_changed" {
                let mut wrong = t.example.clone();
                wrong["status"] = "sleeping".into();
                assert!(!v.is_valid(&wrong), "a status outside the set validates");
            }
        }
    }
}
