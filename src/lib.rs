//! watchpost: monitoring and self-supervision core of a self-hosted AI camera pipeline.
//! See ARCHITECTURE.md for the map of this crate.

pub mod ai;
pub mod api;
pub mod breaker;
pub mod config;
pub mod events;
pub mod pipeline;
pub mod prom;
pub mod redis;
pub mod service;
pub mod state;
pub mod supervisor;
pub mod time;

pub use config::Config;
pub use service::Service;
