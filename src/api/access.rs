//! The access tag of a route: the one input of the edge's security decisions
//! (`edge.rs`, `auth.rs`, `site.rs`) besides the request's headers and peer.

/// Who may call a route, and how the edge guards it. This tag, not the path's
/// spelling, is what every security decision reads (`edge.rs`, `auth.rs`, `site.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Liveness and readiness: always open, exempt from the Host check.
    Probe,
    /// The status page's files: open (they hold no data).
    Page,
    /// A read: open unless `auth.protect_reads`.
    Read,
    /// Changes state: the key (or loopback without keys), and same-origin only.
    Write,
    /// The WebSocket upgrade: guarded like a write; the key may also come as the
    /// `api_key` query parameter or the `api-key.<key>` subprotocol.
    Socket,
    /// Alertmanager's webhook: guarded like a write; `alerting.webhook_token` as a
    /// bearer token is accepted as well as a key (and required when set).
    Webhook,
    /// A one-tap action link: the signed token in the path is the whole authority
    /// (no key, no loopback rule, any origin: it carries no ambient authority a page
    /// could borrow); the Host check still applies.
    Action,
    /// No route serves the request (a 404 or 405 answer): the Host check only.
    Unmatched,
}
