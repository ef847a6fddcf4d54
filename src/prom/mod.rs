//! Prometheus: the service's own metrics (`metrics.rs`, the only place a metric is
//! defined), the client of the Prometheus HTTP API (`client.rs`) and the monitoring
//! stack's assessment built on it (`monitoring.rs`).

pub mod client;
pub mod metrics;
pub mod monitoring;

pub use metrics::Metrics;

/// A closed set of label values, owned by the domain type it describes (a queue
/// placement, a pipeline stage, a close reason, …). Metric methods take the domain
/// value and render it here, so call sites never pass or compare label strings, and
/// the metrics module can publish every value at 0 from the start (`all`).
pub trait Label: Copy + 'static {
    fn label(self) -> &'static str;
    fn all() -> &'static [Self];
}
