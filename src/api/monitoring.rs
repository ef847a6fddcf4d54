//! `/api/system/monitoring/*`: the Prometheus stack, over `crate::prom::monitoring`.

use actix_web::web::Data;
use actix_web::HttpResponse;

use super::error::{ApiError, ErrorBody};
use crate::prom::monitoring::{self, MonitoringHealth, TargetsView};
use crate::state::AppState;

/// Health of the monitoring stack; always 200 (`healthy` says it).
#[utoipa::path(get, path = "/api/system/monitoring/health", tag = "monitoring",
    responses((status = 200, body = MonitoringHealth)))]
pub async fn health(state: Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .json(monitoring::health(&state.prometheus, &state.config.prometheus.exporters).await)
}

/// Every Prometheus scrape target; 503 when Prometheus cannot be reached.
#[utoipa::path(get, path = "/api/system/monitoring/targets", tag = "monitoring",
    responses((status = 200, body = TargetsView),
        (status = 503, description = "Prometheus server is not reachable", body = ErrorBody)))]
pub async fn targets(state: Data<AppState>) -> Result<HttpResponse, ApiError> {
    match monitoring::targets(&state.prometheus).await {
        Ok(t) => Ok(HttpResponse::Ok().json(t)),
        Err(e) => Err(ApiError::Unavailable(format!(
            "Prometheus server is not reachable: {e}"
        ))),
    }
}
