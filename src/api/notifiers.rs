//! `/api/system/notifiers`: thin wrappers over `crate::notify::Notifiers`.

use actix_web::web::{Data, Path};
use actix_web::HttpResponse;

use super::error::{ApiError, ErrorBody};
use crate::notify::{NotifierList, TestDelivery};
use crate::state::AppState;

/// Every notifier with its state (a breaker's), what waits in its outbox, its last
/// success and its last error (addresses masked), and the dead man's switch.
#[utoipa::path(get, path = "/api/system/notifiers", tag = "notifiers",
    responses((status = 200, body = NotifierList)))]
pub async fn list(state: Data<AppState>) -> HttpResponse {
    let mut list = state.notifiers.list();
    list.heartbeat = state.heartbeat.as_ref().map(|h| h.view());
    HttpResponse::Ok().json(list)
}

/// Send a test message through a notifier (behind what waits in its outbox) and wait
/// up to 10 s for the receiver's acknowledgement.
#[utoipa::path(post, path = "/api/system/notifiers/{name}/test", tag = "notifiers",
    params(("name" = String, Path, pattern = "^[a-z0-9_-]{1,32}$", description = "The notifier's configured name")),
    responses((status = 200, body = TestDelivery), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 503, description = "The outbox is full of waiting transitions; no test was queued", body = ErrorBody),
        (status = 504, body = ErrorBody)))]
pub async fn test(state: Data<AppState>, name: Path<String>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.notifiers.test(&name).await?))
}
