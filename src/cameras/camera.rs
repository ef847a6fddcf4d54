//! One camera: what arrived from it (counts, last times, the picture's run), what it
//! taught (its rhythm), and the judgement of its state at a moment. Pure: every time
//! comes in as unix seconds, so the rules are tested without a clock.

use serde::{Deserialize, Serialize};

use super::rhythm::Rhythm;
use super::rings::TimeRing;
use crate::config::{CameraOverride, CamerasConfig};
use crate::events::CameraStatus;
use crate::time::span_text;

/// The settings every camera is judged by.
#[derive(Debug, Clone)]
pub struct Judging {
    pub min_silence: f64,
    pub max_silence: f64,
    pub frozen_after: u32,
    pub max_per_minute: u32,
    pub grace: f64,
}

impl Judging {
    pub fn from_config(c: &CamerasConfig) -> Self {
        Self {
            min_silence: c.min_silence_seconds,
            max_silence: c.max_silence_seconds,
            frozen_after: c.frozen_after,
            max_per_minute: c.max_images_per_minute,
            grace: c.heartbeat_grace_seconds,
        }
    }
}

/// When a silence becomes `stale`, then `offline`, and what it was judged against.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Deadlines {
    pub expected: f64,
    pub stale_after: f64,
    pub offline_after: f64,
    /// How the expectation was made, for the reason's words.
    pub basis: Basis,
}

crate::names::closed_set! {
    /// How a camera's expected silence was made.
    pub enum Basis {
        /// Learned from the camera's own gaps.
        Learned = "learned",
        /// Too little history yet: `cameras.max_silence_seconds`.
        Unlearned = "too_little_history",
        /// `cameras.overrides.<id>.max_silence_seconds`.
        Fixed = "configured",
        /// `cameras.overrides.<id>.heartbeat_seconds`.
        Heartbeat = "heartbeat",
    }
}

/// What to do with an image that arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    Take,
    /// Beyond `max_images_per_minute`: skipped.
    Flooding,
    /// The camera is disabled: skipped.
    Disabled,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Camera {
    pub folder: String,
    pub status: CameraStatus,
    pub status_since: f64,
    pub reason: String,
    pub last_image_at: Option<f64>,
    /// The path of the newest image taken (for its thumbnail); absent in a state
    /// stored by an older version.
    #[serde(default)]
    pub last_image_path: Option<String>,
    pub last_detection_at: Option<f64>,
    pub last_event_at: Option<f64>,
    pub images_total: u64,
    pub skipped_total: u64,
    pub disabled: bool,
    hours: TimeRing,
    minutes: TimeRing,
    seconds: TimeRing,
    rhythm: Rhythm,
    same_run: u32,
    last_hash: Option<String>,
    frozen: bool,
    flooding: bool,
}

impl Camera {
    /// A camera seen for the first time at `now` (its first image is yet to arrive).
    pub fn new(folder: &str, now: f64) -> Self {
        Self {
            folder: folder.to_string(),
            status: CameraStatus::Online,
            status_since: now,
            reason: "first image from this folder".into(),
            last_image_at: None,
            last_image_path: None,
            last_detection_at: None,
            last_event_at: None,
            images_total: 0,
            skipped_total: 0,
            disabled: false,
            hours: TimeRing::new(3600.0, 24),
            minutes: TimeRing::new(60.0, 60),
            seconds: TimeRing::new(1.0, 60),
            rhythm: Rhythm::default(),
            same_run: 0,
            last_hash: None,
            frozen: false,
            flooding: false,
        }
    }

    /// A stored camera whose parts have the shapes this version uses.
    pub fn is_well_formed(&self) -> bool {
        self.rhythm.is_well_formed()
            && self.hours.series(0.0).len() == 24
            && self.minutes.series(0.0).len() == 60
            && self.seconds.series(0.0).len() == 60
    }

