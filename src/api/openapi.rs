//! `GET /openapi.json`: the OpenAPI document of every route in `api::routes`.

use actix_web::HttpResponse;
use std::sync::OnceLock;
use utoipa::OpenApi;

use super::{
    alerts, breakers, cameras, coverage, events, health, maintenance, monitoring, page,
    performance, pipeline, probes, supervisor, ws,
};

#[derive(OpenApi)]
#[openapi(
    info(title = "watchpost", description = "Monitoring and self-supervision core of a self-hosted AI camera pipeline."),
    paths(
        page::index, page::script, page::style, page::icon, page::runbook,
        probes::health, probes::live, health::ready, health::ready_alias, health::full,
        health::websocket, probes::metrics, document,
        supervisor::status, supervisor::status_alias, supervisor::start, supervisor::stop,
        supervisor::restart, supervisor::reset, supervisor::history,
        pipeline::status, pipeline::dead_letters, pipeline::requeue, breakers::list, breakers::reset,
        ws::events, ws::socket, monitoring::health, monitoring::targets,
        performance::current, performance::history, events::recent, alerts::list,
        alerts::silences, alerts::silence, alerts::unsilence, alerts::webhook,
        cameras::list, cameras::thumbnail, cameras::detail, cameras::remove, cameras::disable, cameras::enable,
        super::notifiers::list, super::notifiers::test,
        coverage::coverage, coverage::availability,
        maintenance::list, maintenance::create, maintenance::end, super::actions::act,
        super::storage::volumes, super::fleet::instances,
    ),
    components(schemas(super::error::ErrorBody)),
    modifiers(&ApiKeyScheme, &BrowserRefusals)
)]
struct ApiDoc;

/// The tag of the liveness and readiness probes (the routes of `Access::Probe`, which
/// the Host check exempts; a test in `api/mod.rs` keeps the two the same).
pub const PROBE_TAG: &str = "probes";

/// Every operation but the probes can answer 403 from `site.rs` (a foreign `Host`,
/// or a cross-origin write or WebSocket upgrade); document it where it is missing.
struct BrowserRefusals;

impl utoipa::Modify for BrowserRefusals {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        for item in openapi.paths.paths.values_mut() {
            for op in [&mut item.get, &mut item.post, &mut item.delete]
                .into_iter()
                .flatten()
            {
                let probe = op
                    .tags
                    .as_ref()
                    .is_some_and(|t| t.iter().any(|t| t == PROBE_TAG));
                if probe {
                    continue;
                }
                op.responses.responses.entry("403".into()).or_insert_with(|| {
                    ResponseBuilder::new()
                        .description("Refused: the Host is not one watchpost answers under (server.allowed_hosts), or a cross-origin browser request")
                        .content(
                            "application/json",
                            ContentBuilder::new()
                                .schema(Some(Ref::from_schema_name("ErrorBody")))
                                .build(),
                        )
                        .build()
                        .into()
                });
            }
        }
    }
}

struct ApiKeyScheme;

impl utoipa::Modify for ApiKeyScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
        if let Some(components) = openapi.components.as_mut() {
            components.add_security_scheme(
                "api_key",
                SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
            );
            // Alertmanager's webhook also takes `alerting.webhook_token` as a bearer.
            components.add_security_scheme(
                "webhook_token",
                SecurityScheme::Http(utoipa::openapi::security::Http::new(
                    utoipa::openapi::security::HttpAuthScheme::Bearer,
                )),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_but_the_probes_documents_the_browser_refusal() {
        let doc: serde_json::Value = serde_json::from_str(openapi_document()).expect("valid JSON");
        let paths = doc["paths"].as_object().expect("paths");
        for (path, item) in paths {
            for (method, op) in item.as_object().expect("path item") {
                let has_403 = op["responses"].get("403").is_some();
                let probe = [
                    "/health",
                    "/ready",
                    "/api/system/health/live",
                    "/api/system/health/ready",
                ]
                .contains(&path.as_str());
                assert_eq!(has_403, !probe, "{method} {path}");
            }
        }
    }
}
