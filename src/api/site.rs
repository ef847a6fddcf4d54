//! Browser protection at the HTTP edge (docs/behaviour.md §9): a web page open in a
//! browser on the operator's machine is not a trusted caller, even though its requests
//! come from loopback. Like `auth.rs`, it decides on the matched route's [`Access`],
//! never on the path's spelling.
//!
//! - **Cross-site writes.** A write and the WebSocket upgrade are refused with 403 when
//!   they carry an `Origin` that is neither watchpost's own (the origin whose authority
//!   is the request's accepted `Host`) nor listed in `server.allowed_origins`, or,
//!   without `Origin`, `Sec-Fetch-Site: cross-site`. A form post or `fetch` without a
//!   body is a CORS "simple request" that the browser sends without asking, so
//!   answering it would let any page stop workers. Requests with neither header (curl,
//!   scripts, Prometheus) are not browsers' cross-site requests and pass. This holds
//!   when API keys are configured too: a browser never adds `X-API-Key` to a page's
//!   request by itself, so nothing legitimate is refused.
//! - **Host check (DNS rebinding).** A page can make its own name resolve to
//!   watchpost's address; its requests are then same-origin for the browser, which
//!   lets it read every answer and makes "own origin" the attacker's. Such requests
//!   carry the attacker's name in `Host`. So, whatever the bind address, watchpost
//!   answers only a `Host` that is an IP literal (a rebinding attack needs a name),
//!   `localhost`, one of this machine's own host names (`gethostname`, its first
//!   label, and `<name>.local` for mDNS), or a name in `server.allowed_hosts`. `*` in
//!   that list turns the check off (and with it the rebinding defence). The liveness
//!   and readiness probes are exempt: orchestrators probe under any name, and they
//!   reveal nothing. A request without `Host` is not from a browser and passes.
//! - **CORS.** No `Access-Control-Allow-*` header is sent unless
//!   `server.allowed_origins` is set; then a listed origin's preflight is answered
//!   (204) and its answers carry `Access-Control-Allow-Origin`; a preflight from any
//!   other origin is refused with 403.
//!
//! The decisions are plain functions of the policy, the route's access and the
//! request's headers; [`screen`] extracts those and turns a refusal into the JSON error.

use actix_web::dev::ServiceRequest;
use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::http::Method;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use super::access::Access;
use super::error::ApiError;
use crate::config::{normalise_host, normalise_origin, split_authority, ServerConfig};

/// Methods and headers a listed origin may use (what the API accepts).
const CORS_METHODS: &str = "GET, POST";
const CORS_HEADERS: &str = "X-API-Key, Authorization, Content-Type";
/// How long a browser may cache a preflight answer, in seconds.
const CORS_MAX_AGE: &str = "600";

/// What the edge allows, decided once at start from the config and the bound address.
#[derive(Debug, Clone)]
pub struct SitePolicy {
    /// Host names answered besides IP literals; `None`: the host check is off (`*`).
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

/// This machine's own host names, as a browser on the network would type them: the
/// name `gethostname` returns, its first label, and `<first label>.local` (mDNS).
pub fn machine_host_names() -> Vec<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its whole length; gethostname writes at most
    // that many bytes and we read only up to the first NUL inside it.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return Vec::new();
    }
    let len = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    let Some(full) = std::str::from_utf8(&buf[..len])
        .ok()
        .and_then(normalise_host)
    else {
        return Vec::new();
    };
    let first = full.split('.').next().unwrap_or_default().to_string();
    let mut names = vec![full.clone(), first.clone(), format!("{first}.local")];
    names.dedup();
    names
}

impl SitePolicy {
    /// The policy for a server bound to an address whose IP is `bound`, on a machine
    /// called `own_names`, with `cfg`'s lists. The lists are validated at load;
    /// entries that do not parse are ignored here.
    pub fn new(cfg: &ServerConfig, bound: IpAddr, own_names: &[String]) -> Self {
        let any = cfg.allowed_hosts.iter().any(|h| h.trim() == "*");
        let hosts = (!any).then(|| {
            let mut hosts = vec!["localhost".to_string()];
            hosts.extend(own_names.iter().filter_map(|h| normalise_host(h)));
            hosts.extend(cfg.allowed_hosts.iter().filter_map(|h| normalise_host(h)));
            hosts
        });
        Self {
            hosts,
            origins: cfg
                .allowed_origins
                .iter()
                .filter_map(|o| normalise_origin(o))
                .collect(),
            loopback: bound.is_loopback(),
        }
    }

