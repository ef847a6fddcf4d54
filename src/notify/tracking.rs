//! What this instance told of the alerts still firing: when each was last told
//! (a repeat is due `notify.repeat_seconds` later) and whether a silence held its
//! firing back (it is told when the silence ends, if it still fires).

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

use super::message::Kind;

/// What this instance knows of a firing alert it may have to tell again.
#[derive(Debug, Clone, Copy)]
struct Tracked {
    told_at: Instant,
    /// Its firing was held back by a silence (never told).
    held: bool,
}

/// The firing alerts this instance knows of, by fingerprint.
#[derive(Default)]
pub struct Tracking(Mutex<BTreeMap<String, Tracked>>);

impl Tracking {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Tracked>> {
        // Each critical section leaves the map whole; survive a poisoned lock.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Remember a firing alert as told now (`Some(held)`: held back by a silence), or
    /// forget a resolved one (`None`); whether it was held before.
    pub fn track(&self, fingerprint: &str, firing: Option<bool>) -> bool {
        let mut tracked = self.lock();
        let before = match firing {
            Some(held) => tracked.insert(
                fingerprint.to_string(),
                Tracked {
                    told_at: Instant::now(),
                    held,
                },
            ),
            None => tracked.remove(fingerprint),
        };
        before.is_some_and(|t| t.held)
    }

    /// Firing notifications tracked.
    pub fn entries(&self) -> usize {
        self.lock().len()
    }

    /// See [`due`].
    pub fn due(
        &self,
        firing: &[(String, bool)],
        now: Instant,
        repeat: Duration,
    ) -> Vec<(String, Kind)> {
        due(&mut self.lock(), firing, now, repeat)
    }
}

/// What to tell now of the alerts firing (`fingerprint`, silenced now): a repeat of
/// one told `repeat` ago or more, and the firing of one a silence held back that no
/// silence holds any more. Forgets the alerts that no longer fire; one not known yet
/// (told before a restart, or by another instance) counts as told now.
fn due(
    tracked: &mut BTreeMap<String, Tracked>,
    firing: &[(String, bool)],
    now: Instant,
    repeat: Duration,
) -> Vec<(String, Kind)> {
    let present: std::collections::BTreeSet<&str> =
        firing.iter().map(|(f, _)| f.as_str()).collect();
    tracked.retain(|fp, _| present.contains(fp.as_str()));
    let mut out = Vec::new();
    for (fp, silenced) in firing {
        let t = tracked.entry(fp.clone()).or_insert(Tracked {
            told_at: now,
            held: false,
        });
        if *silenced {
            continue;
        }
        if t.held {
            out.push((fp.clone(), Kind::Firing));
            *t = Tracked {
                told_at: now,
                held: false,
            };
        } else if now.duration_since(t.told_at) >= repeat {
            out.push((fp.clone(), Kind::Repeat));
            t.told_at = now;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_firing_alert_is_told_again_each_period_and_a_held_one_when_its_silence_ends() {
        let repeat = Duration::from_secs(4 * 3600);
        let mut tracked = BTreeMap::new();
        let start = Instant::now();
        tracked.insert(
            "held".to_string(),
            Tracked {
                told_at: start,
                held: true,
            },
        );
        let firing =
            |silenced: bool| vec![("a".to_string(), false), ("held".to_string(), silenced)];
        // "a" is not known yet: told now (elsewhere, or before a restart).
        assert!(due(&mut tracked, &firing(true), Instant::now(), repeat).is_empty());
        tokio::time::advance(repeat - Duration::from_secs(1)).await;
        assert!(due(&mut tracked, &firing(true), Instant::now(), repeat).is_empty());
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(
            due(&mut tracked, &firing(true), Instant::now(), repeat),
            vec![("a".to_string(), Kind::Repeat)],
            "a repeat four hours on; the silenced one still held"
        );
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(
            due(&mut tracked, &firing(false), Instant::now(), repeat),
            vec![("held".to_string(), Kind::Firing)],
            "its silence ended while it fires: told as a firing"
        );
        assert!(due(&mut tracked, &firing(false), Instant::now(), repeat).is_empty());
        // Resolved alerts are forgotten.
        due(&mut tracked, &[], Instant::now(), repeat);
        assert!(tracked.is_empty());
    }
}
