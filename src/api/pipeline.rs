//! `GET /api/system/pipeline`: the live state of the watcher, the open batches and
//! the degradation manager; a queue's dead letters, listed and requeued.

use actix_web::web::{Data, Path};
use actix_web::{HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::sync::Arc;

use super::error::{ApiError, ErrorBody};
use super::memo::Memos;
use super::query::QueryParams;
use crate::health::degradation::DegradationSnapshot;
use crate::pipeline::queue::{DeadLetter, Queue};
use crate::pipeline::{BatchAggregatorView, DeadLettersView, FileWatcherView};
use crate::state::AppState;
use crate::supervisor::WorkerStatus;

#[derive(Serialize, utoipa::ToSchema)]
pub struct PipelineResponse {
    file_watcher: FileWatcherView,
    batch_aggregator: BatchAggregatorView,
    degradation: DegradationSnapshot,
    /// Items per queue waiting in its dead-letter stream.
    dead_letters: DeadLettersView,
    timestamp: DateTime<Utc>,
}

/// A page of a queue's dead letters, oldest first.
#[derive(Serialize, utoipa::ToSchema)]
pub struct DeadLettersResponse {
    queue: String,
    /// Dead letters in the queue's stream in all.
    total: u64,
    /// Items in this answer (at most `limit`).
    count: usize,
    items: Vec<DeadLetter>,
    timestamp: DateTime<Utc>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct RequeueResponse {
    queue: String,
    requeued: u64,
    message: String,
    timestamp: DateTime<Utc>,
}

/// Combined status of the pipeline components.
#[utoipa::path(get, path = "/api/system/pipeline", tag = "pipeline",
    responses((status = 200, body = PipelineResponse)))]
pub async fn status(state: Data<AppState>, memos: Data<Memos>) -> HttpResponse {
    memos.pipeline.respond(0, || {
        let watcher_running = state
            .supervisor
            .worker_status(crate::names::workers::FILE_WATCHER)
            == Some(WorkerStatus::Running);
        PipelineResponse {
            file_watcher: state.pipeline.file_watcher_view(watcher_running),
            batch_aggregator: state.pipeline.batch_view(),
            degradation: state.degradation.snapshot(),
            dead_letters: state.pipeline.dead_letters(),
            timestamp: crate::time::now(),
        }
    })
}

/// The queue a path names, or a 400 (malformed name) / 404 (no such queue).
fn queue_named<'a>(state: &'a AppState, name: &str) -> Result<&'a Arc<Queue>, ApiError> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(ApiError::BadRequest(format!(
            "Invalid queue name '{}': use letters, digits, '_' or '-'",
            name.escape_debug()
        )));
    }
    state.pipeline.queue(name).ok_or_else(|| {
        ApiError::NotFound(format!(
            "Queue '{name}' not found; valid queues: detection, analysis"
        ))
    })
}

/// The oldest dead letters of a queue (the first to fix), with why each was set aside.
#[utoipa::path(get, path = "/api/system/pipeline/dead-letters/{queue}", tag = "pipeline",
    params(("queue" = String, Path, pattern = "^(detection|analysis)$", description = "Queue name"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 100, description = "1-100, default 20")),
    responses((status = 200, body = DeadLettersResponse), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 503, description = "Redis is unreachable", body = ErrorBody)))]
pub async fn dead_letters(
    state: Data<AppState>,
    queue: Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let name = queue.into_inner();
    let q = queue_named(&state, &name)?;
    let limit = QueryParams::from_request(&req)?.int_in("limit", 20, 1, 100)?;
    // `int_in` bounded it to 1..=100.
    let (total, items) = q
        .list_dead(limit as usize)
        .await
        .map_err(|e| ApiError::Unavailable(format!("Cannot read dead letters: {e}")))?;
    Ok(HttpResponse::Ok().json(DeadLettersResponse {
        queue: name,
        total,
        count: items.len(),
        items,
        timestamp: crate::time::now(),
    }))
}

/// Move every dead letter of a queue back onto it (after the cause was fixed).
#[utoipa::path(post, path = "/api/system/pipeline/dead-letters/{queue}/requeue", tag = "pipeline",
    params(("queue" = String, Path, pattern = "^(detection|analysis)$", description = "Queue name")),
    security((), ("api_key" = [])),
    responses((status = 200, body = RequeueResponse), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub async fn requeue(state: Data<AppState>, queue: Path<String>) -> Result<HttpResponse, ApiError> {
    let name = queue.into_inner();
    let q = queue_named(&state, &name)?;
    let requeued = q
        .requeue_dead()
        .await
        .map_err(|e| ApiError::Unavailable(format!("Cannot requeue dead letters: {e}")))?;
    Ok(HttpResponse::Ok().json(RequeueResponse {
        message: format!("{requeued} dead letter(s) moved back to the {name} queue"),
        queue: name,
        requeued,
        timestamp: crate::time::now(),
    }))
}
