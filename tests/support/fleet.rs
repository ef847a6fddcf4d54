//! Several hosts: network namespaces on one bridge (`netns.rs`), each running the
//! real binary with a camera folder and a fake AI box of its own; Redis and
//! PostgreSQL on this machine's side of the bridge, a fourth host that every host
//! reaches at the bridge's address. What the hosts say to each other and to the
//! shared services crosses the bridge.

use std::path::PathBuf;

use crate::support::fake_ai::FakeAiStack;
use crate::support::netns::{Host, Network};
use crate::support::stack::quick_env;
use crate::support::{free_port, Postgres, Redis, Watchpost};

/// One host of a [`Fleet`]: its namespace, its AI box, its instance (while it runs)
/// and the directory it keeps across restarts (camera folder, spool, log).
pub struct FleetHost {
    pub id: String,
    pub host: Host,
    pub ai: FakeAiStack,
    pub port: u16,
    pub env: Vec<(String, String)>,
    pub wp: Option<Watchpost>,
    dir: Option<tempfile::TempDir>,
}

impl FleetHost {
    /// Its camera folder (on its own disk, which no other host reads).
    pub fn camera_root(&self) -> PathBuf {
        self.dir_path().join("cameras")
    }

    fn dir_path(&self) -> PathBuf {
        match (&self.wp, &self.dir) {
            (Some(wp), _) => wp.dir.path().to_path_buf(),
            (None, Some(d)) => d.path().to_path_buf(),
            (None, None) => unreachable!("a host keeps its directory"),
        }
    }

    pub fn wp(&self) -> &Watchpost {
        self.wp.as_ref().expect("the host runs watchpost")
    }

    /// Start (again) on the directory it had.
    pub fn start(&mut self) {
        if self.wp.is_some() {
            return;
        }
        let dir = self.dir.take().expect("a directory");
        self.wp = Some(Watchpost::start_on_host(
            dir, &self.host, self.port, &self.env,
        ));
    }

    /// SIGKILL its instance (the directory stays for a restart).
    pub fn kill(&mut self) {
        if let Some(wp) = self.wp.take() {
            self.dir = Some(wp.kill());
        }
    }
}

/// Hosts on one network sharing Redis and PostgreSQL. Fields drop in order: the
/// instances first, the network last.
pub struct Fleet {
    pub hosts: Vec<FleetHost>,
    pub redis: Redis,
    pub pg: Postgres,
    net: Network,
}

impl Fleet {
    /// `n` hosts (198.18.x.11, .12, …), each with `extra` env on top of the quick
    /// windows the other tests use; nothing started yet.
    pub fn new(n: usize, extra: &[(&str, &str)]) -> Self {
        let mut net = Network::new();
        let gateway = net.gateway();
        let redis = Redis::start_also_on(&gateway);
        let mut pg = Postgres::start();
        pg.listen_also(&gateway);
        let hosts = (0..n)
            .map(|i| {
                let host = net.host(11 + i as u8);
                let ai = FakeAiStack::start_at(&gateway);
                let id = format!("host{}", i + 1);
                let mut env = quick_env();
                env.push(("WATCHPOST_REDIS__URL".into(), redis.url_at(&gateway)));
                env.push(("WATCHPOST_POSTGRES__URL".into(), pg.url_at(&gateway)));
                env.push(("WATCHPOST_QUEUE__CONSUMER_ID".into(), id.clone()));
                env.extend(ai.env());
                env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
                FleetHost {
                    id,
                    host,
                    ai,
                    port: free_port(),
                    env,
                    wp: None,
                    dir: Some(tempfile::tempdir().expect("host dir")),
                }
            })
            .collect();
        Self {
            hosts,
            redis,
            pg,
            net,
        }
    }

    /// This machine's address on the bridge (what every host reaches).
    pub fn gateway(&self) -> String {
        self.net.gateway()
    }

    pub fn count(&self, sql: &str) -> u64 {
        self.pg.psql(sql).parse().unwrap_or(0)
    }
}
