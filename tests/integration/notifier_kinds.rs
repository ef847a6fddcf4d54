//! The notifier kinds added as plug-ins: Telegram (Bot API `sendMessage`, to a local
//! HTTP receiver standing in for api.telegram.org) and e-mail (SMTP, to a local SMTP
//! sink). Both go through the outbox like every notifier: firing and resolved, a
//! refusal waited out in order, the test button, credentials never shown.

use crate::support::fake_ai::Mode;
use crate::support::notify::HttpReceiver;
use crate::support::smtp::SmtpSink;
use crate::support::{eventually, get, get_text, json, metrics, notifier, post, Stack, Watchpost};
use serde_json::Value;
use std::process::Command;

const BOT_TOKEN: &str = "123456:AAE-bot-token-secret-88";
const MAIL_SECRET: &str = "mail-pass-secret-61";

/// The titles each kind was told, in order.
fn telegram_titles(rx: &HttpReceiver) -> Vec<String> {
    rx.on(&format!("/bot{BOT_TOKEN}/sendMessage"))
        .iter()
        .map(|r| {
            let v = r.json();
            assert_eq!(v["chat_id"], "-100200300", "{v}");
            v["text"]
                .as_str()
                .unwrap_or("")
                .lines()
                .next()
                .unwrap_or("")
                .to_string()
        })
        .collect()
}

fn mail_subjects(sink: &SmtpSink) -> Vec<String> {
    sink.all()
        .iter()
        .map(|m| m.header("Subject").unwrap_or_default())
        .collect()
}

