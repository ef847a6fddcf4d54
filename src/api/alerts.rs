//! `GET /api/system/alerts`: the alert history, over `crate::alerts::AlertEngine`.

use actix_web::http::StatusCode;
use actix_web::web::Data;
use actix_web::{HttpRequest, HttpResponse};
use serde::Serialize;

use super::error::{ApiError, ErrorBody};
use super::query::QueryParams;
use crate::alerts::{Alert, AlertPage};
use crate::json::Pagination;
use crate::state::AppState;
use crate::store::{AlertQuery, AlertState};

/// The answer while PostgreSQL is away: why, and the alerts firing now from memory.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AlertsFromMemory {
    pub detail: String,
    pub items: Vec<Alert>,
    pub pagination: Pagination,
    /// Always `true`: these come from the engine's memory, not the history.
    pub from_memory: bool,
}

/// A source as the API takes it: `postgres`, `ai`, `ai:yolo26`, `worker:file_watcher`…
fn valid_source(s: &str) -> bool {
    (1..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_:.-".contains(&b))
}

/// The alert history, newest first: `state` `firing` (default), `resolved` or `all`;
/// `since` (alerts still firing at or after it); `source` (exact, or a kind such as
/// `ai`); `limit` 1–100 (default 50); `offset`.
#[utoipa::path(get, path = "/api/system/alerts", tag = "alerts",
    params(
        ("state" = Option<String>, Query, pattern = "^(firing|resolved|all)$", description = "firing (default), resolved or all"),
        ("since" = Option<String>, Query, format = DateTime, description = "Only alerts still firing at or after this time (RFC 3339)"),
        ("source" = Option<String>, Query, pattern = "^[A-Za-z0-9_:.-]{1,128}$", description = "An exact source (ai:yolo26) or a kind (ai)"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 100, description = "1-100, default 50"),
        ("offset" = Option<i64>, Query, minimum = 0, description = "0 or more, default 0")),
    responses((status = 200, body = AlertPage),
        (status = 400, body = ErrorBody),
        (status = 503, description = "PostgreSQL is unreachable: the firing alerts from memory, with a detail", body = AlertsFromMemory)))]
pub async fn list(state: Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let q = QueryParams::from_request(&req)?;
    let which = match q.text("state").unwrap_or("firing") {
        "firing" => AlertState::Firing,
        "resolved" => AlertState::Resolved,
        "all" => AlertState::All,
        other => {
            return Err(ApiError::BadRequest(format!(
                "Query parameter 'state' must be firing, resolved or all (got {other:?})"
            )))
        }
    };
    let since = match q.text("since") {
        None => None,
        Some(text) => Some(crate::time::parse(text).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "Query parameter 'since' must be an RFC 3339 time such as 2026-01-01T00:00:00Z (got {text:?})"
            ))
        })?),
    };
    let source = match q.text("source") {
        None => None,
        Some(s) if valid_source(s) => Some(s.to_string()),
        Some(s) => {
            return Err(ApiError::BadRequest(format!(
                "Query parameter 'source' must be 1 to 128 letters, digits, '_', ':', '.' or '-' (got {s:?})"
            )))
        }
    };
    let limit = q.int_in("limit", 50, 1, 100)?;
    let offset = q.int_in("offset", 0, 0, i64::MAX)?;
    let query = AlertQuery {
        state: which,
        since,
        source,
        limit,
        offset,
    };
    match state.alerts.history(&query).await {
        Ok(page) => Ok(HttpResponse::Ok().json(page)),
        Err(e) => {
            let items_count = e.firing.len();
            let body = AlertsFromMemory {
                detail: e.to_string(),
                pagination: Pagination::new(items_count, items_count, 0, items_count),
                items: e.firing,
                from_memory: true,
            };
            Ok(HttpResponse::build(StatusCode::SERVICE_UNAVAILABLE).json(body))
        }
    }
}
