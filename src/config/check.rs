//! The collector of semantic problems: each section checks its own keys into it, as
//! `key: problem` lines (every problem is reported, not just the first).

#[derive(Default)]
pub struct Checks {
    problems: Vec<String>,
}

impl Checks {
    pub fn check(&mut self, ok: bool, key: &str, why: &str) {
        if !ok {
            self.problems.push(format!("{key}: {why}"));
        }
    }

    /// A duration that must be more than 0 seconds.
    pub fn positive_seconds(&mut self, key: &str, value: f64) {
        self.check(
            value.is_finite() && value > 0.0 && value < 1e9,
            key,
            "must be a number of seconds greater than 0",
        );
    }

    /// A duration that may be 0.
    pub fn seconds(&mut self, key: &str, value: f64) {
        self.check(
            value.is_finite() && (0.0..1e9).contains(&value),
            key,
            "must be a number of seconds, 0 or more",
        );
    }

    /// A count within `min..=max` (which keeps every use of it finite and sane).
    pub fn count(&mut self, key: &str, value: u64, min: u64, max: u64) {
        self.check(
            (min..=max).contains(&value),
            key,
            &format!("must be between {min} and {max}"),
        );
    }

    pub fn into_problems(self) -> Vec<String> {
        self.problems
    }
}
