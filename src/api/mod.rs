//! HTTP edge: the only module that knows actix-web. Handlers parse, call the domain and
//! serialise; decisions live in the domain modules. Every route is declared once in
//! [`routes`], which feeds both the router and the OpenAPI completeness test.

mod access;
mod actions;
mod alerts;
pub mod auth;
mod body;
mod breakers;
mod cameras;
mod coverage;
mod edge;
pub mod error;
mod events;
mod fleet;
mod health;
mod maintenance;
mod memo;
mod metrics;
mod monitoring;
mod notifiers;
mod openapi;
mod page;
mod performance;
mod pipeline;
mod probes;
mod query;
pub mod site;
mod storage;
mod supervisor;
mod ws;

use actix_web::body::MessageBody;
use actix_web::dev::{ServerHandle, ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::{from_fn, Next};
use actix_web::web::{self, Data};
use actix_web::{App, Handler, HttpMessage, HttpRequest, HttpResponse, Responder, Route};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use crate::config::secs;
use crate::state::AppState;
use error::{bad_request, ApiError};

pub use access::Access;
pub use openapi::openapi_document;

/// One declared route.
pub struct RouteDef {
    pub method: Method,
    pub path: &'static str,
    pub access: Access,
    route: Route,
}

impl RouteDef {
    /// Mark the route with an access other than its method's default.
    fn access(mut self, access: Access) -> Self {
        self.access = access;
        self
    }
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
        access: if method == Method::GET {
            Access::Read
        } else {
            Access::Write
        },
        method,
        path,
    }
}

/// Every route the service answers, in the order of the endpoint table.
pub fn routes() -> Vec<RouteDef> {
    use supervisor as sup;
    vec![
        route(Method::GET, "/", page::index).access(Access::Page),
        route(Method::GET, "/static/app.js", page::script).access(Access::Page),
        route(Method::GET, "/static/style.css", page::style).access(Access::Page),
        route(Method::GET, "/static/icon.svg", page::icon).access(Access::Page),
        route(Method::GET, "/docs/runbook", page::runbook).access(Access::Page),
        route(Method::GET, "/health", probes::health).access(Access::Probe),
        route(Method::GET, "/api/system/health/live", probes::live).access(Access::Probe),
        route(Method::GET, "/ready", health::ready).access(Access::Probe),
        route(Method::GET, "/api/system/health/ready", health::ready_alias).access(Access::Probe),
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
        route(Method::GET, "/api/system/alerts", alerts::list),
        route(Method::GET, "/api/system/alerts/silences", alerts::silences),
        route(Method::POST, "/api/system/alerts/silences", alerts::silence),
        route(
            Method::DELETE,
            "/api/system/alerts/silences/{id}",
            alerts::unsilence,
        ),
        route(Method::POST, "/api/webhooks/alerts", alerts::webhook).access(Access::Webhook),
        route(Method::GET, "/api/system/notifiers", notifiers::list),
        route(
            Method::POST,
            "/api/system/notifiers/{name}/test",
            notifiers::test,
        ),
        route(Method::POST, "/api/actions/{token}", actions::act).access(Access::Action),
        route(Method::GET, "/api/system/storage", storage::volumes),
        route(Method::GET, "/api/system/instances", fleet::instances),
        route(Method::GET, "/api/system/maintenance", maintenance::list),
        route(Method::POST, "/api/system/maintenance", maintenance::create),
        route(
            Method::DELETE,
            "/api/system/maintenance/{id}",
            maintenance::end,
        ),
        route(Method::GET, "/api/system/coverage", coverage::coverage),
        route(
            Method::GET,
            "/api/system/availability",
            coverage::availability,
        ),
        route(Method::GET, "/api/system/cameras", cameras::list),
        route(Method::GET, "/api/system/thumbnail", cameras::thumbnail),
        route(Method::GET, "/api/system/cameras/{id}", cameras::detail),
        route(Method::DELETE, "/api/system/cameras/{id}", cameras::remove),
        route(
            Method::POST,
            "/api/system/cameras/{id}/disable",
            cameras::disable,
        ),
        route(
            Method::POST,
            "/api/system/cameras/{id}/enable",
            cameras::enable,
        ),
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
        route(Method::GET, "/ws", ws::socket).access(Access::Socket),
        route(
            Method::POST,
            "/api/system/circuit-breakers/{name}/reset",
            breakers::reset,
        ),
    ]
}

