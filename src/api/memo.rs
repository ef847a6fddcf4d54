//! Memoised JSON bodies for monitoring answers that are read far more often than they
//! change. A body is rendered again when its domain version moved (the domain's state
//! changed) or when it is older than its time-to-live (for answers with continuously
//! moving values such as ages). A stamped answer keeps everything but its final
//! `timestamp`, which is written fresh for every request, so a memoised answer still
//! says "now". Rendering and serialising dominate these handlers' cost; a hit is a
//! copy of a reference-counted buffer and one formatted timestamp.
//!
//! The busiest monitoring answers (`respond_fresh`) go one step further: a stamped
//! body made less than `FRESH` ago is served whole, without even computing the
//! domain version (which takes every breaker's lock). Their `timestamp` is then at
//! most `FRESH` old, and a change shows at most `FRESH` late; a write through the API
//! (`forget`) shows at once.

use actix_web::http::StatusCode;
use actix_web::web::Bytes;
use actix_web::HttpResponse;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The memoised answers of one application (shared by its HTTP worker threads).
pub struct Memos {
    pub pipeline: Memo,
    /// Versioned by the sampler's sample count.
    pub performance: Memo,
    /// One per entry of `crate::perf::TIME_RANGES`, versioned like `performance`;
    /// the window ends "now", so a body is also at most `HISTORY_TTL` old (a stopped
    /// sampler's samples still age out of the window).
    pub performance_history: [Memo; crate::perf::TIME_RANGES.len()],
    /// Versioned by the supervisor's state.
    pub supervisor: Memo,
    /// Versioned by every breaker's counters and state.
    pub breakers: Memo,
    /// Versioned by the probe round, the workers and the breakers.
    pub full_health: Memo,
    /// Versioned by the cameras' statuses; counts and last images move with every
    /// image, so a body is also at most `CAMERAS_TTL` old.
    pub cameras: Memo,
    /// The same with each camera's images per hour.
    pub cameras_hourly: Memo,
}

impl Default for Memos {
    fn default() -> Self {
        Self {
            pipeline: Memo::new(PIPELINE_TTL),
            performance: Memo::new(Duration::MAX),
            performance_history: std::array::from_fn(|_| Memo::new(HISTORY_TTL)),
            supervisor: Memo::new(Duration::MAX),
            breakers: Memo::new(Duration::MAX),
            full_health: Memo::new(Duration::MAX),
            cameras: Memo::new(CAMERAS_TTL),
            cameras_hourly: Memo::new(CAMERAS_TTL),
        }
    }
}

/// The pipeline answer holds ages that move continuously, so it is memoised by time
/// only: it is at most this old, which its `timestamp` states.
const PIPELINE_TTL: Duration = Duration::from_millis(100);

/// How old a memoised camera list may be (its `timestamp` says when it was made).
const CAMERAS_TTL: Duration = Duration::from_millis(500);

/// How far behind "now" a memoised performance history window may end.
const HISTORY_TTL: Duration = Duration::from_secs(1);

/// How long a whole stamped body is served as it is by `respond_fresh`.
pub const FRESH: Duration = Duration::from_millis(100);

/// The last field of every stamped answer.
const STAMP: &[u8] = b",\"timestamp\":";

struct Slot {
    at: Instant,
    version: u64,
    status: StatusCode,
    /// The whole body, or for a stamped answer everything before `,"timestamp":`.
    body: Bytes,
    stamped: bool,
    /// For a stamped answer: the whole body as last stamped, and when.
    whole: Option<(Instant, Bytes)>,
}

pub struct Memo {
    ttl: Duration,
    slot: Mutex<Option<Slot>>,
}

