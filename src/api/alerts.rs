//! The alerts: `GET /api/system/alerts` (the history, over
//! `crate::alerts::AlertEngine`), the silences (`crate::alerts::Silences`) and
//! Alertmanager's webhook (`POST /api/webhooks/alerts`).

use actix_web::http::StatusCode;
use actix_web::web::Data;
use actix_web::{HttpRequest, HttpResponse};
use serde::Serialize;

use super::error::{ApiError, ErrorBody};
use super::query::QueryParams;
use crate::alerts::{Alert, AlertPage, NewSilence, Payload, Receipt, Silence};
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

/// The silences, as listed.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SilenceList {
    /// Active and pending silences, and those ended within the last week; the
    /// latest-ending first.
    pub items: Vec<Silence>,
}

/// A silence id as the API takes it (a UUID).
fn silence_id(id: &str) -> Result<&str, ApiError> {
    if (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
        Ok(id)
    } else {
        Err(ApiError::BadRequest(format!(
            "A silence id is a UUID such as 0b7b5c3e-8d1f-4c55-9a51-2f3a0e6f1c2d (got {:?})",
            id.chars().take(80).collect::<String>()
        )))
    }
}

/// Every silence: active, pending, and ended within the last week.
#[utoipa::path(get, path = "/api/system/alerts/silences", tag = "alerts",
    responses((status = 200, body = SilenceList),
        (status = 503, description = "PostgreSQL is unreachable", body = ErrorBody)))]
pub async fn silences(state: Data<AppState>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(SilenceList {
        items: state.silences.list().await?,
    }))
}

/// Silence alerts: those whose labels match every matcher are still decided, stored
/// and listed (marked), but not sent out, here or by Alertmanager (which gets a copy).
#[utoipa::path(post, path = "/api/system/alerts/silences", tag = "alerts",
    request_body = NewSilence,
    security((), ("api_key" = [])),
    responses((status = 201, body = Silence), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 408, description = "The body did not arrive within 10 s", body = ErrorBody),
        (status = 409, description = "Too many silences", body = ErrorBody),
        (status = 413, description = "Body over 16 KiB", body = ErrorBody),
        (status = 503, description = "PostgreSQL is unreachable; nothing was changed", body = ErrorBody)))]
pub async fn silence(
    state: Data<AppState>,
    req: HttpRequest,
    body: actix_web::web::Payload,
) -> Result<HttpResponse, ApiError> {
    let bytes = super::body::read(&req, body, SILENCE_BODY_LIMIT).await?;
    let new: NewSilence = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::BadRequest(format!("Invalid JSON body: {e}")))?;
    let created = state.silences.create(new).await?;
    Ok(HttpResponse::Created().json(created))
}

/// The largest silence body taken.
const SILENCE_BODY_LIMIT: usize = 16 * 1024;

/// End a silence now (and its copies in Alertmanager). Ending an ended one changes
/// nothing.
#[utoipa::path(delete, path = "/api/system/alerts/silences/{id}", tag = "alerts",
    params(("id" = String, Path, pattern = "^[0-9a-fA-F-]{1,64}$", description = "Silence id")),
    security((), ("api_key" = [])),
    responses((status = 200, body = Silence), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 503, description = "PostgreSQL is unreachable; nothing was changed", body = ErrorBody)))]
pub async fn unsilence(
    state: Data<AppState>,
    id: actix_web::web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = silence_id(&id)?;
    Ok(HttpResponse::Ok().json(state.silences.expire(id).await?))
}

/// The largest webhook body taken.
const WEBHOOK_BODY_LIMIT: usize = 1024 * 1024;

/// Alertmanager's webhook (payload version 4): each alert fires or resolves as an
/// alert of source `prometheus`; a repeat changes nothing.
#[utoipa::path(post, path = "/api/webhooks/alerts", tag = "alerts",
    request_body = Payload,
    security((), ("api_key" = []), ("webhook_token" = [])),
    responses((status = 200, body = Receipt), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 408, description = "The body did not arrive within 10 s", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
        (status = 422, description = "Not an Alertmanager webhook payload", body = ErrorBody),
        (status = 429, description = "It would hold more received alerts than watchpost keeps (5,000)", body = ErrorBody)))]
pub async fn webhook(
    state: Data<AppState>,
    req: HttpRequest,
    body: actix_web::web::Payload,
) -> Result<HttpResponse, ApiError> {
    let bytes = super::body::read(&req, body, WEBHOOK_BODY_LIMIT).await?;
    let payload: Payload = super::body::json(&bytes, "an Alertmanager webhook payload")?;
    let receipt = state.alerts.receive(&payload).await?;
    Ok(HttpResponse::Ok().json(receipt))
}
