//! `/api/system/supervisor*`: thin wrappers over `crate::supervisor::Supervisor`.

use actix_web::web::{Data, Path};
use actix_web::{HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::error::{ApiError, ErrorBody};
use super::memo::Memos;
use super::query::QueryParams;
use crate::state::AppState;
use crate::supervisor::{HistoryPage, SupervisorError, SupervisorStatus};

#[derive(Serialize, utoipa::ToSchema)]
pub struct StatusResponse {
    #[serde(flatten)]
    status: SupervisorStatus,
    timestamp: DateTime<Utc>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ControlResponse {
    success: bool,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    worker_name: Option<String>,
}

fn ok(message: String, worker_name: Option<String>) -> HttpResponse {
    HttpResponse::Ok().json(ControlResponse {
        success: true,
        message,
        worker_name,
    })
}

fn status_response(state: &AppState, memos: &Memos) -> HttpResponse {
    memos
        .supervisor
        .respond_stamped(state.supervisor.version(), || {
            (
                actix_web::http::StatusCode::OK,
                StatusResponse {
                    status: state.supervisor.status(),
                    timestamp: crate::time::now(),
                },
            )
        })
}

/// Supervisor and every supervised worker.
#[utoipa::path(get, path = "/api/system/supervisor", tag = "supervisor",
    responses((status = 200, body = StatusResponse)))]
pub async fn status(state: Data<AppState>, memos: Data<Memos>) -> HttpResponse {
    status_response(&state, &memos)
}

/// Alias of `/api/system/supervisor`.
#[utoipa::path(get, path = "/api/system/supervisor/status", tag = "supervisor",
    responses((status = 200, body = StatusResponse)))]
pub async fn status_alias(state: Data<AppState>, memos: Data<Memos>) -> HttpResponse {
    status_response(&state, &memos)
}

/// Start a stopped, crashed or failed worker.
#[utoipa::path(post, path = "/api/system/supervisor/workers/{name}/start", tag = "supervisor",
    params(("name" = String, Path, pattern = "^[a-zA-Z][a-zA-Z0-9_]*$", description = "Worker name")),
    security((), ("api_key" = [])),
    responses((status = 200, body = ControlResponse), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn start(state: Data<AppState>, name: Path<String>) -> Result<HttpResponse, ApiError> {
    state.supervisor.start_worker(&name)?;
    Ok(ok(
        format!("Worker '{name}' started successfully"),
        Some(name.into_inner()),
    ))
}

/// Stop a running worker (cooperatively, then abort after the grace period).
#[utoipa::path(post, path = "/api/system/supervisor/workers/{name}/stop", tag = "supervisor",
    params(("name" = String, Path, pattern = "^[a-zA-Z][a-zA-Z0-9_]*$", description = "Worker name")),
    security((), ("api_key" = [])),
    responses((status = 200, body = ControlResponse), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn stop(state: Data<AppState>, name: Path<String>) -> Result<HttpResponse, ApiError> {
    state.supervisor.stop_worker(&name).await?;
    Ok(ok(
        format!("Worker '{name}' stopped successfully"),
        Some(name.into_inner()),
    ))
}

/// Restart a worker from any state; its restart count returns to 0.
#[utoipa::path(post, path = "/api/system/supervisor/workers/{name}/restart", tag = "supervisor",
    params(("name" = String, Path, pattern = "^[a-zA-Z][a-zA-Z0-9_]*$", description = "Worker name")),
    security((), ("api_key" = [])),
    responses((status = 200, body = ControlResponse), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn restart(state: Data<AppState>, name: Path<String>) -> Result<HttpResponse, ApiError> {
    state.supervisor.restart_worker(&name).await?;
    Ok(ok(
        format!("Worker '{name}' restarted successfully"),
        Some(name.into_inner()),
    ))
}

/// Reset a worker's restart count; a failed worker is started again.
#[utoipa::path(post, path = "/api/system/supervisor/reset/{name}", tag = "supervisor",
    params(("name" = String, Path, pattern = "^[a-zA-Z][a-zA-Z0-9_]*$", description = "Worker name")),
    security((), ("api_key" = [])),
    responses((status = 200, body = ControlResponse), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn reset(state: Data<AppState>, name: Path<String>) -> Result<HttpResponse, ApiError> {
    state.supervisor.reset_worker(&name)?;
    Ok(ok(format!("Worker '{name}' restart count reset"), None))
}

/// Newest-first restart history, paginated.
#[utoipa::path(get, path = "/api/system/supervisor/restart-history", tag = "supervisor",
    params(
        ("worker_name" = Option<String>, Query, pattern = "^([a-zA-Z][a-zA-Z0-9_]*)?$", description = "Only this worker (empty: all)"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 100, description = "1-100, default 50"),
        ("offset" = Option<i64>, Query, minimum = 0, description = "0 or more, default 0")),
    responses((status = 200, body = HistoryPage), (status = 400, body = ErrorBody)))]
pub async fn history(state: Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let q = QueryParams::from_request(&req)?;
    let limit = q.int_in("limit", 50, 1, 100)?;
    let offset = q.int_in("offset", 0, 0, i64::MAX)?;
    let worker = q.text("worker_name").filter(|w| !w.is_empty());
    if let Some(w) = worker.filter(|w| !crate::config::is_valid_worker_name(w)) {
        return Err(SupervisorError::InvalidName(w.to_string()).into());
    }
    // Both bounds were checked above, so the conversions cannot fail.
    let page = state.supervisor.history(
        worker,
        usize::try_from(limit).unwrap_or(50),
        usize::try_from(offset).unwrap_or(usize::MAX),
    );
    Ok(HttpResponse::Ok().json(page))
}
