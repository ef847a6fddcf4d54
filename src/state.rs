//! Shared application state: the long-lived domain components that HTTP handlers and
//! workers use. Built once by `service`; plain Rust, no web framework types.

use std::sync::Arc;

use crate::ai::AiClients;
use crate::breaker::BreakerRegistry;
use crate::config::Config;
use crate::events::EventBus;
use crate::pipeline::degradation::DegradationManager;
use crate::pipeline::queue::FallbackStats;
use crate::pipeline::Pipeline;
use crate::prom::Metrics;
use crate::redis::RedisLink;
use crate::supervisor::Supervisor;

pub struct AppState {
    pub config: Arc<Config>,
    pub metrics: Arc<Metrics>,
    pub events: EventBus,
    pub supervisor: Supervisor,
    pub breakers: Arc<BreakerRegistry>,
    pub ai: Arc<AiClients>,
    pub redis: Arc<RedisLink>,
    pub fallback: Arc<FallbackStats>,
    pub degradation: Arc<DegradationManager>,
    pub pipeline: Arc<Pipeline>,
}
