//! Who tells a transition, once, when several instances share Redis and PostgreSQL,
//! and when either of them forgets or is away.
//!
//! A transition is an alert's *episode* (its fingerprint and when it started) plus
//! the status it moves to. Every instance decides the same episodes, each from its
//! own observations, so their starts differ by a little; the first to claim a
//! transition tells it, into its own outbox, and the others leave it. A store keeps,
//! per fingerprint, the newest transition told, and a claim is *fresh* against it
//! ([`fresh`]):
//!
//! - `firing` is fresh when nothing is recorded, or the recorded episode resolved
//!   at or before this one started (a firing recorded, or a resolution that ended
//!   after this start, is this same episode told by someone);
//! - `resolved` is fresh when nothing is recorded, when the recorded firing started
//!   at or before this end (it is this episode's), or when the recorded resolution
//!   ended before this episode started (the store missed this firing). So a late
//!   resolution from a slow instance loses to a newer firing it never saw.
//!
//! Both stores are kept: Redis decides (one script, atomic among instances) against
//! the newer of its own record and PostgreSQL's, and the winner records the
//! transition in PostgreSQL too, over the record it read (when another instance
//! claimed there in between, alone because Redis was away, PostgreSQL weighs the
//! claim again). So a Redis that restarted empty cannot tell an
//! episode again, and a PostgreSQL that was away at a resolution cannot take the next
//! episode for the old one. While Redis is away PostgreSQL decides (one upsert); with
//! both away the transition is told anyway: told twice beats never.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::alerts::AlertStatus;
use crate::redis::RedisLink;
use crate::store::{Store, ToldRecord};

/// How long Redis remembers a fingerprint's last told transition.
const REMEMBER_SECONDS: u64 = 30 * 24 * 3600;

/// `KEYS[1]` the fingerprint's record `status|episode_ms|decided_ms` (older records
/// `status|decided_ms`); `ARGV` the claim's status, episode ms and decided ms, the
/// seconds to keep, and PostgreSQL's record (`""` when unknown). The rule of
/// [`fresh`] against the newer record. 1: claimed, 0: told already.
const CLAIM_SCRIPT: &str = r#"
local function parse(v)
  if not v or v == '' then return nil end
  local s, e, a = string.match(v, '^(%a+)|(%-?%d+)|(%-?%d+)$')
  if s then return {s, tonumber(e), tonumber(a)} end
  local s2, a2 = string.match(v, '^(%a+)|(%-?%d+)$')
  if s2 then return {s2, tonumber(a2), tonumber(a2)} end
  return nil
end
local rec = parse(redis.call('GET', KEYS[1]))
local other = parse(ARGV[5])
if other and (not rec or other[3] > rec[3]) then rec = other end
local st, ep, at = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local fresh
if not rec then
  fresh = true
elseif st == 'firing' then
  fresh = rec[1] == 'resolved' and rec[3] <= ep
else
  fresh = (rec[1] == 'firing' and rec[2] <= at) or (rec[1] == 'resolved' and rec[3] < ep)
end
if not fresh then return 0 end
redis.call('SET', KEYS[1], st .. '|' .. ARGV[2] .. '|' .. ARGV[3], 'EX', ARGV[4])
return 1
"#;

/// What a claim decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// This instance tells it.
    Won,
    /// Another instance did.
    Lost,
    /// Neither Redis nor PostgreSQL answered: told by this instance anyway.
    Alone,
}

impl Claim {
    pub fn tells(self) -> bool {
        self != Claim::Lost
    }
}

/// One transition: an episode (its start) and the status it moves to, decided at
/// `at` (the start for `firing`, the end for `resolved`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    pub status: AlertStatus,
    pub episode: DateTime<Utc>,
    pub at: DateTime<Utc>,
}

impl Transition {
    fn record(self) -> ToldRecord {
        ToldRecord {
            status: status_word(self.status).to_string(),
            episode_start: self.episode,
            decided_at: self.at,
        }
    }
}

fn status_word(s: AlertStatus) -> &'static str {
    match s {
        AlertStatus::Firing => "firing",
        AlertStatus::Resolved => "resolved",
    }
}

/// The claim rule, as the tests state it: is `t` fresh against `newest`, the newest
/// transition recorded for its fingerprint? `CLAIM_SCRIPT` and
/// `Store::claim_notification` apply it where the record is (the notify integration
/// tests run them against a real Redis and PostgreSQL).
#[cfg(test)]
fn fresh(newest: Option<&ToldRecord>, t: &Transition) -> bool {
    let Some(r) = newest else {
        return true;
    };
    let recorded_firing = r.status == "firing";
    match t.status {
        AlertStatus::Firing => !recorded_firing && r.decided_at <= t.episode,
        AlertStatus::Resolved => {
            (recorded_firing && r.episode_start <= t.at)
                || (!recorded_firing && r.decided_at < t.episode)
        }
    }
}

pub struct Claims {
    redis: Arc<RedisLink>,
    store: Arc<Store>,
}

impl Claims {
    pub fn new(redis: Arc<RedisLink>, store: Arc<Store>) -> Self {
        Self { redis, store }
    }

    /// Claim telling transition `t` of `fingerprint`.
    pub async fn transition(&self, fingerprint: &str, t: Transition) -> Claim {
        // PostgreSQL's record, for Redis to weigh against its own (it may have
        // restarted empty); unknown while PostgreSQL is away.
        let stored = self.store.told_record(fingerprint).await.ok().flatten();
        self.transition_after_reading(fingerprint, t, stored).await
    }

