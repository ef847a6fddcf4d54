//! Liveness probes and the metrics exposition: no I/O beyond rendering memory.

use actix_web::web::Data;
use actix_web::HttpResponse;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::state::AppState;

#[derive(Serialize, utoipa::ToSchema)]
pub struct Alive {
    /// Always `alive`.
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    timestamp: Option<DateTime<Utc>>,
}

/// Process liveness; never touches a dependency.
#[utoipa::path(get, path = "/health", tag = "probes",
    responses((status = 200, description = "The process is alive", body = Alive)))]
pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(Alive {
        status: "alive",
        timestamp: None,
    })
}

/// Process liveness with the current time; never touches a dependency.
#[utoipa::path(get, path = "/api/system/health/live", tag = "probes",
    responses((status = 200, description = "The process is alive", body = Alive)))]
pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(Alive {
        status: "alive",
        timestamp: Some(crate::time::now()),
    })
}

/// Prometheus text exposition format 0.0.4.
#[utoipa::path(get, path = "/metrics", tag = "metrics",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain; version=0.0.4", body = String)))]
pub async fn metrics(state: Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.metrics.render())
}
