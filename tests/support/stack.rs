//! A whole stack for the real binary: real Redis and PostgreSQL, the fake AI server,
//! short windows through env overrides; and the waits that tests on it share.

use crate::support::fake_ai::FakeAiStack;
use crate::support::http::json;
use crate::support::{eventually, free_port, Postgres, Redis, Watchpost};
use std::path::Path;

pub struct Stack {
    pub redis: Redis,
    pub pg: Postgres,
    pub ai: FakeAiStack,
    pub port: u16,
    pub extra: Vec<(String, String)>,
}

impl Stack {
    pub fn new(extra: &[(&str, &str)]) -> Self {
        Self::with_ai(FakeAiStack::start(), extra)
    }

    /// A stack whose AI services each run on a host of their own (so each is its
    /// own cause, told on its own).
    pub fn ai_apart(extra: &[(&str, &str)]) -> Self {
        Self::with_ai(FakeAiStack::start_apart(), extra)
    }

    fn with_ai(ai: FakeAiStack, extra: &[(&str, &str)]) -> Self {
        let redis = Redis::start();
        let pg = Postgres::start();
        let mut env: Vec<(String, String)> = vec![
            ("WATCHPOST_REDIS__URL".into(), redis.url()),
            ("WATCHPOST_POSTGRES__URL".into(), pg.url()),
        ];
        env.extend(quick_env());
        env.extend(ai.env());
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        Self {
            redis,
            pg,
            ai,
            port: free_port(),
            extra: env,
        }
    }

    /// A stack whose Redis keeps no data across restarts (the default of many
    /// installs: it comes back empty).
    pub fn volatile(extra: &[(&str, &str)]) -> Self {
        let mut stack = Self::new(extra);
        stack.redis = Redis::start_volatile();
        let url = stack.redis.url();
        for (k, v) in stack.extra.iter_mut() {
            if k == "WATCHPOST_REDIS__URL" {
                v.clone_from(&url);
            }
        }
        stack
    }

    pub fn start(&self, dir: tempfile::TempDir) -> Watchpost {
        Watchpost::start_in(dir, self.port, &self.extra)
    }

    /// One more instance on this stack's Redis and PostgreSQL, watching `camera_root`
    /// (instances on one Redis share one camera folder, as on one network share), with
    /// its own consumer id and port.
    pub fn instance(&self, consumer_id: &str, camera_root: &Path) -> Watchpost {
        let mut env = self.extra.clone();
        env.push(("WATCHPOST_QUEUE__CONSUMER_ID".into(), consumer_id.into()));
        env.push((
            "WATCHPOST_FILE_WATCHER__CAMERA_ROOT".into(),
            camera_root.display().to_string(),
        ));
        Watchpost::start_in(tempfile::tempdir().expect("dir"), free_port(), &env)
    }

    pub fn count(&self, sql: &str) -> u64 {
        self.pg.psql(sql).parse().unwrap_or(0)
    }

    /// Rows in a table, or 0 while the schema does not exist yet.
    pub fn rows(&self, table: &str) -> u64 {
        let exists = self
            .pg
            .psql(&format!("select to_regclass('{table}') is not null"));
        if exists == "t" {
            self.count(&format!("select count(*) from {table}"))
        } else {
            0
        }
    }
}

/// The short windows the tests run with (set through env overrides).
pub fn quick_env() -> Vec<(String, String)> {
    [
        ("WATCHPOST_BATCH__WINDOW_SECONDS", "3"),
        ("WATCHPOST_BATCH__IDLE_TIMEOUT_SECONDS", "1.5"),
        ("WATCHPOST_FILE_WATCHER__DEBOUNCE_MS", "100"),
        ("WATCHPOST_FILE_WATCHER__STABLE_SECONDS", "0.3"),
        ("WATCHPOST_DEGRADATION__CHECK_INTERVAL_SECONDS", "0.3"),
        ("WATCHPOST_AI__RETRY_BASE_SECONDS", "0.05"),
        // Notifications gathered by cause for half a second, not ten.
        ("WATCHPOST_ALERTS__GROUP_WAIT_SECONDS", "0.5"),
        // Tests that make outages in a row are about other things than flapping
        // (the tests of flapping set their own).
        ("WATCHPOST_ALERTS__FLAP_COUNT", "100"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// The detection stream of the instances watching `camera_root` (named by the
/// root's marker, which the first instance made).
pub fn detection_stream(camera_root: &Path) -> String {
    let id =
        std::fs::read_to_string(camera_root.join(".watchpost-root-id")).expect("the root's marker");
    format!("watchpost:queue:detection:{}", id.trim())
}

/// Until the instance's file watcher runs.
pub async fn watching(wp: &Watchpost) {
    let base = wp.url();
    eventually("file watcher running", || {
        let base = base.clone();
        async move {
            let p = json(format!("{base}/api/system/pipeline")).await;
            (p["file_watcher"]["running"] == true).then_some(p)
        }
    })
    .await;
}

pub async fn wait_rows(stack: &Stack, table: &str, n: u64) {
    eventually(&format!("{n} rows in {table}"), || async move {
        (stack.rows(table) == n).then_some(())
    })
    .await;
}

/// Every detection's batch became exactly one event.
pub async fn wait_all_batched(stack: &Stack, detections: u64) {
    eventually("every detection is in exactly one event", || async move {
        let in_events =
            stack.count("select coalesce(sum(cardinality(detection_ids)), 0) from events");
        (stack.rows("events") > 0 && in_events == detections).then_some(())
    })
    .await;
    assert_eq!(
        stack.count("select count(*) from (select unnest(detection_ids) d from events group by d having count(*) > 1) x"),
        0,
        "a detection appears in two events"
    );
}
