//! The camera pipeline: file watcher → detection queue → detection worker → batch
//! aggregator → analysis queue → analysis worker → events, plus the degradation
//! manager and the shared Redis link. Each stage is a supervised worker.

pub mod degradation;
pub mod kv;
pub mod queue;
