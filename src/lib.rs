//! watchpost: monitoring and self-supervision core of a self-hosted AI camera pipeline.
//! See ARCHITECTURE.md for the map of this crate.

pub mod actions;
pub mod ai;
pub mod alerts;
pub mod api;
pub mod breaker;
pub mod cameras;
pub mod config;
pub mod coverage;
pub mod events;
pub mod fleet;
pub mod health;
pub mod json;
pub mod names;
pub mod notify;
pub mod perf;
pub mod pipeline;
pub mod prom;
pub mod quiet;
pub mod redact;
pub mod redis;
pub mod service;
pub mod state;
pub mod storage;
pub mod store;
pub mod supervisor;
pub mod time;
pub mod ws;

pub use config::Config;
pub use service::Service;
