//! What the HTTP kinds share: one POST per entry to the configured address, with the
//! configured headers and bearer token and `X-Watchpost-Notification`. Success is a
//! 2xx answer; redirects are not followed. The address is shown only through the one
//! masking function (`crate::redact::origin`); errors and answers are masked of its
//! path and query (where tokens live) before they are shown.

use std::time::Duration;

use futures_util::future::BoxFuture;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE};

use super::channel::DeliveryError;
use super::kind::{Body, Deliver, Render, Setup};
use super::message::Entry;
use crate::alerts::Identity;
use crate::config::WebhookConfig;

/// The deliverer of an HTTP kind: POST what `render` makes to `url` + `path`.
pub fn sender(s: &Setup, path: &str, render: Render) -> Box<dyn Deliver> {
    Box::new(HttpSender {
        target: HttpTarget::new(s.cfg, s.timeout, path),
        cfg: s.cfg.clone(),
        render,
    })
}

struct HttpSender {
    target: HttpTarget,
    cfg: WebhookConfig,
    render: Render,
}

impl Deliver for HttpSender {
    fn deliver<'a>(
        &'a self,
        e: &'a Entry,
        who: &'a Identity,
    ) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move {
            let body = (self.render)(e, who, &self.cfg);
            self.target.post(e, body).await
        })
    }
}

/// The most of an error answer's body kept for `last_error`.
const ERROR_BODY: usize = 200;

struct HttpTarget {
    url: String,
    headers: HeaderMap,
    http: reqwest::Client,
}

impl HttpTarget {
    /// POSTs to the entry's `url` (with `path` appended, e.g. Telegram's
    /// `/sendMessage`).
    fn new(cfg: &WebhookConfig, timeout: Duration, path: &str) -> Self {
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
            url: format!("{}{path}", cfg.url),
            headers,
            http: crate::alerts::outside_client(timeout),
        }
    }

    /// POST `body`; `Ok` once the receiver answered 2xx.
    async fn post(&self, e: &Entry, body: Body) -> Result<(), DeliveryError> {
        let req = self
            .http
            .post(&self.url)
            .headers(self.headers.clone())
            .header("X-Watchpost-Notification", e.kind.as_str());
        let req = match body {
            Body::Json(v) => req.json(&v),
            Body::Text { text, headers } => {
                let mut req = req
                    .header(CONTENT_TYPE, "text/plain; charset=utf-8")
                    .body(text);
                for (k, v) in headers {
                    req = req.header(k, v);
                }
                req
            }
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
            let segments = u
                .path()
                .split('/')
                .filter(|s| s.len() > 8)
                .map(String::from);
            let secrets = std::iter::once(u.path().to_string())
                .chain(segments)
                .chain(values)
                .chain(raw.map(|(_, v)| v.to_string()));
            for secret in secrets.filter(|s| s.len() > 1) {
                text = text.replace(&secret, "…");
            }
        }
        crate::redact::foreign(&text, ERROR_BODY)
    }
}
