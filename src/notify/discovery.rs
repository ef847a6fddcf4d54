//! What MQTT carries besides alerts, as retained messages: the service's state
//! (`<prefix>/status`, `<prefix>/mode`, `<prefix>/cameras/<id>`,
//! `<prefix>/dependencies/<name>`), its availability (`<prefix>/availability`:
//! `online`, or `offline` from the last will) and Home Assistant's discovery configs
//! (`<discovery>/<component>/<node>/<object>/config`): a connectivity binary sensor
//! and a *Snooze 1 h* button per camera, sensors for the status and the mode, a
//! problem binary sensor per critical dependency, and the *notifications* switch
//! (`<prefix>/notifications`, `OFF` while everything is snoozed), all on one device
//! and with the availability topic. Pure; the commands are `commands.rs`'s.
//!
//! Camera ids come from folder names on a share other devices write to: in topics
//! they stay as they are (UTF-8, and a valid id holds no `/`, `+` or `#`); in
//! `unique_id`s and object ids every character but ASCII letters, digits and `_`
//! becomes `-xx` (its bytes in hex), so ids stay stable and distinct.

use std::collections::BTreeMap;

use crate::cameras::CameraRegistry;
use crate::events::Source;
use crate::health::Health;

/// The state to publish, read from health and the cameras.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// `healthy`, `degraded` or `unhealthy`; `None` before the first probe round.
    pub status: Option<String>,
    pub mode: String,
    /// Each camera's id, the name people know it by (its folder's name) and status.
    pub cameras: Vec<(String, String, String)>,
    /// Critical dependency name and whether it has a problem now.
    pub dependencies: Vec<(String, bool)>,
    /// Whether anything is told (no snooze of everything holds).
    pub notifications: bool,
}

/// Topic names of one configuration.
#[derive(Debug, Clone)]
pub struct Topics {
    pub prefix: String,
    pub discovery: String,
    /// The device's id (the prefix, made safe for ids).
    pub node: String,
}

impl Topics {
    pub fn new(prefix: &str, discovery: &str) -> Self {
        Self {
            prefix: prefix.to_string(),
            discovery: discovery.to_string(),
            node: safe_id(prefix),
        }
    }

    pub fn availability(&self) -> String {
        format!("{}/availability", self.prefix)
    }

    pub fn alert(&self, fingerprint: &str) -> String {
        format!("{}/alerts/{}", self.prefix, safe_id(fingerprint))
    }

    pub fn test(&self) -> String {
        format!("{}/test", self.prefix)
    }

    /// Where the daily digest goes (not retained).
    pub fn digest(&self) -> String {
        format!("{}/digest", self.prefix)
    }

    /// Where notices go (not retained).
    pub fn notice(&self) -> String {
        format!("{}/notice", self.prefix)
    }

    fn camera(&self, id: &str) -> String {
        format!("{}/cameras/{id}", self.prefix)
    }

    /// Where a camera's *Snooze 1 h* button is pressed.
    pub fn camera_snooze(&self, id: &str) -> String {
        format!("{}/cameras/{id}/snooze", self.prefix)
    }

    /// The *notifications* switch: its state, and where it is set.
    pub fn notifications(&self) -> String {
        format!("{}/notifications", self.prefix)
    }

    pub fn notifications_set(&self) -> String {
        format!("{}/notifications/set", self.prefix)
    }

    fn dependency(&self, name: &str) -> String {
        format!("{}/dependencies/{name}", self.prefix)
    }

    fn config(&self, component: &str, object: &str) -> String {
        format!(
            "{}/{component}/{}/{object}/config",
            self.discovery, self.node
        )
    }

