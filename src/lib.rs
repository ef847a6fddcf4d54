//! watchpost: monitoring and self-supervision core of a self-hosted AI camera pipeline.
//! See ARCHITECTURE.md for the map of this crate.

pub mod api;
pub mod config;
pub mod events;
pub mod prom;
pub mod service;
pub mod state;
pub mod supervisor;

pub use config::Config;
pub use service::Service;
