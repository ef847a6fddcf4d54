//! Alertmanager's API v2, the calls watchpost makes: post alerts (as Prometheus
//! does), create a silence, list its own silences, expire a silence. An address is shown only as
//! `scheme://host[:port]` (`crate::redact::origin`); its answers only escaped.

use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

use crate::quiet::LabelMatch;

/// A silence watchpost made, as `GET /api/v2/silences` lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct Listed {
    pub id: String,
    /// `active` or `pending` (expired ones are not listed).
    pub state: String,
    pub comment: String,
}
/// One alert as Alertmanager's `POST /api/v2/alerts` takes it.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PostableAlert {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    #[serde(rename = "generatorURL")]
    pub generator_url: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct Matcher<'a> {
    name: &'a str,
    value: &'a str,
    is_regex: bool,
    is_equal: bool,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct PostableSilence<'a> {
    matchers: Vec<Matcher<'a>>,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    created_by: &'a str,
    comment: &'a str,
}

#[derive(Debug, thiserror::Error)]
pub enum AmError {
    /// Not reached, or no answer in time.
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// Reached, and refused what was sent.
    #[error("answered {status}: {body}")]
    Refused { status: u16, body: String },
}

/// The most of an Alertmanager's error answer that is shown.
const SHOWN: usize = 2048;

/// The HTTP client for a receiver outside (an Alertmanager, a notifier's webhook):
/// every call bounded by `timeout`, redirects not followed.
pub fn outside_client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_default()
}

/// One configured Alertmanager.
#[derive(Clone)]
pub struct Alertmanager {
    base: String,
    /// The address, masked: what logs and answers show.
    pub shown: String,
    /// A stable short name for it (the key of a silence's copies).
    pub key: String,
    http: reqwest::Client,
}

impl Alertmanager {
    pub fn new(url: &str, timeout: Duration) -> Self {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(url.as_bytes());
        Self {
            base: url.trim_end_matches('/').to_string(),
            shown: crate::redact::origin(url),
            key: digest[..6].iter().map(|b| format!("{b:02x}")).collect(),
            http: outside_client(timeout),
        }
    }

    async fn call(&self, req: reqwest::RequestBuilder) -> Result<String, AmError> {
        let unreachable = |e: reqwest::Error| {
            AmError::Unreachable(crate::redact::foreign(
                &crate::redact::error(&e.without_url()),
                SHOWN,
            ))
        };
        let resp = req.send().await.map_err(unreachable)?;
        let status = resp.status();
        let body = resp.text().await.map_err(unreachable)?;
        if status.is_success() {
            Ok(body)
        } else {
            // Shown in a log line: escaped and cut.
            Err(AmError::Refused {
                status: status.as_u16(),
                body: crate::redact::foreign(&crate::redact::text(&body), SHOWN),
            })
        }
    }

    /// `POST /api/v2/alerts`.
    pub async fn post_alerts(&self, alerts: &[PostableAlert]) -> Result<(), AmError> {
        self.call(
            self.http
                .post(format!("{}/api/v2/alerts", self.base))
                .json(alerts),
        )
        .await
        .map(|_| ())
    }

    /// `POST /api/v2/silences`: the id Alertmanager gave it.
    pub async fn create_silence(
        &self,
        matchers: &[LabelMatch],
        starts_at: DateTime<Utc>,
        ends_at: DateTime<Utc>,
        comment: &str,
    ) -> Result<String, AmError> {
        let body = PostableSilence {
            matchers: matchers
                .iter()
                .map(|m| Matcher {
                    name: &m.name,
                    value: &m.value,
                    is_regex: m.regex,
                    is_equal: true,
                })
                .collect(),
            starts_at,
            ends_at,
            created_by: "watchpost",
            // Alertmanager refuses a silence without a comment.
            comment: if comment.trim().is_empty() {
                "silenced in watchpost"
            } else {
                comment
            },
        };
        let answer = self
            .call(
                self.http
                    .post(format!("{}/api/v2/silences", self.base))
                    .json(&body),
            )
            .await?;
        let parsed: serde_json::Value =
            serde_json::from_str(&answer).map_err(|e| AmError::Refused {
                status: 200,
                body: format!("not JSON: {e}"),
            })?;
        parsed["silenceID"]
            .as_str()
            .map(str::to_string)
            .ok_or(AmError::Refused {
                status: 200,
                body: "no silenceID in the answer".into(),
            })
    }

    /// `GET /api/v2/silences` of watchpost's own alerts (`generator="watchpost"`,
    /// made by watchpost), not expired.
    pub async fn own_silences(&self, generator: &str) -> Result<Vec<Listed>, AmError> {
        let answer = self
            .call(
                self.http
                    .get(format!("{}/api/v2/silences", self.base))
                    .query(&[(
                        "filter",
                        format!("{}=\"{generator}\"", super::alert::GENERATOR_LABEL),
                    )]),
            )
            .await?;
        let parsed: Vec<serde_json::Value> =
            serde_json::from_str(&answer).map_err(|e| AmError::Refused {
                status: 200,
                body: format!("not a silence list: {e}"),
            })?;
        Ok(parsed
            .into_iter()
            .filter(|s| s["createdBy"] == "watchpost")
            .filter_map(|s| {
                let state = s["status"]["state"].as_str()?;
                (state != "expired").then(|| Listed {
                    id: s["id"].as_str().unwrap_or_default().to_string(),
                    state: state.to_string(),
                    comment: s["comment"].as_str().unwrap_or_default().to_string(),
                })
            })
            .collect())
    }

    /// `DELETE /api/v2/silence/{id}`; one already gone counts as expired.
    pub async fn expire_silence(&self, id: &str) -> Result<(), AmError> {
        let id: String = id
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        match self
            .call(
                self.http
                    .delete(format!("{}/api/v2/silence/{id}", self.base)),
            )
            .await
        {
            Err(AmError::Refused { status: 404, .. }) => Ok(()),
            other => other.map(|_| ()),
        }
    }
}
