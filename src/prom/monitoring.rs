//! The monitoring stack's health (`GET /api/system/monitoring/health`) and its scrape
//! targets (`GET /api/system/monitoring/targets`), from the Prometheus HTTP API.
//!
//! Rules (docs/behaviour.md §7): Prometheus unreachable → unhealthy. Reachable: healthy
//! while more targets are up than down; a tie with any target down, or more down than
//! up, is unhealthy; `unknown` targets (not scraped yet) are ignored. Each configured
//! exporter is matched to targets by job or by instance; when Prometheus is
//! unreachable, each exporter is probed directly at its `/metrics` so its status is
//! still known.

use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::client::{PromApiError, PromClient, PromSnapshot, Target};
use crate::config::ExporterConfig;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct JobSummary {
    pub job: String,
    pub total: usize,
    pub up: usize,
    pub down: usize,
    pub unknown: usize,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ExporterStatus {
    pub name: String,
    /// `up`, `down` or `unknown` (not scraped by Prometheus).
    pub status: String,
    pub endpoint: String,
    pub last_scrape: Option<DateTime<Utc>>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MetricsCollection {
    pub collecting: bool,
    pub last_successful_scrape: Option<DateTime<Utc>>,
    pub scrape_interval_seconds: Option<f64>,
    pub total_series: Option<u64>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MonitoringHealth {
    pub healthy: bool,
    pub prometheus_reachable: bool,
    pub prometheus_url: String,
    pub targets_summary: Vec<JobSummary>,
    pub exporters: Vec<ExporterStatus>,
    pub metrics_collection: MetricsCollection,
    pub issues: Vec<String>,
    pub timestamp: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TargetsView {
    pub targets: Vec<Target>,
    pub total: usize,
    pub up: usize,
    pub down: usize,
    pub jobs: Vec<String>,
    pub timestamp: DateTime<Utc>,
}

/// Healthy unless the down targets are at least as many as the up ones (and some are
/// down).
pub fn targets_healthy(up: usize, down: usize) -> bool {
    down == 0 || up > down
}

/// One entry per job, sorted by job.
pub fn summarize(targets: &[Target]) -> Vec<JobSummary> {
    let mut jobs: BTreeMap<&str, JobSummary> = BTreeMap::new();
    for t in targets {
        let s = jobs.entry(t.job.as_str()).or_insert_with(|| JobSummary {
            job: t.job.clone(),
            total: 0,
            up: 0,
            down: 0,
            unknown: 0,
        });
        s.total += 1;
        match t.health.as_str() {
            "up" => s.up += 1,
            "down" => s.down += 1,
            _ => s.unknown += 1,
        }
    }
    jobs.into_values().collect()
}

/// An exporter's targets: the job of its name, or the instance of its endpoint.
fn exporter_targets<'a>(e: &ExporterConfig, targets: &'a [Target]) -> Vec<&'a Target> {
    targets
        .iter()
        .filter(|t| t.job == e.name || t.instance == e.endpoint)
        .collect()
}

/// The assessment from a snapshot of a reachable Prometheus.
pub fn assess(
    url: String,
    snap: &PromSnapshot,
    exporters: &[ExporterConfig],
    now: DateTime<Utc>,
) -> MonitoringHealth {
    let up = snap.targets.iter().filter(|t| t.health == "up").count();
    let down = snap.targets.iter().filter(|t| t.health == "down").count();
    let mut issues = Vec::new();
    if !snap.ready {
        issues.push("Prometheus answers but is not ready yet".to_string());
    }
    for t in snap.targets.iter().filter(|t| t.health == "down") {
        issues.push(format!(
            "Target {} ({}) is down: {}",
            t.job,
            t.instance,
            t.last_error.as_deref().unwrap_or("no error reported")
        ));
    }
    let exporters: Vec<ExporterStatus> = exporters
        .iter()
        .map(|e| {
            let matched = exporter_targets(e, &snap.targets);
            let status = if matched.iter().any(|t| t.health == "up") {
                "up"
            } else if matched.iter().any(|t| t.health == "down") {
                "down"
            } else {
                issues.push(format!(
                    "Exporter {} ({}) is not scraped by Prometheus",
                    e.name,
                    crate::redact::url(&e.endpoint)
                ));
                "unknown"
            };
            ExporterStatus {
                name: e.name.clone(),
                status: status.into(),
                endpoint: crate::redact::url(&e.endpoint),
                last_scrape: matched.iter().filter_map(|t| t.last_scrape).max(),
                error: matched.iter().find_map(|t| t.last_error.clone()),
            }
        })
        .collect();
    let last_successful_scrape = snap
        .targets
        .iter()
        .filter(|t| t.health == "up")
        .filter_map(|t| t.last_scrape)
        .max();
    // Collecting: something was scraped within three intervals (or a minute).
    let window = snap
        .scrape_interval_seconds
        .map_or(60.0, |i| (i * 3.0).max(1.0));
    let collecting = last_successful_scrape
        .is_some_and(|t| (now - t).to_std().unwrap_or(Duration::ZERO).as_secs_f64() <= window);
    if !collecting {
        issues.push("No target has been scraped successfully recently".to_string());
    }
    let healthy = targets_healthy(up, down);
    if !healthy {
        issues.push(format!("{down} of {} scrape targets are down", up + down));
    }
    MonitoringHealth {
        healthy,
        prometheus_reachable: true,
        prometheus_url: url,
        targets_summary: summarize(&snap.targets),
        exporters,
        metrics_collection: MetricsCollection {
            collecting,
            last_successful_scrape,
            scrape_interval_seconds: snap.scrape_interval_seconds,
            total_series: snap.total_series,
        },
        issues,
        timestamp: now,
    }
}

/// The answer when Prometheus cannot be reached: exporters probed directly.
pub async fn unreachable(
    url: String,
    why: &PromApiError,
    exporters: &[ExporterConfig],
    timeout: Duration,
) -> MonitoringHealth {
    let http = reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .unwrap_or_default();
    let probes = exporters.iter().map(|e| probe_exporter(&http, e, timeout));
    let exporters = futures_util::future::join_all(probes).await;
    let mut issues = vec![format!("Prometheus server is not reachable: {why}")];
    for e in exporters.iter().filter(|e| e.status != "up") {
        issues.push(format!(
            "Exporter {} ({}) is down: {}",
            e.name,
            e.endpoint,
            e.error.as_deref().unwrap_or("no answer")
        ));
    }
    MonitoringHealth {
        healthy: false,
        prometheus_reachable: false,
        prometheus_url: url,
        targets_summary: Vec::new(),
        exporters,
        metrics_collection: MetricsCollection {
            collecting: false,
            last_successful_scrape: None,
            scrape_interval_seconds: None,
            total_series: None,
        },
        issues,
        timestamp: crate::time::now(),
    }
}

/// `GET http://<endpoint>/metrics`, parsed as the Prometheus text format.
async fn probe_exporter(
    http: &reqwest::Client,
    e: &ExporterConfig,
    timeout: Duration,
) -> ExporterStatus {
    let url = if e.endpoint.starts_with("http://") || e.endpoint.starts_with("https://") {
        format!("{}/metrics", e.endpoint.trim_end_matches('/'))
    } else {
        format!("http://{}/metrics", e.endpoint)
    };
    let result = async {
        let resp = http
            .get(&url)
            .send()
            .await
            .map_err(|e| crate::redact::error(&e))?;
        if !resp.status().is_success() {
            return Err(format!("HTTP {}", resp.status().as_u16()));
        }
        let text = resp.text().await.map_err(|e| crate::redact::error(&e))?;
        let lines = text.lines().map(|l| Ok(l.to_string()));
        let scrape = prometheus_parse::Scrape::parse(lines).map_err(|e| e.to_string())?;
        if scrape.samples.is_empty() {
            return Err("no samples in the exposition".to_string());
        }
        Ok(())
    };
    let outcome = match tokio::time::timeout(timeout, result).await {
        Ok(r) => r,
        Err(_) => Err(format!(
            "Timeout after {}s",
            crate::time::seconds_text(timeout)
        )),
    };
    ExporterStatus {
        name: e.name.clone(),
        status: if outcome.is_ok() { "up" } else { "down" }.into(),
        endpoint: crate::redact::url(&e.endpoint),
        last_scrape: Some(crate::time::now()),
        error: outcome.err(),
    }
}

/// `/api/system/monitoring/health`: always an answer.
pub async fn health(client: &PromClient, exporters: &[ExporterConfig]) -> MonitoringHealth {
    match client.snapshot().await {
        Ok(snap) => assess(client.shown_url(), &snap, exporters, crate::time::now()),
        Err(e) => unreachable(client.shown_url(), &e, exporters, client.timeout()).await,
    }
}

/// `/api/system/monitoring/targets`; `Err` when Prometheus cannot be reached.
pub async fn targets(client: &PromClient) -> Result<TargetsView, PromApiError> {
    let targets = client.targets().await?;
    let jobs: BTreeSet<String> = targets.iter().map(|t| t.job.clone()).collect();
    Ok(TargetsView {
        total: targets.len(),
        up: targets.iter().filter(|t| t.health == "up").count(),
        down: targets.iter().filter(|t| t.health == "down").count(),
        jobs: jobs.into_iter().collect(),
        targets,
        timestamp: crate::time::now(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(job: &str, instance: &str, health: &str) -> Target {
        Target {
            job: job.into(),
            instance: instance.into(),
            health: health.into(),
            labels: BTreeMap::new(),
            last_scrape: Some(crate::time::now()),
            last_error: (health == "down").then(|| "connection refused".to_string()),
            scrape_duration_seconds: Some(0.01),
        }
    }

    #[test]
    fn a_tie_with_targets_down_is_unhealthy_and_unknown_is_ignored() {
        assert!(targets_healthy(0, 0));
        assert!(targets_healthy(3, 0));
        assert!(targets_healthy(2, 1));
        assert!(!targets_healthy(1, 1), "a tie is unhealthy");
        assert!(!targets_healthy(1, 2));
        let snap = PromSnapshot {
            ready: true,
            targets: vec![
                target("watchpost", "a:1", "up"),
                target("redis-exporter", "b:2", "down"),
                target("blackbox", "c:3", "unknown"),
            ],
            total_series: Some(10),
            scrape_interval_seconds: Some(15.0),
        };
        let h = assess("u".into(), &snap, &[], crate::time::now());
        assert!(!h.healthy, "1 up, 1 down, the unknown one ignored");
        let jobs: Vec<&str> = h.targets_summary.iter().map(|j| j.job.as_str()).collect();
        assert_eq!(jobs, ["blackbox", "redis-exporter", "watchpost"]);
        assert!(h
            .issues
            .iter()
            .any(|i| i.contains("redis-exporter") && i.contains("down")));
    }

    #[test]
    fn exporters_match_by_job_or_instance() {
        let snap = PromSnapshot {
            ready: true,
            targets: vec![
                target("redis-exporter", "127.0.0.1:9121", "up"),
                target("blackbox", "127.0.0.1:9115", "down"),
            ],
            total_series: None,
            scrape_interval_seconds: None,
        };
        let exporters = [
            ExporterConfig {
                name: "redis-exporter".into(),
                endpoint: "elsewhere:1".into(),
            },
            ExporterConfig {
                name: "blackbox-exporter".into(),
                endpoint: "127.0.0.1:9115".into(),
            },
            ExporterConfig {
                name: "json-exporter".into(),
                endpoint: "127.0.0.1:7979".into(),
            },
        ];
        let h = assess("u".into(), &snap, &exporters, crate::time::now());
        let status: Vec<&str> = h.exporters.iter().map(|e| e.status.as_str()).collect();
        assert_eq!(status, ["up", "down", "unknown"]);
        assert_eq!(h.exporters[1].error.as_deref(), Some("connection refused"));
    }
}