    pub fn deadlines(&self, o: Option<&CameraOverride>, j: &Judging) -> Deadlines {
        let fixed = |expected: f64, basis| Deadlines {
            expected,
            stale_after: expected,
            offline_after: 2.0 * expected,
            basis,
        };
        match o {
            Some(o) if o.heartbeat_seconds > 0.0 => Deadlines {
                expected: o.heartbeat_seconds,
                stale_after: o.heartbeat_seconds + j.grace,
                offline_after: 2.0 * o.heartbeat_seconds + j.grace,
                basis: Basis::Heartbeat,
            },
            Some(o) if o.max_silence_seconds > 0.0 => fixed(o.max_silence_seconds, Basis::Fixed),
            _ => {
                let start = self.last_image_at.unwrap_or(0.0);
                match self.rhythm.expected(start, j.min_silence, j.max_silence) {
                    (e, true) => fixed(e, Basis::Learned),
                    (e, false) => fixed(e, Basis::Unlearned),
                }
            }
        }
    }

    /// An image arrived at `now`. Its gap is learned unless the camera had been
    /// offline by then (an outage is not a rhythm) or is disabled.
    pub fn arrive(&mut self, now: f64, o: Option<&CameraOverride>, j: &Judging) -> Arrival {
        if let Some(prev) = self.last_image_at {
            let gap = now - prev;
            if !self.disabled && gap > 0.0 && gap <= self.deadlines(o, j).offline_after {
                self.rhythm.learn(prev, gap, now);
            }
        }
        self.last_image_at = Some(self.last_image_at.map_or(now, |t| t.max(now)));
        self.images_total += 1;
        self.hours.add(now, 1);
        self.minutes.add(now, 1);
        self.seconds.add(now, 1);
        if self.disabled {
            self.skipped_total += 1;
            return Arrival::Disabled;
        }
        if self.seconds.total(now) > u64::from(j.max_per_minute) {
            self.flooding = true;
            self.skipped_total += 1;
            return Arrival::Flooding;
        }
        Arrival::Take
    }

    /// The content of an image taken from it: the same picture again and again is a
    /// frozen camera.
    pub fn picture(&mut self, hash: &str, j: &Judging) {
        if self.last_hash.as_deref() == Some(hash) {
            self.same_run = self.same_run.saturating_add(1);
        } else {
            self.same_run = 1;
            self.last_hash = Some(hash.to_string());
        }
        self.frozen = self.same_run >= j.frozen_after;
    }

    pub fn set_disabled(&mut self, disabled: bool) {
        self.disabled = disabled;
        if !disabled {
            // Judged afresh: a flood or a frozen run from before is not held against it.
            self.flooding = false;
            self.frozen = false;
            self.same_run = 0;
        }
    }

    /// Its state at `now`, with the reason in words. A flood is over once the last
    /// minute holds at most `max_images_per_minute` images.
    pub fn judge(
        &mut self,
        now: f64,
        o: Option<&CameraOverride>,
        j: &Judging,
    ) -> (CameraStatus, String) {
        if self.flooding && self.seconds.total(now) <= u64::from(j.max_per_minute) {
            self.flooding = false;
        }
        if self.disabled {
            return (CameraStatus::Disabled, "disabled by an operator".into());
        }
        let d = self.deadlines(o, j);
        let silence = self.last_image_at.map_or(0.0, |t| (now - t).max(0.0));
        let silent = || self.silence_reason(now, o, j);
        if silence > d.offline_after {
            return (CameraStatus::Offline, silent());
        }
        if self.flooding {
            return (
                CameraStatus::Flooding,
                format!(
                    "{} images in the last minute; at most {} are taken, the rest are skipped",
                    self.seconds.total(now),
                    j.max_per_minute
                ),
            );
        }
        if self.frozen {
            return (
                CameraStatus::Frozen,
                format!("{} images in a row with the same picture", self.same_run),
            );
        }
        if silence > d.stale_after {
            return (CameraStatus::Stale, silent());
        }
        let reason = if self.images_total <= 1 {
            "first image from this folder".to_string()
        } else {
            "images arrive as expected".to_string()
        };
        (CameraStatus::Online, reason)
    }

