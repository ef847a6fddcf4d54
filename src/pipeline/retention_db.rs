//! Retention of the database by size: with `cleanup.max_database_bytes` set, every
//! `cleanup.size_check_seconds` the data the database holds is estimated, and past
//! the cap the oldest rows go: the oldest events older than
//! `cleanup.keep_evidence_days`, each with its detections (so every table keeps its
//! share and reuses its own freed space), then resolved alerts, oldest first.
//! Nothing younger than `keep_evidence_days`, the newest event, a detection still
//! waiting for its batch's analysis, or a firing alert is ever deleted by size.
//!
//! PostgreSQL does not hand the space of deleted rows back to the file system (only
//! `VACUUM FULL` does, locking the table); it reuses it for new rows once vacuumed.
//! So the cap is on the data held, not on `pg_database_size`: the estimate is the
//! database's size less what its tables' files hold that is not live rows (each
//! table's live rows × their average width, from the statistics, against its file).
//! After deleting, the tables are vacuumed at once, so new rows fill the freed space
//! and the database's files level off just above the cap instead of growing.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use prometheus::IntCounterVec;

use crate::store::{Deletable, SizedTable, Store, TableSize};

/// Rows deleted in one statement.
const CHUNK: i64 = 1000;
/// Statements per kind in one run (100,000 events or alerts; a run that could not
/// get under the cap goes on at the next check).
const CHUNKS_PER_RUN: usize = 100;
/// A row's stored overhead besides its columns: the tuple header and its line pointer.
const ROW_OVERHEAD: u64 = 28;

/// What the last run by size on the database did.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct DatabaseRun {
    pub at: Option<DateTime<Utc>>,
    /// `pg_database_size`: the database's files, free space inside them included.
    pub database_bytes: u64,
    /// The data it holds (the estimate the cap is compared with), before and after.
    pub data_bytes_before: u64,
    pub data_bytes_after: u64,
    pub max_database_bytes: u64,
    pub detections_deleted: u64,
    pub events_deleted: u64,
    pub alerts_deleted: u64,
    /// Why it deleted what it did, or why it could not get under the cap.
    pub reason: String,
}

/// The bytes of a table's files that hold live rows (their share of the indexes and
/// TOAST included): the file in the proportion its live rows fill its heap.
pub fn live_bytes(t: &TableSize) -> u64 {
    if t.total_bytes == 0 || t.live_rows == 0 {
        return 0;
    }
    let share = match t.row_width {
        Some(width) if t.heap_bytes > 0 => {
            t.live_rows as f64 * (width + ROW_OVERHEAD) as f64 / t.heap_bytes as f64
        }
        // Not analysed yet: what is not a dead row is taken for live.
        _ => t.live_rows as f64 / (t.live_rows + t.dead_rows) as f64,
    };
    (t.total_bytes as f64 * share.min(1.0)) as u64
}

/// The data a database of `size` bytes holds: its size less what its tables' files
/// hold besides live rows.
pub fn data_bytes(size: u64, tables: &[TableSize]) -> u64 {
    let files: u64 = tables.iter().map(|t| t.total_bytes).sum();
    let live: u64 = tables.iter().map(live_bytes).sum();
    size.saturating_sub(files) + live
}

/// How many rows of `table` to delete for `excess` bytes, and what one row takes.
pub fn rows_for(excess: u64, table: &TableSize) -> (u64, f64) {
    let live = live_bytes(table);
    if live == 0 || table.live_rows == 0 {
        return (0, 0.0);
    }
    let per_row = live as f64 / table.live_rows as f64;
    ((excess as f64 / per_row).ceil() as u64, per_row)
}

pub struct DatabaseBySize {
    pub cap: u64,
    pub keep_evidence: chrono::Duration,
    /// With an Alertmanager configured, a resolution it has not accepted yet is kept
    /// as long as the sender looks for such (7 days).
    pub alertmanager: bool,
    pub store: Arc<Store>,
    pub deleted: IntCounterVec,
    pub last: Mutex<Option<DatabaseRun>>,
}

