//! `GET /api/system/storage` (over `crate::storage::Storage`, from memory).

use actix_web::web::Data;
use actix_web::HttpResponse;

use crate::state::AppState;
use crate::storage::StorageView;

/// Every volume watchpost writes or depends on (`camera_root`, `spool`, `outbox`,
/// `postgres`): its size, free and used bytes, its growth over
/// `storage.forecast_window_seconds` and when it is forecast full (null when it is not
/// filling), as last measured; and what the last retention runs by size (of the
/// camera root, of the database) did.
#[utoipa::path(get, path = "/api/system/storage", tag = "monitoring",
    responses((status = 200, body = StorageView)))]
pub async fn volumes(state: Data<AppState>) -> HttpResponse {
    let mut view = state.storage.view();
    view.cleanup = state.pipeline.size_run();
    view.database_cleanup = state.pipeline.database_size_run();
    HttpResponse::Ok().json(view)
}
