//! A small client of the Prometheus HTTP API: readiness (`/-/ready`), scrape targets
//! (`/api/v1/targets`), head series (`/api/v1/status/tsdb`) and the loaded
//! configuration (`/api/v1/status/config`, for the real global `scrape_interval`).
//! The calls of one snapshot run concurrently, each bounded by
//! `prometheus.timeout_seconds`.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

use crate::config::{secs, PrometheusConfig};

#[derive(Debug, Clone, thiserror::Error)]
pub enum PromApiError {
    #[error("{0}")]
    Unreachable(String),
    #[error("unexpected answer from Prometheus: {0}")]
    BadAnswer(String),
}

/// One active scrape target (also how `/api/system/monitoring/targets` lists it).
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct Target {
    pub job: String,
    pub instance: String,
    /// `up`, `down` or `unknown`.
    pub health: String,
    pub labels: BTreeMap<String, String>,
    pub last_scrape: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub scrape_duration_seconds: Option<f64>,
}

/// What one round of calls learned.
#[derive(Debug, Clone)]
pub struct PromSnapshot {
    pub ready: bool,
    pub targets: Vec<Target>,
    pub total_series: Option<u64>,
    pub scrape_interval_seconds: Option<f64>,
}

#[derive(Deserialize)]
struct Envelope<T> {
    status: String,
    data: Option<T>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct TargetsData {
    #[serde(rename = "activeTargets", default)]
    active: Vec<WireTarget>,
}

#[derive(Deserialize)]
struct WireTarget {
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    health: String,
    #[serde(rename = "lastScrape")]
    last_scrape: Option<String>,
    #[serde(rename = "lastError", default)]
    last_error: String,
    #[serde(rename = "lastScrapeDuration")]
    last_scrape_duration: Option<f64>,
}

#[derive(Deserialize)]
struct TsdbData {
    #[serde(rename = "headStats")]
    head_stats: HeadStats,
}

#[derive(Deserialize)]
struct HeadStats {
    #[serde(rename = "numSeries")]
    num_series: u64,
}

#[derive(Deserialize)]
struct ConfigData {
    yaml: String,
}

pub struct PromClient {
    http: reqwest::Client,
    base: String,
    timeout: Duration,
}

impl PromClient {
    pub fn new(cfg: &PrometheusConfig) -> Self {
        let timeout = secs(cfg.timeout_seconds);
        Self {
            http: reqwest::Client::builder()
                .timeout(timeout)
                .connect_timeout(timeout)
                .build()
                // rustls with bundled roots cannot fail to build; fall back anyway.
                .unwrap_or_default(),
            base: cfg.url.trim_end_matches('/').to_string(),
            timeout,
        }
    }

    /// The configured URL as it may be shown (password masked).
    pub fn shown_url(&self) -> String {
        crate::redact::url(&self.base)
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
    ) -> Result<T, PromApiError> {
        let url = format!("{}{path}", self.base);
        let call = async {
            let resp = self
                .http
                .get(&url)
                .send()
                .await
                .map_err(|e| self.unreachable(&e))?;
            let status = resp.status();
            let env: Envelope<T> = resp.json().await.map_err(|e| {
                PromApiError::BadAnswer(format!(
                    "{path}: HTTP {status}: {}",
                    crate::redact::error(&e)
                ))
            })?;
            match (env.status.as_str(), env.data) {
                ("success", Some(d)) => Ok(d),
                _ => Err(PromApiError::BadAnswer(format!(
                    "{path}: {}",
                    env.error.unwrap_or(env.status)
                ))),
            }
        };
        match tokio::time::timeout(self.timeout, call).await {
            Ok(r) => r,
            Err(_) => Err(self.no_answer()),
        }
    }

    fn no_answer(&self) -> PromApiError {
        PromApiError::Unreachable(format!(
            "no answer within {}s",
            crate::time::seconds_text(self.timeout)
        ))
    }

    /// A failed call, in one wording whichever timer fired first.
    fn unreachable(&self, e: &reqwest::Error) -> PromApiError {
        if e.is_timeout() {
            self.no_answer()
        } else {
            PromApiError::Unreachable(crate::redact::error(e))
        }
    }

