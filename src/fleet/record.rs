//! What an instance says of itself every heartbeat, and how the others judge it
//! (pure: no I/O, unit-tested).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The most instances a fleet view holds (records past it are left out, newest kept).
pub const MAX_INSTANCES: usize = 256;
/// The most bytes of one record read back (a larger one is not trusted).
pub const MAX_RECORD_BYTES: usize = 64 * 1024;

/// Items taken and not acknowledged, per queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Pending {
    pub detection: u64,
    pub analysis: u64,
}

/// One instance's record, as it writes it (Redis, and PostgreSQL every few beats).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceRecord {
    pub id: String,
    /// Where its API answers (its `server.bind`).
    pub address: String,
    pub version: String,
    pub started_at: DateTime<Utc>,
    pub heartbeat_at: DateTime<Utc>,
    /// Its cameras (those its camera root holds).
    pub cameras: Vec<String>,
    /// Its consumers' names in the queues' groups.
    pub detection_consumer: String,
    pub analysis_consumer: String,
    /// The detection stream it reads (instances that see the same camera root share
    /// one: only those can take over each other's detection items).
    pub detection_stream: String,
    /// Its pending items as it last counted them.
    pub pending: Pending,
}

/// `up`, or `lost` once its record is older than `fleet.lost_after_seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum InstanceStatus {
    Up,
    Lost,
}

impl InstanceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Up => "up",
            Self::Lost => "lost",
        }
    }
}

/// One instance in `GET /api/system/instances`.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct InstanceView {
    pub id: String,
    pub address: String,
    pub version: String,
    pub started_at: DateTime<Utc>,
    pub heartbeat_age_seconds: f64,
    pub status: InstanceStatus,
    pub cameras: Vec<String>,
    pub pending: Pending,
}

/// Read records back: unreadable or oversized ones are left out, and at most
/// [`MAX_INSTANCES`] are kept (the most recently heard from).
pub fn parse_records<'a>(raw: impl IntoIterator<Item = &'a str>) -> Vec<InstanceRecord> {
    let mut records: Vec<InstanceRecord> = raw
        .into_iter()
        .filter(|r| r.len() <= MAX_RECORD_BYTES)
        .filter_map(|r| serde_json::from_str(r).ok())
        .collect();
    records.sort_by_key(|r| std::cmp::Reverse(r.heartbeat_at));
    records.truncate(MAX_INSTANCES);
    records
}

/// Judge each record at `now`: its heartbeat's age and whether it is lost; the
/// pending counts measured live (`live`, by consumer name) replace what it said.
pub fn judge(
    records: &[InstanceRecord],
    now: DateTime<Utc>,
    lost_after: f64,
    live: &BTreeMap<String, u64>,
) -> Vec<InstanceView> {
    let mut views: Vec<InstanceView> = records
        .iter()
        .map(|r| {
            let age = ((now - r.heartbeat_at).num_milliseconds().max(0) as f64) / 1000.0;
            InstanceView {
                id: r.id.clone(),
                address: r.address.clone(),
                version: r.version.clone(),
                started_at: r.started_at,
                heartbeat_age_seconds: (age * 10.0).round() / 10.0,
                status: if age > lost_after {
                    InstanceStatus::Lost
                } else {
                    InstanceStatus::Up
                },
                cameras: r.cameras.clone(),
                pending: Pending {
                    detection: live
                        .get(&r.detection_consumer)
                        .copied()
                        .unwrap_or(r.pending.detection),
                    analysis: live
                        .get(&r.analysis_consumer)
                        .copied()
                        .unwrap_or(r.pending.analysis),
                },
            }
        })
        .collect();
    views.sort_by(|a, b| a.id.cmp(&b.id));
    views
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).expect("time")
    }

    fn record(id: &str, beat: i64) -> InstanceRecord {
        InstanceRecord {
            id: id.into(),
            address: format!("{id}:8000"),
            version: "0.1.0".into(),
            started_at: at(0),
            heartbeat_at: at(beat),
            cameras: vec![format!("{id}-porch")],
            detection_consumer: format!("{id}:detection_worker"),
            analysis_consumer: format!("{id}:analysis_worker"),
            detection_stream: format!("watchpost:queue:detection:{id}"),
            pending: Pending {
                detection: 3,
                analysis: 2,
            },
        }
    }

    #[test]
    fn an_instance_is_lost_once_its_record_is_older_than_the_limit() {
        let records = [record("b", 70), record("a", 100)];
        let live = BTreeMap::from([("b:analysis_worker".to_string(), 0)]);
        let views = judge(&records, at(100), 29.0, &live);
        assert_eq!(views[0].id, "a", "sorted by id");
        assert_eq!(views[0].status, InstanceStatus::Up);
        assert_eq!(
            views[0].pending,
            Pending {
                detection: 3,
                analysis: 2
            }
        );
        assert_eq!(views[1].status, InstanceStatus::Lost);
        assert_eq!(views[1].heartbeat_age_seconds, 30.0);
        assert_eq!(views[1].pending.analysis, 0, "measured live");
        assert_eq!(
            judge(&records, at(100), 30.0, &live)[1].status,
            InstanceStatus::Up
        );
    }

    #[test]
    fn bad_or_oversized_records_are_left_out_and_the_count_is_bounded() {
        let good = serde_json::to_string(&record("a", 1)).expect("json");
        let huge = serde_json::to_string(&InstanceRecord {
            cameras: vec!["x".repeat(1000); 100],
            ..record("b", 2)
        })
        .expect("json");
        let parsed = parse_records([good.as_str(), "{not json", huge.as_str()]);
        assert_eq!(parsed.len(), 1);
        let many: Vec<String> = (0..MAX_INSTANCES + 10)
            .map(|i| serde_json::to_string(&record(&format!("i{i}"), i as i64)).expect("json"))
            .collect();
        let parsed = parse_records(many.iter().map(String::as_str));
        assert_eq!(parsed.len(), MAX_INSTANCES);
        assert_eq!(
            parsed[0].id,
            format!("i{}", MAX_INSTANCES + 9),
            "newest kept"
        );
    }
}
