//! The registry of notifier kinds: one line per kind, each kind one file here (see
//! `../kind.rs` for what a kind is). The `format` of a `[[notify.webhooks]]` entry
//! picks its kind by name; each kind checks its own settings here, before anything
//! starts.

use std::time::Duration;

use super::http;
use super::kind::{Deliver, Make, NotifierKind, Setup};
use crate::config::{NotifyConfig, WebhookConfig};

macro_rules! registry {
    ($($kind:ident,)*) => {
        $(mod $kind;)*
        /// Every kind, by the `format` that names it.
        pub static KINDS: &[&NotifierKind] = &[$(&$kind::KIND),*];
    };
}

registry! {
    ntfy,
    alertmanager,
    json,
    telegram,
    email,
}

/// The kind a `format` names.
pub fn find(format: &str) -> Option<&'static NotifierKind> {
    KINDS.iter().copied().find(|k| k.name == format)
}

/// Every problem of the notifiers' kind-specific settings, as `key: problem` lines
/// (the shapes and bounds are the config's own check): an unknown format, an address
/// of a scheme the kind does not take, options it does not know, lacks or refuses.
pub fn check(cfg: &NotifyConfig) -> Vec<String> {
    let mut problems = Vec::new();
    let names: Vec<&str> = KINDS.iter().map(|k| k.name).collect();
    for (i, w) in cfg.webhooks.iter().enumerate() {
        let key = |k: &str| format!("notify.webhooks[{i}].{k}");
        let Some(kind) = find(&w.format) else {
            problems.push(format!(
                "{}: must be one of {}",
                key("format"),
                names.join(", ")
            ));
            continue;
        };
        let scheme = reqwest::Url::parse(&w.url).map(|u| u.scheme().to_string());
        if !scheme.is_ok_and(|s| kind.schemes.contains(&s.as_str())) {
            let schemes: Vec<String> = kind.schemes.iter().map(|s| format!("{s}://")).collect();
            problems.push(format!(
                "{}: {} notifiers take an address that starts with {}",
                key("url"),
                kind.name,
                schemes.join(" or ")
            ));
        }
        if !kind.is_http() && (!w.headers.is_empty() || !w.token.is_empty()) {
            problems.push(format!(
                "{}: headers and token are for HTTP notifiers, not {} notifiers",
                key("headers"),
                kind.name
            ));
        }
        for name in w.options.keys() {
            if !kind.options.iter().any(|o| o.name == name) {
                let known: Vec<&str> = kind.options.iter().map(|o| o.name).collect();
                problems.push(format!(
                    "{}: not a setting of {} notifiers (they take {})",
                    key(&crate::redact::foreign(name, 64)),
                    kind.name,
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ));
            }
        }
        for o in kind.options {
            match w.options.get(o.name) {
                None if o.required => {
                    problems.push(format!("{}: required: {}", key(o.name), o.what));
                }
                Some(v) if !(o.valid)(v) => {
                    problems.push(format!("{}: must be {}", key(o.name), o.what));
                }
                _ => {}
            }
        }
    }
    problems
}

/// The deliverer of one entry of `notify.webhooks` (checked by [`check`]).
pub fn make(cfg: &WebhookConfig, timeout: Duration) -> Result<Box<dyn Deliver>, String> {
    let kind = find(&cfg.format).ok_or_else(|| format!("unknown format '{}'", cfg.format))?;
    let setup = Setup { cfg, timeout };
    match kind.make {
        Make::Http { path, render } => Ok(http::sender(&setup, path, render)),
        Make::Own(make) => make(&setup),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(format: &str, url: &str, options: &[(&str, &str)]) -> NotifyConfig {
        let mut cfg = NotifyConfig::default();
        cfg.webhooks.push(WebhookConfig {
            name: "n".into(),
            url: url.into(),
            format: format.into(),
            headers: Default::default(),
            token: String::new(),
            min_severity: "warning".into(),
            matchers: Default::default(),
            options: options
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        });
        cfg
    }

    #[test]
    fn every_registered_kind_is_checked_by_its_own_rules() {
        assert!(check(&hook("ntfy", "https://ntfy.sh/x", &[])).is_empty());
        let p = check(&hook("pager", "https://x", &[]));
        assert!(
            p[0].starts_with("notify.webhooks[0].format: must be one of ntfy"),
            "{p:?}"
        );
        let p = check(&hook("ntfy", "smtp://x", &[]));
        assert!(p[0].contains("starts with https:// or http://"), "{p:?}");
        let p = check(&hook("json", "https://x", &[("chat_id", "1")]));
        assert!(
            p[0].contains("chat_id: not a setting of json notifiers"),
            "{p:?}"
        );
    }

    #[test]
    fn kind_names_are_unique() {
        let mut names: Vec<&str> = KINDS.iter().map(|k| k.name).collect();
        names.sort_unstable();
        let n = names.len();
        names.dedup();
        assert_eq!(names.len(), n);
    }
}
