//! `/api/system/performance` and its history, over `crate::perf::sampler::PerfSampler`:
//! both read the sampler's ring, never the host or a database.

use actix_web::web::Data;
use actix_web::{HttpRequest, HttpResponse};
use serde::Serialize;
use std::sync::Arc;

use super::error::{ApiError, ErrorBody};
use super::memo::Memos;
use super::query::QueryParams;
use crate::perf::{PerformanceSnapshot, TIME_RANGES};
use crate::state::AppState;

/// The latest performance sample (GPU, AI models, inference, databases, host,
/// containers, alerts).
#[utoipa::path(get, path = "/api/system/performance", tag = "performance",
    responses((status = 200, body = PerformanceSnapshot)))]
pub async fn current(state: Data<AppState>, memos: Data<Memos>) -> HttpResponse {
    memos.performance.respond(state.perf.version(), || {
        state
            .perf
            .latest()
            .unwrap_or_else(|| Arc::new(PerformanceSnapshot::empty()))
    })
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct HistoryResponse {
    #[schema(value_type = Vec<PerformanceSnapshot>)]
    snapshots: Vec<Arc<PerformanceSnapshot>>,
    time_range: &'static str,
    count: usize,
}

/// At most 60 samples evenly spaced over the window, oldest first.
#[utoipa::path(get, path = "/api/system/performance/history", tag = "performance",
    params(("time_range" = Option<String>, Query, description = "5m (default), 15m or 60m", pattern = "^(5m|15m|60m)$")),
    responses((status = 200, body = HistoryResponse), (status = 400, body = ErrorBody)))]
pub async fn history(
    state: Data<AppState>,
    memos: Data<Memos>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let q = QueryParams::from_request(&req)?;
    let wanted = q.text("time_range").unwrap_or("5m");
    let Some((slot, (name, window))) = TIME_RANGES
        .iter()
        .enumerate()
        .find(|(_, (n, _))| *n == wanted)
    else {
        let valid: Vec<&str> = TIME_RANGES.iter().map(|(n, _)| *n).collect();
        return Err(ApiError::BadRequest(format!(
            "Query parameter 'time_range' must be one of {} (got {:?})",
            valid.join(", "),
            wanted
        )));
    };
    // The ring only changes when a sample is added, so each window's answer is
    // memoised by the sampler's version (and re-rendered at least every second, as
    // the window ends now).
    Ok(
        memos.performance_history[slot].respond(state.perf.version(), || {
            let snapshots = state.perf.history(*window);
            HistoryResponse {
                count: snapshots.len(),
                time_range: name,
                snapshots,
            }
        }),
    )
}
