//! Quiet on purpose: `GET/POST /api/system/maintenance` and
//! `DELETE /api/system/maintenance/{id}` (over `crate::quiet::Quiet`).

use actix_web::web::{Data, Path, Payload};
use actix_web::{HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::error::{ApiError, ErrorBody};
use crate::quiet::{NewWindow, WindowView};
use crate::state::AppState;

/// The largest body taken.
const BODY_LIMIT: usize = 16 * 1024;

/// `GET /api/system/maintenance`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct WindowList {
    pub windows: Vec<WindowView>,
    pub count: usize,
    pub timestamp: DateTime<Utc>,
}

/// Every maintenance window and snooze (the config's recurring ones and those made
/// here), whether it holds now, its current and next occurrence; those over for more
/// than a day are left out.
#[utoipa::path(get, path = "/api/system/maintenance", tag = "maintenance",
    responses((status = 200, body = WindowList)))]
pub async fn list(state: Data<AppState>) -> HttpResponse {
    let now = crate::time::now();
    let windows = state.quiet.list(now);
    HttpResponse::Ok().json(WindowList {
        count: windows.len(),
        windows,
        timestamp: now,
    })
}

/// Make a maintenance window (one-off: `starts_at` and `ends_at` or
/// `duration_seconds`; weekly: `days`, `start`, `duration_seconds`, `timezone`) or a
/// snooze (`kind` `snooze`: from now, at most `maintenance.max_snooze_seconds`). Alerts
/// in its scope are still decided, stored and shown, marked; nobody is told while it
/// holds, and what still fires when it ends is told then.
#[utoipa::path(post, path = "/api/system/maintenance", tag = "maintenance",
    request_body = NewWindow,
    security((), ("api_key" = [])),
    responses((status = 201, body = WindowView), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 408, description = "The body did not arrive within 10 s", body = ErrorBody),
        (status = 413, description = "Body over 16 KiB", body = ErrorBody),
        (status = 503, description = "PostgreSQL is unreachable; nothing was changed", body = ErrorBody)))]
pub async fn create(
    state: Data<AppState>,
    req: HttpRequest,
    body: Payload,
) -> Result<HttpResponse, ApiError> {
    let bytes = super::body::read(&req, body, BODY_LIMIT).await?;
    let new: NewWindow = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::BadRequest(format!("Invalid JSON body: {e}")))?;
    Ok(HttpResponse::Created().json(state.quiet.create(new).await?))
}

/// End a window or a snooze now (what still fires in its scope is told then).
#[utoipa::path(delete, path = "/api/system/maintenance/{id}", tag = "maintenance",
    params(("id" = String, Path, pattern = "^[0-9a-fA-F-]{1,64}$", description = "Window id")),
    security((), ("api_key" = [])),
    responses((status = 200, body = WindowView), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "A window of the config file", body = ErrorBody),
        (status = 503, description = "PostgreSQL is unreachable; nothing was changed", body = ErrorBody)))]
pub async fn end(state: Data<AppState>, id: Path<String>) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(ApiError::BadRequest(format!(
            "A window id is 1 to 64 letters, digits or '-' (got {id:?})"
        )));
    }
    Ok(HttpResponse::Ok().json(state.quiet.end(&id).await?))
}