    /// The claim of [`Self::transition`], with PostgreSQL's record as read a moment
    /// before. Between that read and Redis's verdict another instance that could not
    /// reach Redis may claim in PostgreSQL alone, and Redis (back, and empty) would
    /// then weigh a record that is no longer true; so the winner records in
    /// PostgreSQL only over the record it read, and when that changed the claim is
    /// weighed again there. (Public so that a test can put another instance's
    /// claim between the read and the verdict.)
    pub async fn transition_after_reading(
        &self,
        fingerprint: &str,
        t: Transition,
        stored: Option<ToldRecord>,
    ) -> Claim {
        let record = t.record();
        match self.claim_in_redis(fingerprint, &t, stored.as_ref()).await {
            Some(true) => {
                match self
                    .store
                    .record_told_over(fingerprint, &record, stored.as_ref())
                    .await
                {
                    Ok(true) => Claim::Won,
                    Ok(false) => match self.store.claim_notification(fingerprint, &record).await {
                        Ok(false) => Claim::Lost,
                        Ok(true) | Err(_) => Claim::Won,
                    },
                    Err(e) => {
                        tracing::debug!(error = %e, "told transition not recorded in PostgreSQL");
                        Claim::Won
                    }
                }
            }
            Some(false) => Claim::Lost,
            None => match self.store.claim_notification(fingerprint, &record).await {
                Ok(true) => Claim::Won,
                Ok(false) => Claim::Lost,
                Err(_) => Claim::Alone,
            },
        }
    }

    /// Redis's verdict, or `None` when it does not answer.
    async fn claim_in_redis(
        &self,
        fingerprint: &str,
        t: &Transition,
        stored: Option<&ToldRecord>,
    ) -> Option<bool> {
        let mut conn = self.redis.conn().await.ok()?;
        let other = stored.map_or(String::new(), |r| {
            format!(
                "{}|{}|{}",
                r.status,
                r.episode_start.timestamp_millis(),
                r.decided_at.timestamp_millis()
            )
        });
        let won: i64 = redis::Script::new(CLAIM_SCRIPT)
            .key(format!("notify:claim:{fingerprint}"))
            .arg(status_word(t.status))
            .arg(t.episode.timestamp_millis())
            .arg(t.at.timestamp_millis())
            .arg(REMEMBER_SECONDS)
            .arg(other)
            .invoke_async(&mut conn)
            .await
            .ok()?;
        Some(won == 1)
    }

    /// Claim the repeat of a firing alert: one instance per `every`.
    pub async fn repeat(&self, fingerprint: &str, every: Duration) -> Claim {
        let Ok(mut conn) = self.redis.conn().await else {
            return Claim::Alone;
        };
        // Slightly shorter than the period, so the next period's claim is free.
        let ttl_ms = (every.as_millis() as u64).saturating_sub(1000).max(1000);
        let set: Result<Option<String>, _> = redis::cmd("SET")
            .arg(format!("notify:repeat:{fingerprint}"))
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(ttl_ms)
            .query_async(&mut conn)
            .await;
        match set {
            Ok(Some(_)) => Claim::Won,
            Ok(None) => Claim::Lost,
            Err(_) => Claim::Alone,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).expect("in range")
    }

    fn firing(start: i64) -> Transition {
        Transition {
            status: AlertStatus::Firing,
            episode: at(start),
            at: at(start),
        }
    }

    fn resolved(start: i64, end: i64) -> Transition {
        Transition {
            status: AlertStatus::Resolved,
            episode: at(start),
            at: at(end),
        }
    }

    /// The store's record after `t` was claimed.
    fn rec(t: Transition) -> ToldRecord {
        t.record()
    }

    #[test]
    fn a_store_that_remembers_an_earlier_episode_does_not_swallow_a_new_one() {
        // Outage 1 told: firing at 0, resolved at 6. Outage 2 starts at 20.
        let one_resolved = rec(resolved(0, 6));
        assert!(fresh(Some(&one_resolved), &firing(20)));
        // The store that saw only outage 1's firing (its resolution went elsewhere)
        // is the one case that needs the other store's newer record: the claim
        // weighs both (`Claims::transition`), and the newer says resolved.
        assert!(!fresh(Some(&rec(firing(0))), &firing(20)));
        // A resolution of outage 2 against a store that missed outage 2's firing.
        assert!(fresh(Some(&one_resolved), &resolved(20, 26)));
    }

    #[test]
    fn a_store_that_forgot_tells_but_one_that_knows_does_not_tell_again() {
        assert!(fresh(None, &firing(0)));
        assert!(fresh(None, &resolved(0, 6)));
        assert!(!fresh(Some(&rec(firing(0))), &firing(0)), "told already");
        assert!(!fresh(Some(&rec(resolved(0, 6))), &resolved(0, 6)));
    }

    #[test]
    fn another_instance_tells_the_same_episode_once_though_its_times_differ() {
        // Instance A saw the episode from 0 to 6, instance B from 1 to 7.
        assert!(!fresh(Some(&rec(firing(0))), &firing(1)));
        assert!(fresh(Some(&rec(firing(0))), &resolved(0, 6)));
        assert!(!fresh(Some(&rec(resolved(0, 6))), &resolved(1, 7)));
        // B's firing arrives after A's resolution: the same episode.
        assert!(!fresh(Some(&rec(resolved(0, 6))), &firing(1)));
        // A late resolution from B loses to a newer firing it never saw.
        assert!(!fresh(Some(&rec(firing(20))), &resolved(1, 7)));
    }
}
