//! The alert history: one row per firing (opened when an alert fires, closed with its
//! end), at most one open row per fingerprint. Writes are idempotent, so the alert
//! engine can replay its outbox after an outage without doubling anything.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::db::Store;
use super::error::StoreError;

/// One firing of an alert, as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertRow {
    pub id: String,
    pub fingerprint: String,
    pub alertname: String,
    pub source: String,
    pub severity: String,
    pub summary: String,
    pub description: String,
    pub labels: serde_json::Value,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
}

/// Which alerts a listing wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertState {
    Firing,
    Resolved,
    All,
}

/// A page of the history, newest first.
#[derive(Debug, Clone)]
pub struct AlertQuery {
    pub state: AlertState,
    /// Alerts still firing at or after this moment.
    pub since: Option<DateTime<Utc>>,
    /// An exact source (`ai:yolo26`) or a kind (`ai`).
    pub source: Option<String>,
    pub limit: i64,
    pub offset: i64,
}

const COLUMNS: &str =
    "id, fingerprint, alertname, source, severity, summary, description, labels, started_at, ended_at";

fn row(r: &tokio_postgres::Row) -> AlertRow {
    AlertRow {
        id: r.get(0),
        fingerprint: r.get(1),
        alertname: r.get(2),
        source: r.get(3),
        severity: r.get(4),
        summary: r.get(5),
        description: r.get(6),
        labels: r.get(7),
        started_at: r.get(8),
        ended_at: r.get(9),
    }
}

impl Store {
    /// Store a firing alert; a row already there (same id, or the same fingerprint
    /// still open) is left as it is.
    pub async fn open_alert(&self, a: &AlertRow) -> Result<(), StoreError> {
        self.run(async {
            let c = self.client().await?;
            c.execute(
                &format!(
                    "INSERT INTO alerts ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                     ON CONFLICT DO NOTHING"
                ),
                &[
                    &a.id,
                    &a.fingerprint,
                    &a.alertname,
                    &a.source,
                    &a.severity,
                    &a.summary,
                    &a.description,
                    &a.labels,
                    &a.started_at,
                    &a.ended_at,
                ],
            )
            .await?;
            Ok(())
        })
        .await
    }

    /// Close a firing; closing it again changes nothing.
    pub async fn close_alert(&self, id: &str, ended_at: DateTime<Utc>) -> Result<(), StoreError> {
        self.run(async {
            let c = self.client().await?;
            c.execute(
                &c.prepare_cached(
                    "UPDATE alerts SET ended_at = $2 WHERE id = $1 AND ended_at IS NULL",
                )
                .await?,
                &[&id, &ended_at],
            )
            .await?;
            Ok(())
        })
        .await
    }

    /// Every alert still firing, oldest first.
    pub async fn firing_alerts(&self) -> Result<Vec<AlertRow>, StoreError> {
        self.run(async {
            let c = self.client().await?;
            let rows = c
                .query(
                    &format!(
                        "SELECT {COLUMNS} FROM alerts WHERE ended_at IS NULL ORDER BY started_at"
                    ),
                    &[],
                )
                .await?;
            Ok(rows.iter().map(row).collect())
        })
        .await
    }

    /// A page of the history (newest first) and how many match in all.
    pub async fn list_alerts(&self, q: &AlertQuery) -> Result<(Vec<AlertRow>, i64), StoreError> {
        self.run(async {
            let c = self.client().await?;
            let state = match q.state {
                AlertState::Firing => "ended_at IS NULL",
                AlertState::Resolved => "ended_at IS NOT NULL",
                AlertState::All => "TRUE",
            };
            let rows = c
                .query(
                    &format!(
                        "SELECT {COLUMNS}, count(*) OVER () FROM alerts
                         WHERE {state}
                           AND ($1::timestamptz IS NULL OR COALESCE(ended_at, 'infinity') >= $1)
                           AND ($2::text IS NULL OR source = $2 OR split_part(source, ':', 1) = $2)
                         ORDER BY started_at DESC, id
                         LIMIT $3 OFFSET $4"
                    ),
                    &[&q.since, &q.source, &q.limit, &q.offset],
                )
                .await?;
            let total = match rows.first() {
                Some(r) => r.get(10),
                // Past the end: count without the page.
                None => {
                    c.query_one(
                        &format!(
                            "SELECT count(*) FROM alerts WHERE {state}
                               AND ($1::timestamptz IS NULL OR COALESCE(ended_at, 'infinity') >= $1)
                               AND ($2::text IS NULL OR source = $2 OR split_part(source, ':', 1) = $2)"
                        ),
                        &[&q.since, &q.source],
                    )
                    .await?
                    .get(0)
                }
            };
            Ok((rows.iter().map(row).collect(), total))
        })
        .await
    }
}

