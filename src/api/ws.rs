//! `GET /ws` (the WebSocket, over `crate::ws::Hub`) and the event registry.
//!
//! The socket task: forwards the hub's queue to the client (each write bounded in
//! time), answers client messages through the hub, pings every
//! `websocket.ping_interval_seconds` and drops a client silent for two periods.
//! Authentication happened in the middleware (`auth.rs`); a key offered as a
//! subprotocol is echoed back, as browsers require.

use actix_web::http::header::{HeaderValue, SEC_WEBSOCKET_PROTOCOL};
use actix_web::web::{Data, Payload};
use actix_web::{HttpRequest, HttpResponse};
use actix_ws::{AggregatedMessage, CloseCode, CloseReason};
use futures_util::StreamExt;
use std::sync::OnceLock;
use std::time::Duration;
use tokio::time::Instant;

use super::auth::{ws_protocol_key, WS_KEY_PROTOCOL};
use crate::config::secs;
use crate::events::registry::{registry, Registry};
use crate::state::AppState;
use crate::ws::{DropReason, Hub};

/// Longest a single write to a client may take before it counts as stuck.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Upgrade to a WebSocket; then subscribe with
/// `{"action": "subscribe", "channels": ["events", …]}`.
#[utoipa::path(get, path = "/ws", tag = "websocket",
    params(("api_key" = Option<String>, Query, description = "API key, when keys are configured (or the subprotocol api-key.<key>)")),
    responses((status = 101, description = "Switching protocols"),
        (status = 400, description = "Not a WebSocket upgrade", body = super::error::ErrorBody),
        (status = 401, description = "Missing or wrong API key", body = super::error::ErrorBody),
        (status = 403, description = "Forbidden", body = super::error::ErrorBody),
        (status = 503, description = "websocket.max_clients reached", body = super::error::ErrorBody)))]
pub async fn socket(
    req: HttpRequest,
    body: Payload,
    state: Data<AppState>,
) -> Result<HttpResponse, super::error::ApiError> {
    // Bounded: each client costs a task and a queue. Checked before the upgrade, so a
    // refused client gets a readable answer (racing upgrades may pass it by a few).
    let max = state.config.websocket.max_clients;
    if state.hub.client_count() >= max {
        return Err(super::error::ApiError::Unavailable(format!(
            "Too many WebSocket clients ({max} connected, websocket.max_clients); try again later"
        )));
    }
    let (mut response, session, stream) = actix_ws::handle(&req, body).map_err(|e| {
        super::error::ApiError::BadRequest(format!(
            "GET /ws must be a WebSocket upgrade (Connection: Upgrade, Upgrade: websocket, Sec-WebSocket-Version: 13, Sec-WebSocket-Key): {e}"
        ))
    })?;
    if let Some(key) = ws_protocol_key(req.headers()) {
        if let Ok(v) = HeaderValue::from_str(&format!("{WS_KEY_PROTOCOL}{key}")) {
            response.headers_mut().insert(SEC_WEBSOCKET_PROTOCOL, v);
        }
    }
    let hub = state.hub.clone();
    let ping_every = secs(state.config.websocket.ping_interval_seconds);
    actix_web::rt::spawn(serve(hub, session, stream, ping_every));
    Ok(response)
}

async fn serve(
    hub: std::sync::Arc<Hub>,
    mut session: actix_ws::Session,
    stream: actix_ws::MessageStream,
    ping_every: Duration,
) {
    let mut conn = hub.connect();
    let mut stream = stream
        .max_frame_size(64 * 1024)
        .aggregate_continuations()
        .max_continuation_size(64 * 1024);
    let mut ping = tokio::time::interval(ping_every);
    ping.tick().await;
    let mut last_heard = Instant::now();
    let reason = loop {
        tokio::select! {
            out = conn.rx.recv() => match out {
                Some(text) => {
                    match tokio::time::timeout(WRITE_TIMEOUT, session.text(&*text)).await {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) => break DropReason::Closed,
                        Err(_) => break DropReason::WriteTimeout,
                    }
                }
                // The hub dropped this client (too slow).
                None => break conn.drop_reason().unwrap_or(DropReason::Slow),
            },
            msg = stream.next() => {
                last_heard = Instant::now();
                match msg {
                    Some(Ok(AggregatedMessage::Text(text))) => {
                        let answer = conn.handle_text(&text);
                        if session.text(&*answer).await.is_err() {
                            break DropReason::Closed;
                        }
                    }
                    Some(Ok(AggregatedMessage::Ping(bytes))) => {
                        if session.pong(&bytes).await.is_err() {
                            break DropReason::Closed;
                        }
                    }
                    Some(Ok(AggregatedMessage::Binary(_))) => {
                        let answer = conn.handle_text("binary frame");
                        if session.text(&*answer).await.is_err() {
                            break DropReason::Closed;
                        }
                    }
                    Some(Ok(AggregatedMessage::Pong(_))) => {}
                    Some(Ok(AggregatedMessage::Close(_))) | Some(Err(_)) | None => {
                        break DropReason::Closed
                    }
                }
            }
            _ = ping.tick() => {
                if last_heard.elapsed() >= ping_every * 2 {
                    break DropReason::Unresponsive;
                }
                if session.ping(b"watchpost").await.is_err() {
                    break DropReason::Closed;
                }
            }
        }
    };
    conn.end(reason);
    let close = match reason {
        DropReason::Closed => None,
        DropReason::Slow => Some(CloseReason {
            code: CloseCode::Policy,
            description: Some("too slow: messages were not read in time".into()),
        }),
        DropReason::Unresponsive => Some(CloseReason {
            code: CloseCode::Policy,
            description: Some("no answer to pings".into()),
        }),
        DropReason::WriteTimeout => None,
    };
    let _ = tokio::time::timeout(WRITE_TIMEOUT, session.close(close)).await;
}

/// Every event type the WebSocket can send, with its channel and payload schema.
#[utoipa::path(get, path = "/api/system/websocket/events", tag = "websocket",
    responses((status = 200, body = Registry)))]
pub async fn events() -> HttpResponse {
    static BODY: OnceLock<String> = OnceLock::new();
    HttpResponse::Ok().content_type("application/json").body(
        BODY.get_or_init(|| serde_json::to_string(&registry()).unwrap_or_default())
            .as_str(),
    )
}
