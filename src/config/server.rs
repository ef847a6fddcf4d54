//! `[server]` and `[auth]`: where watchpost listens, what it answers, and who may write.

use serde::{Deserialize, Serialize};

use super::check::Checks;
use super::urls::{is_host_name, is_origin};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address the HTTP server binds; loopback by default.
    pub bind: String,
    /// Number of actix HTTP worker threads.
    pub workers: usize,
    /// Browser origins (`scheme://host[:port]`) other than watchpost's own that may
    /// POST and open the WebSocket; listing any also enables CORS answers for them.
    /// docs/behaviour.md §9 has the reasoning.
    pub allowed_origins: Vec<String>,
    /// Host names under which watchpost answers, besides IP literals, `localhost` and
    /// the machine's own host names (DNS rebinding defence, whatever the bind
    /// address). `*` turns the check off.
    pub allowed_hosts: Vec<String>,
    /// This instance's id in a fleet (letters, digits, `_`, `.`, `-`, `:`); empty:
    /// `queue.consumer_id` when set, else the host name and the bound port.
    pub instance_id: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:8000".into(),
            workers: 2,
            allowed_origins: Vec::new(),
            allowed_hosts: Vec::new(),
            instance_id: String::new(),
        }
    }
}

#[derive(Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// API keys accepted in `X-API-Key`; empty means POSTs only from loopback.
    pub api_keys: Vec<String>,
    /// Require the key (or loopback) for GETs as well.
    pub protect_reads: bool,
}

// Hand-written so that API keys can never reach a log line through `{:?}`.
impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field(
                "api_keys",
                &format_args!("[{} redacted]", self.api_keys.len()),
            )
            .field("protect_reads", &self.protect_reads)
            .finish()
    }
}

impl ServerConfig {
    pub(super) fn validate(&self, c: &mut Checks) {
        c.check(
            self.bind.parse::<std::net::SocketAddr>().is_ok(),
            "server.bind",
            "must be an IP:port address such as 127.0.0.1:8000",
        );
        c.check(
            self.instance_id.len() <= 64
                && self
                    .instance_id
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || "_.-:".contains(ch)),
            "server.instance_id",
            "must be at most 64 letters, digits, '_', '.', '-' or ':' (empty: the host name and port)",
        );
        c.check(
            self.allowed_origins.iter().all(|o| is_origin(o)),
            "server.allowed_origins",
            "each entry must be an origin such as http://dash.example or https://grafana.lan:3000 (scheme, host and optional port; no path, no wildcard)",
        );
        c.check(
            self.allowed_hosts.iter().all(|h| is_host_name(h)),
            "server.allowed_hosts",
            "each entry must be a host name or IP address without scheme or port (such as watchpost.lan or 192.168.1.20), or * to turn the check off",
        );
        c.count("server.workers", self.workers as u64, 1, 64);
    }
}

impl AuthConfig {
    pub(super) fn validate(&self, c: &mut Checks) {
        c.check(
            self.api_keys.iter().all(|k| !k.trim().is_empty()),
            "auth.api_keys",
            "keys must not be empty",
        );
    }
}