impl Store {
    /// Resolutions of watchpost's own alerts no Alertmanager has accepted yet, ended at
    /// or after `since`, oldest first (at most 1,000). Received alerts (source
    /// `prometheus`) are never sent out.
    pub async fn unsent_resolutions(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<AlertRow>, StoreError> {
        self.run(async {
            let c = self.client().await?;
            let rows = c
                .query(
                    &format!(
                        "SELECT {COLUMNS} FROM alerts
                         WHERE ended_at IS NOT NULL AND end_sent_at IS NULL AND ended_at >= $1
                           AND source <> 'prometheus'
                         ORDER BY ended_at LIMIT 1000"
                    ),
                    &[&since],
                )
                .await?;
            Ok(rows.iter().map(row).collect())
        })
        .await
    }

    /// Record that an Alertmanager accepted these alerts' ends; the ids whose row
    /// holds its end (a row whose close is not written yet is not among them).
    pub async fn resolutions_sent(
        &self,
        ids: &[String],
        at: DateTime<Utc>,
    ) -> Result<Vec<String>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        self.run(async {
            let c = self.client().await?;
            let rows = c
                .query(
                    &c.prepare_cached(
                        "UPDATE alerts SET end_sent_at = $2
                     WHERE id = ANY($1) AND ended_at IS NOT NULL RETURNING id",
                    )
                    .await?,
                    &[&ids, &at],
                )
                .await?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })
        .await
    }
}

/// The newest transition of an alert told (by any instance), as PostgreSQL records it
/// for the notifiers' claims: its status, when its episode started, and when the
/// transition was decided (the start for `firing`, the end for `resolved`).
#[derive(Debug, Clone, PartialEq)]
pub struct ToldRecord {
    pub status: String,
    pub episode_start: DateTime<Utc>,
    pub decided_at: DateTime<Utc>,
}

/// Whether a claim of `$2` (status), `$3` (episode start), `$4` (decided at) is
/// fresh against the row already there: the rule of `notify::claim`, in SQL.
const FRESH: &str = "CASE WHEN EXCLUDED.status = 'firing'
      THEN notify_claims.status = 'resolved' AND notify_claims.decided_at <= EXCLUDED.episode_start
      ELSE (notify_claims.status = 'firing'
              AND COALESCE(notify_claims.episode_start, notify_claims.decided_at) <= EXCLUDED.decided_at)
        OR (notify_claims.status = 'resolved' AND notify_claims.decided_at < EXCLUDED.episode_start)
    END";

impl Store {
    /// The newest transition told for `fingerprint`, if any.
    pub async fn told_record(&self, fingerprint: &str) -> Result<Option<ToldRecord>, StoreError> {
        self.run(async {
            let c = self.client().await?;
            let row = c
                .query_opt(
                    &c.prepare_cached(
                        "SELECT status, COALESCE(episode_start, decided_at), decided_at
                         FROM notify_claims WHERE fingerprint = $1",
                    )
                    .await?,
                    &[&fingerprint],
                )
                .await?;
            Ok(row.map(|r| ToldRecord {
                status: r.get(0),
                episode_start: r.get(1),
                decided_at: r.get(2),
            }))
        })
        .await
    }

    /// Claim the telling of a transition for this instance (while Redis cannot): `true`
    /// when it is fresh against the newest one recorded (see `notify::claim`), and it
    /// is now the one recorded; `false` when it was told already.
    pub async fn claim_notification(
        &self,
        fingerprint: &str,
        t: &ToldRecord,
    ) -> Result<bool, StoreError> {
        self.run(async {
            let c = self.client().await?;
            let won = c
                .query_opt(
                    &c.prepare_cached(&format!(
                        "INSERT INTO notify_claims (fingerprint, status, episode_start, decided_at)
                         VALUES ($1, $2, $3, $4)
                         ON CONFLICT (fingerprint) DO UPDATE
                           SET status = EXCLUDED.status, episode_start = EXCLUDED.episode_start,
                               decided_at = EXCLUDED.decided_at
                           WHERE {FRESH}
                         RETURNING 1"
                    ))
                    .await?,
                    &[&fingerprint, &t.status, &t.episode_start, &t.decided_at],
                )
                .await?;
            Ok(won.is_some())
        })
        .await
    }

    /// Record a transition claimed in Redis, provided PostgreSQL still holds `read`,
    /// the record the claim was weighed against (`None`: no record). `false` when the
    /// record changed in between: another instance claimed here meanwhile (while it
    /// could not reach Redis), and the claim must be weighed again
    /// ([`Self::claim_notification`]).
    pub async fn record_told_over(
        &self,
        fingerprint: &str,
        t: &ToldRecord,
        read: Option<&ToldRecord>,
    ) -> Result<bool, StoreError> {
        self.run(async {
            let c = self.client().await?;
            let done = match read {
                None => {
                    c.query_opt(
                        &c.prepare_cached(
                            "INSERT INTO notify_claims (fingerprint, status, episode_start, decided_at)
                             VALUES ($1, $2, $3, $4)
                             ON CONFLICT (fingerprint) DO NOTHING RETURNING 1",
                        )
                        .await?,
                        &[&fingerprint, &t.status, &t.episode_start, &t.decided_at],
                    )
                    .await?
                }
                Some(r) => {
                    c.query_opt(
                        &c.prepare_cached(
                            "UPDATE notify_claims
                             SET status = $2, episode_start = $3, decided_at = $4
                             WHERE fingerprint = $1 AND status = $5
                               AND COALESCE(episode_start, decided_at) = $6 AND decided_at = $7
                             RETURNING 1",
                        )
                        .await?,
                        &[
                            &fingerprint,
                            &t.status,
                            &t.episode_start,
                            &t.decided_at,
                            &r.status,
                            &r.episode_start,
                            &r.decided_at,
                        ],
                    )
                    .await?
                }
            };
            Ok(done.is_some())
        })
        .await
    }
}
