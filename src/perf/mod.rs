//! Performance: what the host, the GPU, the AI models, the databases and the pipeline
//! are doing, as `GET /api/system/performance` and its history show it.
//!
//! A supervised worker (`sampler.rs`, `performance_sampler`) takes one snapshot every
//! `performance.sample_interval_seconds` into a ring of `performance.history_size`;
//! the endpoints only read that ring, so no request samples the host or queries a
//! database. A part that cannot be read is `null`, never an error. The field names are
//! those existing clients of this API read (docs/behaviour.md §8).
//!
//! - `allocator.rs`: the C allocator's arenas and trimming (memory that levels off).
//! - `host.rs`: CPU and memory (sysinfo), disk of the camera folder's file system.
//! - `gpu.rs`: NVML device 0, loaded at run time (no CUDA needed to build).
//! - `databases.rs`: PostgreSQL `pg_stat_*`, Redis `INFO`.
//! - `containers.rs`: the Docker engine's containers, when its socket is there.
//! - `window.rs`: sliding windows of watchpost's own latencies.
//! - `snapshot.rs`: the snapshot shapes, the alert rule, the history ring and its
//!   downsampling (pure functions).
//!
//! The disk's figures come from `storage`, which owns the storage series; the disk's
//! threshold is a problem source of the alert engine (`WatchpostDiskSpaceLow`).

pub mod allocator;
pub mod containers;
pub mod databases;
pub mod gpu;
pub mod host;
pub mod sampler;
mod snapshot;
pub mod window;

pub use snapshot::*;
