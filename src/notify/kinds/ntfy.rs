//! ntfy (ntfy.sh or a self-hosted server): `url` is the topic's address; the words
//! go in the body, the rest in ntfy's headers.

use crate::alerts::Identity;
use crate::config::WebhookConfig;
use crate::events::Severity;
use crate::notify::kind::{Body, NotifierKind};
use crate::notify::message::{cut, said, Entry, Kind};

pub static KIND: NotifierKind = NotifierKind::http("ntfy", &[], "", render);

/// The most of ntfy's message body (a longer one becomes an attachment there).
const BODY_BYTES: usize = 4000;

/// ntfy's message: `Title`, `Priority` (5 for critical, 4 for warning, 3 once it
/// resolved or for a test, 2 for the daily digest), `Tags` (emoji short codes ntfy
/// shows), `Click` (the status page), and for a firing alert `Actions`: its one-tap
/// buttons (ntfy's `http` actions, a POST each; at most three, ntfy's limit).
fn render(e: &Entry, who: &Identity, _: &WebhookConfig) -> Body {
    let t = &e.alert;
    let (priority, tag) = match (e.kind, t.severity) {
        (Kind::Test, _) => ("3", "test_tube"),
        (Kind::Digest, _) => ("2", "newspaper"),
        (Kind::Notice, _) => ("3", "bell"),
        (Kind::Resolved, _) => ("3", "white_check_mark"),
        (_, Severity::Critical) => ("5", "rotating_light"),
        _ => ("4", "warning"),
    };
    let said = said(e);
    let tags = [tag, "watchpost", t.source.kind().as_str()];
    Body::Text {
        text: cut(&said.body, BODY_BYTES),
        headers: {
            let mut h = vec![
                ("Title", header_text(&said.title)),
                ("Priority", priority.to_string()),
                ("Tags", tags.join(",")),
                ("Click", format!("{}#alerts", who.external_url)),
            ];
            if !e.actions.is_empty() {
                h.push(("Actions", actions(e)));
            }
            h
        },
    }
}

/// ntfy's `Actions` header: `http, <label>, <url>, method=POST, clear=true; …`. The
/// labels are ours (no `,` or `;`); the URLs are base64url tokens under
/// `alerting.external_url`, with any `,` or `;` of that address percent-encoded.
fn actions(e: &Entry) -> String {
    e.actions
        .iter()
        .take(3)
        .map(|a| {
            // `,` and `;` separate ntfy's fields and actions: never raw in a URL.
            let url = a.url.replace(',', "%2C").replace(';', "%3B");
            format!("http, {}, {url}, method=POST, clear=true", a.label)
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// A header value ntfy reads: printable ASCII as it is, anything else as an RFC 2047
/// encoded word (`=?UTF-8?Q?…?=`), which ntfy decodes.
fn header_text(s: &str) -> String {
    let s: String = s.chars().filter(|c| !c.is_control()).take(250).collect();
    if s.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return s;
    }
    let mut out = String::from("=?UTF-8?Q?");
    for b in s.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b',' | b':' | b'-' | b'[' | b']' => {
                out.push(b as char)
            }
            b' ' => out.push('_'),
            _ => out.push_str(&format!("={b:02X}")),
        }
    }
    out.push_str("?=");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::message::fixtures::{entry, who};
    use std::collections::BTreeMap;

    fn ntfy(e: &Entry) -> (String, BTreeMap<&'static str, String>) {
        match render(e, &who(), &WebhookConfig::default()) {
            Body::Text { text, headers } => (text, headers.into_iter().collect()),
            Body::Json(_) => panic!("ntfy posts text"),
        }
    }

    #[test]
    fn ntfy_says_it_in_headers_with_priority_by_severity() {
        let (body, h) = ntfy(&entry(Kind::Firing, "critical"));
        assert_eq!(h["Title"], "[FIRING] WatchpostCameraOffline: camera:front");
        assert_eq!(h["Priority"], "5");
        assert_eq!(h["Tags"], "rotating_light,watchpost,camera");
        assert_eq!(h["Click"], "http://nas.local:8000/#alerts");
        assert!(body.starts_with("camera front is offline\n\nno image"));
        assert_eq!(ntfy(&entry(Kind::Firing, "warning")).1["Priority"], "4");
        let (body, h) = ntfy(&entry(Kind::Resolved, "critical"));
        assert_eq!(h["Priority"], "3");
        assert_eq!(
            body, "Resolved after 12 min: it had been \"camera front is offline\".",
            "the recovery, not the problem"
        );
    }

    #[test]
    fn a_firing_alert_carries_its_buttons_as_ntfy_http_actions() {
        use crate::actions::{ActionKind, ActionLink};
        let mut e = entry(Kind::Firing, "warning");
        assert!(!ntfy(&e).1.contains_key("Actions"), "none without links");
        e.actions = ActionKind::ALL
            .iter()
            .map(|&action| ActionLink {
                action,
                label: action.label(),
                url: format!("https://cams.example/x,y/api/actions/{}", action.as_str()),
            })
            .collect();
        let actions = &ntfy(&e).1["Actions"];
        assert_eq!(
            actions,
            "http, Snooze 1 h, https://cams.example/x%2Cy/api/actions/snooze_1h, method=POST, clear=true; \
             http, Snooze 8 h, https://cams.example/x%2Cy/api/actions/snooze_8h, method=POST, clear=true; \
             http, Acknowledge, https://cams.example/x%2Cy/api/actions/acknowledge, method=POST, clear=true"
        );
    }

    #[test]
    fn a_long_body_is_cut_to_what_ntfy_shows() {
        let mut e = entry(Kind::Firing, "warning");
        e.alert.description = "d".repeat(20_000);
        assert!(ntfy(&e).0.len() <= BODY_BYTES);
    }

    #[test]
    fn a_title_that_is_not_ascii_is_an_encoded_word() {
        assert_eq!(header_text("plain [x]"), "plain [x]");
        assert_eq!(header_text("café 1"), "=?UTF-8?Q?caf=C3=A9_1?=");
        assert_eq!(header_text("a\r\nb"), "ab");
    }
}
