//! The shared Redis link, used by the queues, the batch aggregator, de-duplication and
//! (later) health probes and the event relay.
//!
//! One multiplexed connection, created lazily so the service starts without Redis.
//! Connecting happens in a background task, never under a lock that callers wait on:
//! while Redis is down every caller fails at once (`KvError::Unavailable`) and keeps
//! its work (spool, memory batch, memory dedupe) instead of queueing behind a connect
//! attempt that can take the whole connect timeout against a black-holed host. Only
//! the very first attempt after start is waited for (bounded by the connect timeout),
//! so work that arrives while the first connection is being made is not spooled for
//! nothing. Every command is bounded by a response timeout; a connection error or a
//! timeout marks the link down and starts a reconnect.
//!
//! The link also owns the reachability log: one `warn` when Redis becomes unreachable
//! (saying what that means for the pipeline) and one `info` when it is back, never a
//! line per failed attempt.
//!
//! Must not: hold a lock across an `.await`, or log the URL's password.

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::{Cmd, Pipeline, RedisFuture, Value};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::runtime::Handle;
use tokio::sync::watch;

/// Per-command timeout; an unresponsive Redis is detected within this time.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Wait between background connect attempts while Redis is down.
const RETRY_CONNECT_AFTER: Duration = Duration::from_millis(500);

#[derive(Debug, Clone, thiserror::Error)]
pub enum KvError {
    #[error("redis is not reachable: {0}")]
    Unavailable(String),
    #[error("redis command failed: {0}")]
    Command(String),
}

impl KvError {
    /// Does this error mean the connection is unusable (as opposed to a bad command)?
    fn is_link_failure(e: &redis::RedisError) -> bool {
        e.is_io_error() || e.is_timeout() || e.is_connection_dropped() || e.is_connection_refusal()
    }
}

impl From<redis::RedisError> for KvError {
    fn from(e: redis::RedisError) -> Self {
        if Self::is_link_failure(&e) {
            Self::Unavailable(e.to_string())
        } else {
            Self::Command(e.to_string())
        }
    }
}

/// Where the link stands.
enum Link {
    /// No attempt made yet.
    Idle,
    /// An attempt is under way. `first` while no attempt has finished yet (callers
    /// wait for it); otherwise callers fail at once with `last_error`.
    Connecting {
        first: bool,
        last_error: String,
    },
    Up {
        conn: MultiplexedConnection,
        generation: u64,
    },
    Down {
        at: Instant,
        why: String,
    },
}

struct Shared {
    client: Result<redis::Client, String>,
    shown_url: String,
    state: Mutex<Link>,
    generation: Mutex<u64>,
    /// Bumped whenever an attempt finishes (success or failure).
    attempts: watch::Sender<u64>,
    /// The runtime that owns the connection's driver task (the main one, never an
    /// HTTP worker's).
    runtime: Option<Handle>,
    /// Has the outage been logged (so it is logged once)?
    outage_logged: Mutex<bool>,
    /// Bumped whenever Redis becomes reachable or unreachable.
    reachability: watch::Sender<u64>,
}

/// Cheap to clone; all clones share one link.
#[derive(Clone)]
pub struct RedisLink {
    shared: Arc<Shared>,
}

/// A handle to the shared connection. Every command sent through it that fails on the
/// connection marks the link down (and starts a reconnect).
#[derive(Clone)]
pub struct Conn {
    inner: MultiplexedConnection,
    generation: u64,
    link: Arc<Shared>,
}

impl RedisLink {
    /// Build the link (no connection is made here). Call inside the runtime that should
    /// own the connection.
    pub fn new(url: &str) -> Self {
        let (attempts, _) = watch::channel(0);
        Self {
            shared: Arc::new(Shared {
                client: redis::Client::open(url).map_err(|e| e.to_string()),
                shown_url: crate::redact::url(url),
                state: Mutex::new(Link::Idle),
                generation: Mutex::new(0),
                attempts,
                runtime: Handle::try_current().ok(),
                outage_logged: Mutex::new(false),
                reachability: watch::channel(0).0,
            }),
        }
    }

