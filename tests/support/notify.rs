//! What the notifier tests talk to: a real `mosquitto` broker on a free loopback port,
//! an MQTT subscriber that keeps every message, and a local HTTP receiver standing in
//! for ntfy or a webhook (it keeps what it accepted, and can refuse with any status
//! and body).

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{free_port, kill, port_open, require};

// ---------------------------------------------------------------- mosquitto

pub struct Mosquitto {
    dir: tempfile::TempDir,
    pub port: u16,
    child: Option<Child>,
}

/// The account watchpost uses with the test broker (`Mosquitto::url`).
pub const MQTT_USER: (&str, &str) = ("watchpost", "mqtt-test-password-1");
/// The account the test subscriber uses.
const OBSERVER: (&str, &str) = ("observer", "mqtt-observer-password-2");

impl Mosquitto {
    /// A broker that checks credentials (no anonymous access), with watchpost's and
    /// the subscriber's accounts.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// [`Mosquitto::start`] with more accounts.
    pub fn start_with(users: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let passwords = dir.path().join("passwords");
        let passwd = require("mosquitto_passwd", "mosquitto");
        for (n, (user, pass)) in [MQTT_USER, OBSERVER].iter().chain(users).enumerate() {
            let mut c = Command::new(&passwd);
            if n == 0 {
                c.arg("-c");
            }
            let status = c
                .arg("-b")
                .arg(&passwords)
                .args([user, pass])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("mosquitto_passwd");
            assert!(status.success(), "mosquitto_passwd for {user}");
        }
        let mut m = Self {
            dir,
            port: 0,
            child: None,
        };
        m.launch(None);
        m
    }

    fn launch(&mut self, fixed: Option<u16>) {
        let conf = self.dir.path().join("mosquitto.conf");
        let passwords = self.dir.path().join("passwords");
        let (child, port) = super::start_owned(
            "mosquitto",
            fixed,
            |port| {
                std::fs::write(
                    &conf,
                    format!(
                        "listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {}\npersistence false\nlog_dest stderr\n",
                        passwords.display()
                    ),
                )
                .expect("mosquitto.conf");
                Command::new(require("mosquitto", "mosquitto"))
                    .arg("-c")
                    .arg(&conf)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("spawn mosquitto")
            },
            port_open,
        );
        self.child = Some(child);
        self.port = port;
    }

    /// Kill it: every session ends, and (without persistence) every retained message
    /// is forgotten.
    pub fn stop(&mut self) {
        kill(&mut self.child);
    }

    /// Start again on the same port.
    pub fn start_again(&mut self) {
        if self.child.is_none() {
            self.launch(Some(self.port));
        }
    }

    /// The broker's address with watchpost's account.
    pub fn url(&self) -> String {
        let (user, pass) = MQTT_USER;
        format!("mqtt://{user}:{pass}@127.0.0.1:{}", self.port)
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}

/// One message as a subscriber saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub topic: String,
    pub payload: String,
    pub retain: bool,
}

/// A subscriber to every topic (`#`), keeping every message in arrival order.
pub struct Subscriber {
    seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
    client: rumqttc::AsyncClient,
}

impl Subscriber {
    pub async fn start(broker: &Mosquitto) -> Self {
        use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
        let id = format!("test-sub-{}", free_port());
        let mut opts = MqttOptions::new(id, "127.0.0.1", broker.port);
        opts.set_credentials(OBSERVER.0, OBSERVER.1);
        opts.set_keep_alive(std::time::Duration::from_secs(5));
        opts.set_max_packet_size(1 << 20, 1 << 20);
        let (client, mut events) = AsyncClient::new(opts, 16);
        client
            .subscribe("#", QoS::AtLeastOnce)
            .await
            .expect("subscribe");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let kept = seen.clone();
        let subscribed = Arc::new(AtomicBool::new(false));
        let ready = subscribed.clone();
        let kept_client = client.clone();
        let task = tokio::spawn(async move {
            let _client = kept_client;
            loop {
                match events.poll().await {
                    Ok(Event::Incoming(Packet::SubAck(_))) => ready.store(true, Ordering::SeqCst),
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        kept.lock().expect("lock").push(Seen {
                            topic: p.topic.clone(),
                            payload: String::from_utf8_lossy(&p.payload).into_owned(),
                            retain: p.retain,
                        })
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
                }
            }
        });
        super::eventually("the subscriber's SUBACK", || {
            let ready = subscribed.clone();
            async move { ready.load(Ordering::SeqCst).then_some(()) }
        })
        .await;
        Self { seen, task, client }
    }

