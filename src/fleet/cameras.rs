//! The fleet's cameras in one list (pure: no I/O, unit-tested). Each instance shares
//! the cameras it owns (those its camera root holds and it writes) every few
//! seconds; any instance lists its own with everyone else's, each with its `host`.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::cameras::{CameraList, CameraSummary};

/// The most bytes of one instance's shared list read back (a larger one is left out).
pub const MAX_SHARED_BYTES: usize = 1024 * 1024;

/// What one instance shares of its cameras.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SharedCameras {
    pub instance: String,
    /// Its camera root's identity (instances with the same one see the same folders).
    pub scope: String,
    /// The cameras it owns, each with its images per hour.
    pub cameras: Vec<CameraSummary>,
}

/// The most bytes of every shared list together.
pub const MAX_SHARED_TOTAL: usize = 8 * 1024 * 1024;

/// Read the shared lists back: unreadable or oversized ones are left out, at most
/// `max` kept and at most [`MAX_SHARED_TOTAL`] bytes read.
pub fn parse_shared<'a>(raw: impl IntoIterator<Item = &'a str>, max: usize) -> Vec<SharedCameras> {
    let mut total = 0;
    raw.into_iter()
        .filter(|r| r.len() <= MAX_SHARED_BYTES)
        .take_while(|r| {
            total += r.len();
            total <= MAX_SHARED_TOTAL
        })
        .filter_map(|r| serde_json::from_str(r).ok())
        .take(max)
        .collect()
}

