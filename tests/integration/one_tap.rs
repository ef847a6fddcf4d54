//! One tap on the phone: the buttons of an ntfy message (signed links, one per
//! action) work once, on any instance, only for their alert and only until they
//! expire; *Acknowledge* marks an alert and stops its repeats.

use std::collections::BTreeMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::Value;

use crate::support::notify::HttpReceiver;
use crate::support::{eventually, json, notifier, post, watching, write_image, Stack, Watchpost};

/// Where the links point (the test posts their paths to either instance).
const EXTERNAL: &str = "http://watchpost.test:8080";

fn stack(rx: &HttpReceiver) -> Stack {
    let hooks = format!(
        "[{{name = \"phone\", format = \"ntfy\", url = \"{}\"}}, {{name = \"hook\", format = \"json\", url = \"{}\"}}]",
        rx.url("/ntfy"),
        rx.url("/hook")
    );
    Stack::new(&[
        ("WATCHPOST_ALERTS__FOR_WARNING_SECONDS", "0"),
        ("WATCHPOST_ALERTS__EVALUATE_INTERVAL_SECONDS", "0.2"),
        ("WATCHPOST_CAMERAS__CHECK_INTERVAL_SECONDS", "0.2"),
        ("WATCHPOST_CAMERAS__HEARTBEAT_GRACE_SECONDS", "0.5"),
        (
            "WATCHPOST_CAMERAS__OVERRIDES__PORCH__HEARTBEAT_SECONDS",
            "1",
        ),
        ("WATCHPOST_CAMERAS__OVERRIDES__GATE__HEARTBEAT_SECONDS", "1"),
        ("WATCHPOST_CAMERAS__OVERRIDES__YARD__HEARTBEAT_SECONDS", "1"),
        ("WATCHPOST_NOTIFY__REPEAT_SECONDS", "2"),
        ("WATCHPOST_ALERTING__EXTERNAL_URL", EXTERNAL),
        ("WATCHPOST_NOTIFY__WEBHOOKS", &hooks),
    ])
}

/// The buttons of the first ntfy message about `camera`'s alert: label → path.
fn buttons(rx: &HttpReceiver, camera: &str) -> Option<BTreeMap<String, String>> {
    let msg = rx.on("/ntfy").into_iter().find(|r| {
        r.header("title")
            .is_some_and(|t| t.contains("[FIRING]") && t.contains(&format!("camera:{camera}")))
    })?;
    let actions = msg.header("actions")?;
    Some(
        actions
            .split(';')
            .map(|a| {
                let fields: Vec<&str> = a.split(',').map(str::trim).collect();
                assert_eq!(fields[0], "http", "{actions}");
                assert!(fields[3..].contains(&"method=POST"), "{actions}");
                let path = fields[2]
                    .strip_prefix(EXTERNAL)
                    .expect("under alerting.external_url");
                (fields[1].to_string(), path.to_string())
            })
            .collect(),
    )
}

/// The times `camera`'s alert was told again (repeats) at the JSON hook.
fn repeats(rx: &HttpReceiver, camera: &str) -> usize {
    rx.on("/hook")
        .iter()
        .map(|r| r.json())
        .filter(|j| j["notification"] == "repeat" && j["source"] == format!("camera:{camera}"))
        .count()
}

async fn firing(wp: &Watchpost, camera: &str) -> Option<Value> {
    let page = json(format!(
        "{}/api/system/alerts?state=firing&source=camera:{camera}",
        wp.url()
    ))
    .await;
    page["items"].as_array()?.first().cloned()
}

/// The grant a token carries (its payload, decoded).
fn grant_of(path: &str) -> Value {
    let token = path.rsplit('/').next().expect("a token");
    let payload = token.split_once('.').expect("payload.mac").0;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url")).expect("json")
}

