//! What the daily digest reads besides coverage: the security events of a day by risk
//! level and the alerts that fired in it; and the one claim that makes a day's
//! digest told once across instances.

use chrono::{DateTime, Utc};

use super::db::Store;
use super::error::StoreError;

impl Store {
    /// Security events that started in `[from, to)`, counted by risk level.
    pub async fn events_by_risk(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        self.counted(
            "SELECT risk_level, count(*) FROM events
             WHERE started_at >= $1 AND started_at < $2
             GROUP BY risk_level ORDER BY risk_level",
            from,
            to,
        )
        .await
    }

    /// Alerts that started firing in `[from, to)`, counted by name, the most first.
    pub async fn alerts_fired(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        self.counted(
            "SELECT alertname, count(*) AS n FROM alerts
             WHERE started_at >= $1 AND started_at < $2
             GROUP BY alertname ORDER BY n DESC, alertname",
            from,
            to,
        )
        .await
    }

    /// `(name, count)` rows of a counting query over `[$1, $2)`.
    async fn counted(
        &self,
        sql: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        self.run(async {
            let c = self.client().await?;
            let rows = c
                .query(&c.prepare_cached(sql).await?, &[&from, &to])
                .await?;
            Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        })
        .await
    }

    /// Claim `key` (`digest:2026-12-05`) for this instance, once among every instance
    /// sharing the database: `true` for the first to ask.
    pub async fn claim_once(&self, key: &str, at: DateTime<Utc>) -> Result<bool, StoreError> {
        self.run(async {
            let c = self.client().await?;
            Ok(c.query_opt(
                &c.prepare_cached(
                    "INSERT INTO notify_claims (fingerprint, status, decided_at, episode_start)
                     VALUES ($1, 'once', $2, $2) ON CONFLICT (fingerprint) DO NOTHING RETURNING 1",
                )
                .await?,
                &[&key, &at],
            )
            .await?
            .is_some())
        })
        .await
    }
}
