//! `GET /api/system/instances` (over `crate::fleet::Fleet`, from memory).

use actix_web::web::Data;
use actix_web::HttpResponse;
use serde::Serialize;

use crate::fleet::InstanceView;
use crate::state::AppState;

#[derive(Serialize, utoipa::ToSchema)]
pub struct InstancesResponse {
    /// The id of the instance that answers.
    #[serde(rename = "self")]
    this: String,
    instances: Vec<InstanceView>,
}

/// Every instance sharing this Redis and PostgreSQL (this one included), as the
/// fleet's last heartbeat judged them: `up`, or `lost` once no heartbeat came for
/// `fleet.lost_after_seconds`; their cameras and their pending items per queue.
#[utoipa::path(get, path = "/api/system/instances", tag = "monitoring",
    responses((status = 200, body = InstancesResponse)))]
pub async fn instances(state: Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(InstancesResponse {
        this: state.fleet.id().to_string(),
        instances: state.fleet.view(),
    })
}
