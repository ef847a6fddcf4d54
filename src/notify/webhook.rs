//! A webhook notifier: one POST per transition, in the configured format, with the
//! configured headers and bearer token. Success is a 2xx answer; redirects are not
//! followed. The address is shown only as `scheme://host[:port]`; the token never.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE};

use super::channel::DeliveryError;
use super::message::{self, Entry};
use crate::alerts::Identity;
use crate::config::WebhookConfig;

/// The most of an error answer's body kept for `last_error`.
const ERROR_BODY: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Ntfy,
    Alertmanager,
    Json,
}

pub struct Webhook {
    name: String,
    url: String,
    pub shown: String,
    pub format: Format,
    headers: HeaderMap,
    http: reqwest::Client,
}

impl Webhook {
    pub fn new(cfg: &WebhookConfig, timeout: Duration) -> Self {
        let mut headers = HeaderMap::new();
        for (k, v) in &cfg.headers {
            // Checked by the config: a name of letters, digits and -, a clean value.
            if let (Ok(k), Ok(v)) = (HeaderName::try_from(k.as_str()), HeaderValue::from_str(v)) {
                headers.insert(k, v);
            }
        }
        if !cfg.token.is_empty() {
            if let Ok(mut v) = HeaderValue::from_str(&format!("Bearer {}", cfg.token)) {
                v.set_sensitive(true);
                headers.insert(AUTHORIZATION, v);
            }
        }
        Self {
            name: cfg.name.clone(),
            url: cfg.url.clone(),
            shown: crate::redact::origin(&cfg.url),
            format: match cfg.format.as_str() {
                "ntfy" => Format::Ntfy,
                "alertmanager" => Format::Alertmanager,
                _ => Format::Json,
            },
            headers,
            http: crate::alerts::outside_client(timeout),
        }
    }

    pub fn format_name(&self) -> &'static str {
        match self.format {
            Format::Ntfy => "ntfy",
            Format::Alertmanager => "alertmanager",
            Format::Json => "json",
        }
    }

    /// POST `e`; `Ok` once the receiver answered 2xx.
    pub async fn deliver(&self, e: &Entry, who: &Identity) -> Result<(), DeliveryError> {
        let req = self
            .http
            .post(&self.url)
            .headers(self.headers.clone())
            .header("X-Watchpost-Notification", e.kind.as_str());
        let req = match self.format {
            Format::Ntfy => {
                let n = message::ntfy(e, who);
                let mut req = req
                    .header(CONTENT_TYPE, "text/plain; charset=utf-8")
                    .body(n.body);
                for (k, v) in n.headers {
                    req = req.header(k, v);
                }
                req
            }
            Format::Alertmanager => req.json(&message::alertmanager(e, &self.name, who)),
            Format::Json => req.json(&message::plain(e)),
        };
        let resp = req.send().await.map_err(|err| {
            // The error would name the URL, whose path is the secret.
            DeliveryError::Unreachable(self.shown_text(&crate::redact::error(&err.without_url())))
        })?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let body = resp.text().await.unwrap_or_default();
        Err(DeliveryError::Refused {
            status: status.as_u16(),
            body: self.shown_text(&body),
        })
    }

    /// Text about a delivery as it may be shown: without this notifier's address
    /// (a receiver may quote it), escaped and bounded.
    fn shown_text(&self, text: &str) -> String {
        let mut text = crate::redact::text(text);
        if let Ok(u) = reqwest::Url::parse(&self.url) {
            let values: Vec<String> = u.query_pairs().map(|(_, v)| v.into_owned()).collect();
            let raw = u
                .query()
                .unwrap_or("")
                .split('&')
                .filter_map(|p| p.split_once('='));
            let secrets = std::iter::once(u.path().to_string())
                .chain(values)
                .chain(raw.map(|(_, v)| v.to_string()));
            for secret in secrets.filter(|s| s.len() > 1) {
                text = text.replace(&secret, "…");
            }
        }
        crate::redact::foreign(&text, ERROR_BODY)
    }
}
