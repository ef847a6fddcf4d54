//! Health endpoints over `crate::health::Health`: full health (probes through the shared,
//! cached prober), readiness (cached results only, no I/O) and the broadcasters.

use actix_web::http::StatusCode;
use actix_web::web::Data;
use actix_web::HttpResponse;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::memo::Memos;
use crate::health::{FullHealth, HealthState, Readiness};
use crate::state::AppState;
use crate::ws::BroadcasterHealth;

/// Every dependency, worker and breaker: 200 when healthy or degraded, 503 when a
/// critical part is unhealthy.
#[utoipa::path(get, path = "/api/system/health/full", tag = "health",
    responses((status = 200, description = "Healthy or degraded", body = FullHealth),
        (status = 503, description = "A critical part is unhealthy", body = FullHealth)))]
pub async fn full(state: Data<AppState>, memos: Data<Memos>) -> HttpResponse {
    if let Some(fresh) = memos.full_health.fresh() {
        return fresh;
    }
    let round = state.health.prober().current().await;
    memos.full_health.respond_fresh(
        || state.health.version(&round),
        || {
            let health = state.health.full_from(&round);
            let status = if health.status == HealthState::Unhealthy {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::OK
            };
            (status, health)
        },
    )
}

/// Ready to work: PostgreSQL, Redis and every critical worker are fine (from the
/// latest probe round; never probes inline).
#[utoipa::path(get, path = "/ready", tag = "probes",
    responses((status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "Not ready, with the reasons", body = Readiness)))]
pub async fn ready(state: Data<AppState>) -> HttpResponse {
    readiness(&state)
}

/// Alias of `/ready`.
#[utoipa::path(get, path = "/api/system/health/ready", tag = "probes",
    responses((status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "Not ready, with the reasons", body = Readiness)))]
pub async fn ready_alias(state: Data<AppState>) -> HttpResponse {
    readiness(&state)
}

fn readiness(state: &AppState) -> HttpResponse {
    let r = state.health.readiness();
    let status = if r.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    HttpResponse::build(status).json(r)
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct WebSocketHealth {
    event_broadcaster: BroadcasterHealth,
    system_broadcaster: BroadcasterHealth,
    timestamp: DateTime<Utc>,
}

/// Both broadcasters' state.
#[utoipa::path(get, path = "/api/system/health/websocket", tag = "health",
    responses((status = 200, body = WebSocketHealth)))]
pub async fn websocket(state: Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(WebSocketHealth {
        event_broadcaster: state.event_broadcaster.health(),
        system_broadcaster: state.system_broadcaster.health(),
        timestamp: crate::time::now(),
    })
}
