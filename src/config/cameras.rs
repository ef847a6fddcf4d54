//! `[cameras]`: how watchpost judges the cameras it learns from the camera folder
//! (liveness, frozen pictures, floods) and how many it keeps.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use super::check::Checks;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct CamerasConfig {
    /// The shortest silence a camera may be expected to keep: its learned rhythm is
    /// never tighter than this.
    pub min_silence_seconds: f64,
    /// The longest: also what a camera with too little history is given.
    pub max_silence_seconds: f64,
    /// This many images in a row with the same content: the picture is frozen.
    pub frozen_after: u32,
    /// More images than this in a minute: the camera floods, and the extra images are
    /// skipped until it calms down.
    pub max_images_per_minute: u32,
    /// Most cameras kept; a further folder is refused (`too_many_cameras`).
    pub max_cameras: usize,
    /// Added to a heartbeat camera's deadlines (upload and clock jitter).
    pub heartbeat_grace_seconds: f64,
    /// How often every camera's liveness is judged.
    pub check_interval_seconds: f64,
    /// How often what changed is written to PostgreSQL (and at stop).
    pub persist_interval_seconds: f64,
    /// Per camera id (`front_door`): a fixed silence, a heartbeat, or a critical alert.
    pub overrides: BTreeMap<String, CameraOverride>,
    /// Cameras that share a cause of silence (`poe_switch_1 = ["porch", "garage"]`: one
    /// switch, one power supply): while several of a group are offline together they
    /// are one notification.
    pub groups: BTreeMap<String, Vec<String>>,
}

impl Default for CamerasConfig {
    fn default() -> Self {
        Self {
            min_silence_seconds: 900.0,
            max_silence_seconds: 86_400.0,
            frozen_after: 5,
            max_images_per_minute: 60,
            max_cameras: 64,
            heartbeat_grace_seconds: 60.0,
            check_interval_seconds: 5.0,
            persist_interval_seconds: 60.0,
            overrides: BTreeMap::new(),
            groups: BTreeMap::new(),
        }
    }
}

/// One camera's own settings; 0 means "not set" (TOML has no null).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default, deny_unknown_fields)]
pub struct CameraOverride {
    /// A fixed longest silence instead of the learned one.
    pub max_silence_seconds: f64,
    /// The camera uploads a timed snapshot this often: `stale` after one heartbeat
    /// and the grace, `offline` after two and the grace.
    pub heartbeat_seconds: f64,
    /// Its `offline` alert is critical (default: warning).
    pub critical: bool,
}

impl CamerasConfig {
    pub(super) fn validate(&self, c: &mut Checks) {
        c.count("cameras.groups", self.groups.len() as u64, 0, 64);
        let mut seen = std::collections::BTreeSet::new();
        for (name, cams) in &self.groups {
            let key = format!("cameras.groups.{name}");
            c.check(
                is_id(name),
                &key,
                "a group's name must be 1 to 64 of a-z, 0-9 and _",
            );
            c.check(
                !cams.is_empty() && cams.len() <= self.max_cameras && cams.iter().all(|id| is_id(id)),
                &key,
                "must list 1 to cameras.max_cameras camera ids as watchpost writes them (the folder name in lower case, spaces as _)",
            );
            for id in cams {
                c.check(
                    seen.insert(id.as_str()),
                    &key,
                    &format!(
                        "camera {} is in two groups; a camera is in one group at most",
                        crate::redact::foreign(id, 64)
                    ),
                );
            }
        }
        c.positive_seconds("cameras.min_silence_seconds", self.min_silence_seconds);
        c.positive_seconds("cameras.max_silence_seconds", self.max_silence_seconds);
        c.check(
            self.max_silence_seconds >= self.min_silence_seconds,
            "cameras.max_silence_seconds",
            "must be at least cameras.min_silence_seconds",
        );
        c.count("cameras.frozen_after", self.frozen_after.into(), 2, 10_000);
        c.count(
            "cameras.max_images_per_minute",
            self.max_images_per_minute.into(),
            1,
            100_000,
        );
        c.count("cameras.max_cameras", self.max_cameras as u64, 1, 10_000);
        c.seconds(
            "cameras.heartbeat_grace_seconds",
            self.heartbeat_grace_seconds,
        );
        c.positive_seconds(
            "cameras.check_interval_seconds",
            self.check_interval_seconds,
        );
        c.positive_seconds(
            "cameras.persist_interval_seconds",
            self.persist_interval_seconds,
        );
        for (id, o) in &self.overrides {
            let key = format!("cameras.overrides.{id}");
            c.check(
                is_id(id),
                &key,
                "must be a camera id as watchpost writes it (the folder name in lower case, spaces as _)",
            );
            c.seconds(&format!("{key}.max_silence_seconds"), o.max_silence_seconds);
            c.seconds(&format!("{key}.heartbeat_seconds"), o.heartbeat_seconds);
            c.check(
                o.max_silence_seconds == 0.0 || o.heartbeat_seconds == 0.0,
                &key,
                "set max_silence_seconds or heartbeat_seconds, not both",
            );
        }
    }

    /// The group `camera` is in, if any.
    pub fn group_of(&self, camera: &str) -> Option<&str> {
        self.groups
            .iter()
            .find(|(_, cams)| cams.iter().any(|c| c == camera))
            .map(|(g, _)| g.as_str())
    }

    /// The override for `camera`, if any.
    pub fn override_for(&self, camera: &str) -> Option<&CameraOverride> {
        self.overrides.get(camera)
    }
}

/// A camera id as watchpost writes it (also a group's name).
fn is_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id.chars().all(|ch| ch.is_alphanumeric() || ch == '_')
        && id.chars().all(|ch| !ch.is_uppercase())
}

/// Tables whose keys are names the user chooses (`cameras.overrides.<id>`,
/// `notify.mqtt.matchers.<label>`), with the
/// shape every entry has: the loader checks each entry against it.
pub(super) fn open_table_entry(path: &[String]) -> Option<toml::Value> {
    match path {
        [a, b, _] if a == "cameras" && b == "overrides" => {
            toml::Value::try_from(CameraOverride::default()).ok()
        }
        [a, b, _] if a == "cameras" && b == "groups" => Some(toml::Value::Array(Vec::new())),
        [a, b, c, _] if a == "notify" && b == "mqtt" && c == "matchers" => {
            Some(toml::Value::String(String::new()))
        }
        _ => None,
    }
}
