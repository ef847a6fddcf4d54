//! The registry's rules with explicit times: limits, transitions and their events,
//! the problems the alert engine reads, removal and disabling.

use super::*;
use crate::config::CameraOverride;

const T0: f64 = 1_800_000_000.0;

fn registry(cfg: CamerasConfig) -> (Arc<CameraRegistry>, EventBus, Metrics) {
    // A closed port: the store fails at once (nothing here reads or writes it).
    let store = Arc::new(Store::new("postgres://u:p@127.0.0.1:1/x").expect("store"));
    let events = EventBus::new();
    let metrics = Metrics::new();
    let r = CameraRegistry::new(&cfg, store, events.clone(), &metrics, "here");
    r.lock().loaded = true;
    (r, events, metrics)
}

fn small() -> CamerasConfig {
    CamerasConfig {
        min_silence_seconds: 1.0,
        max_silence_seconds: 3.0,
        max_cameras: 3,
        max_images_per_minute: 30,
        ..CamerasConfig::default()
    }
}

fn changes(
    rx: &mut tokio::sync::broadcast::Receiver<crate::events::Envelope>,
) -> Vec<CameraStatusChanged> {
    let mut out = Vec::new();
    while let Ok(env) = rx.try_recv() {
        if let Event::CameraStatusChanged(c) = env.event {
            out.push(c);
        }
    }
    out
}

#[test]
fn silence_is_announced_once_per_step_with_the_previous_status() {
    let (r, events, _m) = registry(small());
    let mut rx = events.subscribe();
    assert_eq!(r.admit_at("b", "B", T0), Admission::Take);
    for t in [1.0, 2.0, 3.5, 4.0, 6.5, 7.0, 8.0] {
        r.check_at(T0 + t);
    }
    let seen: Vec<(Option<CameraStatus>, CameraStatus)> = changes(&mut rx)
        .iter()
        .map(|c| (c.previous_status, c.status))
        .collect();
    assert_eq!(
        seen,
        vec![
            (None, CameraStatus::Online),
            (Some(CameraStatus::Online), CameraStatus::Stale),
            (Some(CameraStatus::Stale), CameraStatus::Offline),
        ]
    );
    let p = r.problems().expect("loaded");
    assert_eq!(p.len(), 1);
    assert_eq!(
        (p[0].camera.as_str(), p[0].status),
        ("b", CameraStatus::Offline)
    );
    assert!(!p[0].critical);
    r.admit_at("b", "B", T0 + 9.0);
    assert_eq!(
        changes(&mut rx).last().map(|c| c.status),
        Some(CameraStatus::Online)
    );
    assert_eq!(r.problems(), Some(vec![]));
}

#[test]
fn folders_beyond_the_limit_are_refused_counted_once_and_get_no_series() {
    let (r, _e, m) = registry(small());
    for i in 0..5 {
        for _ in 0..3 {
            r.admit_at(&format!("cam{i}"), &format!("cam{i}"), T0);
        }
    }
    assert_eq!(
        r.admit_at("cam4", "cam4", T0 + 1.0),
        Admission::Skip(Skip::TooManyCameras)
    );
    assert_eq!(r.list(false).count, 3);
    let text = m.render();
    assert!(text.contains("watchpost_camera_folders_refused_total{reason=\"too_many_cameras\"} 2"));
    assert!(
        !text.contains("camera=\"cam3\""),
        "no series for a refused folder"
    );
    assert!(text.contains("camera=\"cam2\""));
    // A name that makes no camera id is refused for that.
    let long = "a".repeat(65);
    assert_eq!(r.admit_at(&long, "x", T0), Admission::Skip(Skip::BadName));
    // Removing one makes room, and forgets its series.
    r.remove("cam0").expect("known");
    assert!(!m.render().contains("camera=\"cam0\""));
    assert_eq!(r.admit_at("cam3", "cam3", T0 + 2.0), Admission::Take);
    assert_eq!(r.remove("cam0"), Err(CameraError::Unknown("cam0".into())));
    assert_eq!(
        r.remove("Front Door"),
        Err(CameraError::InvalidId("Front Door".into()))
    );
}

