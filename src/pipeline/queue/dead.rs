//! Dead letters: why an item was set aside, how an operator sees it, and moving
//! them back onto the live queue. Consumers set items aside (`consumer.rs`).

use redis::Value;

use super::error::QueueError;
use super::metrics::QueueEvent;
use super::reply::{entries, fields_of, push_entry};
use super::streams::{Streams, REPLAY_CHUNK};
use crate::names::Label;
use crate::pipeline::camera_fs::Refusal;

/// Why an item went to its queue's dead-letter stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadReason {
    /// The camera file was refused (see `camera_fs::Refusal`).
    Refused(Refusal),
    /// The AI service refused the input (4xx).
    Rejected,
    /// The item's payload could not be read.
    InvalidItem,
    /// Delivered more than `max_deliveries` times without being finished.
    TooManyDeliveries,
    /// It kept failing on its own (not a dependency outage) `max_deliveries` times.
    KeepsFailing,
}

impl Label for DeadReason {
    fn label(self) -> &'static str {
        match self {
            Self::Refused(r) => r.label(),
            Self::Rejected => "rejected",
            Self::InvalidItem => "invalid_item",
            Self::TooManyDeliveries => "too_many_deliveries",
            Self::KeepsFailing => "keeps_failing",
        }
    }
    fn all() -> &'static [Self] {
        &[
            Self::Refused(Refusal::Outside),
            Self::Refused(Refusal::BadName),
            Self::Refused(Refusal::Symlink),
            Self::Refused(Refusal::NotRegular),
            Self::Refused(Refusal::TooLarge),
            Self::Refused(Refusal::Unreadable),
            Self::Rejected,
            Self::InvalidItem,
            Self::TooManyDeliveries,
            Self::KeepsFailing,
        ]
    }
}

/// Longest text of a dead letter's field that is shown (its detail, or a payload
/// that is not JSON); longer ones are cut, marked with `…`.
const DEAD_FIELD_MAX: usize = 1024;

/// One dead letter as an operator sees it: why, when, and the item itself.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct DeadLetter {
    /// Its id in the dead-letter stream.
    pub id: String,
    /// A `watchpost_queue_dead_lettered_total` reason label (`symlink`, `rejected`, …).
    pub reason: String,
    /// The error that sent it there.
    pub detail: String,
    /// Deliveries before it was set aside.
    pub deliveries: u64,
    /// When it was set aside (RFC 3339), as recorded.
    pub dead_lettered_at: Option<String>,
    /// The queued item (for detection: `file_path`, `camera_id`, `file_hash`, …).
    #[schema(value_type = Object)]
    pub item: serde_json::Value,
}

impl DeadLetter {
    fn from_fields(id: String, fields: &[(String, String)]) -> Self {
        let get = |k: &str| {
            fields
                .iter()
                .find(|(name, _)| name == k)
                .map(|(_, v)| v.as_str())
        };
        let payload = get("p").unwrap_or_default();
        Self {
            id,
            reason: bounded(get("reason").unwrap_or("unknown")),
            detail: bounded(get("detail").unwrap_or_default()),
            deliveries: get("deliveries").and_then(|d| d.parse().ok()).unwrap_or(0),
            // Written by `time::iso`; older entries (`+00:00`) are rewritten the same way.
            dead_lettered_at: get("at")
                .map(|at| crate::time::parse(at).map_or_else(|| bounded(at), crate::time::iso)),
            item: serde_json::from_str(payload)
                .unwrap_or_else(|_| serde_json::Value::String(bounded(payload))),
        }
    }
}

