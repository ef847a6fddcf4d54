//! Storage: every volume watchpost writes or depends on (`camera_root`, `spool`,
//! `outbox`, `postgres`), measured every `storage.sample_interval_seconds` by the
//! `storage_sampler` worker, with its growth (a least-squares slope over
//! `storage.forecast_window_seconds`) and when it is forecast full.
//! `GET /api/system/storage` and the page read the latest figures from memory; the
//! alert engine asks [`Storage::filling_up`] (`WatchpostStorageFillingUp`).
//!
//! - `disk.rs`: a file system's size and use (`statvfs`);
//! - `forecast.rs`: the samples of a volume, the slope and the forecast (pure);
//! - `sampler.rs`: the worker and what it measures (`statvfs`, `pg_database_size`);
//! - `metrics.rs`: `watchpost_storage_size_bytes`, `…_free_bytes`,
//!   `…_growth_bytes_per_second`, `…_full_at_timestamp_seconds`, by volume.

mod disk;
pub mod forecast;
mod metrics;
mod sampler;

pub use disk::{disk_usage, CAMERA_ROOT};
pub use metrics::StorageMetrics;
pub use sampler::{Storage, StorageView, VolumeView};
