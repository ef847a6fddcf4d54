//! Which minutes went unwatched: `GET /api/system/coverage` and
//! `GET /api/system/availability` (over `crate::coverage::Coverage`).

use actix_web::web::Data;
use actix_web::{HttpRequest, HttpResponse};
use chrono::{DateTime, Duration, Utc};

use super::error::{ApiError, ErrorBody};
use super::query::QueryParams;
use crate::cameras::is_valid_camera_id;
use crate::coverage::{AvailabilityReport, CoverageReport, Window, MAX_INTERVAL_DAYS};
use crate::state::AppState;

fn time_param(q: &QueryParams, name: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
    q.text(name)
        .map(|text| {
            crate::time::parse(text).ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "Query parameter '{name}' must be an RFC 3339 time such as 2026-01-01T00:00:00Z (got {text:?})"
                ))
            })
        })
        .transpose()
}

/// Each camera's (or one camera's) unwatched intervals over `from`–`to` (default: the
/// last 24 hours; at most 90 days), each with its most specific cause, and the
/// seconds watched and unwatched over the part of the interval the history knows.
#[utoipa::path(get, path = "/api/system/coverage", tag = "coverage",
    params(
        ("camera" = Option<String>, Query, pattern = "^[a-z0-9_]{1,64}$", description = "One camera (default: every camera)"),
        ("from" = Option<String>, Query, format = DateTime, description = "RFC 3339; default: 24 hours before `to`"),
        ("to" = Option<String>, Query, format = DateTime, description = "RFC 3339; default: now")),
    responses((status = 200, body = CoverageReport),
        (status = 400, body = ErrorBody),
        (status = 404, description = "No such camera", body = ErrorBody),
        (status = 503, description = "PostgreSQL is unreachable", body = ErrorBody)))]
pub async fn coverage(state: Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let q = QueryParams::from_request(&req)?;
    let camera = match q.text("camera") {
        None => None,
        Some(id) if is_valid_camera_id(id) => Some(id),
        Some(id) => {
            return Err(ApiError::BadRequest(format!(
                "Query parameter 'camera' must be a camera id: 1 to 64 lower-case letters, digits or '_' (got {id:?})"
            )))
        }
    };
    let to = time_param(&q, "to")?.unwrap_or_else(crate::time::now);
    let from = time_param(&q, "from")?.unwrap_or(to - Duration::days(1));
    if from >= to {
        return Err(ApiError::BadRequest(
            "Query parameter 'from' must be before 'to'".into(),
        ));
    }
    if to - from > Duration::days(MAX_INTERVAL_DAYS) {
        return Err(ApiError::BadRequest(format!(
            "The interval from 'from' to 'to' must be at most {MAX_INTERVAL_DAYS} days"
        )));
    }
    Ok(HttpResponse::Ok().json(state.coverage.report(camera, from, to).await?))
}

/// The fraction of the window (`24h`, `7d`, `30d` or `90d`; default `24h`) each camera
/// was watched and each dependency up, exactly, from the stored spans; over the part
/// of the window the history knows (`since`).
#[utoipa::path(get, path = "/api/system/availability", tag = "coverage",
    params(("window" = Option<String>, Query, pattern = "^(24h|7d|30d|90d)$", description = "24h (default), 7d, 30d or 90d")),
    responses((status = 200, body = AvailabilityReport),
        (status = 400, body = ErrorBody),
        (status = 503, description = "PostgreSQL is unreachable", body = ErrorBody)))]
pub async fn availability(
    state: Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let q = QueryParams::from_request(&req)?;
    let text = q.text("window").unwrap_or("24h");
    let window = Window::parse(text).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "Query parameter 'window' must be 24h, 7d, 30d or 90d (got {text:?})"
        ))
    })?;
    Ok(HttpResponse::Ok().json(state.coverage.availability(window).await?))
}