    /// The retained state messages: topic → payload.
    pub fn state(&self, s: &Snapshot) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        if let Some(status) = &s.status {
            out.insert(format!("{}/status", self.prefix), status.clone());
        }
        out.insert(format!("{}/mode", self.prefix), s.mode.clone());
        out.insert(
            self.notifications(),
            if s.notifications { "ON" } else { "OFF" }.to_string(),
        );
        for (id, _, status) in &s.cameras {
            out.insert(self.camera(id), status.clone());
        }
        for (name, problem) in &s.dependencies {
            out.insert(
                self.dependency(name),
                if *problem { "ON" } else { "OFF" }.to_string(),
            );
        }
        out
    }

    /// Home Assistant's discovery configs: topic → payload (none without a discovery
    /// prefix).
    pub fn discovery(&self, s: &Snapshot) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        if self.discovery.is_empty() {
            return out;
        }
        let device = serde_json::json!({
            "identifiers": [format!("watchpost_{}", self.node)],
            // "watchpost", and the prefix only when it tells several apart.
            "name": if self.prefix == "watchpost" {
                "watchpost".to_string()
            } else {
                format!("watchpost ({})", self.prefix)
            },
            "manufacturer": "watchpost",
            "model": "AI camera pipeline monitor",
            "sw_version": env!("CARGO_PKG_VERSION"),
        });
        let common = |name: String, unique: String, state_topic: String| {
            serde_json::json!({
                "name": name,
                "unique_id": unique,
                "object_id": unique,
                "state_topic": state_topic,
                "availability_topic": self.availability(),
                "payload_available": "online",
                "payload_not_available": "offline",
                "device": device,
            })
        };
        for (id, folder, _) in &s.cameras {
            let object = format!("camera_{}", safe_id(id));
            // The folder's name, as the status page shows it ("Front Door").
            let mut c = common(
                folder
                    .chars()
                    .filter(|c| !c.is_control())
                    .take(100)
                    .collect(),
                format!("{}_{object}", self.node),
                self.camera(id),
            );
            c["device_class"] = "connectivity".into();
            // Online unless it is offline: stale, frozen or flooding cameras still
            // send; a disabled one is not judged.
            c["value_template"] = "{{ 'OFF' if value == 'offline' else 'ON' }}".into();
            c["payload_on"] = "ON".into();
            c["payload_off"] = "OFF".into();
            out.insert(self.config("binary_sensor", &object), c.to_string());
            let object = format!("snooze_camera_{}", safe_id(id));
            let mut b = common(
                format!(
                    "Snooze {} 1 h",
                    folder
                        .chars()
                        .filter(|c| !c.is_control())
                        .take(100)
                        .collect::<String>()
                ),
                format!("{}_{object}", self.node),
                String::new(),
            );
            b.as_object_mut().map(|o| o.remove("state_topic"));
            b["command_topic"] = self.camera_snooze(id).into();
            b["payload_press"] = "PRESS".into();
            b["icon"] = "mdi:bell-sleep".into();
            out.insert(self.config("button", &object), b.to_string());
        }
        let mut switch = common(
            "watchpost notifications".into(),
            format!("{}_notifications", self.node),
            self.notifications(),
        );
        switch["command_topic"] = self.notifications_set().into();
        switch["payload_on"] = "ON".into();
        switch["payload_off"] = "OFF".into();
        switch["icon"] = "mdi:bell".into();
        out.insert(self.config("switch", "notifications"), switch.to_string());
        for (object, label) in [("status", "Status"), ("mode", "Degradation mode")] {
            let mut c = common(
                format!("watchpost {label}"),
                format!("{}_{object}", self.node),
                format!("{}/{object}", self.prefix),
            );
            c["icon"] = if object == "status" {
                "mdi:shield-check"
            } else {
                "mdi:speedometer"
            }
            .into();
            out.insert(self.config("sensor", object), c.to_string());
        }
        for (name, _) in &s.dependencies {
            let object = format!("dependency_{}", safe_id(name));
            let mut c = common(
                format!("{name} problem"),
                format!("{}_{object}", self.node),
                self.dependency(name),
            );
            c["device_class"] = "problem".into();
            c["payload_on"] = "ON".into();
            c["payload_off"] = "OFF".into();
            out.insert(self.config("binary_sensor", &object), c.to_string());
        }
        out
    }
}

/// ASCII letters, digits and `_` as they are; every other byte as `-xx`.
pub fn safe_id(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' {
            out.push(b as char);
        } else {
            out.push_str(&format!("-{b:02x}"));
        }
    }
    out
}

