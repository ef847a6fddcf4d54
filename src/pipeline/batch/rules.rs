//! When a batch closes, as a pure function of its times and size.

use serde::{Deserialize, Serialize};

pub use crate::events::CloseReason;

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

/// A closed batch as handed to the analysis queue.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ClosedBatch {
    pub batch_id: String,
    pub camera_id: String,
    pub detection_ids: Vec<i64>,
    /// Unix seconds.
    pub started_at: f64,
    pub closed_at: f64,
    pub reason: CloseReason,
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
