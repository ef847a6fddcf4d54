//! Live events for clients: the WebSocket hub (`hub.rs`: clients, subscriptions,
//! bounded fan-out) and the two broadcasters that feed it (`broadcaster.rs`: pipeline
//! events relayed through Redis pub/sub across instances; this instance's system
//! events and the periodic `system.status`). The socket itself (upgrade, pings,
//! authentication) is handled at the HTTP edge, `api/ws.rs`.

pub mod broadcaster;
pub mod hub;
pub mod metrics;

pub use broadcaster::{BroadcasterHealth, EventBroadcaster, SystemBroadcaster};
pub use hub::{Admission, Connection, DropReason, Hub, Liveness, Tick};
