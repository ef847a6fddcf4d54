//! Request authorisation (docs/behaviour.md §9). The decision is a plain function of the
//! method, path, peer address and presented key so it can be tested without a server;
//! the middleware only extracts those and turns a denial into the JSON error.
//!
//! - Keys configured: every non-read request needs a valid key (401 otherwise).
//! - No keys: non-read requests are accepted only from loopback peers (403 otherwise).
//! - Reads are open unless `auth.protect_reads`, then the same rules apply to them.
//! - Liveness/readiness probes are always open so orchestrators never need a key, and
//!   so are the status page's files (no data in them).
//! - The WebSocket (`/ws`) is treated like a write: it streams every event, so it needs
//!   a key when keys are configured (also accepted as the `api_key` query parameter or
//!   the `Sec-WebSocket-Protocol: api-key.<key>` subprotocol, which browsers can send),
//!   and loopback otherwise.
//!
//! The key is read from `X-API-Key`, or from `Authorization: Bearer <key>` (what
//! Prometheus can send when `protect_reads` covers `/metrics`). Keys are compared in
//! constant time and never logged.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::web::Data;
use actix_web::ResponseError;
use std::net::IpAddr;

use super::error::ApiError;
use crate::config::AuthConfig;

/// The liveness and readiness probes: never protected, and exempt from the host
/// check (`site.rs`), so orchestrators can probe by address without a key.
pub const PROBE_PATHS: [&str; 4] = [
    "/health",
    "/ready",
    "/api/system/health/live",
    "/api/system/health/ready",
];

/// The status page's files: never protected (they hold no data; the page then reads
/// the API with the key when reads are protected).
const PAGE_PATHS: [&str; 4] = [
    "/",
    "/static/app.js",
    "/static/style.css",
    "/static/icon.svg",
];

/// The WebSocket endpoint.
pub const WS_PATH: &str = "/ws";

/// The subprotocol prefix that carries a key on a WebSocket upgrade.
pub const WS_KEY_PROTOCOL: &str = "api-key.";

#[derive(Debug, PartialEq, Eq)]
pub enum Denied {
    MissingOrInvalidKey,
    NotLoopback,
}

/// Decide whether a request may proceed.
pub fn authorize(
    auth: &AuthConfig,
    method: &Method,
    path: &str,
    peer: Option<IpAddr>,
    presented_key: Option<&str>,
) -> Result<(), Denied> {
    let is_read =
        matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) && path != WS_PATH;
    if (is_read && !auth.protect_reads) || PROBE_PATHS.contains(&path) || PAGE_PATHS.contains(&path)
    {
        return Ok(());
    }
    if auth.api_keys.is_empty() {
        return match peer {
            Some(ip) if is_loopback(ip) => Ok(()),
            _ => Err(Denied::NotLoopback),
        };
    }
    let Some(key) = presented_key else {
        return Err(Denied::MissingOrInvalidKey);
    };
    // Compare against every key (no early exit) so timing does not reveal which matched.
    let matched = auth.api_keys.iter().fold(false, |acc, k| {
        acc | constant_time_eq(k.as_bytes(), key.as_bytes())
    });
    if matched {
        Ok(())
    } else {
        Err(Denied::MissingOrInvalidKey)
    }
}

fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// Constant-time equality for equal lengths; a length mismatch returns early, which
/// reveals only the length of a key, not its content.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn presented_key(req: &ServiceRequest) -> Option<String> {
    let headers = req.headers();
    if let Some(v) = headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        return Some(v.trim().to_string());
    }
    if let Some(v) = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        return Some(v.trim().to_string());
    }
    if req.path() != WS_PATH {
        return None;
    }
    ws_protocol_key(headers).or_else(|| {
        serde_urlencoded::from_str::<Vec<(String, String)>>(req.query_string())
            .ok()?
            .into_iter()
            .find(|(k, _)| k == "api_key")
            .map(|(_, v)| v)
    })
}

/// The key offered as a `Sec-WebSocket-Protocol` of the form `api-key.<key>`.
pub fn ws_protocol_key(headers: &actix_web::http::header::HeaderMap) -> Option<String> {
    headers
        .get_all("sec-websocket-protocol")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .find_map(|p| p.strip_prefix(WS_KEY_PROTOCOL))
        .map(str::to_string)
}

/// actix middleware applying [`authorize`]; a denial is answered here as JSON.
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let verdict = match req.app_data::<Data<AuthConfig>>() {
        Some(auth) => authorize(
            auth,
            req.method(),
            req.path(),
            req.peer_addr().map(|a| a.ip()),
            presented_key(&req).as_deref(),
        ),
        // Wiring error: fail closed.
        None => Err(Denied::NotLoopback),
    };
    let error = match verdict {
        Ok(()) => {
            return next
                .call(req)
                .await
                .map(ServiceResponse::map_into_left_body)
        }
        Err(Denied::MissingOrInvalidKey) => {
            tracing::warn!(method = %req.method(), path = %req.path(), "request rejected: missing or invalid API key");
            ApiError::Unauthorized(
                "Missing or invalid API key (send it in the X-API-Key header)".into(),
            )
        }
        Err(Denied::NotLoopback) => {
            tracing::warn!(method = %req.method(), path = %req.path(), "request rejected: not from loopback and no API key configured");
            ApiError::Forbidden(
                "This request is only accepted from localhost when no API key is configured".into(),
            )
        }
    };
    Ok(req
        .into_response(error.error_response())
        .map_into_right_body())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(keys: &[&str], protect_reads: bool) -> AuthConfig {
        AuthConfig {
            api_keys: keys.iter().map(|k| k.to_string()).collect(),
            protect_reads,
        }
    }
    const LOCAL: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
    const REMOTE: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 7)));

    #[test]
    fn posts_need_a_valid_key_when_keys_exist() {
        let c = cfg(&["k1", "k2"], false);
        assert_eq!(
            authorize(&c, &Method::POST, "/x", LOCAL, None),
            Err(Denied::MissingOrInvalidKey)
        );
        assert_eq!(
            authorize(&c, &Method::POST, "/x", LOCAL, Some("k3")),
            Err(Denied::MissingOrInvalidKey)
        );
        assert_eq!(
            authorize(&c, &Method::POST, "/x", REMOTE, Some("k2")),
            Ok(())
        );
    }

    #[test]
    fn posts_only_from_loopback_without_keys() {
        let c = cfg(&[], false);
        assert_eq!(
            authorize(&c, &Method::POST, "/x", REMOTE, None),
            Err(Denied::NotLoopback)
        );
        assert_eq!(authorize(&c, &Method::POST, "/x", LOCAL, None), Ok(()));
        let mapped = Some("::ffff:127.0.0.1".parse().expect("ip"));
        assert_eq!(authorize(&c, &Method::POST, "/x", mapped, None), Ok(()));
    }

    #[test]
    fn reads_open_unless_protected_and_probes_always_open() {
        let open = cfg(&["k"], false);
        assert_eq!(
            authorize(&open, &Method::GET, "/metrics", REMOTE, None),
            Ok(())
        );
        let closed = cfg(&["k"], true);
        assert_eq!(
            authorize(&closed, &Method::GET, "/metrics", REMOTE, None),
            Err(Denied::MissingOrInvalidKey)
        );
        assert_eq!(
            authorize(&closed, &Method::GET, "/health", REMOTE, None),
            Ok(())
        );
        assert_eq!(
            authorize(&closed, &Method::GET, "/metrics", REMOTE, Some("k")),
            Ok(())
        );
    }

    #[test]
    fn constant_time_eq_matches_plain_eq() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
