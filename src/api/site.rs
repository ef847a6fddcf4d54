//! Browser protection at the HTTP edge (docs/behaviour.md §9): a web page open in a
//! browser on the operator's machine is not a trusted caller, even though its requests
//! come from loopback.
//!
//! - **Cross-site writes.** A POST (any method that is not a read) and the WebSocket
//!   upgrade are refused with 403 when they carry an `Origin` that is neither
//!   watchpost's own (the origin whose authority is the request's `Host`) nor listed
//!   in `server.allowed_origins`, or, without `Origin`, `Sec-Fetch-Site: cross-site`.
//!   A form post or `fetch` without a body is a CORS "simple request" that the
//!   browser sends without asking, so answering it would let any page stop workers.
//!   Requests with neither header (curl, scripts, Prometheus) are not browsers'
//!   cross-site requests and pass. This holds when API keys are configured too: a
//!   browser never adds `X-API-Key` to a page's request by itself, so nothing
//!   legitimate is refused.
//! - **Host check (DNS rebinding).** A page can make its own name resolve to
//!   127.0.0.1; its requests are then same-origin for the browser, which lets it read
//!   every answer. Such requests carry the attacker's name in `Host`. So when bound to
//!   loopback, watchpost answers only `Host` `localhost`, `127.0.0.1` or `[::1]` (any
//!   port) or a name in `server.allowed_hosts`. Bound to another address, watchpost
//!   is meant to be reached under names this process cannot guess, so the check is on
//!   only when `server.allowed_hosts` is set (then the loopback names stay allowed:
//!   a rebinding page can never send them). `*` turns it off. The liveness and
//!   readiness probes are exempt: orchestrators probe by IP, and they reveal nothing.
//!   A request without `Host` is not from a browser and passes.
//! - **CORS.** No `Access-Control-Allow-*` header is sent unless
//!   `server.allowed_origins` is set; then a listed origin's preflight is answered
//!   (204) and its answers carry `Access-Control-Allow-Origin`; a preflight from any
//!   other origin is refused with 403.
//!
//! The decisions are plain functions of the policy and the request's headers; the
//! middleware extracts those and turns a refusal into the JSON error.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::web::Data;
use actix_web::{HttpResponse, ResponseError};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use super::auth::{PROBE_PATHS, WS_PATH};
use super::error::ApiError;
use crate::config::{normalise_host, normalise_origin, split_authority, ServerConfig};

/// Host names always answered when the host check is on.
const LOOPBACK_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "[::1]"];

/// Methods and headers a listed origin may use (what the API accepts).
const CORS_METHODS: &str = "GET, POST";
const CORS_HEADERS: &str = "X-API-Key, Authorization, Content-Type";
/// How long a browser may cache a preflight answer, in seconds.
const CORS_MAX_AGE: &str = "600";

/// What the edge allows, decided once at start from the config and the bound address.
#[derive(Debug, Clone)]
pub struct SitePolicy {
    /// `None`: the host check is off.
    hosts: Option<Vec<String>>,
    /// Normalised extra origins; non-empty turns on CORS answers for them.
    origins: Vec<String>,
    /// The `server.bind` loopback-ness the policy was built for (for the messages).
    loopback: bool,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// `Host` is not a name watchpost answers under.
    Host(String),
    /// A write or WebSocket upgrade from a foreign origin.
    Origin(String),
    /// A write without `Origin` that the browser marked cross-site.
    CrossSite,
    /// A CORS preflight from an origin that is not listed.
    Preflight(String),
}

/// What to do with a request that passed.
#[derive(Debug, PartialEq, Eq)]
pub enum Pass {
    /// Handle it as usual.
    Continue,
    /// Handle it and add CORS headers for this (listed) origin.
    WithCors(String),
    /// Answer this listed origin's preflight here.
    Preflight(String),
}

impl SitePolicy {
    /// The policy for a server bound to an address whose IP is `bound` (loopback or
    /// not) with `cfg`'s lists. The lists are validated at load; entries that do not
    /// parse are ignored here.
    pub fn new(cfg: &ServerConfig, bound: IpAddr) -> Self {
        let loopback = bound.is_loopback();
        let listed: Vec<String> = cfg
            .allowed_hosts
            .iter()
            .filter_map(|h| normalise_host(h))
            .collect();
        let any = cfg.allowed_hosts.iter().any(|h| h.trim() == "*");
        let hosts = if any || (!loopback && listed.is_empty()) {
            None
        } else {
            let mut hosts: Vec<String> = LOOPBACK_NAMES.iter().map(|h| h.to_string()).collect();
            hosts.extend(listed);
            Some(hosts)
        };
        Self {
            hosts,
            origins: cfg
                .allowed_origins
                .iter()
                .filter_map(|o| normalise_origin(o))
                .collect(),
            loopback,
        }
    }

