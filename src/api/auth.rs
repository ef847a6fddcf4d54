//! Request authorisation (docs/behaviour.md §9). The decision is a plain function of the
//! matched route's [`Access`], the peer address and the presented key, so it can be
//! tested without a server; [`screen`] only extracts those and turns a denial into the
//! JSON error. It never looks at the path's spelling: the route the router matched
//! decides (see `edge.rs`).
//!
//! - Keys configured: every write needs a valid key (401 otherwise).
//! - No keys: writes are accepted only from loopback peers (403 otherwise).
//! - Reads are open unless `auth.protect_reads`, then the same rules apply to them.
//! - Liveness/readiness probes are always open so orchestrators never need a key, and
//!   so are the status page's files (no data in them) and answers that match no route
//!   (a 404 or 405 reveals nothing).
//! - The WebSocket is treated like a write: it streams every event, so it needs a key
//!   when keys are configured (also accepted as the `api_key` query parameter or the
//!   `Sec-WebSocket-Protocol: api-key.<key>` subprotocol, which browsers can send), and
//!   loopback otherwise.
//!
//! - Alertmanager's webhook is guarded like a write, and also takes the bearer
//!   `alerting.webhook_token` (what Alertmanager's `http_config.authorization` sends);
//!   when a token is set, it or a key is required even from loopback.
//!
//! - A one-tap action link (`POST /api/actions/{token}`) needs nothing more: its
//!   signed, single-use, expiring token authorises that one action on one alert
//!   (`crate::actions`), so a phone can use it from anywhere.
//!
//! The key is read from `X-API-Key`, or from `Authorization: Bearer <key>` (what
//! Prometheus can send when `protect_reads` covers `/metrics`). Keys are compared in
//! constant time and never logged.

use actix_web::dev::ServiceRequest;
use std::net::IpAddr;

use super::access::Access;
use super::error::ApiError;
use crate::config::AuthConfig;

/// The subprotocol prefix that carries a key on a WebSocket upgrade.
pub const WS_KEY_PROTOCOL: &str = "api-key.";

#[derive(Debug, PartialEq, Eq)]
pub enum Denied {
    MissingOrInvalidKey,
    NotLoopback,
}

/// What a request may present: the API keys, and the webhook's token.
#[derive(Clone, Default)]
pub struct Credentials {
    pub auth: AuthConfig,
    /// `alerting.webhook_token`, when set.
    pub webhook_token: Option<String>,
}

impl Credentials {
    pub fn from_config(c: &crate::config::Config) -> Self {
        Self {
            auth: c.auth.clone(),
            webhook_token: Some(c.alerting.webhook_token.clone()).filter(|t| !t.is_empty()),
        }
    }
}

