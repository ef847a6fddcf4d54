//! `GET /api/system/pipeline`: the live state of the watcher, the open batches and
//! the degradation manager.

use actix_web::web::Data;
use actix_web::HttpResponse;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::memo::Memos;
use crate::pipeline::degradation::DegradationSnapshot;
use crate::pipeline::{BatchAggregatorView, FileWatcherView};
use crate::state::AppState;
use crate::supervisor::WorkerStatus;

#[derive(Serialize, utoipa::ToSchema)]
pub struct PipelineResponse {
    file_watcher: FileWatcherView,
    batch_aggregator: BatchAggregatorView,
    degradation: DegradationSnapshot,
    timestamp: DateTime<Utc>,
}

/// Combined status of the pipeline components.
#[utoipa::path(get, path = "/api/system/pipeline", tag = "pipeline",
    responses((status = 200, body = PipelineResponse)))]
pub async fn status(state: Data<AppState>, memos: Data<Memos>) -> HttpResponse {
    memos.pipeline.respond(0, || {
        let watcher_running =
            state.supervisor.worker_status("file_watcher") == Some(WorkerStatus::Running);
        PipelineResponse {
            file_watcher: state.pipeline.file_watcher_view(watcher_running),
            batch_aggregator: state.pipeline.batch_view(),
            degradation: state.degradation.snapshot(),
            timestamp: crate::time::now(),
        }
    })
}
