//! Typed events and the internal bus.
//!
//! Every event the service emits is a variant of [`Event`]; each variant has a payload
//! struct and knows its wire type (`detection.new`, …) and channel. The registry
//! (`registry.rs`, `GET /api/system/websocket/events`) is derived from the same table,
//! with a JSON Schema generated from each payload struct, so a new event type is one
//! line in `events!` plus its payload: the bus, the WebSocket and the docs follow.
//!
//! Publishing never blocks and never fails: with no subscriber the event is simply not
//! delivered, and a slow subscriber lags (it is the subscriber's job to notice
//! `RecvError::Lagged`).

mod bus;
mod payloads;
pub mod registry;
mod source;
mod states;

pub use bus::*;
pub use payloads::*;
pub use source::{Source, SourceKind};
pub use states::*;
