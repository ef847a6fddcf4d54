//! The containers of the local Docker engine, when its socket is reachable: `GET
//! /containers/json` over the Unix socket. `[]` when there is no engine.

use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::snapshot::ContainerStatus;

const SOCKET: &str = "/var/run/docker.sock";
const TIMEOUT: Duration = Duration::from_secs(2);
const MAX_ANSWER: u64 = 4 * 1024 * 1024;

pub async fn sample() -> Vec<ContainerStatus> {
    if !Path::new(SOCKET).exists() {
        return Vec::new();
    }
    tokio::time::timeout(TIMEOUT, query())
        .await
        .ok()
        .flatten()
        .unwrap_or_default()
}

async fn query() -> Option<Vec<ContainerStatus>> {
    let mut s = tokio::net::UnixStream::connect(SOCKET).await.ok()?;
    s.write_all(b"GET /containers/json HTTP/1.0\r\nHost: docker\r\n\r\n")
        .await
        .ok()?;
    let mut answer = Vec::new();
    s.take(MAX_ANSWER).read_to_end(&mut answer).await.ok()?;
    let text = String::from_utf8_lossy(&answer);
    let body = text.split_once("\r\n\r\n")?.1;
    parse(body)
}

/// The engine's JSON list → name (without the leading `/`), state, and the health in
/// its status text (`healthy`, `unhealthy`, `starting`, or `none`).
pub fn parse(body: &str) -> Option<Vec<ContainerStatus>> {
    let list: Vec<serde_json::Value> = serde_json::from_str(body).ok()?;
    Some(
        list.iter()
            .map(|c| {
                let status = c["Status"].as_str().unwrap_or_default();
                let health = ["unhealthy", "healthy", "starting"]
                    .into_iter()
                    .find(|h| status.contains(&format!("({h}")))
                    .unwrap_or("none");
                ContainerStatus {
                    name: c["Names"][0]
                        .as_str()
                        .unwrap_or("unknown")
                        .trim_start_matches('/')
                        .to_string(),
                    status: c["State"].as_str().unwrap_or("unknown").to_string(),
                    health: health.into(),
                }
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_engine_list_becomes_name_status_health() {
        let body = r#"[{"Names":["/watchpost-redis-1"],"State":"running","Status":"Up 3 hours (healthy)"},
                      {"Names":["/grafana"],"State":"exited","Status":"Exited (0) 2 minutes ago"}]"#;
        let c = parse(body).expect("json");
        assert_eq!(
            (
                c[0].name.as_str(),
                c[0].status.as_str(),
                c[0].health.as_str()
            ),
            ("watchpost-redis-1", "running", "healthy")
        );
        assert_eq!(c[1].health, "none");
    }
}
