//! Alertmanager's webhook format (version 4), one alert per notification, so every
//! tool that takes Alertmanager's webhooks takes watchpost's. The receiver is the
//! notifier's name.

use crate::alerts::Identity;
use crate::config::WebhookConfig;
use crate::notify::kind::{Body, NotifierKind};
use crate::notify::message::{Entry, Kind};

pub static KIND: NotifierKind = NotifierKind::http("alertmanager", &[], "", render);

/// Alertmanager's webhook body (version 4) for one alert, so every tool that takes
/// Alertmanager's webhooks takes watchpost's.
fn render(e: &Entry, who: &Identity, cfg: &WebhookConfig) -> Body {
    let receiver = &cfg.name;
    let t = &e.alert;
    let resolved = e.kind == Kind::Resolved;
    let status = if resolved { "resolved" } else { "firing" };
    let alert = t.outside(&who.instance);
    let zero = "0001-01-01T00:00:00Z".to_string();
    let ends_at = match (resolved, t.ended_at) {
        (true, Some(end)) => end.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        _ => zero,
    };
    let starts_at = t
        .started_at
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    Body::Json(serde_json::json!({
        "version": "4",
        "groupKey": format!("{{}}:{{alertname=\"{}\"}}", t.alertname),
        "truncatedAlerts": 0,
        "status": status,
        "receiver": receiver,
        "groupLabels": {"alertname": t.alertname},
        "commonLabels": alert.0,
        "commonAnnotations": alert.1,
        "externalURL": who.external_url,
        "alerts": [{
            "status": status,
            "labels": alert.0,
            "annotations": alert.1,
            "startsAt": starts_at,
            "endsAt": ends_at,
            "generatorURL": format!("{}#alerts", who.external_url),
            "fingerprint": t.fingerprint,
        }],
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::message::fixtures::{entry, who};

    fn json(e: &Entry) -> serde_json::Value {
        let cfg = WebhookConfig {
            name: "home".into(),
            ..WebhookConfig::default()
        };
        match render(e, &who(), &cfg) {
            Body::Json(v) => v,
            Body::Text { .. } => panic!("a JSON body"),
        }
    }

    #[test]
    fn alertmanager_format_is_a_version_4_notification_of_one_alert() {
        let mut e = entry(Kind::Resolved, "critical");
        e.alert.ended_at = Some("2026-12-02T06:12:30Z".parse().expect("a time"));
        let v = json(&e);
        assert_eq!(v["version"], "4");
        assert_eq!(v["status"], "resolved");
        assert_eq!(v["receiver"], "home");
        let a = &v["alerts"][0];
        assert_eq!(a["labels"]["alertname"], "WatchpostCameraOffline");
        assert_eq!(a["labels"]["instance"], "nas:8000");
        assert_eq!(a["labels"]["camera"], "front");
        assert_eq!(a["labels"]["generator"], "watchpost");
        assert_eq!(a["annotations"]["summary"], "camera front is offline");
        assert_eq!(a["endsAt"], "2026-12-02T06:12:30.000Z");
        assert_eq!(a["fingerprint"], "f00d");
        let firing = json(&entry(Kind::Firing, "warning"));
        assert_eq!(firing["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");
    }
}