/// Decide whether a request for a route of kind `access` may proceed.
pub fn authorize(
    creds: &Credentials,
    access: Access,
    peer: Option<IpAddr>,
    presented_key: Option<&str>,
) -> Result<(), Denied> {
    let auth = &creds.auth;
    let needs_check = match access {
        Access::Probe | Access::Page | Access::Action | Access::Unmatched => false,
        Access::Read => auth.protect_reads,
        Access::Write | Access::Socket | Access::Webhook => true,
    };
    if !needs_check {
        return Ok(());
    }
    if access == Access::Webhook {
        if let Some(token) = &creds.webhook_token {
            if presented_key.is_some_and(|k| constant_time_eq(token.as_bytes(), k.as_bytes())) {
                return Ok(());
            }
            if auth.api_keys.is_empty() {
                return Err(Denied::MissingOrInvalidKey);
            }
        }
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

/// The key the request carries: `X-API-Key`, a bearer token, and for the WebSocket
/// also the subprotocol or the `api_key` query parameter.
pub fn presented_key(req: &ServiceRequest, access: Access) -> Option<String> {
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
    if access != Access::Socket {
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

/// Apply [`authorize`] to a request for a route of kind `access`; a denial becomes the
/// JSON error (and one log line, with the path escaped).
pub fn screen(req: &ServiceRequest, creds: &Credentials, access: Access) -> Result<(), ApiError> {
    let verdict = authorize(
        creds,
        access,
        req.peer_addr().map(|a| a.ip()),
        presented_key(req, access).as_deref(),
    );
    match verdict {
        Ok(()) => Ok(()),
        Err(Denied::MissingOrInvalidKey) => {
            tracing::warn!(method = %req.method(), path = ?req.path(), "request rejected: missing or invalid API key");
            Err(ApiError::Unauthorized(
                "Missing or invalid API key (send it in the X-API-Key header)".into(),
            ))
        }
        Err(Denied::NotLoopback) => {
            tracing::warn!(method = %req.method(), path = ?req.path(), "request rejected: not from loopback and no API key configured");
            Err(ApiError::Forbidden(
                "This request is only accepted from localhost when no API key is configured".into(),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(keys: &[&str], protect_reads: bool) -> Credentials {
        Credentials {
            auth: AuthConfig {
                api_keys: keys.iter().map(|k| k.to_string()).collect(),
                protect_reads,
            },
            webhook_token: None,
        }
    }

    #[test]
    fn the_webhook_takes_its_token_or_a_key_and_needs_one_once_a_token_is_set() {
        let mut c = cfg(&[], false);
        assert_eq!(
            authorize(&c, Access::Webhook, LOCAL, None),
            Ok(()),
            "loopback without either"
        );
        assert_eq!(
            authorize(&c, Access::Webhook, REMOTE, None),
            Err(Denied::NotLoopback)
        );
        c.webhook_token = Some("a-long-webhook-token".into());
        assert_eq!(
            authorize(&c, Access::Webhook, REMOTE, Some("a-long-webhook-token")),
            Ok(())
        );
        assert_eq!(
            authorize(&c, Access::Webhook, LOCAL, None),
            Err(Denied::MissingOrInvalidKey)
        );
        assert_eq!(
            authorize(&c, Access::Webhook, LOCAL, Some("wrong")),
            Err(Denied::MissingOrInvalidKey)
        );
        assert_eq!(
            authorize(&c, Access::Write, REMOTE, Some("a-long-webhook-token")),
            Err(Denied::NotLoopback),
            "the token opens the webhook only"
        );
        c.auth.api_keys = vec!["k".into()];
        assert_eq!(authorize(&c, Access::Webhook, REMOTE, Some("k")), Ok(()));
        assert_eq!(
            authorize(&c, Access::Write, REMOTE, Some("a-long-webhook-token")),
            Err(Denied::MissingOrInvalidKey)
        );
    }
    const LOCAL: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
    const REMOTE: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 7)));

    #[test]
    fn posts_need_a_valid_key_when_keys_exist() {
        let c = cfg(&["k1", "k2"], false);
        assert_eq!(
            authorize(&c, Access::Write, LOCAL, None),
            Err(Denied::MissingOrInvalidKey)
        );
        assert_eq!(
            authorize(&c, Access::Write, LOCAL, Some("k3")),
            Err(Denied::MissingOrInvalidKey)
        );
        assert_eq!(authorize(&c, Access::Write, REMOTE, Some("k2")), Ok(()));
    }

    #[test]
    fn posts_only_from_loopback_without_keys() {
        let c = cfg(&[], false);
        assert_eq!(
            authorize(&c, Access::Write, REMOTE, None),
            Err(Denied::NotLoopback)
        );
        assert_eq!(authorize(&c, Access::Write, LOCAL, None), Ok(()));
        let mapped = Some("::ffff:127.0.0.1".parse().expect("ip"));
        assert_eq!(authorize(&c, Access::Write, mapped, None), Ok(()));
    }

    #[test]
    fn reads_open_unless_protected_and_probes_always_open() {
        let open = cfg(&["k"], false);
        assert_eq!(authorize(&open, Access::Read, REMOTE, None), Ok(()));
        let closed = cfg(&["k"], true);
        assert_eq!(
            authorize(&closed, Access::Read, REMOTE, None),
            Err(Denied::MissingOrInvalidKey)
        );
        assert_eq!(authorize(&closed, Access::Probe, REMOTE, None), Ok(()));
        assert_eq!(authorize(&closed, Access::Read, REMOTE, Some("k")), Ok(()));
    }

    #[test]
    fn constant_time_eq_matches_plain_eq() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
