//! PostgreSQL (`pg_stat_activity`, `pg_stat_database`) and Redis (`INFO`) figures.
//! `None` for a database that cannot be read now. Counters that only grow
//! (transactions) are turned into rates by the sampler.

use super::snapshot::{PostgresStats, RedisStats};
use crate::redis::RedisLink;
use crate::store::Store;

/// The raw PostgreSQL figures of one sample.
pub struct PgSample {
    pub active: i64,
    pub max: i64,
    pub cache_hit_ratio: f64,
    /// Committed + rolled back, since the statistics were reset.
    pub transactions: i64,
}

pub async fn postgres(store: &Store) -> Option<PgSample> {
    let (active, max, ratio, transactions) = store.activity().await.ok()?;
    Some(PgSample {
        active,
        max,
        cache_hit_ratio: super::host::round2(ratio),
        transactions,
    })
}

impl PgSample {
    pub fn stats(&self, transactions_per_min: f64) -> PostgresStats {
        PostgresStats {
            status: "healthy".into(),
            connections_active: self.active,
            connections_max: self.max,
            cache_hit_ratio: self.cache_hit_ratio,
            transactions_per_min: super::host::round2(transactions_per_min),
        }
    }
}

pub async fn redis(link: &RedisLink) -> Option<RedisStats> {
    let info = link.info("everything").await.ok()?;
    let get = |k: &str| {
        info.iter()
            .find(|(key, _)| key == k)
            .and_then(|(_, v)| v.parse::<f64>().ok())
    };
    let (hits, misses) = (
        get("keyspace_hits").unwrap_or(0.0),
        get("keyspace_misses").unwrap_or(0.0),
    );
    Some(RedisStats {
        status: "healthy".into(),
        connected_clients: get("connected_clients").unwrap_or(0.0) as i64,
        memory_mb: super::host::round2(get("used_memory").unwrap_or(0.0) / 1024.0 / 1024.0),
        hit_ratio: if hits + misses > 0.0 {
            super::host::round2(hits / (hits + misses))
        } else {
            1.0
        },
        blocked_clients: get("blocked_clients").unwrap_or(0.0) as i64,
    })
}