impl Snapshot {
    /// The state MQTT publishes: health, mode, cameras, critical dependencies (read
    /// from memory).
    pub fn of(assessment: &Health, cameras: &CameraRegistry) -> Self {
        let health = assessment.latest();
        let mut dependencies = Vec::new();
        if let Some(h) = &health {
            for (name, source) in [("postgres", Source::Postgres), ("redis", Source::Redis)] {
                dependencies.push((name.to_string(), h.problems.contains_key(&source)));
            }
            for s in h.ai_services.iter().filter(|s| s.critical) {
                let down = h.problems.contains_key(&Source::Ai(s.name.clone()));
                dependencies.push((s.name.clone(), down));
            }
        }
        Snapshot {
            status: health.as_ref().map(|h| h.status.as_str().to_string()),
            mode: assessment.mode().as_str().to_string(),
            cameras: cameras
                .list(false)
                .cameras
                .into_iter()
                .map(|c| (c.id, c.folder, c.status.as_str().to_string()))
                .collect(),
            dependencies,
            // The MQTT session reads the windows (`Mqtt::refresh`).
            notifications: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot() -> Snapshot {
        Snapshot {
            status: Some("healthy".into()),
            mode: "normal".into(),
            cameras: vec![
                ("front".into(), "Front".into(), "online".into()),
                ("garage".into(), "Garage Door".into(), "offline".into()),
            ],
            dependencies: vec![("postgres".into(), false), ("redis".into(), true)],
            notifications: true,
        }
    }

    #[test]
    fn every_camera_and_dependency_has_a_discovery_config_on_one_device() {
        let t = Topics::new("watchpost", "homeassistant");
        let d = t.discovery(&snapshot());
        let front: serde_json::Value =
            serde_json::from_str(&d["homeassistant/binary_sensor/watchpost/camera_front/config"])
                .unwrap();
        assert_eq!(front["unique_id"], "watchpost_camera_front");
        assert_eq!(front["state_topic"], "watchpost/cameras/front");
        assert_eq!(front["availability_topic"], "watchpost/availability");
        assert_eq!(front["device_class"], "connectivity");
        assert_eq!(front["device"]["identifiers"][0], "watchpost_watchpost");
        assert_eq!(front["device"]["name"], "watchpost");
        let garage: serde_json::Value =
            serde_json::from_str(&d["homeassistant/binary_sensor/watchpost/camera_garage/config"])
                .unwrap();
        assert_eq!(garage["name"], "Garage Door", "the name people know it by");
        assert!(d.contains_key("homeassistant/binary_sensor/watchpost/camera_garage/config"));
        assert!(d.contains_key("homeassistant/sensor/watchpost/status/config"));
        assert!(d.contains_key("homeassistant/sensor/watchpost/mode/config"));
        let redis: serde_json::Value = serde_json::from_str(
            &d["homeassistant/binary_sensor/watchpost/dependency_redis/config"],
        )
        .unwrap();
        assert_eq!(redis["device_class"], "problem");
        // Per camera a button, and the switch: commands, on the same device.
        let button: serde_json::Value =
            serde_json::from_str(&d["homeassistant/button/watchpost/snooze_camera_garage/config"])
                .unwrap();
        assert_eq!(button["command_topic"], "watchpost/cameras/garage/snooze");
        assert_eq!(button["unique_id"], "watchpost_snooze_camera_garage");
        assert_eq!(button["name"], "Snooze Garage Door 1 h");
        assert_eq!(button["availability_topic"], "watchpost/availability");
        assert_eq!(button["device"], front["device"]);
        assert!(button.get("state_topic").is_none(), "a button has no state");
        let switch: serde_json::Value =
            serde_json::from_str(&d["homeassistant/switch/watchpost/notifications/config"])
                .unwrap();
        assert_eq!(switch["command_topic"], "watchpost/notifications/set");
        assert_eq!(switch["state_topic"], "watchpost/notifications");
        assert_eq!(
            (&switch["payload_on"], &switch["payload_off"]),
            (&"ON".into(), &"OFF".into())
        );
        assert_eq!(switch["device"], front["device"]);
        assert_eq!(d.len(), 9);
        assert!(Topics::new("w", "").discovery(&snapshot()).is_empty());
    }

    #[test]
    fn state_topics_carry_plain_values() {
        let s = Topics::new("home/wp", "homeassistant").state(&snapshot());
        assert_eq!(s["home/wp/status"], "healthy");
        assert_eq!(s["home/wp/mode"], "normal");
        assert_eq!(s["home/wp/cameras/garage"], "offline");
        assert_eq!(s["home/wp/dependencies/redis"], "ON");
        assert_eq!(s["home/wp/dependencies/postgres"], "OFF");
        assert_eq!(s["home/wp/notifications"], "ON");
    }

    #[test]
    fn ids_from_folder_names_are_made_safe_and_stay_distinct() {
        assert_eq!(safe_id("front_door"), "front_door");
        assert_eq!(safe_id("café"), "caf-c3-a9");
        assert_ne!(safe_id("a-b"), safe_id("a_b"));
        assert_eq!(Topics::new("home/wp", "ha").node, "home-2fwp");
    }
}
