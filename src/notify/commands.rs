//! What Home Assistant asks through MQTT: a camera's *Snooze 1 h* button
//! (`<prefix>/cameras/<id>/snooze`, payload `PRESS`) and the *notifications* switch
//! (`<prefix>/notifications/set`, `OFF`: everything snoozed for the longest snooze
//! allowed; `ON`: those snoozes ended). The topic and payload come from whoever may
//! publish on the broker: only these two shapes are taken, a camera must be known,
//! and a retained command (replayed at every connect) is ignored.

use super::discovery::Topics;
use crate::quiet::{NewWindow, Quiet, QuietError, Scope};

/// How long a camera's button snoozes it.
pub const BUTTON_SNOOZE_SECONDS: f64 = 3600.0;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    SnoozeCamera(String),
    Notifications(bool),
}

/// The command a publish on `topic` carries, if it is one.
pub fn parse(topics: &Topics, topic: &str, payload: &[u8], retained: bool) -> Option<Command> {
    if retained {
        return None;
    }
    let payload = std::str::from_utf8(payload).ok()?.trim();
    if topic == topics.notifications_set() {
        return match payload {
            "ON" => Some(Command::Notifications(true)),
            "OFF" => Some(Command::Notifications(false)),
            _ => None,
        };
    }
    let id = topic
        .strip_prefix(&format!("{}/cameras/", topics.prefix))?
        .strip_suffix("/snooze")?;
    (payload == "PRESS" && !id.is_empty() && !id.contains('/'))
        .then(|| Command::SnoozeCamera(id.to_string()))
}

/// Do `cmd`; what was done, in words for the log. `known` says whether a camera id
/// is one watchpost watches.
pub async fn obey(
    quiet: &Quiet,
    cmd: Command,
    known: impl Fn(&str) -> bool,
) -> Result<String, QuietError> {
    match cmd {
        Command::SnoozeCamera(id) => {
            if !known(&id) {
                return Err(QuietError::Invalid(format!(
                    "no camera {:?}",
                    crate::redact::text(&id)
                )));
            }
            let w = quiet
                .create(NewWindow::snooze(
                    Scope::Camera(id),
                    BUTTON_SNOOZE_SECONDS,
                    "snoozed from Home Assistant".into(),
                ))
                .await?;
            Ok(format!("{} snoozed for an hour", w.scope))
        }
        Command::Notifications(false) => {
            if !quiet.everything_snoozed(crate::time::now()).is_empty() {
                return Ok("notifications were off already".into());
            }
            quiet
                .create(NewWindow::snooze(
                    Scope::Everything,
                    quiet.max_snooze_seconds(),
                    "notifications switched off in Home Assistant".into(),
                ))
                .await?;
            Ok("notifications off: everything snoozed".into())
        }
        Command::Notifications(true) => {
            for id in quiet.everything_snoozed(crate::time::now()) {
                quiet.end(&id).await?;
            }
            Ok("notifications on: the snoozes of everything ended".into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_two_command_shapes_are_taken() {
        let t = Topics::new("watchpost", "homeassistant");
        let parse =
            |topic: &str, payload: &str, retained| parse(&t, topic, payload.as_bytes(), retained);
        assert_eq!(
            parse("watchpost/cameras/porch/snooze", "PRESS", false),
            Some(Command::SnoozeCamera("porch".into()))
        );
        assert_eq!(
            parse("watchpost/notifications/set", "OFF", false),
            Some(Command::Notifications(false))
        );
        assert_eq!(
            parse("watchpost/notifications/set", "ON", false),
            Some(Command::Notifications(true))
        );
        for (topic, payload, retained) in [
            ("watchpost/cameras/porch/snooze", "PRESS", true),
            ("watchpost/cameras/porch/snooze", "press me", false),
            ("watchpost/cameras//snooze", "PRESS", false),
            ("watchpost/cameras/a/b/snooze", "PRESS", false),
            ("watchpost/notifications/set", "maybe", false),
            ("other/cameras/porch/snooze", "PRESS", false),
            ("watchpost/cameras/porch", "offline", false),
        ] {
            assert_eq!(parse(topic, payload, retained), None, "{topic} {payload}");
        }
    }
}