    /// The policy for a server bound to `bound` on this machine.
    pub fn for_server(cfg: &ServerConfig, bound: IpAddr) -> Self {
        Self::new(cfg, bound, &machine_host_names())
    }

    /// The policy for `cfg.bind` as written (in-process apps that never bind).
    pub fn for_config(cfg: &ServerConfig) -> Self {
        let ip = cfg
            .bind
            .parse::<std::net::SocketAddr>()
            .map(|a| a.ip())
            .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
        Self::for_server(cfg, ip)
    }

    pub fn host_check_on(&self) -> bool {
        self.hosts.is_some()
    }

    /// Is `host` (a `Host` header value) one watchpost answers under?
    fn host_allowed(&self, host: &str) -> bool {
        let Some(allowed) = &self.hosts else {
            return true;
        };
        match split_authority(host.trim()) {
            Some((name, _)) => is_ip_literal(&name) || allowed.contains(&name),
            None => false,
        }
    }

    /// Decide on one request for a route of kind `access`. `host`, `origin` and
    /// `fetch_site` are the raw header values (`None` when absent or not text).
    pub fn check(
        &self,
        access: Access,
        host: Option<&str>,
        origin: Option<&str>,
        fetch_site: Option<&str>,
        preflight: bool,
    ) -> Result<Pass, Refusal> {
        if let Some(h) = host {
            if access != Access::Probe && !self.host_allowed(h) {
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
        if matches!(access, Access::Write | Access::Socket | Access::Webhook) {
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
                let bound = if self.loopback { "loopback" } else { "a network address" };
                format!(
                    "Host {:?} is not served: watchpost (bound to {bound}) answers only IP addresses, localhost, this machine's host names and server.allowed_hosts (DNS rebinding defence); to reach it under this name, add the name to server.allowed_hosts (WATCHPOST_SERVER__ALLOWED_HOSTS)",
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

/// An IPv4 literal in dotted-quad form or a bracketed IPv6 literal (what
/// `split_authority` returns for them). Browsers canonicalise `127.1` and
/// `2130706433` to `127.0.0.1` before sending, so other spellings are names here.
fn is_ip_literal(name: &str) -> bool {
    name.parse::<std::net::Ipv4Addr>().is_ok()
        || name
            .strip_prefix('[')
            .and_then(|r| r.strip_suffix(']'))
            .is_some_and(|inner| inner.parse::<std::net::Ipv6Addr>().is_ok())
}

/// Is `origin` the origin of a page served by watchpost under `host` (the accepted
/// `Host` the request was sent to)? The scheme is ignored (a TLS proxy in front
/// changes it); default ports are omitted on both sides.
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

/// Add the CORS headers for a listed `origin` (and the preflight's, when answering one).
pub fn cors_headers(headers: &mut HeaderMap, origin: &str, preflight: bool) {
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

/// Apply [`SitePolicy::check`] to a request for a route of kind `access`; a refusal
/// becomes the JSON 403 (logged at most once per 10 s).
pub fn screen(req: &ServiceRequest, policy: &SitePolicy, access: Access) -> Result<Pass, ApiError> {
    let h = req.headers();
    let preflight =
        req.method() == Method::OPTIONS && h.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    // An HTTP/2 request names its host in the URI instead of `Host`.
    let host = text(h, "host").or_else(|| req.uri().authority().map(|a| a.as_str()));
    policy
        .check(
            access,
            host,
            text(h, "origin"),
            text(h, "sec-fetch-site"),
            preflight,
        )
        .map_err(|r| {
            log_refusal(req, &r);
            ApiError::Forbidden(policy.refusal_detail(&r))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWN: &[&str] = &["nas", "nas.local"];

    fn policy(bind: &str, origins: &[&str], hosts: &[&str]) -> SitePolicy {
        let own: Vec<String> = OWN.iter().map(|s| s.to_string()).collect();
        let cfg = ServerConfig {
            bind: bind.into(),
            allowed_origins: origins.iter().map(|s| s.to_string()).collect(),
            allowed_hosts: hosts.iter().map(|s| s.to_string()).collect(),
            ..ServerConfig::default()
        };
        let ip = bind.parse::<std::net::SocketAddr>().expect("bind").ip();
        SitePolicy::new(&cfg, ip, &own)
    }

    fn post(p: &SitePolicy, host: &str, origin: Option<&str>) -> Result<Pass, Refusal> {
        p.check(Access::Write, Some(host), origin, None, false)
    }

    fn get(p: &SitePolicy, host: &str) -> Result<Pass, Refusal> {
        p.check(Access::Read, Some(host), None, None, false)
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
        let fetch_site = |site| {
            p.check(
                Access::Write,
                Some("127.0.0.1:8000"),
                None,
                Some(site),
                false,
            )
        };
        assert_eq!(fetch_site("cross-site"), Err(Refusal::CrossSite));
        assert_eq!(fetch_site("same-origin"), Ok(Pass::Continue));
        // Reads are not guarded by origin (the browser keeps their answers from the page)…
        assert_eq!(
            p.check(
                Access::Read,
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
                Access::Socket,
                Some("127.0.0.1:8000"),
                Some("http://evil.example"),
                None,
                false
            )
            .is_err());
    }

    #[test]
    fn every_bind_answers_ip_literals_localhost_own_names_and_listed_hosts() {
        for bind in ["127.0.0.1:8000", "0.0.0.0:8000", "[::]:8000"] {
            let p = policy(bind, &[], &["watchpost.lan"]);
            for host in [
                "localhost:8000",
                "127.0.0.1:9",
                "[::1]:8000",
                "localhost",
                "Watchpost.LAN:8000",
                "192.168.1.20:8000",
                "[::ffff:127.0.0.1]:8000",
                "nas:8000",
                "NAS.local",
            ] {
                assert_eq!(get(&p, host), Ok(Pass::Continue), "{bind} {host}");
            }
            for host in [
                "evil.example",
                "evil.example:8000",
                "localhost.evil.example",
                "127.0.0.1.nip.io",
                "localhost.",
                "127.1",
                "2130706433:8000",
                "[::1",
                "",
            ] {
                assert!(
                    matches!(get(&p, host), Err(Refusal::Host(_))),
                    "{bind} {host}"
                );
            }
            // Probes are exempt; a request without Host is not a browser's.
            assert_eq!(
                p.check(Access::Probe, Some("evil.example"), None, None, false),
                Ok(Pass::Continue)
            );
            assert_eq!(
                p.check(Access::Read, None, None, None, false),
                Ok(Pass::Continue)
            );
            assert!(p
                .refusal_detail(&Refusal::Host("evil.example".into()))
                .contains("server.allowed_hosts"));
        }
    }

    #[test]
    fn a_rebinding_name_never_becomes_own_origin_on_a_public_bind() {
        let p = policy("0.0.0.0:8000", &[], &[]);
        assert!(p.host_check_on());
        assert!(matches!(
            post(&p, "evil.example:8000", Some("http://evil.example:8000")),
            Err(Refusal::Host(_))
        ));
        assert_eq!(
            post(&p, "192.168.1.20:8000", Some("http://192.168.1.20:8000")),
            Ok(Pass::Continue)
        );
        assert_eq!(
            post(&p, "nas:8000", Some("http://nas:8000")),
            Ok(Pass::Continue)
        );
    }

    #[test]
    fn star_turns_the_host_check_off() {
        let p = policy("0.0.0.0:8000", &[], &["*"]);
        assert!(!p.host_check_on());
        assert_eq!(get(&p, "anything.example"), Ok(Pass::Continue));
    }

    #[test]
    fn cors_only_for_listed_origins() {
        let none = policy("127.0.0.1:8000", &[], &[]);
        assert_eq!(
            none.check(
                Access::Unmatched,
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
                Access::Unmatched,
                Some("localhost:8000"),
                Some("http://dash.example"),
                None,
                true
            ),
            Ok(Pass::Preflight("http://dash.example".into()))
        );
        assert!(matches!(
            p.check(
                Access::Unmatched,
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
                Access::Read,
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

    #[test]
    fn machine_names_are_normalised_host_names() {
        for name in machine_host_names() {
            assert_eq!(normalise_host(&name).as_deref(), Some(name.as_str()));
        }
    }
}
