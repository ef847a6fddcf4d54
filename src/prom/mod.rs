//! Prometheus: the service's own metrics (`metrics.rs`, the only place a metric is
//! defined), the client of the Prometheus HTTP API (`client.rs`) and the monitoring
//! stack's assessment built on it (`monitoring.rs`).

pub mod client;
pub mod metrics;
pub mod monitoring;

pub use metrics::Metrics;

pub use crate::names::Label;
