//! `GET /ws` (the WebSocket, over `crate::ws::Hub`) and the event registry.
//!
//! The socket task: forwards the hub's queue to the client, answers client messages
//! through the hub, and pings every `websocket.ping_interval_seconds`
//! (`crate::ws::Liveness`: a client that has not answered a ping by the next one is
//! dropped). Every write (messages, replies, pongs, pings) is bounded by
//! [`WRITE_TIMEOUT`] and abandoned at once when the hub drops the client, and the close
//! frame is offered without waiting, so a client that stops reading can never hold its
//! task.
//!
//! A connection's place under `websocket.max_clients` (a `crate::ws::Admission`) is
//! taken before the upgrade and kept in the connection's own data ([`ConnectionSeat`],
//! installed for every connection by `api::serve`), so it is freed only when the TCP
//! connection is really gone, not when the task ends. Accepted sockets get
//! `TCP_USER_TIMEOUT` ([`bound_unacknowledged_writes`]), so the kernel closes a
//! connection whose peer leaves what we sent unread.
//!
//! Authentication happened in the gate (`edge.rs`); a key offered as a subprotocol is
//! echoed back, as browsers require.

use actix_web::http::header::{HeaderValue, SEC_WEBSOCKET_PROTOCOL};
use actix_web::web::{Data, Payload};
use actix_web::{HttpRequest, HttpResponse};
use actix_ws::{AggregatedMessage, CloseCode, CloseReason};
use futures_util::StreamExt;
use std::cell::RefCell;
use std::sync::OnceLock;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

use super::auth::{ws_protocol_key, WS_KEY_PROTOCOL};
use crate::config::secs;
use crate::events::registry::{registry, Registry};
use crate::state::AppState;
use crate::ws::{Admission, Connection, DropReason, Hub, Liveness, Tick};

/// Longest a single write to a client may take before it counts as stuck.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection's WebSocket place, dropped with the connection. `api::serve` puts an
/// empty one in every connection's data; the upgrade fills it.
#[derive(Default)]
pub struct ConnectionSeat(RefCell<Option<Admission>>);

/// Make the kernel close a connection when data we sent stays unacknowledged, or
/// unsent because the peer's window stays closed, for two write timeouts: the
/// transport's own bound under every write, for any route.
pub fn bound_unacknowledged_writes(stream: &actix_web::rt::net::TcpStream) {
    use std::os::fd::AsRawFd;
    let millis = libc::c_uint::try_from((WRITE_TIMEOUT * 2).as_millis()).unwrap_or(20_000);
    // SAFETY: the descriptor belongs to a live socket we borrow; the option value is a
    // properly sized c_uint on the stack.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_USER_TIMEOUT,
            (&millis as *const libc::c_uint).cast(),
            std::mem::size_of::<libc::c_uint>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "TCP_USER_TIMEOUT not set");
    }
}

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
    let (mut response, session, stream) = actix_ws::handle(&req, body).map_err(|e| {
        super::error::ApiError::BadRequest(format!(
            "GET /ws must be a WebSocket upgrade (Connection: Upgrade, Upgrade: websocket, Sec-WebSocket-Version: 13, Sec-WebSocket-Key): {e}"
        ))
    })?;
    // Bounded: each connection costs a task, a queue and a socket.
    let Some(admission) = state.hub.admit() else {
        return Err(super::error::ApiError::Unavailable(format!(
            "Too many WebSocket clients ({} connected, websocket.max_clients); try again later",
            state.hub.max_open()
        )));
    };
    // The place lives as long as the connection (a server without the seat, such as
    // an in-process test app, lets the task hold it instead).
    let held_by_task = match req.conn_data::<ConnectionSeat>() {
        Some(seat) => {
            *seat.0.borrow_mut() = Some(admission);
            None
        }
        None => Some(admission),
    };
    if let Some(key) = ws_protocol_key(req.headers()) {
        if let Ok(v) = HeaderValue::from_str(&format!("{WS_KEY_PROTOCOL}{key}")) {
            response.headers_mut().insert(SEC_WEBSOCKET_PROTOCOL, v);
        }
    }
    let hub = state.hub.clone();
    let liveness = Liveness::new(secs(state.config.websocket.ping_interval_seconds));
    actix_web::rt::spawn(async move {
        serve(hub, session, stream, liveness).await;
        drop(held_by_task);
    });
    Ok(response)
}