#[test]
fn frozen_and_flooding_are_problems_and_an_offline_critical_camera_is_critical() {
    let mut cfg = small();
    cfg.max_silence_seconds = 600.0;
    cfg.overrides.insert(
        "gate".into(),
        CameraOverride {
            critical: true,
            heartbeat_seconds: 2.0,
            ..CameraOverride::default()
        },
    );
    cfg.heartbeat_grace_seconds = 1.0;
    let (r, _e, _m) = registry(cfg);
    for i in 0..5 {
        r.admit_at("porch", "Porch", T0 + i as f64);
        r.picture("porch", "same", "/cameras/porch/x.jpg");
    }
    for i in 0..40 {
        r.admit_at("drive", "Drive", T0 + i as f64 * 0.1);
    }
    r.admit_at("gate", "Gate", T0);
    r.check_at(T0 + 5.5);
    let mut p = r.problems().expect("loaded");
    p.sort_by(|a, b| a.camera.cmp(&b.camera));
    let got: Vec<(&str, CameraStatus, bool)> = p
        .iter()
        .map(|p| (p.camera.as_str(), p.status, p.critical))
        .collect();
    assert_eq!(
        got,
        vec![
            ("drive", CameraStatus::Flooding, false),
            ("gate", CameraStatus::Offline, true),
            ("porch", CameraStatus::Frozen, false),
        ]
    );
    let drive = r
        .lock()
        .cameras
        .get("drive")
        .map(|e| e.cam.skipped_total)
        .expect("drive");
    assert_eq!(drive, 10);
}

#[test]
fn a_disabled_camera_is_no_problem_and_its_images_are_skipped() {
    let (r, _e, _m) = registry(small());
    r.admit_at("shed", "Shed", T0);
    let s = r.set_disabled("shed", true).expect("known");
    assert_eq!(s.status, CameraStatus::Disabled);
    assert_eq!(
        r.admit_at("shed", "Shed", T0 + 1.0),
        Admission::Skip(Skip::Disabled)
    );
    r.check_at(T0 + 100.0);
    assert_eq!(r.problems(), Some(vec![]));
    assert_eq!(
        r.set_disabled("nope", true).map(|s| s.id),
        Err(CameraError::Unknown("nope".into()))
    );
}

#[test]
fn until_the_stored_cameras_are_read_there_are_no_problems_to_judge() {
    let (r, _e, _m) = registry(small());
    r.lock().loaded = false;
    r.admit_at("b", "B", T0);
    r.check_at(T0 + 100.0);
    assert_eq!(r.problems(), None);
}

#[test]
fn a_look_alike_folder_is_refused_and_listed_and_never_keeps_the_camera_alive() {
    let (r, _e, m) = registry(small());
    assert_eq!(r.admit_at("front_door", "Front Door", T0), Admission::Take);
    for folder in ["front-door", "FRONT_DOOR", "front-door"] {
        assert_eq!(
            r.admit_at("front_door", folder, T0 + 5.0),
            Admission::Skip(Skip::IdTaken),
            "{folder}"
        );
    }
    // The look-alikes' images did not count: the camera went offline.
    r.check_at(T0 + 7.0);
    let list = r.list(false);
    assert_eq!(list.cameras[0].status, CameraStatus::Offline);
    assert_eq!(list.cameras[0].folder, "Front Door");
    let refused: Vec<(&str, Skip)> = list
        .refused_folders
        .iter()
        .map(|f| (f.folder.as_str(), f.reason))
        .collect();
    assert_eq!(refused.len(), 2, "{refused:?}");
    assert!(refused.contains(&("FRONT_DOOR", Skip::IdTaken)));
    assert!(list.refused_folders[0].detail.contains("Front Door"));
    assert!(m
        .render()
        .contains("watchpost_camera_folders_refused_total{reason=\"id_taken\"} 2"));
}

#[test]
fn a_folder_name_with_a_direction_override_is_refused_and_shown_escaped() {
    let (r, _e, _m) = registry(small());
    let spoof = "gate\u{202E}roop";
    assert_eq!(
        r.admit_at("gateroop", spoof, T0),
        Admission::Skip(Skip::BadName)
    );
    let list = r.list(false);
    assert_eq!(list.count, 0);
    assert_eq!(list.refused_folders[0].folder, "gate\\u{202e}roop");
}

#[test]
fn a_silent_cameras_reason_counts_its_silence_when_it_is_read() {
    let (r, _e, _m) = registry(small());
    r.admit_at("b", "B", T0);
    r.check_at(T0 + 10.0);
    let read = |at: f64| {
        let inner = r.lock();
        let e = inner.cameras.get("b").expect("b");
        r.summary("b", e, at, false).reason
    };
    let first = read(T0 + 10.0);
    let a_minute_later = read(T0 + 70.0);
    assert!(first.starts_with("no image for 10 s"), "{first}");
    assert!(
        a_minute_later.starts_with("no image for 70 s"),
        "{a_minute_later}"
    );
    // The alert's words are a time, right whenever they are read.
    let p = r.problems().expect("loaded");
    assert!(p[0].reason.starts_with("no image since "), "{:?}", p[0]);
}