/// Register every route, grouped by path so that a known path with the wrong method
/// answers 405 (with `Allow`) and an unknown path 404, both as JSON. Each resource is
/// wrapped in the edge's gate, tagged with its template and its methods' access.
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
        let tag = std::rc::Rc::new(edge::RouteTag::new(
            path,
            defs.iter().map(|d| (d.method.clone(), d.access)).collect(),
        ));
        let mut resource = web::resource(path);
        for def in defs {
            resource = resource.route(def.route);
        }
        let resource = resource
            .default_service(web::to(move |req: HttpRequest| {
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
            }))
            .wrap(from_fn(move |req, next| {
                let tag = tag.clone();
                async move { edge::gate(&tag, req, next).await }
            }));
        cfg.service(resource);
    }
}

/// The answer for a path no route matches, behind the gate (Host check only).
fn unmatched() -> Route {
    let tag = std::rc::Rc::new(edge::RouteTag::unmatched());
    web::route().to(not_found).wrap(from_fn(move |req, next| {
        let tag = tag.clone();
        async move { edge::gate(&tag, req, next).await }
    }))
}

async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound(format!(
        "No route for {} {}",
        req.method(),
        req.path()
    )))
}

/// Count and time every request by method, route template and status.
async fn track(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = metrics::Method::of(req.method().as_str());
    let http = req.app_data::<Data<metrics::HttpMetrics>>().cloned();
    let res = next.call(req).await;
    // The gate of the matched resource noted its template; an error that escaped every
    // resource (none does today) counts as unmatched.
    let (route, status) = match &res {
        Ok(r) => (
            r.request()
                .extensions()
                .get::<edge::MatchedRoute>()
                .map_or("unmatched", |m| m.0),
            r.status().as_u16(),
        ),
        Err(e) => ("unmatched", e.as_response_error().status_code().as_u16()),
    };
    if let Some(http) = http {
        http.served(method, route, status, started.elapsed().as_secs_f64());
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
    let auth = Data::new(auth::Credentials::from_config(&state.config));
    let http = Data::new(metrics::HttpMetrics::new(&state.metrics));
    App::new()
        .app_data(Data::from(state))
        .app_data(http)
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
        .wrap(from_fn(track))
        .configure(configure)
        .default_service(unmatched())
}

/// Bind `server.bind` and serve the API. Signals are handled by the caller.
pub fn serve(state: Arc<AppState>) -> std::io::Result<HttpServer> {
    let http = metrics::HttpMetrics::new(&state.metrics);
    for def in routes() {
        http.route_known(metrics::Method::of(def.method.as_str()), def.path);
    }
    let listener = std::net::TcpListener::bind(&state.config.server.bind)?;
    let local_addr = listener.local_addr()?;
    let workers = state.config.server.workers;
    let grace = secs(state.config.supervisor.shutdown_grace_seconds);
    let memos = Data::new(memo::Memos::default());
    let site = Data::new(site::SitePolicy::for_server(
        &state.config.server,
        local_addr.ip(),
    ));
    if !site.host_check_on() {
        tracing::warn!(addr = %local_addr, "host check off (server.allowed_hosts contains *): pages on other sites can read watchpost's answers through DNS rebinding");
    }
    let server =
        actix_web::HttpServer::new(move || app_with(state.clone(), memos.clone(), site.clone()))
            .on_connect(|conn, data| {
                if let Some(tcp) = conn.downcast_ref::<actix_web::rt::net::TcpStream>() {
                    ws::bound_unacknowledged_writes(tcp);
                }
                data.insert(ws::ConnectionSeat::default());
            })
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

    /// The probes are known twice: by their `Access` here (the Host check exempts them)
    /// and by their OpenAPI tag (no 403 documented). The two must agree.
    #[test]
    fn the_probe_routes_are_the_operations_tagged_probes() {
        let doc: serde_json::Value = serde_json::from_str(openapi_document()).expect("valid JSON");
        let mut tagged: Vec<String> = Vec::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for op in item.as_object().expect("item").values() {
                if op["tags"]
                    .as_array()
                    .is_some_and(|t| t.iter().any(|t| t == openapi::PROBE_TAG))
                {
                    tagged.push(path.clone());
                }
            }
        }
        let mut probes: Vec<String> = routes()
            .iter()
            .filter(|r| r.access == Access::Probe)
            .map(|r| r.path.to_string())
            .collect();
        tagged.sort();
        probes.sort();
        assert_eq!(tagged, probes);
    }
}