    /// The policy for `cfg.bind` as written (in-process apps that never bind).
    pub fn for_config(cfg: &ServerConfig) -> Self {
        let ip = cfg
            .bind
            .parse::<std::net::SocketAddr>()
            .map(|a| a.ip())
            .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
        Self::new(cfg, ip)
    }

    pub fn host_check_on(&self) -> bool {
        self.hosts.is_some()
    }

    /// Decide on one request. `host`, `origin` and `fetch_site` are the raw header
    /// values (`None` when absent or not text).
    pub fn check(
        &self,
        method: &Method,
        path: &str,
        host: Option<&str>,
        origin: Option<&str>,
        fetch_site: Option<&str>,
        preflight: bool,
    ) -> Result<Pass, Refusal> {
        if let (Some(allowed), Some(h)) = (&self.hosts, host) {
            let name = split_authority(h.trim()).map(|(name, _)| name);
            let ok = name.as_ref().is_some_and(|n| allowed.contains(n));
            if !ok && !PROBE_PATHS.contains(&path) {
                return Err(Refusal::Host(h.to_string()));
            }
        }
        let origin = origin.map(str::trim);
        let listed = origin
            .and_then(normalise_origin)
            .filter(|o| self.origins.contains(o));
        if preflight {
            // Browsers preflight only cross-origin requests; with CORS off the router
            // answers (405, no CORS headers), which the browser treats as a refusal.
            if self.origins.is_empty() {
                return Ok(Pass::Continue);
            }
            return match listed {
                Some(o) => Ok(Pass::Preflight(o)),
                None => Err(Refusal::Preflight(origin.unwrap_or("").to_string())),
            };
        }
        let guarded = path == WS_PATH || !matches!(*method, Method::GET | Method::HEAD);
        if guarded {
            match origin {
                Some(o) => {
                    if listed.is_none() && !is_own_origin(o, host) {
                        return Err(Refusal::Origin(o.to_string()));
                    }
                }
                None => {
                    if fetch_site.is_some_and(|s| s.trim().eq_ignore_ascii_case("cross-site")) {
                        return Err(Refusal::CrossSite);
                    }
                }
            }
        }
        Ok(match listed {
            Some(o) => Pass::WithCors(o),
            None => Pass::Continue,
        })
    }

    /// The answer to a refusal, naming the setting that would change it.
    fn refusal_detail(&self, refusal: &Refusal) -> String {
        match refusal {
            Refusal::Host(h) => {
                let why = if self.loopback {
                    "watchpost listens on loopback and answers only localhost, 127.0.0.1 and [::1]"
                } else {
                    "it is not in server.allowed_hosts"
                };
                format!(
                    "Host {:?} is not served: {why}; to reach watchpost under this name, add it to server.allowed_hosts (WATCHPOST_SERVER__ALLOWED_HOSTS)",
                    h
                )
            }
            Refusal::Origin(o) => format!(
                "Cross-origin request from {:?} refused; to allow a page served elsewhere, add its origin to server.allowed_origins (WATCHPOST_SERVER__ALLOWED_ORIGINS)",
                o
            ),
            Refusal::CrossSite => "Cross-site request refused (Sec-Fetch-Site: cross-site); send it from watchpost's own origin or from a client that is not a web page".into(),
            Refusal::Preflight(o) => format!(
                "Origin {:?} is not in server.allowed_origins; cross-origin requests from it are refused",
                o
            ),
        }
    }
}

/// Is `origin` the origin of a page served by watchpost under `host` (the `Host`
/// the request was sent to)? The scheme is ignored (a TLS proxy in front changes it);
/// default ports are omitted on both sides.
fn is_own_origin(origin: &str, host: Option<&str>) -> bool {
    let (Some(origin), Some(host)) = (normalise_origin(origin), host) else {
        return false;
    };
    let Some((name, port)) = split_authority(host.trim()) else {
        return false;
    };
    let authority = match port {
        Some(p) if p != 80 && p != 443 => format!("{name}:{p}"),
        _ => name,
    };
    origin
        .split_once("://")
        .is_some_and(|(_, a)| a == authority)
}

