//! Memoised JSON bodies for monitoring answers that are read far more often than they
//! change. A body is rendered again when its domain version moved (the domain bumps a
//! counter on every change) or when it is older than its time-to-live (for answers
//! with continuously moving values such as ages). Rendering and serialising dominate
//! these handlers' cost; the memo makes a hit a copy of a reference-counted buffer.

use actix_web::web::Bytes;
use actix_web::HttpResponse;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The memoised answers of one application (shared by its HTTP worker threads).
pub struct Memos {
    pub pipeline: Memo,
}

impl Default for Memos {
    fn default() -> Self {
        Self {
            pipeline: Memo::new(PIPELINE_TTL),
        }
    }
}

/// The pipeline answer holds ages that move continuously, so it is memoised by time
/// only: it is at most this old, which its `timestamp` states.
const PIPELINE_TTL: Duration = Duration::from_millis(100);

pub struct Memo {
    ttl: Duration,
    slot: Mutex<Option<(Instant, u64, Bytes)>>,
}

impl Memo {
    pub const fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            slot: Mutex::new(None),
        }
    }

    /// The memoised body for `version`, or a fresh one from `render`.
    pub fn body<T: serde::Serialize>(&self, version: u64, render: impl FnOnce() -> T) -> Bytes {
        let now = Instant::now();
        if let Some((at, v, body)) = &*self.slot.lock().unwrap_or_else(|p| p.into_inner()) {
            if *v == version && now.duration_since(*at) < self.ttl {
                return body.clone();
            }
        }
        // Serialising plain data into memory cannot fail; an empty object is the
        // conservative answer if it ever did.
        let body = Bytes::from(serde_json::to_vec(&render()).unwrap_or_else(|_| b"{}".to_vec()));
        *self.slot.lock().unwrap_or_else(|p| p.into_inner()) = Some((now, version, body.clone()));
        body
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
}