/// The path of a token for `grant`, signed with the key watchpost keeps.
fn signed(stack: &Stack, grant: &Value) -> String {
    let hex = stack.pg.psql("select encode(key, 'hex') from action_key");
    let key: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect();
    let grant: watchpost::actions::Grant = serde_json::from_value(grant.clone()).expect("a grant");
    format!("/api/actions/{}", watchpost::actions::sign(&key, &grant))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_s_buttons_work_once_anywhere_and_only_for_their_alert() {
    let rx = HttpReceiver::start().await;
    let stack = stack(&rx);
    let root = tempfile::tempdir().expect("root");
    let a = stack.instance("a", root.path());
    let b = stack.instance("b", root.path());
    watching(&a).await;
    watching(&b).await;
    for camera in ["porch", "gate", "yard"] {
        write_image(root.path(), camera, "a.png");
    }
    let porch = eventually("the porch's message with its buttons", || async {
        buttons(&rx, "porch")
    })
    .await;
    assert_eq!(
        porch.keys().collect::<Vec<_>>(),
        ["Acknowledge", "Snooze 1 h", "Snooze 8 h"]
    );

    // Snooze 1 h, on A: the porch is snoozed, and B lists the snooze.
    let (code, done) = post(format!("{}{}", a.url(), porch["Snooze 1 h"]), None).await;
    assert_eq!(code, 200, "{done}");
    assert_eq!(done["action"], "snooze_1h");
    assert_eq!(done["source"], "camera:porch");
    let window = done["window_id"].as_str().expect("a snooze").to_string();
    eventually("B holds the porch's alert in the snooze", || async {
        firing(&b, "porch")
            .await
            .filter(|x| x["in_maintenance"] == serde_json::json!([window.clone()]))
    })
    .await;

    // The same link again, on either instance: refused.
    for wp in [&a, &b] {
        let (code, body) = post(format!("{}{}", wp.url(), porch["Snooze 1 h"]), None).await;
        assert_eq!(code, 403, "{body}");
        assert!(body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("used already")));
    }

    // A link changed to name another alert (the gate's): refused.
    let gate_alert = eventually("the gate's alert", || firing(&a, "gate")).await;
    let path = &porch["Snooze 8 h"];
    let mut other = grant_of(path);
    other["f"] = gate_alert["fingerprint"].clone();
    other["s"] = "camera:gate".into();
    let mac = path.rsplit('.').next().expect("a mac");
    let forged = format!(
        "/api/actions/{}.{mac}",
        URL_SAFE_NO_PAD.encode(other.to_string())
    );
    let (code, body) = post(format!("{}{forged}", b.url()), None).await;
    assert_eq!(code, 403, "{body}");
    assert!(body["detail"]
        .as_str()
        .is_some_and(|d| d.contains("not valid")));

    // A link past its time (signed with watchpost's own key): refused.
    let mut late = grant_of(path);
    late["e"] = (chrono::Utc::now().timestamp() - 1).into();
    late["k"] = "another-nonce".into();
    let (code, body) = post(format!("{}{}", a.url(), signed(&stack, &late)), None).await;
    assert_eq!(code, 403, "{body}");
    assert!(body["detail"]
        .as_str()
        .is_some_and(|d| d.contains("expired")));

    // Acknowledge the gate from its own message, on B: shown on A, and no repeat of
    // it while the yard's (not acknowledged) is told again twice.
    let gate = eventually("the gate's buttons", || async { buttons(&rx, "gate") }).await;
    let (code, done) = post(format!("{}{}", b.url(), gate["Acknowledge"]), None).await;
    assert_eq!(code, 200, "{done}");
    assert!(done["acknowledged_at"].is_string(), "{done}");
    eventually("A shows the gate acknowledged", || async {
        firing(&a, "gate")
            .await
            .filter(|x| x["acknowledged_at"].is_string())
    })
    .await;
    // A repeat decided before the acknowledgement reached A may still wait in an
    // outbox: count from when both are empty.
    for wp in [&a, &b] {
        eventually("the hook's outbox empty", || async {
            let list = json(format!("{}/api/system/notifiers", wp.url())).await;
            (notifier(&list, "hook")["queue_depth"] == 0).then_some(())
        })
        .await;
    }
    let (gate_before, yard_before) = (repeats(&rx, "gate"), repeats(&rx, "yard"));
    eventually("the yard told again twice", || async {
        (repeats(&rx, "yard") >= yard_before + 2).then_some(())
    })
    .await;
    assert_eq!(
        repeats(&rx, "gate"),
        gate_before,
        "the gate was acknowledged"
    );
    assert!(
        firing(&a, "gate")
            .await
            .is_some_and(|x| x["silenced_by"] == serde_json::json!([])),
        "acknowledged, not silenced"
    );
}
