//! Unix time derived from tokio's clock, so batch windows are tested on the paused
//! clock while the stored timestamps stay shareable between instances.

pub struct WallClock {
    base_unix: f64,
    base: tokio::time::Instant,
}

impl WallClock {
    pub fn new() -> Self {
        Self {
            base_unix: crate::time::now_unix(),
            base: tokio::time::Instant::now(),
        }
    }

    /// Now, as unix seconds.
    pub fn now(&self) -> f64 {
        self.base_unix + self.base.elapsed().as_secs_f64()
    }
}

impl Default for WallClock {
    fn default() -> Self {
        Self::new()
    }
}
