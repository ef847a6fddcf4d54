//! Cameras (docs/behaviour.md "Cameras"): every folder of the camera root that sends
//! images is a camera, up to `cameras.max_cameras`. Each is judged from what arrives:
//! `stale` and `offline` when it is silent for longer than its learned rhythm (or its
//! configured silence or heartbeat) allows, `frozen` when it sends the same picture
//! again and again, `flooding` when it sends more than `cameras.max_images_per_minute`
//! (the extra images are skipped), `disabled` when an operator turned it off.
//!
//! - `camera.rs`: one camera and its judgement (pure); `rhythm.rs`: the learned
//!   silences; `rings.rs`: counts per second, minute and hour;
//! - `registry.rs`: every camera, what the watcher and the stages tell it, what the
//!   API, the metrics and the alert engine read; `stored.rs`: its rows in
//!   PostgreSQL (under the camera root, by owner) and the instances up;
//!   `view.rs`: what the API shows of them;
//! - `watchdog.rs`: the `camera_watchdog` worker (judges, writes);
//! - `metrics.rs`: the per-camera series.
//!
//! Must not: read the camera folder (the watcher does), or know about HTTP.

mod camera;
pub mod metrics;
mod registry;
mod rhythm;
mod rings;
mod stored;
mod view;
mod watchdog;

pub use camera::Basis;
pub use metrics::Skip;
pub use registry::{is_valid_camera_id, Admission, CameraError, CameraProblem, CameraRegistry};
pub use view::{CameraDetail, CameraList, CameraSummary, RefusedFolder};
pub use watchdog::Watchdog;