    /// Why a silent camera is stale or offline, at `now`: how long it has been silent
    /// (so the words are made when they are read, not frozen at the change).
    pub fn silence_reason(&self, now: f64, o: Option<&CameraOverride>, j: &Judging) -> String {
        let d = self.deadlines(o, j);
        let silence = self.last_image_at.map_or(0.0, |t| (now - t).max(0.0));
        let usual = match d.basis {
            Basis::Heartbeat => format!("it sends one every {}", span_text(d.expected)),
            Basis::Fixed => format!("it may be silent {} (configured)", span_text(d.expected)),
            Basis::Learned => format!("it is usually silent at most {}", span_text(d.expected)),
            Basis::Unlearned => format!(
                "too little history yet, so up to {} is allowed",
                span_text(d.expected)
            ),
        };
        format!("no image for {}; {usual}", span_text(silence))
    }

    /// Its reason as shown at `now`: a silence's length is counted up to `now`.
    pub fn reason_at(&self, now: f64, o: Option<&CameraOverride>, j: &Judging) -> String {
        match self.status {
            CameraStatus::Stale | CameraStatus::Offline => self.silence_reason(now, o, j),
            CameraStatus::Online if self.images_total > 1 => "images arrive as expected".into(),
            _ => self.reason.clone(),
        }
    }

    pub fn images_last_hour(&self, now: f64) -> u64 {
        self.minutes.total(now)
    }

    pub fn images_last_day(&self, now: f64) -> u64 {
        self.hours.total(now)
    }

