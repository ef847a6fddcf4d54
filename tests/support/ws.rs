//! The WebSocket at `/ws`: connect, subscribe, read the next JSON message.

use crate::support::Watchpost;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub async fn subscribed(wp: &Watchpost, channels: &[&str]) -> Ws {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{}/ws", wp.port))
        .await
        .expect("websocket");
    let msg = serde_json::json!({"action": "subscribe", "channels": channels}).to_string();
    ws.send(Message::Text(msg.into())).await.expect("send");
    loop {
        let m = next(&mut ws).await.expect("ack");
        if m["type"] == "system.subscribed" {
            return ws;
        }
    }
}

pub async fn next(ws: &mut Ws) -> Option<Value> {
    let patience = crate::support::patience();
    loop {
        match tokio::time::timeout(patience, ws.next()).await.ok()?? {
            Ok(Message::Text(t)) => return serde_json::from_str(&t).ok(),
            Ok(_) => continue,
            Err(_) => return None,
        }
    }
}
