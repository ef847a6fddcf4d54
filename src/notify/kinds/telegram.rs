//! Telegram, through the Bot API's `sendMessage`: `url` is the bot's address with its
//! token, `https://api.telegram.org/bot<token>` (shown as `https://api.telegram.org`
//! only), and `chat_id` the chat, group or channel (`@name`) to write to.
//! Plain text (no parse mode, so nothing in an alert can break the markup); a
//! resolution arrives without a sound.

use crate::alerts::Identity;
use crate::config::WebhookConfig;
use crate::notify::kind::{Body, NotifierKind, Opt};
use crate::notify::message::{cut, said, Entry, Kind};

pub static KIND: NotifierKind = NotifierKind::http("telegram", &[CHAT], "/sendMessage", render);

const CHAT: Opt = Opt {
    name: "chat_id",
    required: true,
    what: "the chat's id (a number, negative for groups) or a channel's @name",
    valid: is_chat,
};

/// The most of a message's text (Telegram's limit, in bytes here to be safe).
const TEXT_BYTES: usize = 4096;

fn is_chat(v: &str) -> bool {
    let digits = v.strip_prefix('-').unwrap_or(v);
    let number = !digits.is_empty() && digits.len() <= 20 && digits.bytes().all(|b| b.is_ascii_digit());
    let channel = v.strip_prefix('@').is_some_and(|n| {
        (5..=32).contains(&n.len()) && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    });
    number || channel
}

fn render(e: &Entry, who: &Identity, cfg: &WebhookConfig) -> Body {
    let said = said(e);
    let text = format!("{}\n\n{}\n\n{}#alerts", said.title, said.body, who.external_url);
    Body::Json(serde_json::json!({
        "chat_id": cfg.options.get("chat_id").map_or("", String::as_str),
        "text": cut(&text, TEXT_BYTES),
        "disable_web_page_preview": true,
        "disable_notification": e.kind == Kind::Resolved,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::message::fixtures::{entry, who};

    #[test]
    fn a_message_names_the_chat_and_says_it_in_plain_text() {
        let cfg = WebhookConfig {
            options: [("chat_id".to_string(), "-100123".to_string())].into(),
            ..WebhookConfig::default()
        };
        let Body::Json(v) = render(&entry(Kind::Firing, "critical"), &who(), &cfg) else {
            panic!("JSON")
        };
        assert_eq!(v["chat_id"], "-100123");
        let text = v["text"].as_str().unwrap();
        assert!(text.starts_with("[FIRING] WatchpostCameraOffline: camera:front\n\ncamera front is offline"), "{text}");
        assert!(text.ends_with("http://nas.local:8000/#alerts"));
        assert_eq!(v["disable_notification"], false);
        let Body::Json(r) = render(&entry(Kind::Resolved, "critical"), &who(), &cfg) else {
            panic!("JSON")
        };
        assert_eq!(r["disable_notification"], true);
    }

    #[test]
    fn a_chat_is_a_number_or_a_channel_name() {
        assert!(is_chat("123456789"));
        assert!(is_chat("-1001234567890"));
        assert!(is_chat("@watchpost_home"));
        assert!(!is_chat(""));
        assert!(!is_chat("-"));
        assert!(!is_chat("@a b"));
        assert!(!is_chat("12a"));
    }
}