    /// The URL as it may be shown (password masked).
    pub fn shown_url(&self) -> &str {
        &self.shared.shown_url
    }

    /// Changes whenever Redis becomes reachable or unreachable.
    pub fn reachability_changes(&self) -> watch::Receiver<u64> {
        self.shared.reachability.subscribe()
    }

    /// Is the link up right now (as far as the last command knows)?
    pub fn is_up(&self) -> bool {
        matches!(*self.shared.lock(), Link::Up { .. })
    }

    /// The shared connection, or `Unavailable` at once while Redis is down.
    pub async fn conn(&self) -> Result<Conn, KvError> {
        let mut attempts = self.shared.attempts.subscribe();
        let wait_first = {
            let mut st = self.shared.lock();
            match &*st {
                Link::Up { conn, generation } => {
                    return Ok(Conn {
                        inner: conn.clone(),
                        generation: *generation,
                        link: self.shared.clone(),
                    })
                }
                Link::Idle => {
                    *st = Link::Connecting {
                        first: true,
                        last_error: "connecting".into(),
                    };
                    self.shared.spawn_connect();
                    true
                }
                Link::Connecting { first, last_error } => {
                    if !*first {
                        return Err(KvError::Unavailable(last_error.clone()));
                    }
                    true
                }
                Link::Down { at, why } => {
                    let why = why.clone();
                    if at.elapsed() >= RETRY_CONNECT_AFTER {
                        *st = Link::Connecting {
                            first: false,
                            last_error: why.clone(),
                        };
                        self.shared.spawn_connect();
                    }
                    return Err(KvError::Unavailable(why));
                }
            }
        };
        if wait_first {
            // Only before the first attempt has finished: wait for it. The receiver was
            // taken before the state was read, so its result cannot be missed.
            let _ = tokio::time::timeout(CONNECT_TIMEOUT * 2, attempts.changed()).await;
        }
        match &*self.shared.lock() {
            Link::Up { conn, generation } => Ok(Conn {
                inner: conn.clone(),
                generation: *generation,
                link: self.shared.clone(),
            }),
            Link::Down { why, .. } => Err(KvError::Unavailable(why.clone())),
            Link::Connecting { last_error, .. } => Err(KvError::Unavailable(last_error.clone())),
            Link::Idle => Err(KvError::Unavailable("not connected".into())),
        }
    }

