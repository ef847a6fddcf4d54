//! What the pipeline measures of its own work for the performance view: how long an
//! image waited until its detections were stored, and each security event created.
//! The performance capability owns the windows and hands them in as this trait, so
//! the pipeline does not depend on it.

pub trait PipelineTimes: Send + Sync {
    /// An image's detections were stored, `millis` after the watcher saw it.
    fn image_detected(&self, millis: f64);
    /// A security event was created.
    fn event_created(&self);
}
