//! Prometheus: the service's own metrics (`metrics`, the only place a metric is
//! defined). The Prometheus HTTP API client joins this folder in the monitoring issue.

pub mod metrics;

pub use metrics::Metrics;