impl DatabaseBySize {
    pub fn last(&self) -> Option<DatabaseRun> {
        self.last.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The database's size and its tables, each table deleted from analysed first if
    /// it never was (its rows' width is what the estimate rests on).
    async fn sizes(&self) -> Result<(u64, Vec<TableSize>), crate::store::StoreError> {
        let (size, tables) = self.store.table_sizes().await?;
        let unknown: Vec<SizedTable> = SizedTable::ALL
            .into_iter()
            .filter(|s| {
                tables
                    .iter()
                    .any(|t| t.name == s.name() && t.live_rows > 0 && t.row_width.is_none())
            })
            .collect();
        if unknown.is_empty() {
            return Ok((size, tables));
        }
        for table in unknown {
            self.store.analyze(table).await?;
        }
        self.store.table_sizes().await
    }

    /// One check, and the deletions it takes.
    pub async fn run_once(&self) -> DatabaseRun {
        let now = crate::time::now();
        let mut run = DatabaseRun {
            at: Some(now),
            max_database_bytes: self.cap,
            ..DatabaseRun::default()
        };
        let (size, tables) = match self.sizes().await {
            Ok(t) => t,
            Err(e) => {
                run.reason = format!("not checked: the database cannot be read ({e})");
                return self.keep(run);
            }
        };
        let data = data_bytes(size, &tables);
        run.database_bytes = size;
        run.data_bytes_before = data;
        run.data_bytes_after = data;
        if data <= self.cap {
            run.reason = "under the cap".into();
            return self.keep(run);
        }
        let may = Deletable {
            before: now - self.keep_evidence,
            unsent_before: if self.alertmanager {
                now - chrono::Duration::days(7)
            } else {
                now
            },
        };
        let row = |table: SizedTable| {
            tables
                .iter()
                .find(|t| t.name == table.name())
                .map(|t| (t.live_rows, rows_for(1, t).1))
                .unwrap_or((0, 0.0))
        };
        let (events, event_row) = row(SizedTable::Events);
        let (detections, detection_row) = row(SizedTable::Detections);
        let (_, alert_row) = row(SizedTable::Alerts);
        // An event goes with its detections: what one takes with its share of them.
        let per_event = event_row + detection_row * detections as f64 / events.max(1) as f64;
        let mut freed = 0u64;
        let excess = |freed: u64| data.saturating_sub(freed).saturating_sub(self.cap);
        let mut wanted = (excess(0) as f64 / per_event.max(1.0)).ceil() as u64;
        for _ in 0..CHUNKS_PER_RUN {
            if wanted == 0 || events == 0 {
                break;
            }
            let limit = i64::try_from(wanted).unwrap_or(CHUNK).min(CHUNK);
            match self.store.delete_oldest_events(may, limit).await {
                Ok((e, d)) => {
                    run.events_deleted += e;
                    run.detections_deleted += d;
                    freed += (e as f64 * event_row + d as f64 * detection_row) as u64;
                    wanted = wanted.saturating_sub(e);
                    if e < limit as u64 {
                        break;
                    }
                }
                Err(e) => {
                    run.reason = format!("stopped: events cannot be deleted ({e})");
                    break;
                }
            }
        }
        // Then resolved alerts, oldest first.
        let mut wanted = (excess(freed) as f64 / alert_row.max(1.0)).ceil() as u64;
        for _ in 0..CHUNKS_PER_RUN {
            if wanted == 0 || alert_row == 0.0 || !run.reason.is_empty() {
                break;
            }
            let limit = i64::try_from(wanted).unwrap_or(CHUNK).min(CHUNK);
            match self.store.delete_oldest_alerts(may, limit).await {
                Ok(n) => {
                    run.alerts_deleted += n;
                    freed += (n as f64 * alert_row) as u64;
                    wanted = wanted.saturating_sub(n);
                    if n < limit as u64 {
                        break;
                    }
                }
                Err(e) => {
                    run.reason = format!("stopped: alerts cannot be deleted ({e})");
                    break;
                }
            }
        }
        let mut touched = Vec::new();
        for (table, n) in [
            (SizedTable::Detections, run.detections_deleted),
            (SizedTable::Events, run.events_deleted),
            (SizedTable::Alerts, run.alerts_deleted),
        ] {
            if n > 0 {
                self.deleted
                    .with_label_values(&[table.name(), "size"])
                    .inc_by(n);
                touched.push(table);
            }
        }
        for table in touched {
            if let Err(e) = self.store.vacuum(table).await {
                tracing::warn!(table = table.name(), error = %e, "the table could not be vacuumed after deleting by size");
            }
        }
        run.data_bytes_after = data.saturating_sub(freed);
        if run.reason.is_empty() {
            run.reason = if run.data_bytes_after <= self.cap {
                format!(
                    "over the cap of {} bytes: the oldest rows deleted",
                    self.cap
                )
            } else {
                format!(
                    "still over the cap of {} bytes: what is left is younger than cleanup.keep_evidence_days, the newest event, detections waiting for analysis or firing alerts",
                    self.cap
                )
            };
        }
        if run.detections_deleted + run.events_deleted + run.alerts_deleted > 0 {
            tracing::info!(
                detections = run.detections_deleted,
                events = run.events_deleted,
                alerts = run.alerts_deleted,
                cap = self.cap,
                "retention by size deleted the oldest rows of the database"
            );
        }
        self.keep(run)
    }

    fn keep(&self, run: DatabaseRun) -> DatabaseRun {
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some(run.clone());
        run
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(total: u64, heap: u64, live: u64, dead: u64, width: Option<u64>) -> TableSize {
        TableSize {
            name: "detections".into(),
            total_bytes: total,
            heap_bytes: heap,
            live_rows: live,
            dead_rows: dead,
            row_width: width,
        }
    }

    #[test]
    fn a_table_counts_the_share_its_live_rows_fill() {
        // 1,000 rows of 100 + 28 bytes in a 256,000-byte heap: half of it is live, so
        // half of its 400,000 bytes of files (heap, indexes, TOAST).
        assert_eq!(
            live_bytes(&table(400_000, 256_000, 1000, 0, Some(100))),
            200_000
        );
        // Full: never more than its files.
        assert_eq!(
            live_bytes(&table(400_000, 100_000, 1000, 0, Some(100))),
            400_000
        );
        // Not analysed yet: the dead rows' share is free.
        assert_eq!(
            live_bytes(&table(400_000, 256_000, 300, 100, None)),
            300_000
        );
        assert_eq!(live_bytes(&table(400_000, 256_000, 0, 100, Some(100))), 0);
    }

    #[test]
    fn the_data_is_the_size_less_what_is_not_live() {
        let tables = [
            table(400_000, 256_000, 1000, 0, Some(100)),
            table(100_000, 80_000, 10, 0, None),
        ];
        // 8 MB of catalogue and other files, plus 200,000 + 100,000 live.
        assert_eq!(data_bytes(8_500_000, &tables), 8_300_000);
    }

    #[test]
    fn the_rows_to_delete_cover_the_excess() {
        let t = table(400_000, 256_000, 1000, 0, Some(100));
        // 200 bytes a row: 1,001 bytes need 6 rows.
        assert_eq!(rows_for(1001, &t), (6, 200.0));
        assert_eq!(rows_for(1001, &table(0, 0, 0, 0, None)), (0, 0.0));
    }
}
