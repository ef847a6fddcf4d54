//! Batch aggregator (`batch_aggregator` worker): one open batch per camera, closed when
//! it is `window_seconds` old, idle for `idle_timeout_seconds`, or holds
//! `max_detections` (`rules.rs`). Batches live in Redis (`redis_store.rs`), shared by
//! every instance on that Redis, or in this process while Redis is unreachable
//! (`memory.rs`); both sit behind one [`BatchStore`] interface. Closing claims the
//! batch atomically (one winner across instances), hands it to the analysis sink, and
//! only then forgets it; a Redis batch claimed but never handed off (a crash in
//! between) is found by the orphan sweep and closes with reason `recovered`.
//!
//! The worker ticks every tenth of the shortest rule (50 ms–1 s) against a mirror of
//! the open batches (kept by this instance's adds and by each read), so
//! `GET /api/system/pipeline` and the `watchpost_batches_open` gauge never touch
//! Redis. A tick reads the open batches from Redis only when a batch it knows is due
//! by what it last saw (the read then says whether another instance's adds moved its
//! deadline), when the fleet asks (an instance was lost: its batches are closed by
//! the others), or once a minute; an idle instance asks Redis nothing else but the
//! orphan sweep's look every 5 s. Another instance's batches show in the mirror as of
//! the last read.
//!
//! Time: batch timestamps are unix seconds (shared between instances) derived from
//! tokio's clock (`WallClock`), so the rules are tested on the paused clock.

mod add;
mod aggregator;
mod clock;
mod memory;
mod metrics;
mod recovery;
mod recovery_state;
mod redis_store;
mod rules;
mod store;

pub use aggregator::{BatchAggregator, BatchError, BatchSink, OpenBatch};
pub use clock::WallClock;
pub use recovery_state::Recovery;
pub use rules::{CloseReason, ClosedBatch, Rules};
