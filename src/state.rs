//! Shared application state: the long-lived domain components that HTTP handlers and
//! workers use. Built once by `service`; plain Rust, no web framework types.

use std::sync::Arc;

use crate::config::Config;
use crate::events::EventBus;
use crate::prom::Metrics;
use crate::supervisor::Supervisor;

pub struct AppState {
    pub config: Arc<Config>,
    pub metrics: Arc<Metrics>,
    pub events: EventBus,
    pub supervisor: Supervisor,
}
