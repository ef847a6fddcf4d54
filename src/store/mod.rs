//! PostgreSQL store: a deadpool connection pool, versioned migrations applied on the
//! first successful connection (under an advisory lock, so several instances can
//! start together), and idempotent writes so at-least-once delivery never duplicates:
//! detections are unique per `(file_path, file_hash, seq)`, events per `batch_id`.
//!
//! Never blocks start-up: nothing connects until the first query, and a down database
//! is reported as [`StoreError::Unavailable`] (the caller keeps its work queued). A
//! database that does not exist yet is created when the role may (`create.rs`).
//!
//! - `db.rs`: the pool, the bounded operation and the reachability it logs and
//!   publishes; `schema.rs`: the migrations; `create.rs`: the missing database;
//! - `rows.rs`: the pipeline's rows; `alerts.rs`: the alert history (and who tells it); `cameras.rs`: the
//!   cameras and what the registry learned about each; `silences.rs`: the silences; `coverage.rs`: the unwatched spans; `digest.rs`: what the daily digest counts; `maintenance.rs`: the windows, snoozes and acknowledgements; `actions.rs`: the action links' key and used links; `retention.rs`: the database's size and what retention by size asks;
//!   `batches.rs`: which detections a batch took (what the batch recovery reads).

mod actions;
mod alerts;
mod batches;
mod cameras;
mod coverage;
mod create;
mod db;
mod digest;
mod error;
mod fleet;
mod maintenance;
mod retention;
mod rows;
mod schema;
mod silences;

pub use alerts::{AlertQuery, AlertRow, AlertState, ToldRecord};
pub use batches::{UnanalysedBatch, Unbatched};
pub use cameras::{CameraRow, CameraWriter};
pub use coverage::{CameraSince, SpanFilter, SpanRow};
pub use db::Store;
pub use error::StoreError;
pub use maintenance::WindowRow;
pub use retention::{Deletable, SizedTable, TableSize};
pub use rows::{ImageDetections, NewEvent, RecentEvent, StoredDetection};
pub use silences::SilenceRow;
