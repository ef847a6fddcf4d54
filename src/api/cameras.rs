//! `/api/system/cameras`: thin wrappers over `crate::cameras::CameraRegistry` (every
//! answer from memory, except a camera's newest events).

use actix_web::web::{Data, Path};
use actix_web::{HttpRequest, HttpResponse};
use serde::Serialize;

use super::error::{ApiError, ErrorBody};
use super::memo::Memos;
use super::query::QueryParams;
use crate::cameras::{CameraDetail, CameraList, CameraSummary};
use crate::state::AppState;

/// The answer to a removal.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Removed {
    pub id: String,
    pub removed: bool,
}

/// Every camera of the fleet (this instance's and, as last shared, every other
/// instance's, each with its `host`) with its status, why, when it last sent an image and what silence
/// is expected of it; with `hourly=true`, each with its images per hour over a day.
#[utoipa::path(get, path = "/api/system/cameras", tag = "cameras",
    params(("hourly" = Option<bool>, Query, description = "true: add each camera's images per hour over the last 24 hours")),
    responses((status = 200, body = CameraList), (status = 400, body = ErrorBody)))]
pub async fn list(
    state: Data<AppState>,
    memos: Data<Memos>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let q = QueryParams::from_request(&req)?;
    let hourly = match q.text("hourly") {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "Query parameter 'hourly' must be true or false (got {other:?})"
            )))
        }
    };
    // Not stamped per request: the body is served as it was rendered (at most
    // `CAMERAS_TTL` old, which its `timestamp` states), without a copy.
    let memo = if hourly {
        &memos.cameras_hourly
    } else {
        &memos.cameras
    };
    Ok(memo.respond(state.fleet.cameras_version(), || {
        state.fleet.camera_list(hourly)
    }))
}

/// One camera, with its images per hour over the last 24 hours and its newest events.
#[utoipa::path(get, path = "/api/system/cameras/{id}", tag = "cameras",
    params(("id" = String, Path, pattern = "^[a-z0-9_]{1,64}$", description = "Camera id (the folder name in lower case)")),
    responses((status = 200, body = CameraDetail), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "Another host's camera: the detail says which and where", body = ErrorBody)))]
pub async fn detail(state: Data<AppState>, id: Path<String>) -> Result<HttpResponse, ApiError> {
    state.fleet.camera_here(&id)?;
    Ok(HttpResponse::Ok().json(state.cameras.detail(&id).await?))
}

/// Turn a camera off: its images are skipped and it is not judged (no alerts).
#[utoipa::path(post, path = "/api/system/cameras/{id}/disable", tag = "cameras",
    params(("id" = String, Path, pattern = "^[a-z0-9_]{1,64}$", description = "Camera id")),
    security((), ("api_key" = [])),
    responses((status = 200, body = CameraSummary), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn disable(state: Data<AppState>, id: Path<String>) -> Result<HttpResponse, ApiError> {
    state.fleet.camera_here(&id)?;
    Ok(HttpResponse::Ok().json(state.cameras.set_disabled(&id, true)?))
}

/// Turn a camera on again: it is judged afresh.
#[utoipa::path(post, path = "/api/system/cameras/{id}/enable", tag = "cameras",
    params(("id" = String, Path, pattern = "^[a-z0-9_]{1,64}$", description = "Camera id")),
    security((), ("api_key" = [])),
    responses((status = 200, body = CameraSummary), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn enable(state: Data<AppState>, id: Path<String>) -> Result<HttpResponse, ApiError> {
    state.fleet.camera_here(&id)?;
    Ok(HttpResponse::Ok().json(state.cameras.set_disabled(&id, false)?))
}

/// Forget a camera (its state, rhythm and series). If its folder sends again, it comes
/// back as a new camera; disable it to keep it quiet instead.
#[utoipa::path(delete, path = "/api/system/cameras/{id}", tag = "cameras",
    params(("id" = String, Path, pattern = "^[a-z0-9_]{1,64}$", description = "Camera id")),
    security((), ("api_key" = [])),
    responses((status = 200, body = Removed), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn remove(state: Data<AppState>, id: Path<String>) -> Result<HttpResponse, ApiError> {
    state.fleet.camera_here(&id)?;
    state.cameras.remove(&id)?;
    Ok(HttpResponse::Ok().json(Removed {
        id: id.into_inner(),
        removed: true,
    }))
}

/// A small JPEG of an image under the camera root (the newest image of a camera, or
/// the picture behind an event): at most 320 pixels a side. Only files below the root,
/// never through a symlink, within `file_watcher.max_file_bytes`.
#[utoipa::path(get, path = "/api/system/thumbnail", tag = "cameras",
    params(("path" = String, Query, min_length = 1, max_length = 4096, description = "An image path as the API lists it (a camera's last_image_path, an event's image_path)")),
    responses((status = 200, description = "The thumbnail (image/jpeg)", content_type = "image/jpeg", body = Vec<u8>),
        (status = 400, description = "No path, or not an image file below the camera root", body = ErrorBody),
        (status = 404, description = "No image there any more", body = ErrorBody),
        (status = 422, description = "Not a JPEG or PNG image", body = ErrorBody),
        (status = 503, description = "It cannot be read now", body = ErrorBody)))]
pub async fn thumbnail(state: Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let q = QueryParams::from_request(&req)?;
    let path = q
        .text("path")
        .filter(|p| !p.is_empty() && p.len() <= 4096)
        .ok_or_else(|| {
            ApiError::BadRequest(
                "Query parameter 'path' must name an image under the camera root (1 to 4096 characters)".into(),
            )
        })?;
    let jpeg = state.pipeline.thumbnails.get(path).await?;
    Ok(HttpResponse::Ok()
        .content_type("image/jpeg")
        // Reused for a minute: a camera's newest image changes, an event's does not.
        .insert_header(("Cache-Control", "private, max-age=60"))
        .body(jpeg))
}
