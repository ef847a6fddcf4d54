//! `/api/system/circuit-breakers`: thin wrappers over `crate::breaker::BreakerRegistry`.

use actix_web::web::{Data, Path};
use actix_web::HttpResponse;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::error::{ApiError, ErrorBody};
use super::memo::Memos;
use crate::breaker::{BreakerSnapshot, BreakerState};
use crate::json::OrderedMap;
use crate::state::AppState;

#[derive(Serialize, utoipa::ToSchema)]
pub struct BreakersResponse {
    /// Every breaker keyed by its name, in registry order.
    #[schema(value_type = std::collections::HashMap<String, BreakerSnapshot>)]
    circuit_breakers: OrderedMap<BreakerSnapshot>,
    total_count: usize,
    open_count: usize,
    timestamp: DateTime<Utc>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ResetResponse {
    name: String,
    previous_state: BreakerState,
    new_state: BreakerState,
    message: String,
    timestamp: DateTime<Utc>,
}

/// Every circuit breaker with its counters and configuration.
#[utoipa::path(get, path = "/api/system/circuit-breakers", tag = "circuit-breakers",
    responses((status = 200, body = BreakersResponse)))]
pub async fn list(state: Data<AppState>, memos: Data<Memos>) -> HttpResponse {
    memos.breakers.respond_fresh(
        || state.breakers.version(),
        || (actix_web::http::StatusCode::OK, render(&state)),
    )
}

fn render(state: &AppState) -> BreakersResponse {
    let circuit_breakers: Vec<BreakerSnapshot> =
        state.breakers.all().iter().map(|b| b.snapshot()).collect();
    let open = circuit_breakers
        .iter()
        .filter(|b| b.state == BreakerState::Open)
        .count();
    BreakersResponse {
        total_count: circuit_breakers.len(),
        open_count: open,
        circuit_breakers: OrderedMap(
            circuit_breakers
                .into_iter()
                .map(|b| (b.name.clone(), b))
                .collect(),
        ),
        timestamp: crate::time::now(),
    }
}

/// Force a breaker closed.
#[utoipa::path(post, path = "/api/system/circuit-breakers/{name}/reset", tag = "circuit-breakers",
    params(("name" = String, Path, pattern = "^[A-Za-z0-9_-]{1,64}$", description = "Breaker name")),
    security((), ("api_key" = [])),
    responses((status = 200, body = ResetResponse), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn reset(
    state: Data<AppState>,
    memos: Data<Memos>,
    name: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let breaker = state.breakers.lookup(&name)?;
    let previous_state = breaker.reset();
    // The next read shows the reset at once.
    memos.breakers.forget();
    memos.full_health.forget();
    Ok(HttpResponse::Ok().json(ResetResponse {
        name: name.into_inner(),
        previous_state,
        new_state: BreakerState::Closed,
        message: format!(
            "Circuit breaker '{}' reset from {} to closed",
            breaker.name(),
            previous_state.as_str()
        ),
        timestamp: crate::time::now(),
    }))
}
