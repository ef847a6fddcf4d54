//! One tap: `POST /api/actions/{token}` (over `crate::actions::Actions`). The token
//! in the path is the whole authority (`Access::Action`): no key, no loopback, no
//! origin rule; it is checked, used once and only then acted on.

use actix_web::web::{Data, Path};
use actix_web::HttpResponse;

use super::error::{ApiError, ErrorBody};
use crate::actions::Done;
use crate::state::AppState;

/// Do what a notification's button grants: snooze what the alert is about for 1 or
/// 8 hours, or acknowledge it. Each link works once, on any instance, until it
/// expires (`notify.action_ttl_seconds`); the link alone authorises it.
#[utoipa::path(post, path = "/api/actions/{token}", tag = "maintenance",
    params(("token" = String, Path, description = "The signed token of one button")),
    responses((status = 200, body = Done),
        (status = 400, description = "The snooze is refused by the configuration (maintenance.max_snooze_seconds)", body = ErrorBody),
        (status = 403, description = "Not a valid link, expired, or used already", body = ErrorBody),
        (status = 503, description = "PostgreSQL is unreachable; nothing was done and the link still works", body = ErrorBody)))]
pub async fn act(state: Data<AppState>, token: Path<String>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.actions.redeem(&token).await?))
}
