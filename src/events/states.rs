//! The states event payloads carry, shared with the API and the metrics that show the
//! same thing: a worker's status, a breaker's state, the degradation mode, a health
//! state, an AI service's status, an alert's severity, why a batch closed. Each is a
//! closed set: it serialises as today's wire string, the registry's schema lists its
//! values, and a metric renders it as a label (`names::Label`). The capabilities that
//! own these states re-export them from here.

use crate::names::closed_set;

closed_set! {
    /// A supervised worker's state.
    pub enum WorkerStatus {
        Running = "running",
        Stopped = "stopped",
        Crashed = "crashed",
        Restarting = "restarting",
        Failed = "failed",
    }
}

closed_set! {
    /// A circuit breaker's state.
    pub enum BreakerState {
        Closed = "closed",
        Open = "open",
        HalfOpen = "half_open",
    }
}

closed_set! {
    /// The pipeline's degradation mode, ordered from best to worst
    /// (`Normal < Degraded < Minimal < Offline`).
    #[derive(PartialOrd, Ord)]
    pub enum Mode {
        Normal = "normal",
        Degraded = "degraded",
        Minimal = "minimal",
        Offline = "offline",
    }
}

closed_set! {
    /// The health of one part, or of the whole service (`unknown`: no probe round yet).
    pub enum HealthState {
        Healthy = "healthy",
        Degraded = "degraded",
        Unhealthy = "unhealthy",
        Unknown = "unknown",
    }
}

closed_set! {
    /// An AI service as the degradation manager last saw it.
    pub enum ServiceStatus {
        /// Not checked yet.
        Unknown = "unknown",
        Healthy = "healthy",
        Unhealthy = "unhealthy",
    }
}

closed_set! {
    /// How urgent an alert is.
    #[derive(PartialOrd, Ord, serde::Deserialize)]
    pub enum Severity {
        Warning = "warning",
        Critical = "critical",
    }
}

closed_set! {
    /// Why a detection batch closed.
    #[derive(serde::Deserialize)]
    pub enum CloseReason {
        /// `window_seconds` after it opened.
        Window = "window",
        /// `idle_timeout_seconds` after its last detection.
        Idle = "idle",
        /// It holds `max_detections`.
        MaxSize = "max_size",
        /// It had been claimed for closing but never handed off (a crash or a failed
        /// hand-off); the orphan sweep handed it off later.
        Recovered = "recovered",
    }
}

closed_set! {
    /// A camera as its watchdog judges it.
    #[derive(serde::Deserialize)]
    pub enum CameraStatus {
        /// Images arrive as its rhythm says they should.
        Online = "online",
        /// Silent for longer than it usually is.
        Stale = "stale",
        /// Silent for twice that: probably down.
        Offline = "offline",
        /// Sending the same picture again and again.
        Frozen = "frozen",
        /// Sending more images than `cameras.max_images_per_minute`; the extra ones
        /// are skipped.
        Flooding = "flooding",
        /// Turned off by an operator: its images are skipped, nothing is judged.
        Disabled = "disabled",
    }
}
