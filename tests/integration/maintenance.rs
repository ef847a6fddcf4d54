//! Quiet on purpose: maintenance windows and snoozes hold what is told, never what is
//! decided, and every instance applies them within two seconds.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::notify::{HttpReceiver, Mosquitto, Subscriber};
use crate::support::{
    client, eventually, eventually_for, get, json as get_json, metric, metrics, watching,
    write_image, Stack, Watchpost,
};

fn env(receiver: &HttpReceiver) -> Vec<(String, String)> {
    [
        ("WATCHPOST_ALERTS__FOR_WARNING_SECONDS", "0".to_string()),
        ("WATCHPOST_ALERTS__EVALUATE_INTERVAL_SECONDS", "0.2".into()),
        ("WATCHPOST_CAMERAS__CHECK_INTERVAL_SECONDS", "0.2".into()),
        ("WATCHPOST_CAMERAS__HEARTBEAT_GRACE_SECONDS", "0.5".into()),
        ("WATCHPOST_CAMERAS__OVERRIDES__PORCH__HEARTBEAT_SECONDS", "1".into()),
        (
            "WATCHPOST_NOTIFY__WEBHOOKS",
            format!(
                "[{{name = \"hook\", format = \"json\", url = \"{}\"}}]",
                receiver.url("/hook")
            ),
        ),
        ("WATCHPOST_MAINTENANCE__WINDOWS", "[{name = \"nightly\", scope = \"dependency:postgres\", days = [\"sun\"], start = \"02:30\", duration_seconds = 3600.0, timezone = \"Europe/Berlin\"}]".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// The stack of these tests, telling the hook at `rx`.
fn stack(rx: &HttpReceiver) -> Stack {
    let env = env(rx);
    let refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Stack::new(&refs)
}

async fn make(wp: &Watchpost, body: Value) -> (u16, Value) {
    let r = client()
        .post(format!("{}/api/system/maintenance", wp.url()))
        .json(&body)
        .send()
        .await
        .expect("POST");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn porch_alert(wp: &Watchpost) -> Option<Value> {
    let page = get_json(format!(
        "{}/api/system/alerts?state=firing&source=camera:porch",
        wp.url()
    ))
    .await;
    page["items"].as_array()?.first().cloned()
}

fn told_porch(rx: &HttpReceiver) -> Vec<Value> {
    rx.on("/hook")
        .into_iter()
        .map(|r| r.json())
        .filter(|j| j["source"] == "camera:porch" && j["notification"] == "firing")
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_holds_what_is_told_and_what_still_fires_is_told_when_it_ends() {
    let rx = HttpReceiver::start().await;
    let stack = stack(&rx);
    let root = tempfile::tempdir().expect("root");
    let a = stack.instance("a", root.path());
    let b = stack.instance("b", root.path());
    watching(&a).await;
    watching(&b).await;

    // A window on the porch, made on A: B applies it within 2 s.
    let (code, w) = make(
        &a,
        json!({"scope": {"kind": "camera", "name": "porch"}, "duration_seconds": 600, "comment": "new camera mount"}),
    )
    .await;
    assert_eq!(code, 201, "{w}");
    assert_eq!(w["active"], true, "{w}");
    let id = w["id"].as_str().expect("an id").to_string();
    let listed_on = |wp: &Watchpost| {
        let url = format!("{}/api/system/maintenance", wp.url());
        let id = id.clone();
        async move {
            let l = get_json(url).await;
            l["windows"]
                .as_array()?
                .iter()
                .any(|x| x["id"] == id.as_str() && x["active"] == true)
                .then_some(())
        }
    };
    eventually_for(Duration::from_secs(2), "B applies A's window", || {
        listed_on(&b)
    })
    .await;
    // The config's weekly window is listed too, with its next occurrence.
    let l = get_json(format!("{}/api/system/maintenance", b.url())).await;
    let nightly = l["windows"]
        .as_array()
        .and_then(|ws| ws.iter().find(|x| x["origin"] == "config").cloned())
        .expect("the config's window");
    assert_eq!(nightly["timezone"], "Europe/Berlin");
    assert!(nightly["next"]["start"].is_string(), "{nightly}");

    // The porch goes offline: decided, stored, listed and marked on both; told nowhere.
    write_image(root.path(), "porch", "a.png");
    for wp in [&a, &b] {
        let alert = eventually("the porch's alert", || porch_alert(wp)).await;
        assert_eq!(alert["in_maintenance"], json!([id]), "{alert}");
    }
    eventually("held back, counted", || async {
        let mut held = 0.0;
        for wp in [&a, &b] {
            held += metric(
                &metrics(wp).await,
                "watchpost_notifications_total{notifier=\"hook\",result=\"silenced\"}",
            )
            .unwrap_or(0.0);
        }
        (held >= 1.0).then_some(())
    })
    .await;
    assert!(told_porch(&rx).is_empty(), "told during the window");

    // The window ends while the porch is still offline: told then, once.
    let r = client()
        .delete(format!("{}/api/system/maintenance/{id}", b.url()))
        .send()
        .await
        .expect("DELETE");
    assert_eq!(r.status(), 200);
    eventually("the firing, told once the window ended", || async {
        (!told_porch(&rx).is_empty()).then_some(())
    })
    .await;
    for wp in [&a, &b] {
        eventually("unmarked", || async {
            let alert = porch_alert(wp).await?;
            (alert["in_maintenance"] == json!([])).then_some(())
        })
        .await;
    }
    assert_eq!(told_porch(&rx).len(), 1, "told once across two instances");

    // A silence made on A holds B's alert within 2 s too.
    let r = client()
        .post(format!("{}/api/system/alerts/silences", a.url()))
        .json(
            &json!({"matchers": {"camera": "porch"}, "duration_seconds": 600, "comment": "shared"}),
        )
        .send()
        .await
        .expect("silence");
    assert_eq!(r.status(), 201);
    let silence = r.json::<Value>().await.expect("json")["id"].clone();
    eventually_for(Duration::from_secs(2), "B holds A's silence", || async {
        let alert = porch_alert(&b).await?;
        alert["silenced_by"]
            .as_array()?
            .contains(&silence)
            .then_some(())
    })
    .await;

    // Coverage: the window's time is maintenance, left out of the availability.
    let c = eventually("the maintenance in the porch's coverage", || async {
        let (_, c) = get(format!("{}/api/system/coverage?camera=porch", a.url())).await;
        let cam = c["cameras"].get(0)?.clone();
        (cam["maintenance_seconds"].as_f64()? > 0.0).then_some(cam)
    })
    .await;
    let causes: Vec<&str> = c["gaps"]
        .as_array()
        .map(|g| g.iter().filter_map(|g| g["cause"].as_str()).collect())
        .unwrap_or_default();
    assert!(causes.contains(&"maintenance"), "{c}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windows_out_of_bounds_get_a_clear_error() {
    let rx = HttpReceiver::start().await;
    let stack = stack(&rx);
    let wp = stack.start(tempfile::tempdir().expect("dir"));
    watching(&wp).await;
    let porch = json!({"kind": "camera", "name": "porch"});
    for (body, want) in [
        // Longer than maintenance.max_snooze_seconds (7 days).
        (
            json!({"kind": "snooze", "scope": porch, "duration_seconds": 8 * 86400}),
            "at most",
        ),
        (json!({"kind": "snooze", "scope": porch}), "end"),
        (
            json!({"scope": porch, "days": ["sun"], "start": "02:30", "duration_seconds": 600, "timezone": "Mars/Olympus"}),
            "IANA",
        ),
        (
            json!({"scope": porch, "days": ["someday"], "start": "02:30", "duration_seconds": 600}),
            "days",
        ),
        (
            json!({"scope": porch, "ends_at": "2020-01-01T00:00:00Z"}),
            "future",
        ),
        (
            json!({"scope": {"kind": "camera", "name": "../etc"}, "duration_seconds": 60}),
            "scope.name",
        ),
    ] {
        let (code, r) = make(&wp, body.clone()).await;
        assert_eq!(code, 400, "{body}: {r}");
        assert!(
            r["detail"].as_str().is_some_and(|d| d.contains(want)),
            "{body}: {r}"
        );
    }
    let (code, s) = make(
        &wp,
        json!({"kind": "snooze", "scope": porch, "duration_seconds": 3600}),
    )
    .await;
    assert_eq!(code, 201, "{s}");
    assert_eq!(s["kind"], "snooze");
    let (code, r) = get(format!("{}/api/system/maintenance/nope", wp.url())).await;
    assert_eq!(code, 405, "{r}");
    for (id, status) in [("config-0", 409), ("0123-unknown", 404)] {
        let r = client()
            .delete(format!("{}/api/system/maintenance/{id}", wp.url()))
            .send()
            .await
            .expect("DELETE");
        assert_eq!(r.status().as_u16(), status, "{id}");
    }
}

/// The page: a camera's *Snooze 1 h* makes a snooze that is listed with its end; a
/// snooze of everything shows the banner; *End* ends it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_snoozes_a_camera_lists_windows_and_says_when_everything_is_snoozed() {
    use crate::support::browser::Browser;
    let rx = HttpReceiver::start().await;
    let stack = stack(&rx);
    let wp = stack.start(tempfile::tempdir().expect("dir"));
    watching(&wp).await;
    write_image(&wp.dir.path().join("cameras"), "porch", "a.png");
    let b = Browser::start(1280, 1400).await;
    b.goto(&format!("{}/", wp.url())).await;
    let css = "#cameras li[data-key=\"porch\"] button[data-snooze=\"camera:porch\"]";
    b.wait_for(css).await;
    // The list is drawn again on every change: press the button as it is now.
    b.execute(
        "document.querySelector(arguments[0]).click();",
        serde_json::json!([css]),
    )
    .await;
    let listed = eventually("the snooze listed", || async {
        let t = b.text("#windows li[data-kind=\"snooze\"]").await;
        t.contains("camera porch").then_some(t)
    })
    .await;
    assert!(listed.contains("until"), "{listed}");
    let api = get_json(format!("{}/api/system/maintenance", wp.url())).await;
    let snooze = api["windows"]
        .as_array()
        .and_then(|w| w.iter().find(|w| w["kind"] == "snooze").cloned())
        .expect("the snooze in the API");
    let secs = snooze["duration_seconds"].as_f64().unwrap_or(0.0);
    assert!((secs - 3600.0).abs() < 1.0, "{snooze}");

    let (code, _) = make(
        &wp,
        json!({"kind": "snooze", "scope": {"kind": "everything"}, "duration_seconds": 600}),
    )
    .await;
    assert_eq!(code, 201);
    eventually("the banner", || async {
        let t = b.text("#quiet-banner").await;
        t.contains("Everything is snoozed").then_some(())
    })
    .await;
    let errors: Vec<(String, String)> = b
        .console()
        .await
        .into_iter()
        .filter(|(level, _)| level == "SEVERE")
        .collect();
    assert!(errors.is_empty(), "console errors: {errors:?}");
}

/// A snooze's end is told, saying what in its scope still fires.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_end_of_a_snooze_is_told_with_what_still_fires() {
    let rx = HttpReceiver::start().await;
    let stack = stack(&rx);
    let wp = stack.start(tempfile::tempdir().expect("dir"));
    watching(&wp).await;
    let (code, s) = make(
        &wp,
        json!({"kind": "snooze", "scope": {"kind": "camera", "name": "porch"}, "duration_seconds": 6}),
    )
    .await;
    assert_eq!(code, 201, "{s}");
    write_image(&wp.dir.path().join("cameras"), "porch", "a.png");
    eventually("the porch's alert", || porch_alert(&wp)).await;
    let notice = eventually("the snooze's end, told", || async {
        rx.on("/hook")
            .into_iter()
            .map(|r| r.json())
            .find(|j| j["notification"] == "notice")
    })
    .await;
    let summary = notice["summary"].as_str().unwrap_or("");
    assert!(
        summary.contains("Snooze on camera porch ended") && summary.contains("still firing"),
        "{notice}"
    );
    // And the firing it held is told.
    eventually("the firing, told after the snooze", || async {
        (!told_porch(&rx).is_empty()).then_some(())
    })
    .await;
}

/// The active snoozes listed by `wp` whose scope is `scope`.
async fn snoozes(wp: &Watchpost, scope: &Value) -> Vec<Value> {
    let l = get_json(format!("{}/api/system/maintenance", wp.url())).await;
    l["windows"]
        .as_array()
        .map(|ws| {
            ws.iter()
                .filter(|w| w["kind"] == "snooze" && w["active"] == true && w["scope"] == *scope)
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

/// Home Assistant's button per camera and its notifications switch, through a real
/// mosquitto: the discovery configs follow the MQTT discovery schema; a press on the
/// camera's command topic snoozes it for an hour; the switch off snoozes everything
/// (its state says `OFF`), on again ends that snooze (`ON`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn home_assistant_s_button_snoozes_a_camera_and_its_switch_turns_everything_off_and_on() {
    let broker = Mosquitto::start();
    let sub = Subscriber::start(&broker).await;
    let rx = HttpReceiver::start().await;
    let mut env = env(&rx);
    env.push(("WATCHPOST_NOTIFY__MQTT__URL".into(), broker.url()));
    let refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let stack = Stack::new(&refs);
    let root = tempfile::tempdir().expect("root");
    let wp = stack.instance("a", root.path());
    watching(&wp).await;
    write_image(root.path(), "porch", "a.png");

    let config = |topic: &'static str| {
        let sub = &sub;
        async move {
            let payload = sub.last(topic).filter(|p| !p.is_empty())?;
            serde_json::from_str::<Value>(&payload).ok()
        }
    };
    let button = eventually("the porch's button", || {
        config("homeassistant/button/watchpost/snooze_camera_porch/config")
    })
    .await;
    let sensor = eventually("the porch's sensor", || {
        config("homeassistant/binary_sensor/watchpost/camera_porch/config")
    })
    .await;
    let switch = eventually("the notifications switch", || {
        config("homeassistant/switch/watchpost/notifications/config")
    })
    .await;
    assert_eq!(
        button["command_topic"], "watchpost/cameras/porch/snooze",
        "{button}"
    );
    assert_eq!(button["unique_id"], "watchpost_snooze_camera_porch");
    assert_eq!(
        switch["command_topic"], "watchpost/notifications/set",
        "{switch}"
    );
    assert_eq!(switch["state_topic"], "watchpost/notifications");
    assert_eq!(switch["unique_id"], "watchpost_notifications");
    for c in [&button, &switch] {
        assert_eq!(c["availability_topic"], "watchpost/availability", "{c}");
        assert_eq!(c["device"], sensor["device"], "one device: {c}");
    }
    eventually("the switch is on", || async {
        (sub.last("watchpost/notifications").as_deref() == Some("ON")).then_some(())
    })
    .await;

    // A press: the porch is snoozed for an hour.
    sub.publish("watchpost/cameras/porch/snooze", "PRESS").await;
    let porch = json!({"kind": "camera", "name": "porch"});
    let w = eventually("the porch snoozed", || async {
        snoozes(&wp, &porch).await.into_iter().next()
    })
    .await;
    assert_eq!(w["duration_seconds"], 3600.0, "{w}");

    // The switch off: everything snoozed, and the switch says so.
    let everything = json!({"kind": "everything"});
    sub.publish("watchpost/notifications/set", "OFF").await;
    eventually("everything snoozed, the switch off", || async {
        (!snoozes(&wp, &everything).await.is_empty()
            && sub.last("watchpost/notifications").as_deref() == Some("OFF"))
        .then_some(())
    })
    .await;
    // On again: that snooze ended (the porch's stays).
    sub.publish("watchpost/notifications/set", "ON").await;
    eventually("everything told again, the switch on", || async {
        (snoozes(&wp, &everything).await.is_empty()
            && sub.last("watchpost/notifications").as_deref() == Some("ON"))
        .then_some(())
    })
    .await;
    assert_eq!(snoozes(&wp, &porch).await.len(), 1);
}
