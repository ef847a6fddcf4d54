//! Durable work queues (`detection`, `analysis`) with a memory + disk fallback while
//! Redis is down. This module currently holds the fallback counters the degradation
//! snapshot reads; the queues themselves arrive with the pipeline issue.

mod stats;

pub use stats::FallbackStats;