impl Memo {
    pub const fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            slot: Mutex::new(None),
        }
    }

    fn get_or_render<T: serde::Serialize>(
        &self,
        version: u64,
        stamped: bool,
        render: impl FnOnce() -> (StatusCode, T),
    ) -> (StatusCode, Bytes) {
        let now = Instant::now();
        if let Some(s) = &*self.slot.lock().unwrap_or_else(|p| p.into_inner()) {
            if s.version == version && s.stamped == stamped && now.duration_since(s.at) < self.ttl {
                return (s.status, s.body.clone());
            }
        }
        let (status, value) = render();
        // Serialising plain data into memory cannot fail; an empty object is the
        // conservative answer if it ever did.
        let mut body = serde_json::to_vec(&value).unwrap_or_else(|_| b"{}".to_vec());
        if stamped {
            // Keep what precedes the final timestamp (the rendered one is replaced).
            if let Some(i) = body.windows(STAMP.len()).rposition(|w| w == STAMP) {
                body.truncate(i);
            } else {
                body.pop(); // no timestamp: drop the closing brace
            }
        }
        let body = Bytes::from(body);
        *self.slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(Slot {
            at: now,
            version,
            status,
            body: body.clone(),
            stamped,
            whole: None,
        });
        (status, body)
    }

    /// Forget the memoised body (a write changed what it shows).
    pub fn forget(&self) {
        *self.slot.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// The whole stamped body, while it is younger than `FRESH`.
    pub fn fresh(&self) -> Option<HttpResponse> {
        let now = Instant::now();
        let slot = self.slot.lock().unwrap_or_else(|p| p.into_inner());
        let s = slot.as_ref()?;
        let (at, whole) = s.whole.as_ref()?;
        (s.stamped && now.duration_since(*at) < FRESH).then(|| {
            HttpResponse::build(s.status)
                .content_type("application/json")
                .body(whole.clone())
        })
    }

    /// A stamped answer as `respond_stamped`, served whole while it is younger than
    /// `FRESH` (then `version` is not even asked); past that, stamped again (or
    /// rendered again when the version moved) and kept whole for the next `FRESH`.
    pub fn respond_fresh<T: serde::Serialize>(
        &self,
        version: impl FnOnce() -> u64,
        render: impl FnOnce() -> (StatusCode, T),
    ) -> HttpResponse {
        if let Some(fresh) = self.fresh() {
            return fresh;
        }
        let now = Instant::now();
        let (status, prefix) = self.get_or_render(version(), true, render);
        let whole = Bytes::from(stamp(&prefix));
        if let Some(s) = self.slot.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
            if s.body == prefix {
                s.whole = Some((now, whole.clone()));
            }
        }
        HttpResponse::build(status)
            .content_type("application/json")
            .body(whole)
    }

    /// The memoised body for `version`, or a fresh one from `render`.
    pub fn body<T: serde::Serialize>(&self, version: u64, render: impl FnOnce() -> T) -> Bytes {
        self.get_or_render(version, false, || (StatusCode::OK, render()))
            .1
    }

    /// A 200 JSON answer with the memoised body.
    pub fn respond<T: serde::Serialize>(
        &self,
        version: u64,
        render: impl FnOnce() -> T,
    ) -> HttpResponse {
        HttpResponse::Ok()
            .content_type("application/json")
            .body(self.body(version, render))
    }

    /// A JSON answer whose last field is `timestamp`, memoised without it and stamped
    /// with the current time on every request.
    pub fn respond_stamped<T: serde::Serialize>(
        &self,
        version: u64,
        render: impl FnOnce() -> (StatusCode, T),
    ) -> HttpResponse {
        let (status, prefix) = self.get_or_render(version, true, render);
        HttpResponse::build(status)
            .content_type("application/json")
            .body(stamp(&prefix))
    }
}

/// A stamped answer's prefix closed with `,"timestamp":<now>}`.
fn stamp(prefix: &[u8]) -> Vec<u8> {
    let stamp = serde_json::to_string(&crate::time::now()).unwrap_or_default();
    let mut body = Vec::with_capacity(prefix.len() + STAMP.len() + stamp.len() + 1);
    body.extend_from_slice(prefix);
    body.extend_from_slice(STAMP);
    body.extend_from_slice(stamp.as_bytes());
    body.push(b'}');
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_version_or_an_old_body_renders_again() {
        let memo = Memo::new(Duration::from_secs(3600));
        let mut renders = 0;
        let mut get = |v: u64| {
            memo.body(v, || {
                renders += 1;
                renders
            })
        };
        assert_eq!(get(1), Bytes::from("1"));
        assert_eq!(get(1), Bytes::from("1"), "memoised");
        assert_eq!(get(2), Bytes::from("2"), "version moved");
        let short = Memo::new(Duration::ZERO);
        let mut n = 0;
        short.body(1, || n += 1);
        short.body(1, || n += 1);
        assert_eq!(n, 2, "past its time-to-live");
    }

    #[test]
    fn a_fresh_answer_skips_the_version_until_it_is_older_than_fresh_or_forgotten() {
        #[derive(serde::Serialize)]
        struct A {
            n: u32,
            timestamp: &'static str,
        }
        let memo = Memo::new(Duration::MAX);
        let render = || {
            (
                StatusCode::OK,
                A {
                    n: 1,
                    timestamp: "old",
                },
            )
        };
        let _ = memo.respond_fresh(|| 1, render);
        let _ = memo.respond_fresh(|| panic!("the version is not asked while fresh"), render);
        memo.forget();
        let mut asked = false;
        let _ = memo.respond_fresh(
            || {
                asked = true;
                1
            },
            render,
        );
        assert!(asked, "a forgotten body asks again");
    }

    #[test]
    fn a_stamped_answer_keeps_its_body_and_gets_a_fresh_timestamp() {
        #[derive(serde::Serialize)]
        struct A {
            n: u32,
            timestamp: &'static str,
        }
        let memo = Memo::new(Duration::MAX);
        let (_, prefix) = memo.get_or_render(7, true, || {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                A {
                    n: 1,
                    timestamp: "old",
                },
            )
        });
        assert_eq!(prefix, Bytes::from(r#"{"n":1"#));
        let (status, again) =
            memo.get_or_render(7, true, || -> (StatusCode, A) { panic!("memoised") });
        assert_eq!((status, again), (StatusCode::SERVICE_UNAVAILABLE, prefix));
    }
}