async fn clip(wp: &Watchpost, state: &str) {
    eventually(&format!("clip {state}"), || async {
        let page = json(format!(
            "{}/api/system/alerts?state=all&limit=100",
            wp.url()
        ))
        .await;
        page["items"]
            .as_array()?
            .iter()
            .find(|a| a["source"] == "ai:clip" && a["state"] == state)
            .map(|_| ())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telegram_and_email_deliver_through_the_outbox_with_the_test_button_and_masking() {
    let tg = HttpReceiver::start().await;
    let sink = SmtpSink::start().await;
    let hooks = format!(
        "[{{name = \"tg\", format = \"telegram\", url = \"http://127.0.0.1:{}/bot{BOT_TOKEN}\", options = {{chat_id = \"-100200300\"}}}}, \
          {{name = \"mail\", format = \"email\", url = \"smtp://bob:{MAIL_SECRET}@127.0.0.1:{}\", options = {{from = \"watchpost@home.example\", to = \"me@home.example, you@home.example\"}}}}]",
        tg.port, sink.port
    );
    let stack = Stack::new(&[
        ("WATCHPOST_ALERTS__FOR_WARNING_SECONDS", "0"),
        ("WATCHPOST_ALERTS__EVALUATE_INTERVAL_SECONDS", "0.2"),
        ("WATCHPOST_NOTIFY__RETRY_MAX_SECONDS", "1"),
        ("WATCHPOST_NOTIFY__WEBHOOKS", &hooks),
    ]);
    let wp = stack.start(tempfile::tempdir().expect("dir"));

    // Firing, then resolved: each kind hears both, in order.
    stack.ai.get("clip").set_mode(Mode::Status(503));
    clip(&wp, "firing").await;
    eventually("both told the firing", || async {
        (telegram_titles(&tg).len() == 1 && sink.all().len() == 1).then_some(())
    })
    .await;
    // The mail refuses for a while: the resolution waits in the outbox.
    sink.refuse(true);
    stack.ai.get("clip").set_mode(Mode::Normal);
    clip(&wp, "resolved").await;
    eventually("the mail notifier fails and says why", || async {
        let list = json(format!("{}/api/system/notifiers", wp.url())).await;
        let n = notifier(&list, "mail").clone();
        (n["queue_depth"] == 1 && n["last_error"].as_str().is_some_and(|e| e.contains("451")))
            .then_some(n)
    })
    .await;
    sink.refuse(false);
    eventually("both told the resolution", || async {
        (telegram_titles(&tg).len() == 2 && sink.all().len() == 2).then_some(())
    })
    .await;
    let titles = telegram_titles(&tg);
    assert!(
        titles[0].starts_with("[FIRING] ") && titles[0].contains("ai:clip"),
        "{titles:?}"
    );
    assert!(titles[1].starts_with("[RESOLVED] "), "{titles:?}");
    let subjects = mail_subjects(&sink);
    assert_eq!(subjects[0], titles[0], "e-mail says what Telegram says");
    assert_eq!(subjects[1], titles[1]);
    let first = &sink.all()[0];
    assert_eq!(
        first.auth,
        format!("bob\0{MAIL_SECRET}"),
        "credentials from the address"
    );
    assert_eq!(first.to.len(), 2, "{:?}", first.to);
    assert!(first.from.contains("watchpost@home.example"));
    assert!(
        first.data.contains("#alerts"),
        "a link to the page: {}",
        first.data
    );

    // The test button, for each.
    for name in ["tg", "mail"] {
        let (status, body) = post(
            format!("{}/api/system/notifiers/{name}/test", wp.url()),
            None,
        )
        .await;
        assert_eq!(
            (status, &body["delivered"]),
            (200, &Value::Bool(true)),
            "{body}"
        );
    }
    assert!(telegram_titles(&tg)[2].starts_with("[TEST] "));
    assert!(mail_subjects(&sink)[2].starts_with("[TEST] "));

    // Shown only masked: the list, the metrics, the log.
    let (_, list) = get(format!("{}/api/system/notifiers", wp.url())).await;
    assert_eq!(notifier(&list, "tg")["kind"], "telegram");
    assert_eq!(
        notifier(&list, "tg")["target"],
        format!("http://127.0.0.1:{}", tg.port)
    );
    assert_eq!(notifier(&list, "mail")["kind"], "email");
    assert_eq!(
        notifier(&list, "mail")["target"],
        format!("smtp://127.0.0.1:{}", sink.port)
    );
    let shown = format!(
        "{list}{}{}{}",
        metrics(&wp).await,
        get_text(format!("{}/api/system/alerts?state=all", wp.url())).await,
        wp.log()
    );
    for secret in [BOT_TOKEN, "bot-token-secret", MAIL_SECRET] {
        assert!(!shown.contains(secret), "{secret} shown");
    }
}

#[test]
fn a_kind_checks_its_own_settings_before_anything_starts() {
    let run = |hooks: &str| {
        Command::new(env!("CARGO_BIN_EXE_watchpost"))
            .arg("--check-config")
            .env_clear()
            .env("WATCHPOST_NOTIFY__WEBHOOKS", hooks)
            .output()
            .expect("run watchpost")
    };
    let ok = run("[{name = \"tg\", format = \"telegram\", url = \"https://api.telegram.org/bot1:x\", options = {chat_id = \"42\"}}]");
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let bad = run(
        "[{name = \"tg\", format = \"telegram\", url = \"https://api.telegram.org/bot1:x\"}, \
          {name = \"mail\", format = \"email\", url = \"https://mail.example\", options = {from = \"nobody\", to = \"me@example.org\", chat_id = \"1\"}}, \
          {name = \"pager\", format = \"pager\", url = \"https://x.example\"}]",
    );
    let said = String::from_utf8_lossy(&bad.stderr).to_string();
    assert_eq!(bad.status.code(), Some(2), "{said}");
    for (key, why) in [
        ("notify.webhooks[0].chat_id", "required"),
        (
            "notify.webhooks[1].url",
            "email notifiers take an address that starts with smtp:// or smtps://",
        ),
        (
            "notify.webhooks[1].chat_id",
            "not a setting of email notifiers",
        ),
        ("notify.webhooks[1].from", "must be the sender's address"),
        (
            "notify.webhooks[2].format",
            "must be one of ntfy, alertmanager, json, telegram, email",
        ),
    ] {
        let line = format!("{key} (from WATCHPOST_NOTIFY__WEBHOOKS): {why}");
        assert!(said.contains(&line), "{line} in {said}");
    }
}