fn text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Seconds since the epoch of the last refusal logged (refusals are logged at most
/// once per 10 s: a hostile page can send thousands).
static LAST_LOGGED: AtomicU64 = AtomicU64::new(0);

fn log_refusal(req: &ServiceRequest, refusal: &Refusal) {
    let now = crate::time::now().timestamp().max(0) as u64;
    let last = LAST_LOGGED.load(Ordering::Relaxed);
    if now >= last + 10
        && LAST_LOGGED
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        // `?` escapes whatever the caller put in the headers.
        tracing::warn!(method = %req.method(), path = ?req.path(), refusal = ?refusal, "browser request refused (further refusals within 10 s are not logged)");
    }
}

fn cors_headers(headers: &mut HeaderMap, origin: &str, preflight: bool) {
    if let Ok(v) = HeaderValue::from_str(origin) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
    }
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
    if preflight {
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(CORS_METHODS),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(CORS_HEADERS),
        );
        headers.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static(CORS_MAX_AGE),
        );
    }
}

/// actix middleware applying [`SitePolicy::check`].
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let verdict = match req.app_data::<Data<SitePolicy>>() {
        Some(policy) => {
            let h = req.headers();
            let preflight = req.method() == Method::OPTIONS
                && h.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
            // An HTTP/2 request names its host in the URI instead of `Host`.
            let host = text(h, "host").or_else(|| req.uri().authority().map(|a| a.as_str()));
            policy
                .check(
                    req.method(),
                    req.path(),
                    host,
                    text(h, "origin"),
                    text(h, "sec-fetch-site"),
                    preflight,
                )
                .map_err(|r| {
                    log_refusal(&req, &r);
                    policy.refusal_detail(&r)
                })
        }
        // Wiring error: fail closed.
        None => Err("Request refused: the server's site policy is missing".into()),
    };
    match verdict {
        Ok(Pass::Continue) => next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body),
        Ok(Pass::WithCors(origin)) => {
            let mut res = next.call(req).await?;
            cors_headers(res.headers_mut(), &origin, false);
            Ok(res.map_into_left_body())
        }
        Ok(Pass::Preflight(origin)) => {
            let mut resp = HttpResponse::build(StatusCode::NO_CONTENT).finish();
            cors_headers(resp.headers_mut(), &origin, true);
            Ok(req.into_response(resp).map_into_right_body())
        }
        Err(detail) => Ok(req
            .into_response(ApiError::Forbidden(detail).error_response())
            .map_into_right_body()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(bind: &str, origins: &[&str], hosts: &[&str]) -> SitePolicy {
        SitePolicy::for_config(&ServerConfig {
            bind: bind.into(),
            allowed_origins: origins.iter().map(|s| s.to_string()).collect(),
            allowed_hosts: hosts.iter().map(|s| s.to_string()).collect(),
            ..ServerConfig::default()
        })
    }

    fn post(p: &SitePolicy, host: &str, origin: Option<&str>) -> Result<Pass, Refusal> {
        p.check(&Method::POST, "/x", Some(host), origin, None, false)
    }

    #[test]
    fn foreign_origins_cannot_write_but_own_origin_and_non_browsers_can() {
        let p = policy("127.0.0.1:8000", &[], &[]);
        assert_eq!(
            post(&p, "127.0.0.1:8000", Some("http://evil.example")),
            Err(Refusal::Origin("http://evil.example".into()))
        );
        // Another port on the same machine is another origin.
        assert!(post(&p, "localhost:8000", Some("http://localhost:3000")).is_err());
        assert!(post(&p, "127.0.0.1:8000", Some("null")).is_err());
        assert_eq!(
            post(&p, "127.0.0.1:8000", Some("http://127.0.0.1:8000")),
            Ok(Pass::Continue)
        );
        assert_eq!(
            post(&p, "LOCALHOST:8000", Some("http://localhost:8000")),
            Ok(Pass::Continue)
        );
        assert_eq!(post(&p, "127.0.0.1:8000", None), Ok(Pass::Continue));
        assert_eq!(
            p.check(
                &Method::POST,
                "/x",
                Some("127.0.0.1:8000"),
                None,
                Some("cross-site"),
                false
            ),
            Err(Refusal::CrossSite)
        );
        assert_eq!(
            p.check(
                &Method::POST,
                "/x",
                Some("127.0.0.1:8000"),
                None,
                Some("same-origin"),
                false
            ),
            Ok(Pass::Continue)
        );
        // Reads are not guarded by origin (the browser keeps their answers from the page)…
        assert_eq!(
            p.check(
                &Method::GET,
                "/x",
                Some("127.0.0.1:8000"),
                Some("http://evil.example"),
                None,
                false
            ),
            Ok(Pass::Continue)
        );
        // …but the WebSocket upgrade is.
        assert!(p
            .check(
                &Method::GET,
                WS_PATH,
                Some("127.0.0.1:8000"),
                Some("http://evil.example"),
                None,
                false
            )
            .is_err());
    }

    #[test]
    fn loopback_bind_answers_only_loopback_names_and_listed_hosts() {
        let p = policy("127.0.0.1:8000", &[], &["watchpost.lan"]);
        for host in [
            "localhost:8000",
            "127.0.0.1:9",
            "[::1]:8000",
            "localhost",
            "Watchpost.LAN:8000",
        ] {
            assert_eq!(
                p.check(&Method::GET, "/metrics", Some(host), None, None, false),
                Ok(Pass::Continue),
                "{host}"
            );
        }
        for host in [
            "evil.example",
            "evil.example:8000",
            "127.0.0.2:8000",
            "localhost.evil.example",
            "[::1",
            "",
        ] {
            assert!(
                matches!(
                    p.check(&Method::GET, "/metrics", Some(host), None, None, false),
                    Err(Refusal::Host(_))
                ),
                "{host}"
            );
        }
        // Probes are exempt; a request without Host is not a browser's.
        assert_eq!(
            p.check(
                &Method::GET,
                "/health",
                Some("10.1.2.3:8000"),
                None,
                None,
                false
            ),
            Ok(Pass::Continue)
        );
        assert_eq!(
            p.check(&Method::GET, "/metrics", None, None, None, false),
            Ok(Pass::Continue)
        );
        assert!(p
            .refusal_detail(&Refusal::Host("evil.example".into()))
            .contains("server.allowed_hosts"));
    }

    #[test]
    fn other_binds_check_hosts_only_when_listed_and_star_turns_it_off() {
        assert!(!policy("0.0.0.0:8000", &[], &[]).host_check_on());
        let listed = policy("0.0.0.0:8000", &[], &["cam.lan"]);
        assert!(listed.host_check_on());
        assert!(listed
            .check(&Method::GET, "/x", Some("cam.lan:8000"), None, None, false)
            .is_ok());
        assert!(listed
            .check(
                &Method::GET,
                "/x",
                Some("localhost:8000"),
                None,
                None,
                false
            )
            .is_ok());
        assert!(listed
            .check(&Method::GET, "/x", Some("other.lan"), None, None, false)
            .is_err());
        assert!(!policy("127.0.0.1:8000", &[], &["*"]).host_check_on());
        assert!(policy("[::1]:8000", &[], &[]).host_check_on());
    }

    #[test]
    fn cors_only_for_listed_origins() {
        let none = policy("127.0.0.1:8000", &[], &[]);
        assert_eq!(
            none.check(
                &Method::OPTIONS,
                "/x",
                Some("localhost:8000"),
                Some("http://dash.example"),
                None,
                true
            ),
            Ok(Pass::Continue),
            "no CORS layer: the router answers"
        );
        let p = policy("127.0.0.1:8000", &["http://Dash.example:80"], &[]);
        assert_eq!(
            p.check(
                &Method::OPTIONS,
                "/x",
                Some("localhost:8000"),
                Some("http://dash.example"),
                None,
                true
            ),
            Ok(Pass::Preflight("http://dash.example".into()))
        );
        assert!(matches!(
            p.check(
                &Method::OPTIONS,
                "/x",
                Some("localhost:8000"),
                Some("http://evil.example"),
                None,
                true
            ),
            Err(Refusal::Preflight(_))
        ));
        assert_eq!(
            post(&p, "localhost:8000", Some("http://dash.example")),
            Ok(Pass::WithCors("http://dash.example".into()))
        );
        assert_eq!(
            p.check(
                &Method::GET,
                "/x",
                Some("localhost:8000"),
                Some("http://dash.example"),
                None,
                false
            ),
            Ok(Pass::WithCors("http://dash.example".into()))
        );
    }

    #[test]
    fn own_origin_ignores_scheme_and_default_ports() {
        assert!(is_own_origin(
            "https://watch.example",
            Some("watch.example")
        ));
        assert!(is_own_origin(
            "http://watch.example",
            Some("watch.example:80")
        ));
        assert!(is_own_origin("http://[::1]:8000", Some("[::1]:8000")));
        assert!(!is_own_origin(
            "http://watch.example:8000",
            Some("watch.example")
        ));
        assert!(!is_own_origin("http://watch.example", None));
    }
}
