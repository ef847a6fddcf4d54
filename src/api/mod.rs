//! HTTP edge: the only module that knows actix-web. Handlers parse, call the domain and
//! serialise; decisions live in the domain modules. Every route is declared once in
//! [`routes`], which feeds both the router and the OpenAPI completeness test.

pub mod auth;
mod breakers;
pub mod error;
mod events;
mod health;
mod memo;
mod monitoring;
mod openapi;
mod page;
mod performance;
mod pipeline;
mod probes;
mod query;
pub mod site;
mod supervisor;
mod ws;

use actix_web::body::MessageBody;
use actix_web::dev::{ServerHandle, ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::{from_fn, Next};
use actix_web::web::{self, Data};
use actix_web::{App, Handler, HttpRequest, HttpResponse, Responder, Route};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use crate::config::secs;
use crate::state::AppState;
use error::{bad_request, ApiError};

pub use openapi::openapi_document;

/// One declared route.
pub struct RouteDef {
    pub method: Method,
    pub path: &'static str,
    route: Route,
}

fn route<F, Args>(method: Method, path: &'static str, handler: F) -> RouteDef
where
    F: Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    F::Output: Responder + 'static,
{
    // Every GET also answers HEAD (health checkers use it); actix drops the body.
    let guard = if method == Method::GET {
        actix_web::guard::Any(actix_web::guard::Get()).or(actix_web::guard::Head())
    } else {
        actix_web::guard::Any(actix_web::guard::Method(method.clone()))
    };
    RouteDef {
        route: web::route().guard(guard).to(handler),
        method,
        path,
    }
}

/// Every route the service answers, in the order of the endpoint table.
pub fn routes() -> Vec<RouteDef> {
    use supervisor as sup;
    vec![
        route(Method::GET, "/", page::index),
        route(Method::GET, "/static/app.js", page::script),
        route(Method::GET, "/static/style.css", page::style),
        route(Method::GET, "/static/icon.svg", page::icon),
        route(Method::GET, "/health", probes::health),
        route(Method::GET, "/api/system/health/live", probes::live),
        route(Method::GET, "/ready", health::ready),
        route(Method::GET, "/api/system/health/ready", health::ready_alias),
        route(Method::GET, "/api/system/health/full", health::full),
        route(
            Method::GET,
            "/api/system/health/websocket",
            health::websocket,
        ),
        route(Method::GET, "/metrics", probes::metrics),
        route(Method::GET, "/openapi.json", openapi::document),
        route(Method::GET, "/api/system/supervisor", sup::status),
        route(
            Method::GET,
            "/api/system/supervisor/status",
            sup::status_alias,
        ),
        route(
            Method::POST,
            "/api/system/supervisor/workers/{name}/start",
            sup::start,
        ),
        route(
            Method::POST,
            "/api/system/supervisor/workers/{name}/stop",
            sup::stop,
        ),
        route(
            Method::POST,
            "/api/system/supervisor/workers/{name}/restart",
            sup::restart,
        ),
        route(
            Method::POST,
            "/api/system/supervisor/reset/{name}",
            sup::reset,
        ),
        route(
            Method::GET,
            "/api/system/supervisor/restart-history",
            sup::history,
        ),
        route(Method::GET, "/api/system/pipeline", pipeline::status),
        route(
            Method::GET,
            "/api/system/pipeline/dead-letters/{queue}",
            pipeline::dead_letters,
        ),
        route(
            Method::POST,
            "/api/system/pipeline/dead-letters/{queue}/requeue",
            pipeline::requeue,
        ),
        route(Method::GET, "/api/system/circuit-breakers", breakers::list),
        route(Method::GET, "/api/system/websocket/events", ws::events),
        route(Method::GET, "/api/system/performance", performance::current),
        route(Method::GET, "/api/system/events/recent", events::recent),
        route(
            Method::GET,
            "/api/system/performance/history",
            performance::history,
        ),
        route(
            Method::GET,
            "/api/system/monitoring/health",
            monitoring::health,
        ),
        route(
            Method::GET,
            "/api/system/monitoring/targets",
            monitoring::targets,
        ),
        route(Method::GET, "/ws", ws::socket),
        route(
            Method::POST,
            "/api/system/circuit-breakers/{name}/reset",
            breakers::reset,
        ),
    ]
}

/// Register every route, grouped by path so that a known path with the wrong method
/// answers 405 (with `Allow`) and an unknown path 404, both as JSON.
fn configure(cfg: &mut web::ServiceConfig) {
    let mut by_path: Vec<(&'static str, Vec<RouteDef>)> = Vec::new();
    for def in routes() {
        match by_path.iter_mut().find(|(p, _)| *p == def.path) {
            Some((_, defs)) => defs.push(def),
            None => by_path.push((def.path, vec![def])),
        }
    }
    // Static paths first: actix tries resources in order, and a static path is a string
    // comparison while a `{param}` path is a regex match.
    by_path.sort_by_key(|(path, _)| path.contains('{'));
    for (path, defs) in by_path {
        let allow = defs
            .iter()
            .map(|d| match d.method {
                Method::GET => "GET, HEAD",
                ref m => m.as_str(),
            })
            .collect::<Vec<_>>()
            .join(", ");
        let mut resource = web::resource(path);
        for def in defs {
            resource = resource.route(def.route);
        }
        resource = resource.default_service(web::to(move |req: HttpRequest| {
            let allow = allow.clone();
            async move {
                let mut resp = actix_web::ResponseError::error_response(
                    &ApiError::MethodNotAllowed(req.method().to_string()),
                );
                if let Ok(v) = actix_web::http::header::HeaderValue::from_str(&allow) {
                    resp.headers_mut().insert(actix_web::http::header::ALLOW, v);
                }
                resp
            }
        }));
        cfg.service(resource);
    }
}

async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound(format!(
        "No route for {} {}",
        req.method(),
        req.path()
    )))
}

/// Route templates for the request metrics, matched segment by segment (no regex, no
/// allocation): the label is the template, so a client cannot grow the label space.
struct Templates {
    exact: std::collections::HashMap<&'static str, &'static str>,
    patterns: Vec<(&'static str, Vec<&'static str>)>,
}

impl Templates {
    fn new() -> Self {
        let mut exact = std::collections::HashMap::new();
        let mut patterns = Vec::new();
        for def in routes() {
            if def.path.contains('{') {
                if !patterns.iter().any(|(p, _)| *p == def.path) {
                    patterns.push((def.path, def.path.split('/').collect()));
                }
            } else {
                exact.insert(def.path, def.path);
            }
        }
        Self { exact, patterns }
    }

    fn template(&self, path: &str) -> &'static str {
        if let Some(t) = self.exact.get(path) {
            return t;
        }
        self.patterns
            .iter()
            .find(|(_, segments)| {
                let mut given = path.split('/');
                segments.iter().all(|s| match given.next() {
                    Some(g) => s.starts_with('{') && !g.is_empty() || g == *s,
                    None => false,
                }) && given.next().is_none()
            })
            .map_or("unmatched", |(t, _)| t)
    }
}

