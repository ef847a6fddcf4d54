//! A file the watcher has seen and not yet decided on: it waits for a quiet time after
//! its last event (debounce) and for its size to settle, or a close-after-write.

use std::path::PathBuf;
use std::time::Duration;
use tokio::time::Instant;

/// Wait before retrying a file the queue refused (spool full) or could not read.
pub const RETRY_AFTER: Duration = Duration::from_secs(5);

/// Insert into a set of what is remembered about files, emptied all at once when it
/// reaches `max` (a file forgotten is only looked at, or logged, once more).
pub fn remember<T: std::hash::Hash + Eq>(
    set: &mut std::collections::HashSet<T>,
    value: T,
    max: usize,
) {
    if set.len() >= max {
        set.clear();
    }
    set.insert(value);
}

/// A stable file, ready to be taken.
pub struct Ready {
    pub path: PathBuf,
    pub size: u64,
    /// Its ledger line (path, size, modification time).
    pub key: String,
}

#[derive(Debug)]
pub struct Pending {
    pub last_event: Instant,
    size: Option<u64>,
    stable_since: Instant,
    pub closed: bool,
    pub retry_at: Option<Instant>,
    /// Not worth a look before then: its size cannot have been stable long enough
    /// earlier (cleared by a new event).
    check_at: Option<Instant>,
}

impl Pending {
    pub fn new(now: Instant) -> Self {
        Self {
            last_event: now,
            size: None,
            stable_since: now,
            closed: false,
            retry_at: None,
            check_at: None,
        }
    }

    /// A new event for the file: wait for quiet again, then look at it.
    pub fn touched(&mut self, now: Instant, closed: bool) {
        self.last_event = now;
        self.closed |= closed;
        self.check_at = None;
    }

    /// When the file is next worth a look: quiet for `debounce` since its last event,
    /// past a retry wait, and (while its size settles) when it can have been stable
    /// for long enough.
    pub fn due(&self, debounce: Duration) -> Instant {
        let quiet = self.last_event + debounce;
        [self.retry_at, self.check_at]
            .into_iter()
            .flatten()
            .fold(quiet, Instant::max)
    }

    /// A file found by a scan: its quiet time is already over.
    pub fn found(now: Instant, debounce: Duration) -> Self {
        let mut p = Self::new(now);
        p.last_event = now.checked_sub(debounce).unwrap_or(now);
        p
    }

    /// Due (see [`Pending::due`]).
    pub fn quiet(&self, now: Instant, debounce: Duration) -> bool {
        now >= self.due(debounce)
    }

    /// Record the current size; `true` when the file may be taken: a close-after-write
    /// was seen, its size has not changed for `stable`, or (catch-up) it was last
    /// modified at least `stable` ago.
    pub fn observe(
        &mut self,
        size: u64,
        age: Option<Duration>,
        now: Instant,
        stable: Duration,
    ) -> bool {
        let take = if self.size != Some(size) {
            self.size = Some(size);
            self.stable_since = now;
            self.closed || age.is_some_and(|a| a >= stable)
        } else {
            self.closed || now.duration_since(self.stable_since) >= stable
        };
        // Not taken: look again when the size can have been stable long enough (one
        // stat then, not one per tick).
        self.check_at = (!take).then_some(self.stable_since + stable);
        take
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEBOUNCE: Duration = Duration::from_millis(500);
    const STABLE: Duration = Duration::from_secs(2);

    #[tokio::test(start_paused = true)]
    async fn debounce_waits_for_quiet_after_the_last_event() {
        let mut p = Pending::new(Instant::now());
        tokio::time::advance(Duration::from_millis(400)).await;
        p.last_event = Instant::now(); // another write event
        tokio::time::advance(Duration::from_millis(499)).await;
        assert!(!p.quiet(Instant::now(), DEBOUNCE));
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(p.quiet(Instant::now(), DEBOUNCE));
        p.retry_at = Some(Instant::now() + RETRY_AFTER);
        assert!(
            !p.quiet(Instant::now(), DEBOUNCE),
            "a refused file waits for its retry"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn size_must_stay_stable_unless_close_after_write_was_seen() {
        let mut p = Pending::new(Instant::now());
        assert!(!p.observe(100, Some(Duration::ZERO), Instant::now(), STABLE));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(
            !p.observe(200, Some(Duration::ZERO), Instant::now(), STABLE),
            "still growing"
        );
        tokio::time::advance(Duration::from_millis(1999)).await;
        assert!(!p.observe(200, None, Instant::now(), STABLE));
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(
            p.observe(200, None, Instant::now(), STABLE),
            "stable for 2 s"
        );

        let mut closed = Pending::new(Instant::now());
        closed.touched(Instant::now(), true);
        assert!(closed.observe(300, Some(Duration::ZERO), Instant::now(), STABLE));

        let mut old = Pending::new(Instant::now());
        assert!(
            old.observe(300, Some(Duration::from_secs(60)), Instant::now(), STABLE),
            "catch-up file"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_settling_file_is_looked_at_again_only_when_it_can_be_stable() {
        let start = Instant::now();
        let mut p = Pending::new(start);
        tokio::time::advance(DEBOUNCE).await;
        assert!(p.quiet(Instant::now(), DEBOUNCE));
        let seen = Instant::now();
        assert!(!p.observe(100, Some(Duration::ZERO), seen, STABLE));
        assert_eq!(
            p.due(DEBOUNCE),
            seen + STABLE,
            "one look when it can be stable"
        );
        tokio::time::advance(STABLE - Duration::from_millis(1)).await;
        assert!(!p.quiet(Instant::now(), DEBOUNCE), "no stat on every tick");
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(p.quiet(Instant::now(), DEBOUNCE));
        assert!(
            p.observe(100, None, Instant::now(), STABLE),
            "unchanged: taken"
        );

        // A write in between: quiet again after the debounce, whatever the last
        // look planned.
        let mut q = Pending::new(start);
        assert!(!q.observe(100, None, Instant::now(), STABLE));
        tokio::time::advance(Duration::from_millis(100)).await;
        q.touched(Instant::now(), false);
        assert_eq!(q.due(DEBOUNCE), Instant::now() + DEBOUNCE);
    }
}