    /// A connection of its own (for blocking reads that must not stall the shared one),
    /// with a response timeout longer than the longest `BLOCK` it will be used for.
    /// Fails at once while the shared link is down.
    pub async fn dedicated(
        &self,
        response_timeout: Duration,
    ) -> Result<MultiplexedConnection, KvError> {
        // Fail fast (and trigger the background reconnect) while Redis is away.
        self.conn().await?;
        let client = self
            .shared
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

    /// `INFO <section>` as `key → value` pairs.
    pub async fn info(&self, section: &str) -> Result<Vec<(String, String)>, KvError> {
        let mut conn = self.conn().await?;
        let text: String = redis::cmd("INFO")
            .arg(section)
            .query_async(&mut conn)
            .await?;
        Ok(parse_info(&text))
    }
}

/// A link to a loopback port nobody listens on (for tests of the Redis-down paths).
#[cfg(test)]
pub fn dead_link() -> RedisLink {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port");
    RedisLink::new(&format!("redis://127.0.0.1:{port}"))
}

/// `key:value` lines of an `INFO` answer (comments and blank lines skipped).
pub fn parse_info(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Link> {
        // Every critical section leaves the state whole; survive a poisoned lock.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Start one connect attempt in the background. Caller has set `Connecting`.
    fn spawn_connect(self: &Arc<Self>) {
        let me = Arc::clone(self);
        let attempt = async move {
            let result = match &me.client {
                Err(e) => Err(e.clone()),
                Ok(client) => {
                    let config = redis::AsyncConnectionConfig::new()
                        .set_connection_timeout(Some(CONNECT_TIMEOUT))
                        .set_response_timeout(Some(RESPONSE_TIMEOUT));
                    match tokio::time::timeout(
                        CONNECT_TIMEOUT * 2,
                        client.get_multiplexed_async_connection_with_config(&config),
                    )
                    .await
                    {
                        Ok(Ok(c)) => Ok(c),
                        Ok(Err(e)) => Err(e.to_string()),
                        Err(_) => Err("connect timed out".to_string()),
                    }
                }
            };
            me.connect_finished(result);
        };
        match &self.runtime {
            Some(rt) => drop(rt.spawn(attempt)),
            None => drop(tokio::spawn(attempt)),
        }
    }

    fn connect_finished(&self, result: Result<MultiplexedConnection, String>) {
        {
            let mut st = self.lock();
            match result {
                Ok(conn) => {
                    let generation = {
                        let mut g = self.generation.lock().unwrap_or_else(|p| p.into_inner());
                        *g += 1;
                        *g
                    };
                    *st = Link::Up { conn, generation };
                    drop(st);
                    self.note_reachable(true, "");
                }
                Err(why) => {
                    *st = Link::Down {
                        at: Instant::now(),
                        why: why.clone(),
                    };
                    drop(st);
                    self.note_reachable(false, &why);
                }
            }
        }
        self.attempts.send_modify(|n| *n += 1);
    }

    /// A command on connection `generation` failed on the link: mark it down.
    fn link_failed(&self, generation: u64, why: &str) {
        let mut st = self.lock();
        if matches!(&*st, Link::Up { generation: g, .. } if *g == generation) {
            *st = Link::Down {
                at: Instant::now(),
                why: why.to_string(),
            };
            drop(st);
            self.note_reachable(false, why);
        }
    }

    /// Log a change of reachability once.
    fn note_reachable(&self, up: bool, why: &str) {
        let mut logged = self.outage_logged.lock().unwrap_or_else(|p| p.into_inner());
        if up && *logged {
            *logged = false;
            tracing::info!(url = %self.shown_url, "Redis is reachable again: spooled work is replayed and batches move back to Redis");
            self.reachability.send_modify(|n| *n += 1);
        } else if !up && !*logged {
            *logged = true;
            tracing::warn!(url = %self.shown_url, error = %why, "Redis unreachable: new work is spooled to disk, batches and de-duplication are kept in memory until it is back");
            self.reachability.send_modify(|n| *n += 1);
        }
    }
}

impl Conn {
    fn check<T>(&self, result: redis::RedisResult<T>) -> redis::RedisResult<T> {
        if let Err(e) = &result {
            if KvError::is_link_failure(e) {
                self.link.link_failed(self.generation, &e.to_string());
            }
        }
        result
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let r = self.inner.req_packed_command(cmd).await;
            self.check(r)
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let r = self
                .inner
                .req_packed_commands(pipeline, offset, count)
                .await;
            self.check(r)
        })
    }

    fn get_db(&self) -> i64 {
        self.inner.get_db()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_lines_become_pairs() {
        let info = "# Server\r\nredis_version:7.0.15\r\nredis_mode:standalone\r\n\r\n";
        assert_eq!(
            parse_info(info),
            vec![
                ("redis_version".to_string(), "7.0.15".to_string()),
                ("redis_mode".to_string(), "standalone".to_string())
            ]
        );
    }

    /// After the first failed attempt, callers never start or wait for a connect of
    /// their own: at most one background attempt per retry interval.
    #[tokio::test]
    async fn a_down_link_fails_callers_at_once_and_reconnects_in_the_background() {
        let link = dead_link();
        assert!(link.conn().await.is_err(), "nobody listens");
        let attempts = *link.shared.attempts.borrow();
        assert_eq!(attempts, 1);
        for _ in 0..100 {
            assert!(matches!(link.conn().await, Err(KvError::Unavailable(_))));
        }
        assert!(*link.shared.attempts.borrow() <= attempts + 1);
        assert!(!link.is_up());
    }
}
