//! Coverage: which minutes went unwatched, and why. A camera is *watched* while its
//! images would become detections and events; a *gap* is an interval in which they
//! would not, named by its most specific cause (the camera offline, frozen or
//! disabled, the file watcher down, detection or analysis down, watchpost not
//! running). Built from spans recorded as conditions begin and end, so availability
//! is exact, not sampled.
//!
//! - `span.rs`: the spans, the causes, and the gaps and unions made of them (pure);
//! - `observe.rs`: which conditions hold now, from the cameras and the health
//!   assessment (pure);
//! - `recorder.rs`: the `coverage_recorder` worker (the spans, the heartbeat file,
//!   the series, retention);
//! - `report.rs`: the coverage and availability answers (reads only);
//! - `metrics.rs`: `watchpost_camera_availability_ratio`,
//!   `watchpost_dependency_availability_ratio`.

mod metrics;
mod observe;
mod recorder;
mod report;
mod span;

pub use metrics::CoverageMetrics;
pub use recorder::{Recorder, MAX_PENDING};
pub use report::{
    AvailabilityReport, CameraAvailability, CameraCoverage, Coverage, CoverageError,
    CoverageReport, DependencyAvailability, Window, MAX_INTERVAL_DAYS,
};
pub use span::{Cause, Gap};