/// `s` cut to `DEAD_FIELD_MAX` bytes at a character boundary.
fn bounded(s: &str) -> String {
    if s.len() <= DEAD_FIELD_MAX {
        return s.to_string();
    }
    let mut end = DEAD_FIELD_MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

impl Streams {
    /// The oldest `limit` dead letters (what an operator must fix first) and how many
    /// there are in all, read in one round trip. Fields are bounded for display; the
    /// stream itself is not changed.
    pub async fn list_dead(&self, limit: usize) -> Result<(u64, Vec<DeadLetter>), QueueError> {
        let mut conn = self.redis.conn().await.map_err(|e| self.unavailable(e))?;
        let (total, reply): (u64, Value) = redis::pipe()
            .cmd("XLEN")
            .arg(&self.dead_stream)
            .cmd("XRANGE")
            .arg(&self.dead_stream)
            .arg("-")
            .arg("+")
            .arg("COUNT")
            .arg(limit)
            .query_async(&mut conn)
            .await
            .map_err(|e| self.unavailable(e))?;
        let items: Vec<DeadLetter> = fields_of(&reply)
            .into_iter()
            .map(|(id, fields)| DeadLetter::from_fields(id, &fields))
            .collect();
        Ok((total, items))
    }

    /// Move every dead letter back onto the live queue (oldest first), each in one
    /// transaction (add live, delete dead), so none is lost or doubled. Returns how
    /// many moved. The items get a fresh delivery count.
    pub async fn requeue_dead(&self) -> Result<u64, QueueError> {
        let mut conn = self.redis.conn().await.map_err(|e| self.unavailable(e))?;
        // Only what is dead now: an item that fails again while this runs is
        // dead-lettered after `last`, and must wait for the next requeue (otherwise the
        // two would chase each other for as long as the item keeps failing).
        let newest: Value = redis::cmd("XREVRANGE")
            .arg(&self.dead_stream)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .query_async(&mut conn)
            .await
            .map_err(|e| self.unavailable(e))?;
        let Some(last) = entries(&newest).into_iter().next().map(|(id, _)| id) else {
            return Ok(0);
        };
        let mut moved = 0;
        let mut from = "-".to_string();
        loop {
            let reply: Value = redis::cmd("XRANGE")
                .arg(&self.dead_stream)
                .arg(&from)
                .arg(&last)
                .arg("COUNT")
                .arg(REPLAY_CHUNK)
                .query_async(&mut conn)
                .await
                .map_err(|e| self.unavailable(e))?;
            let batch = entries(&reply);
            let Some((tail, _)) = batch.last() else {
                break;
            };
            // Exclusive start for the next chunk (`(` needs Redis 6.2).
            from = format!("({tail}");
            for (id, payload) in batch {
                let mut pipe = redis::pipe();
                pipe.atomic();
                if let Some(p) = &payload {
                    push_entry(&mut pipe, &self.stream, p);
                }
                pipe.cmd("XDEL").arg(&self.dead_stream).arg(&id).ignore();
                let _: () = pipe
                    .query_async(&mut conn)
                    .await
                    .map_err(|e| self.unavailable(e))?;
                if payload.is_some() {
                    moved += 1;
                }
            }
        }
        self.dead_letters_now(0);
        if moved > 0 {
            self.metrics.items(QueueEvent::Requeued, moved);
            tracing::info!(queue = self.name, items = moved, "dead letters requeued");
        }
        Ok(moved)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_dead_letter_shows_its_item_and_bounds_what_it_shows() {
        let d = DeadLetter::from_fields(
            "1-0".into(),
            &kv(&[
                ("p", r#"{"file_path":"/cams/a.jpg","camera_id":"a"}"#),
                ("reason", "symlink"),
                ("detail", "a symlink"),
                ("deliveries", "2"),
                ("at", "2026-11-29T07:00:00+00:00"),
            ]),
        );
        assert_eq!(d.item["file_path"], "/cams/a.jpg");
        assert_eq!((d.reason.as_str(), d.deliveries), ("symlink", 2));
        // Written `+00:00` by older versions; shown in the one form.
        assert_eq!(d.dead_lettered_at.as_deref(), Some("2026-11-29T07:00:00Z"));

        // A payload that is not JSON is shown as text; a long detail is cut on a
        // character boundary; missing fields have plain defaults.
        let long = "é".repeat(DEAD_FIELD_MAX);
        let d = DeadLetter::from_fields("2-0".into(), &kv(&[("p", "not json"), ("detail", &long)]));
        assert_eq!(d.item, serde_json::Value::String("not json".into()));
        assert!(d.detail.ends_with('…'));
        assert!(d.detail.len() <= DEAD_FIELD_MAX + '…'.len_utf8());
        assert_eq!((d.reason.as_str(), d.deliveries), ("unknown", 0));
        assert_eq!(d.dead_lettered_at, None);
    }
}