    /// Images per hour over the last 24 hours, oldest first, and when the first
    /// hour starts.
    pub fn hourly(&self, now: f64) -> (Vec<u32>, f64) {
        (self.hours.series(now), self.hours.span_start(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn judging() -> Judging {
        Judging {
            min_silence: 60.0,
            max_silence: 600.0,
            frozen_after: 5,
            max_per_minute: 30,
            grace: 10.0,
        }
    }

    const T0: f64 = 1_800_000_000.0;

    #[test]
    fn silence_goes_stale_then_offline_and_an_image_brings_it_back() {
        let j = judging();
        let mut c = Camera::new("Back Yard", T0);
        assert_eq!(c.arrive(T0, None, &j), Arrival::Take);
        assert_eq!(c.judge(T0 + 1.0, None, &j).0, CameraStatus::Online);
        // No history: the maximum (600 s) is expected.
        assert_eq!(c.judge(T0 + 600.0, None, &j).0, CameraStatus::Online);
        let (s, why) = c.judge(T0 + 601.0, None, &j);
        assert_eq!(s, CameraStatus::Stale);
        assert!(why.contains("no image for 10 min"), "{why}");
        assert!(why.contains("too little history"), "{why}");
        assert_eq!(c.judge(T0 + 1201.0, None, &j).0, CameraStatus::Offline);
        c.arrive(T0 + 5000.0, None, &j);
        assert_eq!(c.judge(T0 + 5001.0, None, &j).0, CameraStatus::Online);
    }

    #[test]
    fn an_outage_is_not_learned_as_rhythm() {
        let j = judging();
        let mut c = Camera::new("Back Yard", T0);
        // Twelve regular gaps of 200 s: a rhythm is learned.
        let mut t = T0;
        for _ in 0..=12 {
            c.arrive(t, None, &j);
            t += 200.0;
        }
        t -= 200.0;
        let learned = c.deadlines(None, &j);
        assert_eq!(learned.basis, Basis::Learned);
        assert!(learned.expected < 300.0, "{}", learned.expected);
        // Silent for an hour (offline long before), then back.
        assert_eq!(c.judge(t + 3600.0, None, &j).0, CameraStatus::Offline);
        c.arrive(t + 3600.0, None, &j);
        let after = c.deadlines(None, &j);
        assert_eq!(
            after.expected, learned.expected,
            "the hour of silence was an outage, not the camera's rhythm"
        );
    }

    #[test]
    fn a_heartbeat_camera_is_offline_after_two_heartbeats_and_the_grace() {
        let j = judging();
        let o = CameraOverride {
            heartbeat_seconds: 2.0,
            ..CameraOverride::default()
        };
        let mut c = Camera::new("gate", T0);
        c.arrive(T0, Some(&o), &j);
        assert_eq!(c.judge(T0 + 12.0, Some(&o), &j).0, CameraStatus::Online);
        assert_eq!(c.judge(T0 + 12.5, Some(&o), &j).0, CameraStatus::Stale);
        assert_eq!(c.judge(T0 + 14.0, Some(&o), &j).0, CameraStatus::Stale);
        let (s, why) = c.judge(T0 + 14.5, Some(&o), &j);
        assert_eq!(s, CameraStatus::Offline);
        assert!(why.contains("it sends one every 2 s"), "{why}");
    }

    #[test]
    fn the_same_picture_again_and_again_is_frozen_until_a_new_one() {
        let j = judging();
        let mut c = Camera::new("porch", T0);
        for i in 0..4 {
            c.arrive(T0 + i as f64, None, &j);
            c.picture("aaaa", &j);
        }
        assert_eq!(c.judge(T0 + 4.0, None, &j).0, CameraStatus::Online);
        c.arrive(T0 + 5.0, None, &j);
        c.picture("aaaa", &j);
        let (s, why) = c.judge(T0 + 5.0, None, &j);
        assert_eq!(s, CameraStatus::Frozen);
        assert_eq!(why, "5 images in a row with the same picture");
        c.arrive(T0 + 6.0, None, &j);
        c.picture("bbbb", &j);
        assert_eq!(c.judge(T0 + 6.0, None, &j).0, CameraStatus::Online);
    }

    #[test]
    fn a_flood_skips_the_extra_images_until_the_minute_calms_down() {
        let j = judging();
        let mut c = Camera::new("drive", T0);
        let arrivals: Vec<Arrival> = (0..100)
            .map(|i| c.arrive(T0 + i as f64 * 0.5, None, &j))
            .collect();
        assert_eq!(arrivals.iter().filter(|a| **a == Arrival::Take).count(), 30);
        assert_eq!(c.skipped_total, 70);
        assert_eq!(c.judge(T0 + 50.0, None, &j).0, CameraStatus::Flooding);
        // A minute after the last image the flood is over.
        assert_eq!(c.judge(T0 + 110.0, None, &j).0, CameraStatus::Online);
        assert_eq!(c.arrive(T0 + 111.0, None, &j), Arrival::Take);
    }

    #[test]
    fn a_disabled_camera_skips_everything_and_is_judged_afresh_when_enabled() {
        let j = judging();
        let mut c = Camera::new("shed", T0);
        c.arrive(T0, None, &j);
        c.set_disabled(true);
        assert_eq!(c.arrive(T0 + 1.0, None, &j), Arrival::Disabled);
        assert_eq!(c.judge(T0 + 10_000.0, None, &j).0, CameraStatus::Disabled);
        c.set_disabled(false);
        assert_eq!(c.judge(T0 + 2.0, None, &j).0, CameraStatus::Online);
    }

    #[test]
    fn a_camera_survives_being_stored() {
        let j = judging();
        let mut c = Camera::new("Front Door", T0);
        for i in 0..50 {
            c.arrive(T0 + i as f64 * 30.0, None, &j);
        }
        let text = serde_json::to_value(&c).expect("json");
        let back: Camera = serde_json::from_value(text).expect("back");
        assert!(back.is_well_formed());
        assert_eq!(back, c);
    }
}