    /// Publish `payload` on `topic` (not retained, QoS 1), as Home Assistant does
    /// when a button is pressed or a switch turned.
    pub async fn publish(&self, topic: &str, payload: &str) {
        self.client
            .publish(
                topic,
                rumqttc::QoS::AtLeastOnce,
                false,
                payload.as_bytes().to_vec(),
            )
            .await
            .expect("publish");
    }

    pub fn all(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }

    /// Every payload seen on `topic`, oldest first.
    pub fn on(&self, topic: &str) -> Vec<String> {
        self.all()
            .into_iter()
            .filter(|s| s.topic == topic)
            .map(|s| s.payload)
            .collect()
    }

    /// The newest payload on `topic`.
    pub fn last(&self, topic: &str) -> Option<String> {
        self.on(topic).pop()
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.task.abort();
    }
}

// ---------------------------------------------------------------- HTTP receiver

/// One request the receiver accepted.
#[derive(Debug, Clone)]
pub struct Received {
    /// Without the query string.
    pub path: String,
    pub query: String,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub at: Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

/// What the receiver answers while it refuses: a status and a body.
type Refusal = Arc<Mutex<Option<(u16, String)>>>;

/// A webhook receiver: keeps every request it accepted (200); while refusing, answers
/// the refusal's status (503 by default) and keeps nothing.
pub struct HttpReceiver {
    pub port: u16,
    addr: String,
    got: Arc<Mutex<Vec<Received>>>,
    refusing: Refusal,
    refused: Arc<std::sync::atomic::AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl HttpReceiver {
    pub async fn start() -> Self {
        Self::start_at("127.0.0.1").await
    }

    /// Listening on `addr` (a fleet's gateway, which its hosts reach).
    pub async fn start_at(addr: &str) -> Self {
        let listener = tokio::net::TcpListener::bind(format!("{addr}:0"))
            .await
            .expect("bind receiver");
        let port = listener.local_addr().expect("addr").port();
        let got = Arc::new(Mutex::new(Vec::new()));
        let refusing: Refusal = Arc::new(Mutex::new(None));
        let refused = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (g, r, n) = (got.clone(), refusing.clone(), refused.clone());
        let task = tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                tokio::spawn(serve(sock, g.clone(), r.clone(), n.clone()));
            }
        });
        Self {
            port,
            addr: addr.to_string(),
            got,
            refusing,
            refused,
            task,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}:{}{path}", self.addr, self.port)
    }

    /// Answer 503 `down` to everything (`true`), or accept again (`false`).
    pub fn refuse(&self, on: bool) {
        self.answer(on.then(|| (503, "down".to_string())));
    }

    /// Answer every request with `status` and `body` (`None`: accept again).
    pub fn answer(&self, refusal: Option<(u16, String)>) {
        *self.refusing.lock().expect("lock") = refusal;
    }

    /// Requests answered 503 so far.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::SeqCst)
    }

    pub fn all(&self) -> Vec<Received> {
        self.got.lock().expect("lock").clone()
    }

    pub fn on(&self, path: &str) -> Vec<Received> {
        self.all().into_iter().filter(|r| r.path == path).collect()
    }
}

impl Drop for HttpReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    mut sock: tokio::net::TcpStream,
    got: Arc<Mutex<Vec<Received>>>,
    refusing: Refusal,
    refused: Arc<std::sync::atomic::AtomicU64>,
) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let header_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            match sock.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..header_end]).into_owned();
        let mut lines = head.split("\r\n");
        let target = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap_or("")
            .to_string();
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p.to_string(), q.to_string()),
            None => (target, String::new()),
        };
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let len: usize = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        while buf.len() < header_end + len {
            match sock.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body = String::from_utf8_lossy(&buf[header_end..header_end + len]).into_owned();
        buf.drain(..header_end + len);
        let refusal = refusing.lock().expect("lock").clone();
        let answer: Vec<u8> = if let Some((status, body)) = refusal {
            refused.fetch_add(1, Ordering::SeqCst);
            format!(
                "HTTP/1.1 {status} Refused\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .into_bytes()
        } else {
            got.lock().expect("lock").push(Received {
                path,
                query,
                headers,
                body,
                at: Instant::now(),
            });
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_vec()
        };
        if sock.write_all(&answer).await.is_err() {
            return;
        }
    }
}
