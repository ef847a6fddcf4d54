//! The files refused in the last hour, by reason, for the status page ("I copied a
//! picture and nothing happened": it says why). Bounded: at most [`KEPT`] refusals are
//! remembered (the oldest go first); counts older than an hour are dropped when read or
//! written.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::result::FileResult;

/// The most refusals remembered.
pub const KEPT: usize = 10_000;
/// How far back they are counted.
pub const WINDOW: Duration = Duration::from_secs(3600);

#[derive(Default)]
pub struct RecentRefusals {
    seen: Mutex<VecDeque<(Instant, FileResult)>>,
}

impl RecentRefusals {
    /// `result` was decided about a file now; kept if it is a refusal.
    pub fn note(&self, result: FileResult) {
        if !result.is_refusal() {
            return;
        }
        let now = Instant::now();
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        prune(&mut seen, now);
        if seen.len() >= KEPT {
            seen.pop_front();
        }
        seen.push_back((now, result));
    }

    /// How many files were refused in the last hour, by reason (`rejected_size`, …).
    pub fn last_hour(&self) -> BTreeMap<String, u64> {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        prune(&mut seen, Instant::now());
        let mut out = BTreeMap::new();
        for (_, r) in seen.iter() {
            *out.entry(r.as_str().to_string()).or_insert(0) += 1;
        }
        out
    }
}

fn prune(seen: &mut VecDeque<(Instant, FileResult)>, now: Instant) {
    while seen
        .front()
        .is_some_and(|(at, _)| now.duration_since(*at) > WINDOW)
    {
        seen.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn refusals_are_counted_for_an_hour_and_bounded() {
        let r = RecentRefusals::default();
        r.note(FileResult::RejectedSize);
        r.note(FileResult::Queued);
        r.note(FileResult::RejectedExtension);
        r.note(FileResult::RejectedSize);
        assert_eq!(
            r.last_hour(),
            BTreeMap::from([
                ("rejected_extension".to_string(), 1),
                ("rejected_size".to_string(), 2)
            ])
        );
        tokio::time::advance(WINDOW + Duration::from_secs(1)).await;
        assert!(r.last_hour().is_empty(), "an hour later they are gone");
        for _ in 0..KEPT + 5 {
            r.note(FileResult::RejectedName);
        }
        assert_eq!(r.last_hour()["rejected_name"], KEPT as u64);
    }
}
