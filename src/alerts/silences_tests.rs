//! The silences' rules: matching, the checks of a new one, holding one once.
use super::*;
use crate::alerts::alert::Candidate;

fn new(matchers: &[(&str, &str)], d: Option<f64>) -> NewSilence {
    let mut m = SilenceMatchers::default();
    for (k, v) in matchers {
        let v = Some(v.to_string());
        match *k {
            "alertname" => m.alertname = v,
            "source" => m.source = v,
            "camera" => m.camera = v,
            "host" => m.host = v,
            _ => m.severity = v,
        }
    }
    NewSilence {
        matchers: m,
        starts_at: None,
        ends_at: None,
        duration_seconds: d,
        comment: String::new(),
    }
}

#[test]
fn a_silence_read_back_while_it_is_created_is_held_once() {
    let now = crate::time::now();
    let s = check(new(&[("source", "ai:clip")], Some(60.0)), now).unwrap();
    let mut inner = Inner {
        held: Vec::new(),
        loaded: false,
        reserving: Default::default(),
        pruned_at: None,
    };
    // The read-back finds the stored row first, then `create` holds its own copy.
    inner.hold(Held::from_row(s.row()));
    inner.hold(s);
    assert_eq!(inner.held.len(), 1);
}

#[test]
fn a_silence_matches_every_given_label_exactly_and_only_while_active() {
    let now = crate::time::now();
    let florence = crate::events::Source::Ai("florence".into());
    let c = Candidate::from_problem(&florence, false, "florence unhealthy");
    let alert = Alert::firing(&c, "id", now, now);
    let s = check(
        new(
            &[
                ("alertname", "WatchpostDependencyDown"),
                ("source", "ai:florence"),
            ],
            Some(3600.0),
        ),
        now,
    )
    .expect("valid");
    assert!(s.silences(&alert, now));
    assert!(
        !s.silences(&alert, now + chrono::Duration::hours(2)),
        "ended"
    );
    let other = check(new(&[("source", "ai:yolo26")], Some(60.0)), now).expect("valid");
    assert!(!other.silences(&alert, now));
    let camera = check(new(&[("camera", "porch")], Some(60.0)), now).expect("valid");
    assert!(
        !camera.silences(&alert, now),
        "a label the alert lacks never matches"
    );
    // One box of a fleet: its own alerts carry its id as `host`.
    let mut c = c;
    c.labels.insert("host".into(), "box-2".into());
    let on_box_2 = Alert::firing(&c, "id2", now, now);
    let box_2 = check(new(&[("host", "box-2")], Some(60.0)), now).expect("valid");
    assert!(box_2.silences(&on_box_2, now));
    assert!(
        !box_2.silences(&alert, now),
        "another box's (no host label)"
    );
}

#[test]
fn bad_silences_are_refused_with_a_reason() {
    let now = crate::time::now();
    for (s, why) in [
        (new(&[], Some(60.0)), "at least one"),
        (new(&[("camera", "x\u{7}")], Some(60.0)), "control"),
        (new(&[("source", "")], Some(60.0)), "1 to 256"),
        (
            new(&[("severity", "page")], Some(60.0)),
            "critical or warning",
        ),
        (new(&[("source", "a")], Some(-1.0)), "more than 0"),
        (new(&[("source", "a")], Some(f64::NAN)), "more than 0"),
        (new(&[("source", "a")], Some(1e12)), "at most"),
    ] {
        let err = check(s, now).expect_err(why).to_string();
        assert!(err.contains(why), "{err} should say {why}");
    }
    let mut both = new(&[("source", "a")], Some(60.0));
    both.ends_at = Some(now + chrono::Duration::hours(1));
    assert!(check(both, now)
        .expect_err("both")
        .to_string()
        .contains("at most one"));
    let default = check(new(&[("source", "a")], None), now).expect("an hour by default");
    assert_eq!((default.ends_at - default.starts_at).num_seconds(), 3600);
    for far in [
        "+262142-12-31T23:30:00Z",
        "-262143-01-01T00:00:00Z",
        "2030-01-01T00:00:00Z",
    ] {
        let mut s = new(&[("source", "a")], Some(60.0));
        s.starts_at = Some(far.parse().expect("a time"));
        let err = check(s, now).expect_err(far).to_string();
        assert!(err.contains("within 366 days"), "{far}: {err}");
    }
    let mut far_end = new(&[("source", "a")], None);
    far_end.ends_at = Some("+262142-12-31T23:30:00Z".parse().expect("a time"));
    assert!(check(far_end, now)
        .expect_err("far end")
        .to_string()
        .contains("at most"));
    let mut past = new(&[("source", "a")], None);
    past.ends_at = Some(now - chrono::Duration::seconds(1));
    past.starts_at = Some(now - chrono::Duration::hours(1));
    assert!(check(past, now).is_err(), "an end in the past");
}
