//! The shared Redis link: one auto-reconnecting multiplexed connection, created lazily
//! so the service starts without Redis and picks it up when it appears. Every command
//! is bounded by a response timeout, so a hung Redis delays work but never blocks it.

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// Per-command timeout; an outage is detected within this time.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum KvError {
    #[error("redis is not reachable: {0}")]
    Unavailable(String),
    #[error("redis command failed: {0}")]
    Command(String),
}

impl From<redis::RedisError> for KvError {
    fn from(e: redis::RedisError) -> Self {
        if e.is_io_error()
            || e.is_timeout()
            || e.is_connection_dropped()
            || e.is_connection_refusal()
        {
            Self::Unavailable(e.to_string())
        } else {
            Self::Command(e.to_string())
        }
    }
}

/// After a failed connect, callers fail fast for this long instead of each waiting
/// for its own connect attempt (which, against a black-holed host, takes the full
/// connect timeout).
const RETRY_CONNECT_AFTER: Duration = Duration::from_millis(500);

pub struct RedisLink {
    client: Result<redis::Client, String>,
    conn: Mutex<Slot>,
}

#[derive(Default)]
struct Slot {
    manager: Option<ConnectionManager>,
    failed: Option<(Instant, String)>,
}

impl RedisLink {
    pub fn new(url: &str) -> Self {
        Self {
            client: redis::Client::open(url).map_err(|e| e.to_string()),
            conn: Mutex::new(Slot::default()),
        }
    }

    /// A handle to the shared connection (cheap to clone), connecting if needed.
    pub async fn conn(&self) -> Result<ConnectionManager, KvError> {
        let mut slot = self.conn.lock().await;
        if let Some(c) = slot.manager.as_ref() {
            return Ok(c.clone());
        }
        if let Some((at, why)) = &slot.failed {
            if at.elapsed() < RETRY_CONNECT_AFTER {
                return Err(KvError::Unavailable(why.clone()));
            }
        }
        let client = self
            .client
            .as_ref()
            .map_err(|e| KvError::Unavailable(e.clone()))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(1));
        let attempt = tokio::time::timeout(
            CONNECT_TIMEOUT * 2,
            ConnectionManager::new_with_config(client.clone(), config),
        )
        .await
        .map_err(|_| KvError::Unavailable("connect timed out".into()))
        .and_then(|r| r.map_err(KvError::from));
        match attempt {
            Ok(manager) => {
                slot.manager = Some(manager.clone());
                slot.failed = None;
                Ok(manager)
            }
            Err(e) => {
                slot.failed = Some((Instant::now(), e.to_string()));
                Err(e)
            }
        }
    }

    /// A connection of its own (for blocking reads that must not stall the shared one),
    /// with a response timeout longer than the longest `BLOCK` it will be used for.
    pub async fn dedicated(
        &self,
        response_timeout: Duration,
    ) -> Result<redis::aio::MultiplexedConnection, KvError> {
        let client = self
            .client
            .as_ref()
            .map_err(|e| KvError::Unavailable(e.clone()))?;
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(response_timeout));
        Ok(client
            .get_multiplexed_async_connection_with_config(&config)
            .await?)
    }

    /// `PING`, returning the round-trip time.
    pub async fn ping(&self) -> Result<Duration, KvError> {
        let started = Instant::now();
        let mut conn = self.conn().await?;
        let pong: String = redis::cmd("PING").query_async(&mut conn).await?;
        if pong != "PONG" {
            return Err(KvError::Command(format!("unexpected PING answer {pong:?}")));
        }
        Ok(started.elapsed())
    }

    /// `INFO server` → `redis_version`.
    pub async fn server_version(&self) -> Result<String, KvError> {
        let mut conn = self.conn().await?;
        let info: String = redis::cmd("INFO")
            .arg("server")
            .query_async(&mut conn)
            .await?;
        Ok(info
            .lines()
            .find_map(|l| l.strip_prefix("redis_version:"))
            .unwrap_or("unknown")
            .trim()
            .to_string())
    }
}