fn templates() -> &'static Templates {
    static TEMPLATES: std::sync::OnceLock<Templates> = std::sync::OnceLock::new();
    TEMPLATES.get_or_init(Templates::new)
}

/// Count and time every request by method, route template and status.
async fn track(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = req.method().as_str().to_owned();
    let route = templates().template(req.path());
    let state = req.app_data::<Data<AppState>>().cloned();
    let res = next.call(req).await;
    let status = match &res {
        Ok(r) => r.status().as_u16(),
        Err(e) => e.as_response_error().status_code().as_u16(),
    };
    if let Some(state) = state {
        state
            .metrics
            .http_request_served(&method, route, status, started.elapsed().as_secs_f64());
    }
    res
}

/// A running HTTP server.
pub struct HttpServer {
    local_addr: SocketAddr,
    handle: ServerHandle,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl HttpServer {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stop accepting, let in-flight requests finish, then return.
    pub async fn stop(self) {
        self.handle.stop(true).await;
        let _ = self.task.await;
    }

    /// Resolves if the server stops on its own (it should not).
    pub async fn stopped(&mut self) -> std::io::Result<()> {
        match (&mut self.task).await {
            Ok(res) => res,
            Err(e) => Err(std::io::Error::other(e)),
        }
    }
}

/// The whole application: routes, error contract, auth and request metrics. Used by
/// [`serve`] and by in-process tests.
pub fn app(
    state: Arc<AppState>,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let site = Data::new(site::SitePolicy::for_config(&state.config.server));
    app_with(state, Data::new(memo::Memos::default()), site)
}

/// [`app`] with memoised answers shared by every HTTP worker thread.
fn app_with(
    state: Arc<AppState>,
    memos: Data<memo::Memos>,
    site: Data<site::SitePolicy>,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let auth = Data::new(state.config.auth.clone());
    App::new()
        .app_data(Data::from(state))
        .app_data(memos)
        .app_data(auth)
        .app_data(site)
        .app_data(
            web::PathConfig::default()
                .error_handler(|err, _| bad_request(format!("Invalid path parameter: {err}"))),
        )
        .app_data(
            web::QueryConfig::default()
                .error_handler(|err, _| bad_request(format!("Invalid query string: {err}"))),
        )
        .app_data(
            web::JsonConfig::default()
                .error_handler(|err, _| bad_request(format!("Invalid JSON body: {err}"))),
        )
        .wrap(from_fn(auth::middleware))
        .wrap(from_fn(site::middleware))
        .wrap(from_fn(track))
        .configure(configure)
        .default_service(web::to(not_found))
}

/// Bind `server.bind` and serve the API. Signals are handled by the caller.
pub fn serve(state: Arc<AppState>) -> std::io::Result<HttpServer> {
    for def in routes() {
        state
            .metrics
            .http_route_known(def.method.as_str(), def.path);
    }
    let listener = std::net::TcpListener::bind(&state.config.server.bind)?;
    let local_addr = listener.local_addr()?;
    let workers = state.config.server.workers;
    let grace = secs(state.config.supervisor.shutdown_grace_seconds);
    let memos = Data::new(memo::Memos::default());
    let site = Data::new(site::SitePolicy::new(&state.config.server, local_addr.ip()));
    if !site.host_check_on() {
        tracing::info!(addr = %local_addr, "host check off (not bound to loopback and server.allowed_hosts unset, or set to *)");
    }
    let server =
        actix_web::HttpServer::new(move || app_with(state.clone(), memos.clone(), site.clone()))
            .workers(workers)
            .disable_signals()
            .shutdown_timeout(grace.as_secs().max(1))
            .listen(listener)?
            .run();
    let handle = server.handle();
    let task = tokio::spawn(server);
    Ok(HttpServer {
        local_addr,
        handle,
        task,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_templates_match_by_segment() {
        let t = templates();
        assert_eq!(t.template("/health"), "/health");
        assert_eq!(
            t.template("/api/system/supervisor/workers/file_watcher/stop"),
            "/api/system/supervisor/workers/{name}/stop"
        );
        assert_eq!(
            t.template("/api/system/circuit-breakers/yolo26/reset"),
            "/api/system/circuit-breakers/{name}/reset"
        );
        assert_eq!(
            t.template("/api/system/supervisor/workers//stop"),
            "unmatched"
        );
        assert_eq!(
            t.template("/api/system/supervisor/workers/a/stop/x"),
            "unmatched"
        );
        assert_eq!(t.template("/nope"), "unmatched");
    }
}
