//! A local SMTP sink for the e-mail notifier: speaks enough of RFC 5321 (EHLO, AUTH
//! PLAIN and LOGIN, MAIL, RCPT, DATA, RSET, NOOP, QUIT) to take a message, keeps
//! every message with the credentials it came with, and can answer `MAIL FROM` with
//! a temporary refusal. Plain text only: it offers no STARTTLS.

use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// One message the sink took.
#[derive(Debug, Clone, Default)]
pub struct Mail {
    /// `user\0password` from AUTH, empty without.
    pub auth: String,
    pub from: String,
    pub to: Vec<String>,
    /// Headers and body as sent (dot-stuffing undone).
    pub data: String,
}

impl Mail {
    /// A header's value (the first line of it).
    pub fn header(&self, name: &str) -> Option<String> {
        self.data.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }
}

pub struct SmtpSink {
    pub port: u16,
    got: Arc<Mutex<Vec<Mail>>>,
    refusing: Arc<Mutex<bool>>,
    task: tokio::task::JoinHandle<()>,
}

impl SmtpSink {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind SMTP sink");
        let port = listener.local_addr().expect("addr").port();
        let got = Arc::new(Mutex::new(Vec::new()));
        let refusing = Arc::new(Mutex::new(false));
        let (g, r) = (got.clone(), refusing.clone());
        let task = tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                tokio::spawn(session(sock, g.clone(), r.clone()));
            }
        });
        Self {
            port,
            got,
            refusing,
            task,
        }
    }

    /// Answer `MAIL FROM` with `451` (a temporary refusal) while `on`.
    pub fn refuse(&self, on: bool) {
        *self.refusing.lock().expect("lock") = on;
    }

    pub fn all(&self) -> Vec<Mail> {
        self.got.lock().expect("lock").clone()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn base64_decode(s: &str) -> String {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}

async fn session(
    sock: tokio::net::TcpStream,
    got: Arc<Mutex<Vec<Mail>>>,
    refusing: Arc<Mutex<bool>>,
) {
    let (r, mut w) = sock.into_split();
    let mut lines = BufReader::new(r).lines();
    let mut mail = Mail::default();
    let mut auth = String::new();
    let _ = w.write_all(b"220 sink ESMTP\r\n").await;
    while let Ok(Some(line)) = lines.next_line().await {
        let upper = line.to_ascii_uppercase();
        let reply: String = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            "250-sink\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n".into()
        } else if let Some(rest) = upper.strip_prefix("AUTH PLAIN") {
            let given = line[line.len() - rest.len()..].trim().to_string();
            let given = if given.is_empty() {
                let _ = w.write_all(b"334 \r\n").await;
                lines.next_line().await.ok().flatten().unwrap_or_default()
            } else {
                given
            };
            auth = base64_decode(&given).trim_start_matches('\0').to_string();
            "235 ok\r\n".into()
        } else if upper.starts_with("AUTH LOGIN") {
            let _ = w.write_all(b"334 VXNlcm5hbWU6\r\n").await;
            let user = base64_decode(&lines.next_line().await.ok().flatten().unwrap_or_default());
            let _ = w.write_all(b"334 UGFzc3dvcmQ6\r\n").await;
            let pass = base64_decode(&lines.next_line().await.ok().flatten().unwrap_or_default());
            auth = format!("{user}\0{pass}");
            "235 ok\r\n".into()
        } else if upper.starts_with("MAIL FROM:") {
            if *refusing.lock().expect("lock") {
                "451 try again later\r\n".into()
            } else {
                mail = Mail {
                    auth: auth.clone(),
                    from: line[10..].trim().to_string(),
                    ..Mail::default()
                };
                "250 ok\r\n".into()
            }
        } else if upper.starts_with("RCPT TO:") {
            mail.to.push(line[8..].trim().to_string());
            "250 ok\r\n".into()
        } else if upper == "DATA" {
            let _ = w.write_all(b"354 go on\r\n").await;
            let mut data = String::new();
            while let Ok(Some(l)) = lines.next_line().await {
                if l == "." {
                    break;
                }
                data.push_str(l.strip_prefix('.').unwrap_or(&l));
                data.push('\n');
            }
            mail.data = data;
            got.lock().expect("lock").push(std::mem::take(&mut mail));
            "250 queued\r\n".into()
        } else if upper == "QUIT" {
            let _ = w.write_all(b"221 bye\r\n").await;
            return;
        } else {
            "250 ok\r\n".into()
        };
        if w.write_all(reply.as_bytes()).await.is_err() {
            return;
        }
    }
}
