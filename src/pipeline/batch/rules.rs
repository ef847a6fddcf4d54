//! When a batch closes, as a pure function of its times and size.

use serde::{Deserialize, Serialize};

use crate::names::Label;

/// Why a batch closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseReason {
    /// `window_seconds` after it opened.
    Window,
    /// `idle_timeout_seconds` after its last detection.
    Idle,
    /// It holds `max_detections`.
    MaxSize,
    /// It had been claimed for closing but never handed off (a crash or a failed
    /// hand-off); the orphan sweep handed it off later.
    Recovered,
}

impl Label for CloseReason {
    fn label(self) -> &'static str {
        match self {
            Self::Window => "window",
            Self::Idle => "idle",
            Self::MaxSize => "max_size",
            Self::Recovered => "recovered",
        }
    }
    fn all() -> &'static [Self] {
        &[Self::Window, Self::Idle, Self::MaxSize, Self::Recovered]
    }
}

/// The close rules of one aggregator.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    pub window: f64,
    pub idle: f64,
    pub max: usize,
}

impl Rules {
    /// The close rule, in priority order: size, window, idle. Times are unix seconds.
    pub fn due(
        &self,
        started_at: f64,
        last_activity: f64,
        count: usize,
        now: f64,
    ) -> Option<CloseReason> {
        if count >= self.max {
            Some(CloseReason::MaxSize)
        } else if now - started_at >= self.window {
            Some(CloseReason::Window)
        } else if now - last_activity >= self.idle {
            Some(CloseReason::Idle)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_beats_window_beats_idle() {
        let r = Rules {
            window: 90.0,
            idle: 30.0,
            max: 3,
        };
        assert_eq!(r.due(0.0, 0.0, 3, 100.0), Some(CloseReason::MaxSize));
        assert_eq!(r.due(0.0, 0.0, 1, 90.0), Some(CloseReason::Window));
        assert_eq!(r.due(0.0, 50.0, 1, 80.0), Some(CloseReason::Idle));
        assert_eq!(r.due(0.0, 60.0, 1, 89.9), None);
    }
}
