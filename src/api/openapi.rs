//! `GET /openapi.json`: the OpenAPI document of every route in `api::routes`.

use actix_web::HttpResponse;
use std::sync::OnceLock;
use utoipa::OpenApi;

use super::{breakers, health, monitoring, performance, pipeline, probes, supervisor, ws};

#[derive(OpenApi)]
#[openapi(
    info(title = "watchpost", description = "Monitoring and self-supervision core of a self-hosted AI camera pipeline."),
    paths(
        probes::health, probes::live, health::ready, health::ready_alias, health::full,
        health::websocket, probes::metrics, document,
        supervisor::status, supervisor::status_alias, supervisor::start, supervisor::stop,
        supervisor::restart, supervisor::reset, supervisor::history,
        pipeline::status, pipeline::requeue, breakers::list, breakers::reset,
        ws::events, ws::socket, monitoring::health, monitoring::targets,
        performance::current, performance::history,
    ),
    components(schemas(super::error::ErrorBody)),
    modifiers(&ApiKeyScheme)
)]
struct ApiDoc;

struct ApiKeyScheme;

impl utoipa::Modify for ApiKeyScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
        if let Some(components) = openapi.components.as_mut() {
            components.add_security_scheme(
                "api_key",
                SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
            );
        }
    }
}

/// The document, built once.
pub fn openapi_document() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| ApiDoc::openapi().to_json().unwrap_or_else(|_| "{}".into()))
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "meta",
    responses((status = 200, description = "OpenAPI 3.1 document", content_type = "application/json")))]
pub async fn document() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(openapi_document())
}
