//! `GET /api/system/events/recent`: the newest security events from PostgreSQL, so a
//! client (the status page) that opens after they were created can still show them;
//! new ones arrive as `event.created` on the WebSocket.

use actix_web::web::Data;
use actix_web::{HttpRequest, HttpResponse};
use serde::Serialize;

use super::error::{ApiError, ErrorBody};
use super::query::QueryParams;
use crate::state::AppState;
use crate::store::RecentEvent;

#[derive(Serialize, utoipa::ToSchema)]
pub struct RecentEvents {
    events: Vec<RecentEvent>,
    count: usize,
}

/// The newest security events, newest first.
#[utoipa::path(get, path = "/api/system/events/recent", tag = "events",
    params(("limit" = Option<i64>, Query, minimum = 1, maximum = 100, description = "1-100, default 20")),
    responses((status = 200, body = RecentEvents), (status = 400, body = ErrorBody),
        (status = 503, description = "PostgreSQL is unreachable", body = ErrorBody)))]
pub async fn recent(state: Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let q = QueryParams::from_request(&req)?;
    let limit = q.int_in("limit", 20, 1, 100)?;
    let events = state
        .store
        .recent_events(limit)
        .await
        .map_err(|e| ApiError::Unavailable(format!("Events cannot be read now: {e}")))?;
    Ok(HttpResponse::Ok().json(RecentEvents {
        count: events.len(),
        events,
    }))
}
