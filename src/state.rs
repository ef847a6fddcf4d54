//! Shared application state: the long-lived domain components that HTTP handlers and
//! workers use. Built once by `service`; plain Rust, no web framework types.

use std::sync::Arc;

use crate::actions::Actions;
use crate::ai::AiClients;
use crate::alerts::{AlertEngine, Silences};
use crate::breaker::BreakerRegistry;
use crate::cameras::CameraRegistry;
use crate::config::Config;
use crate::coverage::Coverage;
use crate::events::EventBus;
use crate::fleet::Fleet;
use crate::health::degradation::DegradationManager;
use crate::health::Health;
use crate::notify::Heartbeat;
use crate::notify::Notifiers;
use crate::perf::sampler::PerfSampler;
use crate::pipeline::queue::FallbackStats;
use crate::pipeline::Pipeline;
use crate::prom::client::PromClient;
use crate::prom::Metrics;
use crate::quiet::Quiet;
use crate::redis::RedisLink;
use crate::storage::Storage;
use crate::store::Store;
use crate::supervisor::Supervisor;
use crate::ws::{EventBroadcaster, Hub, SystemBroadcaster};

pub struct AppState {
    pub config: Arc<Config>,
    pub metrics: Arc<Metrics>,
    pub events: EventBus,
    pub supervisor: Supervisor,
    pub breakers: Arc<BreakerRegistry>,
    pub ai: Arc<AiClients>,
    pub redis: Arc<RedisLink>,
    pub store: Arc<Store>,
    pub fallback: Arc<FallbackStats>,
    pub degradation: Arc<DegradationManager>,
    pub pipeline: Arc<Pipeline>,
    pub health: Arc<Health>,
    pub hub: Arc<Hub>,
    pub event_broadcaster: Arc<EventBroadcaster>,
    pub system_broadcaster: Arc<SystemBroadcaster>,
    pub prometheus: Arc<PromClient>,
    pub perf: Arc<PerfSampler>,
    pub alerts: Arc<AlertEngine>,
    pub silences: Arc<Silences>,
    pub cameras: Arc<CameraRegistry>,
    pub notifiers: Arc<Notifiers>,
    pub coverage: Arc<Coverage>,
    pub quiet: Arc<Quiet>,
    pub actions: Arc<Actions>,
    pub storage: Arc<Storage>,
    pub fleet: Arc<Fleet>,
    /// The dead man's switch, when `[heartbeat] url` is set.
    pub heartbeat: Option<Arc<Heartbeat>>,
}