    /// `GET /-/ready`.
    pub async fn ready(&self) -> Result<bool, PromApiError> {
        let call = self.http.get(format!("{}/-/ready", self.base)).send();
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(r)) => Ok(r.status().is_success()),
            Ok(Err(e)) => Err(self.unreachable(&e)),
            Err(_) => Err(self.no_answer()),
        }
    }

    /// Every active target.
    pub async fn targets(&self) -> Result<Vec<Target>, PromApiError> {
        let data: TargetsData = self.get_json("/api/v1/targets").await?;
        Ok(data
            .active
            .into_iter()
            .map(|t| Target {
                job: t.labels.get("job").cloned().unwrap_or_default(),
                instance: t.labels.get("instance").cloned().unwrap_or_default(),
                health: match t.health.as_str() {
                    "up" | "down" => t.health,
                    _ => "unknown".to_string(),
                },
                last_scrape: t
                    .last_scrape
                    .as_deref()
                    .and_then(crate::time::parse)
                    .filter(|d| d.timestamp() > 0),
                last_error: Some(crate::redact::text(&t.last_error)).filter(|e| !e.is_empty()),
                scrape_duration_seconds: t.last_scrape_duration,
                labels: t.labels,
            })
            .collect())
    }

    /// Series in the head block.
    pub async fn total_series(&self) -> Result<u64, PromApiError> {
        let data: TsdbData = self.get_json("/api/v1/status/tsdb").await?;
        Ok(data.head_stats.num_series)
    }

    /// The global `scrape_interval` of the loaded configuration, in seconds.
    pub async fn scrape_interval_seconds(&self) -> Result<f64, PromApiError> {
        let data: ConfigData = self.get_json("/api/v1/status/config").await?;
        global_scrape_interval(&data.yaml).ok_or_else(|| {
            PromApiError::BadAnswer("no global scrape_interval in the configuration".into())
        })
    }

    /// All four calls, concurrently. Fails only when Prometheus cannot be reached.
    pub async fn snapshot(&self) -> Result<PromSnapshot, PromApiError> {
        let (ready, targets, series, interval) = tokio::join!(
            self.ready(),
            self.targets(),
            self.total_series(),
            self.scrape_interval_seconds()
        );
        let targets = targets?;
        Ok(PromSnapshot {
            ready: ready.unwrap_or(false),
            targets,
            total_series: series.ok(),
            scrape_interval_seconds: interval.ok(),
        })
    }
}

/// `scrape_interval` of the `global:` block of a Prometheus configuration (as the API
/// prints it: two-space indentation).
pub fn global_scrape_interval(yaml: &str) -> Option<f64> {
    let mut in_global = false;
    for line in yaml.lines() {
        if !line.starts_with(' ') && !line.is_empty() {
            in_global = line.trim_end() == "global:";
            continue;
        }
        if in_global {
            if let Some(v) = line.trim().strip_prefix("scrape_interval:") {
                return parse_duration(v.trim().trim_matches('"'));
            }
        }
    }
    None
}

/// A Prometheus duration (`15s`, `1m30s`, `200ms`, `1h`) in seconds.
pub fn parse_duration(text: &str) -> Option<f64> {
    let mut total = 0.0;
    let mut rest = text;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        let n: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        total += n * match unit {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86_400.0,
            "w" => 604_800.0,
            "y" => 31_536_000.0,
            _ => return None,
        };
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_the_global_interval_are_read() {
        assert_eq!(parse_duration("15s"), Some(15.0));
        assert_eq!(parse_duration("1m30s"), Some(90.0));
        assert_eq!(parse_duration("200ms"), Some(0.2));
        assert_eq!(parse_duration("1h"), Some(3600.0));
        assert_eq!(parse_duration("soon"), None);
        assert_eq!(parse_duration(""), None);
        let yaml = "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n- job_name: x\n  scrape_interval: 5s\n";
        assert_eq!(global_scrape_interval(yaml), Some(1.0));
        assert_eq!(global_scrape_interval("scrape_configs: []\n"), None);
    }
}
