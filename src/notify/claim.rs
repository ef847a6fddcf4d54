//! Who tells a transition when several instances share Redis and PostgreSQL. Every
//! instance decides the same alerts; the first to claim a transition tells it, into
//! its own outbox, and the others leave it. A claim names the alert's fingerprint, the
//! status it moves to and when that was decided: it wins when the newest status
//! recorded for the fingerprint is a different one decided earlier. So the second
//! instance's `firing` loses to the first's, and a late `resolved` from a slow
//! instance loses to a newer `firing` it never saw.
//!
//! Redis answers first (one script, atomic); while Redis is away PostgreSQL does (one
//! upsert); with both away the transition is told anyway: told twice beats never.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::redis::RedisLink;
use crate::store::Store;

/// How long Redis remembers a fingerprint's last told status.
const REMEMBER_SECONDS: u64 = 30 * 24 * 3600;

/// `KEYS[1]` the fingerprint's record `status|decided_ms`; `ARGV` status, decided
/// ms, seconds to keep. 1: claimed, 0: told already (or a newer status is).
const CLAIM_SCRIPT: &str = r#"
local old = redis.call('GET', KEYS[1])
local sep = old and string.find(old, '|', 1, true)
if sep then
  local status = string.sub(old, 1, sep - 1)
  local at = tonumber(string.sub(old, sep + 1)) or 0
  if status == ARGV[1] or at >= tonumber(ARGV[2]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. ARGV[2], 'EX', ARGV[3])
return 1
"#;

/// What a claim decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// This instance tells it.
    Won,
    /// Another instance did.
    Lost,
    /// Neither Redis nor PostgreSQL answered: told by this instance anyway.
    Alone,
}

impl Claim {
    pub fn tells(self) -> bool {
        self != Claim::Lost
    }
}

pub struct Claims {
    redis: Arc<RedisLink>,
    store: Arc<Store>,
}

impl Claims {
    pub fn new(redis: Arc<RedisLink>, store: Arc<Store>) -> Self {
        Self { redis, store }
    }

    /// Claim telling that `fingerprint` moved to `status` at `decided_at`.
    pub async fn transition(
        &self,
        fingerprint: &str,
        status: &str,
        decided_at: DateTime<Utc>,
    ) -> Claim {
        let ms = decided_at.timestamp_millis();
        if let Ok(mut conn) = self.redis.conn().await {
            let won: Result<i64, _> = redis::Script::new(CLAIM_SCRIPT)
                .key(format!("notify:claim:{fingerprint}"))
                .arg(status)
                .arg(ms)
                .arg(REMEMBER_SECONDS)
                .invoke_async(&mut conn)
                .await;
            if let Ok(won) = won {
                return if won == 1 { Claim::Won } else { Claim::Lost };
            }
        }
        match self
            .store
            .claim_notification(fingerprint, status, decided_at)
            .await
        {
            Ok(true) => Claim::Won,
            Ok(false) => Claim::Lost,
            Err(_) => Claim::Alone,
        }
    }

    /// Claim the repeat of a firing alert: one instance per `every`.
    pub async fn repeat(&self, fingerprint: &str, every: Duration) -> Claim {
        let Ok(mut conn) = self.redis.conn().await else {
            return Claim::Alone;
        };
        // Slightly shorter than the period, so the next period's claim is free.
        let ttl_ms = (every.as_millis() as u64).saturating_sub(1000).max(1000);
        let set: Result<Option<String>, _> = redis::cmd("SET")
            .arg(format!("notify:repeat:{fingerprint}"))
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(ttl_ms)
            .query_async(&mut conn)
            .await;
        match set {
            Ok(Some(_)) => Claim::Won,
            Ok(None) => Claim::Lost,
            Err(_) => Claim::Alone,
        }
    }
}