/// One frame for the client.
enum Out<'a> {
    Text(&'a str),
    Ping,
    Pong(&'a [u8]),
}

/// Write one frame, bounded by [`WRITE_TIMEOUT`] and abandoned when the hub drops the
/// client; the error is why the client ends.
async fn send(
    session: &mut actix_ws::Session,
    conn: &Connection,
    kicked: &CancellationToken,
    frame: Out<'_>,
) -> Result<(), DropReason> {
    let write = async {
        match frame {
            Out::Text(t) => session.text(t.to_owned()).await,
            Out::Ping => session.ping(b"watchpost").await,
            Out::Pong(b) => session.pong(b).await,
        }
    };
    tokio::select! {
        r = write => r.map_err(|_| DropReason::Closed),
        _ = tokio::time::sleep(WRITE_TIMEOUT) => Err(DropReason::WriteTimeout),
        _ = kicked.cancelled() => Err(conn.drop_reason().unwrap_or(DropReason::Slow)),
    }
}

async fn serve(
    hub: std::sync::Arc<Hub>,
    mut session: actix_ws::Session,
    stream: actix_ws::MessageStream,
    mut liveness: Liveness,
) {
    let mut conn = hub.connect();
    let kicked = conn.kicked();
    let mut stream = stream
        .max_frame_size(64 * 1024)
        .aggregate_continuations()
        .max_continuation_size(64 * 1024);
    // The first ping goes out at once: a client that never reads is known by the
    // second tick.
    let mut ping = tokio::time::interval(liveness.every());
    let reason = loop {
        let sent = tokio::select! {
            _ = kicked.cancelled() => Err(conn.drop_reason().unwrap_or(DropReason::Slow)),
            out = conn.rx.recv() => match out {
                Some(text) => send(&mut session, &conn, &kicked, Out::Text(&text)).await,
                // The hub dropped this client (too slow).
                None => Err(conn.drop_reason().unwrap_or(DropReason::Slow)),
            },
            msg = stream.next() => match msg {
                Some(Ok(AggregatedMessage::Text(text))) => {
                    let answer = conn.handle_text(&text);
                    send(&mut session, &conn, &kicked, Out::Text(&answer)).await
                }
                Some(Ok(AggregatedMessage::Binary(_))) => {
                    let answer = conn.handle_text("binary frame");
                    send(&mut session, &conn, &kicked, Out::Text(&answer)).await
                }
                Some(Ok(AggregatedMessage::Ping(bytes))) => {
                    send(&mut session, &conn, &kicked, Out::Pong(&bytes)).await
                }
                Some(Ok(AggregatedMessage::Pong(_))) => {
                    liveness.pong();
                    Ok(())
                }
                Some(Ok(AggregatedMessage::Close(_))) | Some(Err(_)) | None => {
                    Err(DropReason::Closed)
                }
            },
            now = ping.tick() => match liveness.tick(now) {
                Tick::Ping => send(&mut session, &conn, &kicked, Out::Ping).await,
                Tick::Unresponsive => Err(DropReason::Unresponsive),
            },
        };
        if let Err(reason) = sent {
            break reason;
        }
    };
    conn.end(reason);
    let close = match reason {
        DropReason::Closed | DropReason::WriteTimeout => return,
        DropReason::Slow => CloseReason {
            code: CloseCode::Policy,
            description: Some("too slow: messages were not read in time".into()),
        },
        DropReason::Unresponsive => CloseReason {
            code: CloseCode::Policy,
            description: Some("no answer to pings".into()),
        },
    };
    // Offered, never waited for: a client dropped for not reading would not read it,
    // and waiting would hold its task past the point it was dropped.
    let _ = futures_util::FutureExt::now_or_never(session.close(Some(close)));
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