/// This instance's list with every other instance's cameras: a camera it holds
/// itself but another instance of its camera root owns is listed as that one's; a
/// lost instance's cameras are listed as last shared, their reason saying so. Two
/// hosts with a camera of the same id list it as `host/id` in `fleet_id`. With
/// `hourly` false the images per hour are left out.
pub fn compose(
    me: &str,
    my_scope: &str,
    mut local: CameraList,
    others: &[SharedCameras],
    lost: &HashSet<String>,
    hourly: bool,
) -> CameraList {
    let others: Vec<&SharedCameras> = others.iter().filter(|s| s.instance != me).collect();
    // A camera of this root that another instance owns, as that one shares it.
    let theirs: HashSet<(&str, &str)> = others
        .iter()
        .filter(|s| s.scope == my_scope)
        .flat_map(|s| {
            s.cameras
                .iter()
                .map(|c| (s.instance.as_str(), c.id.as_str()))
        })
        .collect();
    let mine: HashSet<String> = local
        .cameras
        .iter()
        .filter(|c| c.host == me)
        .map(|c| c.id.clone())
        .collect();
    local
        .cameras
        .retain(|c| c.host == me || !theirs.contains(&(c.host.as_str(), c.id.as_str())));
    for s in others {
        for c in &s.cameras {
            if s.scope == my_scope && mine.contains(&c.id) {
                continue; // this instance writes it now: its own view is newer
            }
            let mut c = c.clone();
            c.host.clone_from(&s.instance);
            if lost.contains(&s.instance) {
                c.reason = format!(
                    "its host {} is lost (no heartbeat); as last heard: {}",
                    s.instance, c.reason
                );
            }
            if !hourly {
                c.hourly_images = None;
            }
            local.cameras.push(c);
        }
    }
    let mut hosts: BTreeMap<&str, HashSet<&str>> = BTreeMap::new();
    for c in &local.cameras {
        hosts.entry(&c.id).or_default().insert(&c.host);
    }
    let shared: HashSet<String> = hosts
        .into_iter()
        .filter(|(_, h)| h.len() > 1)
        .map(|(id, _)| id.to_string())
        .collect();
    for c in &mut local.cameras {
        c.fleet_id = if shared.contains(&c.id) {
            format!("{}/{}", c.host, c.id)
        } else {
            c.id.clone()
        };
    }
    local
        .cameras
        .sort_by(|a, b| (&a.id, &a.host).cmp(&(&b.id, &b.host)));
    local.count = local.cameras.len();
    local
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::CameraStatus;
    use chrono::DateTime;

    fn cam(id: &str, host: &str) -> CameraSummary {
        let t = DateTime::from_timestamp(1_800_000_000, 0).expect("time");
        CameraSummary {
            id: id.into(),
            host: host.into(),
            fleet_id: id.into(),
            folder: id.into(),
            status: CameraStatus::Online,
            status_since: t,
            reason: "images arrive".into(),
            last_image_at: Some(t),
            last_image_path: None,
            images_last_hour: 1,
            expected_silence_seconds: 60.0,
            hourly_images: Some(vec![1; 24]),
        }
    }

    fn list(cameras: Vec<CameraSummary>) -> CameraList {
        CameraList {
            count: cameras.len(),
            cameras,
            max_cameras: 64,
            refused_folders: Vec::new(),
            loaded: true,
            timestamp: DateTime::from_timestamp(1_800_000_000, 0).expect("time"),
        }
    }

    fn shared(instance: &str, scope: &str, ids: &[&str]) -> SharedCameras {
        SharedCameras {
            instance: instance.into(),
            scope: scope.into(),
            cameras: ids.iter().map(|id| cam(id, instance)).collect(),
        }
    }

    #[test]
    fn every_host_s_cameras_are_listed_with_their_host_and_a_clash_is_host_slash_id() {
        let local = list(vec![cam("porch", "a"), cam("yard", "a")]);
        let others = [
            shared("a", "ra", &["porch", "yard"]),
            shared("b", "rb", &["porch", "gate"]),
        ];
        let out = compose("a", "ra", local, &others, &HashSet::new(), false);
        let got: Vec<(&str, &str, &str)> = out
            .cameras
            .iter()
            .map(|c| (c.id.as_str(), c.host.as_str(), c.fleet_id.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("gate", "b", "gate"),
                ("porch", "a", "a/porch"),
                ("porch", "b", "b/porch"),
                ("yard", "a", "yard"),
            ]
        );
        assert_eq!(out.count, 4);
        assert!(out.cameras[0].hourly_images.is_none(), "hourly left out");
    }

    #[test]
    fn a_shared_root_lists_each_camera_once_under_its_owner() {
        // This instance holds both (it sees the same folders) but owns only "porch".
        let local = list(vec![cam("porch", "a"), cam("gate", "b")]);
        let others = [
            shared("b", "root", &["gate"]),
            shared("a", "root", &["porch"]),
        ];
        let out = compose("a", "root", local.clone(), &others, &HashSet::new(), true);
        let got: Vec<(&str, &str)> = out
            .cameras
            .iter()
            .map(|c| (c.fleet_id.as_str(), c.host.as_str()))
            .collect();
        assert_eq!(got, [("gate", "b"), ("porch", "a")]);
        // B says it owns "porch" too (a stale list): A's own view wins.
        let others = [shared("b", "root", &["gate", "porch"])];
        let out = compose("a", "root", local, &others, &HashSet::new(), true);
        assert_eq!(out.count, 2);
    }

    #[test]
    fn a_lost_host_s_cameras_say_so() {
        let out = compose(
            "a",
            "ra",
            list(vec![]),
            &[shared("b", "rb", &["gate"])],
            &HashSet::from(["b".to_string()]),
            true,
        );
        assert!(out.cameras[0].reason.starts_with("its host b is lost"));
    }

    #[test]
    fn oversized_or_bad_lists_are_left_out() {
        let good = serde_json::to_string(&shared("b", "rb", &["gate"])).expect("json");
        let huge = format!("{{\"pad\":\"{}\"}}", "x".repeat(MAX_SHARED_BYTES));
        let parsed = parse_shared([good.as_str(), "{", huge.as_str()], 10);
        assert_eq!(parsed.len(), 1);
        assert_eq!(parse_shared([good.as_str(), good.as_str()], 1).len(), 1);
    }
}
