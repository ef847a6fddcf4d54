//! Test harness: real `redis-server`, PostgreSQL and `prometheus` processes on free
//! loopback ports in temp dirs (stopped on drop, restartable mid-test), the real
//! `watchpost` binary, the in-process fake AI server, and `eventually`.
//!
//! A missing binary fails the test with the package to install; nothing skips silently.
// Each test binary (the integration tests, every bench) uses a part of this harness.
#![allow(dead_code, unused_imports)]

pub mod browser;
pub mod disk;
pub mod fake_ai;
pub mod fleet;
pub mod http;
pub mod images;
pub mod netns;
pub mod notify;
pub mod prom;
pub mod smtp;
pub mod stack;
pub mod ws;

pub use http::{alerts, detail, get, get_text, json, metric, metrics, notifier, of, post};
pub use images::{image_bytes, padded_png, write_image};
pub use prom::{promtool_check_metrics, scrape_config};
pub use stack::{wait_all_batched, wait_rows, watching, Stack};
pub use ws::{next, subscribed, Ws};

use std::future::Future;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long `eventually` waits; `WATCHPOST_TEST_PATIENCE_SECONDS` overrides it.
pub fn patience() -> Duration {
    let secs = std::env::var("WATCHPOST_TEST_PATIENCE_SECONDS")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(30.0);
    Duration::from_secs_f64(secs)
}

/// Poll `check` until it returns `Some`, or panic after [`patience`] saying `what`.
pub async fn eventually<T, F, Fut>(what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    eventually_for(patience(), what, check).await
}

/// [`eventually`] for a condition that legitimately takes longer than the default
/// patience (never less than the configured patience).
pub async fn eventually_for<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let limit = limit.max(patience());
    let deadline = Instant::now() + limit;
    let mut pause = Duration::from_millis(10);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if Instant::now() > deadline {
            panic!("gave up after {limit:?} waiting for: {what}");
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(200));
    }
}

/// Print a measured figure (`FIGURE <name> <value> <unit>`). Tests check outcomes, never
/// times or sizes; the scenarios that are worth a number print it, and
/// `bench/figures.sh` runs them in release mode and collects these lines.
pub fn figure(name: &str, value: f64, unit: &str) {
    eprintln!("FIGURE {name} {value:.3} {unit}");
}

/// Blocking variant for synchronous set-up code.
pub fn eventually_blocking(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + patience();
    while !check() {
        if Instant::now() > deadline {
            panic!("gave up after {:?} waiting for: {what}", patience());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Start a server on a port until it is ready *and still ours*: `spawn` starts it on
/// the port it is given, `ready` asks whether the port answers. Ports are picked by
/// binding and releasing while other tests run, so another server may take the port
/// between the pick and the bind: the child then exits (address in use), or a
/// readiness probe is answered by someone else while ours is gone. Either way the
/// start is tried again, on a new port when `fixed` is `None`, else on the same port
/// once the other holder lets go. The child and its port.
pub fn start_owned(
    what: &str,
    fixed: Option<u16>,
    mut spawn: impl FnMut(u16) -> Child,
    ready: impl Fn(u16) -> bool,
) -> (Child, u16) {
    const TRIES: usize = 8;
    for attempt in 1..=TRIES {
        let port = fixed.unwrap_or_else(free_port);
        let mut child = spawn(port);
        let deadline = Instant::now() + patience();
        let mut pause = Duration::from_millis(10);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                eprintln!("{what} exited while starting on port {port} ({status}); attempt {attempt} of {TRIES}");
                break;
            }
            if ready(port) {
                // Answered: by ours only if ours still runs.
                if child.try_wait().is_ok_and(|s| s.is_none()) {
                    return (child, port);
                }
                eprintln!(
                    "{what}: port {port} answered, but not by ours; attempt {attempt} of {TRIES}"
                );
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!(
                    "gave up after {:?} waiting for: {what} ready on port {port}",
                    patience()
                );
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
        // The other holder of a fixed port lets go soon: wait for it.
        if let Some(port) = fixed {
            eventually_blocking(&format!("port {port} free again"), || {
                std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
            });
        }
    }
    panic!("{what} could not start after {TRIES} attempts");
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

pub fn port_open(port: u16) -> bool {
    TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(200),
    )
    .is_ok()
}

/// Find a binary or fail saying what to install.
pub fn require(binary: &str, package: &str) -> PathBuf {
    let candidates = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain([PathBuf::from(PG_BIN), PathBuf::from("/usr/sbin")]);
    for dir in candidates {
        let path = dir.join(binary);
        if path.is_file() {
            return path;
        }
    }
    panic!(
        "required binary `{binary}` not found: install it with `apt-get install -y --no-install-recommends {package}` (scripts/test.sh does this)"
    );
}

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

fn is_root() -> bool {
    // SAFETY-free check: the effective uid is in /proc/self/status.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

fn kill(child: &mut Option<Child>) {
    if let Some(mut c) = child.take() {
        let _ = c.kill();
        let _ = c.wait();
    }
}

// ---------------------------------------------------------------- Redis

pub struct Redis {
    dir: tempfile::TempDir,
    pub port: u16,
    child: Option<Child>,
    /// With an append-only file (a restart keeps the data), or without (it forgets).
    persistent: bool,
    /// Listening on this address too (a test network's side of this machine).
    also: Option<String>,
}

impl Redis {
    pub fn start() -> Self {
        Self::start_with(true)
    }

    /// A Redis without persistence (the `redis` image's default): every restart
    /// comes back empty.
    pub fn start_volatile() -> Self {
        Self::start_with(false)
    }

    fn start_with(persistent: bool) -> Self {
        Self::start_listening(persistent, None)
    }

    /// A persistent Redis listening on `addr` too (hosts of a test network reach it).
    pub fn start_also_on(addr: &str) -> Self {
        Self::start_listening(true, Some(addr.to_string()))
    }

    fn start_listening(persistent: bool, also: Option<String>) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut r = Self {
            dir,
            port: 0,
            child: None,
            persistent,
            also,
        };
        r.launch(None);
        r
    }

    /// Its URL as reached at `addr`.
    pub fn url_at(&self, addr: &str) -> String {
        format!("redis://{addr}:{}", self.port)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Start again on the same port.
    pub fn start_again(&mut self) {
        if self.child.is_some() {
            return;
        }
        self.launch(Some(self.port));
    }

    fn launch(&mut self, fixed: Option<u16>) {
        let bin = require("redis-server", "redis-server");
        let mut bind = vec!["127.0.0.1".to_string()];
        bind.extend(self.also.clone());
        // Reached from a test network too: Redis's protected mode refuses clients
        // that are not on loopback while it has no password.
        let protected = if self.also.is_some() { "no" } else { "yes" };
        let spawn = |port: u16| {
            Command::new(&bin)
                .args([
                    "--port",
                    &port.to_string(),
                    "--protected-mode",
                    protected,
                    "--bind",
                ])
                .args(&bind)
                .args([
                    "--save",
                    "",
                    // An outage, not a wipe: data survives a kill like a production
                    // Redis with AOF (unless started volatile).
                    "--appendonly",
                    if self.persistent { "yes" } else { "no" },
                    "--appendfsync",
                    "always",
                    "--daemonize",
                    "no",
                    "--dir",
                ])
                .arg(self.dir.path())
                .arg("--logfile")
                .arg(self.dir.path().join("redis.log"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn redis-server")
        };
        let (child, port) = start_owned("redis-server", fixed, spawn, redis_ping);
        self.child = Some(child);
        self.port = port;
    }

    /// Kill it (like a crash or an outage); data is not persisted.
    pub fn stop(&mut self) {
        kill(&mut self.child);
    }
}

fn redis_ping(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    if s.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 7];
    s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

// ---------------------------------------------------------------- PostgreSQL

pub struct Postgres {
    dir: tempfile::TempDir,
    pub port: u16,
    running: bool,
    /// `listen_addresses`.
    listen: String,
}

impl Postgres {
    /// `initdb` a fresh cluster (as the `postgres` user when we are root) and start it.
    pub fn start() -> Self {
        let initdb = require("initdb", "postgresql");
        let dir = tempfile::tempdir().expect("temp dir");
        if is_root() {
            chown_to_postgres(dir.path());
        }
        let data = dir.path().join("data");
        let status = as_pg_user(&initdb)
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .expect("run initdb");
        assert!(
            status.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&status.stderr)
        );
        let mut pg = Self {
            dir,
            port: free_port(),
            running: false,
            listen: "127.0.0.1".into(),
        };
        // The port was picked by binding and releasing: another test may take it first.
        for _ in 0..8 {
            match pg.try_start() {
                Ok(()) => return pg,
                Err(why) => {
                    eprintln!("postgres did not start on port {}: {why}", pg.port);
                    pg.port = free_port();
                }
            }
        }
        panic!("postgres could not start after 8 ports");
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Listen on `addr` too, trusting the test networks (198.18.0.0/15) as it trusts
    /// this machine; restarts the server.
    pub fn listen_also(&mut self, addr: &str) {
        use std::io::Write;
        let hba = self.dir.path().join("data/pg_hba.conf");
        std::fs::OpenOptions::new()
            .append(true)
            .open(&hba)
            .and_then(|mut f| f.write_all(b"host all all 198.18.0.0/15 trust\n"))
            .expect("pg_hba.conf");
        self.stop();
        self.listen = format!("'127.0.0.1,{addr}'");
        self.start_again();
    }

    /// Its URL as reached at `addr`.
    pub fn url_at(&self, addr: &str) -> String {
        format!("postgres://postgres@{addr}:{}/postgres", self.port)
    }

    /// Start again on the same port.
    pub fn start_again(&mut self) {
        if let Err(why) = self.try_start() {
            panic!("pg_ctl start failed: {why}");
        }
    }

    fn try_start(&mut self) -> Result<(), String> {
        if self.running {
            return Ok(());
        }
        let pg_ctl = require("pg_ctl", "postgresql");
        let opts = format!(
            "-p {} -k {} -c listen_addresses={} -c fsync=off",
            self.port,
            self.dir.path().display(),
            self.listen
        );
        let out = as_pg_user(&pg_ctl)
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .arg("-l")
            .arg(self.dir.path().join("pg.log"))
            .args(["-o", &opts, "-w", "start"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .expect("run pg_ctl start");
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        self.running = true;
        let port = self.port;
        eventually_blocking("postgres accepts connections", || port_open(port));
        Ok(())
    }

    pub fn stop(&mut self) {
        if !self.running {
            return;
        }
        let pg_ctl = require("pg_ctl", "postgresql");
        let _ = as_pg_user(&pg_ctl)
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        self.running = false;
    }

    /// Run SQL through psql and return the unaligned, tuples-only output.
    pub fn psql(&self, sql: &str) -> String {
        self.psql_in("postgres", sql)
    }

    /// [`Postgres::psql`] in database `db`.
    pub fn psql_in(&self, db: &str, sql: &str) -> String {
        let psql = require("psql", "postgresql-client");
        let out = Command::new(psql)
            .args([
                "-d",
                db,
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-tAc",
                sql,
            ])
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "psql failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

fn as_pg_user(bin: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin);
        c
    } else {
        Command::new(bin)
    }
}

fn chown_to_postgres(path: &Path) {
    let status = Command::new("chown")
        .arg("postgres:")
        .arg(path)
        .status()
        .expect("run chown");
    assert!(
        status.success(),
        "chown postgres: failed (does the postgres user exist?)"
    );
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}

// ---------------------------------------------------------------- Prometheus

pub struct Prometheus {
    dir: tempfile::TempDir,
    pub port: u16,
    child: Option<Child>,
}

impl Prometheus {
    /// Start with the given `prometheus.yml` text.
    pub fn start(config_yaml: &str) -> Self {
        Self::start_with(config_yaml, &[])
    }

    /// [`Prometheus::start`] with more command-line flags.
    pub fn start_with(config_yaml: &str, flags: &[&str]) -> Self {
        let bin = require("prometheus", "prometheus");
        let dir = tempfile::tempdir().expect("temp dir");
        let cfg = dir.path().join("prometheus.yml");
        std::fs::write(&cfg, config_yaml).expect("write prometheus.yml");
        let (child, port) = start_owned(
            "prometheus",
            None,
            |port| {
                let log =
                    std::fs::File::create(dir.path().join("prometheus.log")).expect("log file");
                Command::new(&bin)
                    .arg(format!("--config.file={}", cfg.display()))
                    .arg(format!(
                        "--storage.tsdb.path={}",
                        dir.path().join("data").display()
                    ))
                    .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                    .args(["--web.enable-lifecycle", "--log.level=warn"])
                    .args(flags)
                    .stdout(Stdio::null())
                    .stderr(log)
                    .spawn()
                    .expect("spawn prometheus")
            },
            |port| http_get_ok(&format!("http://127.0.0.1:{port}/-/ready")),
        );
        Self {
            dir,
            port,
            child: Some(child),
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn stop(&mut self) {
        kill(&mut self.child);
    }

    /// Freeze it (SIGSTOP): it accepts connections but never answers.
    pub fn freeze(&self) {
        if let Some(c) = &self.child {
            let _ = Command::new("kill")
                .args(["-STOP", &c.id().to_string()])
                .status();
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        self.stop();
        // A failing test shows what Prometheus warned of (a send to Alertmanager
        // that failed, a rule that did not evaluate).
        if std::thread::panicking() {
            let log =
                std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            eprintln!("---- last lines of the prometheus log ----");
            for l in tail.iter().rev() {
                eprintln!("{l}");
            }
        }
    }
}

// ---------------------------------------------------------------- exporters

/// A Prometheus exporter (or Alertmanager) as a plain process on a free port, ready once
/// `ready_path` answers 200.
pub struct Exporter {
    /// Known once it started (see [`start_owned`]): pass it on only after `start`.
    pub port: u16,
    binary: PathBuf,
    /// With `{port}` where the port goes.
    args: Vec<String>,
    ready_path: String,
    child: Option<Child>,
}

impl Exporter {
    /// `args` may contain `{port}`, replaced by the port it starts on.
    pub fn start(binary: &str, package: &str, args: &[&str], ready_path: &str) -> Self {
        let mut e = Self {
            port: 0,
            binary: require(binary, package),
            args: args.iter().map(|a| a.to_string()).collect(),
            ready_path: ready_path.to_string(),
            child: None,
        };
        e.launch(None);
        e
    }

    fn launch(&mut self, fixed: Option<u16>) {
        let (child, port) = start_owned(
            &self.binary.display().to_string(),
            fixed,
            |port| {
                Command::new(&self.binary)
                    .args(
                        self.args
                            .iter()
                            .map(|a| a.replace("{port}", &port.to_string())),
                    )
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("spawn exporter")
            },
            |port| http_get_ok(&format!("http://127.0.0.1:{port}{}", self.ready_path)),
        );
        self.child = Some(child);
        self.port = port;
    }

    /// redis-exporter for the Redis at `redis_url`.
    pub fn redis(redis_url: &str) -> Self {
        Self::start(
            "prometheus-redis-exporter",
            "prometheus-redis-exporter",
            &[
                &format!("-redis.addr={redis_url}"),
                "-web.listen-address=127.0.0.1:{port}",
            ],
            "/metrics",
        )
    }

    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Start again on the same port (others were told it).
    pub fn start_again(&mut self) {
        if self.child.is_some() {
            return;
        }
        self.launch(Some(self.port));
    }

    pub fn stop(&mut self) {
        kill(&mut self.child);
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Minimal blocking HTTP GET on loopback (for readiness checks in sync code).
pub fn http_get_ok(url: &str) -> bool {
    http_blocking("GET", url)
}

/// Minimal blocking HTTP request without a body on loopback; true on a 200 answer.
pub fn http_blocking(method: &str, url: &str) -> bool {
    use std::io::{Read, Write};
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let Ok(mut s) = TcpStream::connect(host) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let req = format!(
        "{method} /{path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut buf = [0u8; 12];
    s.read_exact(&mut buf).is_ok() && buf.starts_with(b"HTTP/1.1 200")
}

// ---------------------------------------------------------------- watchpost

/// The real `watchpost` binary, on a free port, with dependencies pointed at closed
/// ports unless the test overrides them.
pub struct Watchpost {
    pub port: u16,
    /// The address it listens on (loopback, or its host's on a test network).
    pub addr: String,
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    log: PathBuf,
}

/// Environment that points every dependency at a port nobody listens on.
pub fn isolated_env(dir: &Path) -> Vec<(String, String)> {
    let dead = |p: u16| format!("127.0.0.1:{p}");
    let mut env = vec![
        (
            "WATCHPOST_REDIS__URL".into(),
            format!("redis://{}", dead(free_port())),
        ),
        (
            "WATCHPOST_POSTGRES__URL".into(),
            format!("postgres://postgres@{}/watchpost", dead(free_port())),
        ),
        (
            "WATCHPOST_PROMETHEUS__URL".into(),
            format!("http://{}", dead(free_port())),
        ),
        (
            "WATCHPOST_FILE_WATCHER__CAMERA_ROOT".into(),
            dir.join("cameras").display().to_string(),
        ),
        (
            "WATCHPOST_QUEUE__SPOOL_DIR".into(),
            dir.join("spool").display().to_string(),
        ),
    ];
    for (name, _) in fake_ai::SERVICES {
        env.push((
            format!("WATCHPOST_AI__{}__URL", name.to_ascii_uppercase()),
            format!("http://{}", dead(free_port())),
        ));
    }
    env
}

impl Watchpost {
    /// Start with `extra` env (applied after the isolated defaults) and wait for `/health`.
    pub fn start(extra: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let extra: Vec<(String, String)> = extra
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Self::start_in(dir, free_port(), &extra)
    }

    /// Start in `dir` (camera root `dir/cameras`, spool `dir/spool`, log
    /// `dir/watchpost.log`, appended across restarts) on `port`.
    pub fn start_in(dir: tempfile::TempDir, port: u16, extra: &[(String, String)]) -> Self {
        let cmd = Self::command(dir.path(), port);
        Self::spawn_ready(dir, "127.0.0.1", port, cmd, extra)
    }

    /// Start inside `host`'s network namespace, listening on its address.
    pub fn start_on_host(
        dir: tempfile::TempDir,
        host: &netns::Host,
        port: u16,
        extra: &[(String, String)],
    ) -> Self {
        let mut cmd = host.command(env!("CARGO_BIN_EXE_watchpost"));
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("RUST_LOG", "info")
            .current_dir(dir.path());
        for (k, v) in isolated_env(dir.path()) {
            cmd.env(k, v);
        }
        cmd.env("WATCHPOST_SERVER__BIND", format!("{}:{port}", host.addr));
        Self::spawn_ready(dir, &host.addr, port, cmd, extra)
    }

    fn spawn_ready(
        dir: tempfile::TempDir,
        addr: &str,
        port: u16,
        mut cmd: Command,
        extra: &[(String, String)],
    ) -> Self {
        let log = dir.path().join("watchpost.log");
        for (k, v) in extra {
            cmd.env(k, v);
        }
        // The port is fixed (tests and other processes were told it): a clash is
        // waited out, and /health counts only while this child runs.
        let (child, port) = start_owned(
            "watchpost",
            Some(port),
            |_| {
                let log_file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&log)
                    .expect("log file");
                cmd.stdout(Stdio::null())
                    .stderr(log_file)
                    .spawn()
                    .expect("spawn watchpost")
            },
            |port| http_get_ok(&format!("http://{addr}:{port}/health")),
        );
        Self {
            port,
            addr: addr.to_string(),
            child: Some(child),
            dir,
            log,
        }
    }

    /// Kill -9 (no graceful shutdown) and hand back the directory for a restart.
    pub fn kill(mut self) -> tempfile::TempDir {
        kill(&mut self.child);
        self.take_dir()
    }

    /// SIGTERM, wait, and hand back the directory for a restart.
    pub fn stop(mut self) -> tempfile::TempDir {
        self.terminate();
        self.take_dir()
    }

    fn take_dir(mut self) -> tempfile::TempDir {
        std::mem::replace(&mut self.dir, tempfile::tempdir().expect("temp dir"))
    }

    /// A command for the binary with the isolated environment, not yet spawned.
    pub fn command(dir: &Path, port: u16) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_watchpost"));
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("RUST_LOG", "info")
            .env("WATCHPOST_SERVER__BIND", format!("127.0.0.1:{port}"))
            .current_dir(dir);
        for (k, v) in isolated_env(dir) {
            cmd.env(k, v);
        }
        cmd
    }

    pub fn url(&self) -> String {
        format!("http://{}:{}", self.addr, self.port)
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Resident memory in KiB (`VmRSS` of /proc).
    pub fn rss_kib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid().expect("running")))
                .expect("proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .expect("VmRSS")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Send SIGTERM and wait for the exit status.
    pub fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + patience();
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return child.wait().ok();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Watchpost {
    fn drop(&mut self) {
        kill(&mut self.child);
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            eprintln!("---- last lines of the watchpost log ----");
            for line in tail.into_iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

/// A reqwest client with a short timeout.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("http client")
}

/// A config for an in-process service: free port, temp camera root and spool under
/// `dir`, every dependency pointed at a closed port (tests override what they start).
pub fn base_config(dir: &Path) -> watchpost::Config {
    let mut c = watchpost::Config::default();
    c.server.bind = "127.0.0.1:0".into();
    let dead = || format!("127.0.0.1:{}", free_port());
    c.redis.url = format!("redis://{}", dead());
    c.postgres.url = format!("postgres://postgres@{}/watchpost", dead());
    c.prometheus.url = format!("http://{}", dead());
    c.ai.yolo26.url = format!("http://{}", dead());
    c.ai.nemotron.url = format!("http://{}", dead());
    c.ai.florence.url = format!("http://{}", dead());
    c.ai.clip.url = format!("http://{}", dead());
    c.ai.enrichment.url = format!("http://{}", dead());
    c.file_watcher.camera_root = dir.join("cameras").display().to_string();
    c.queue.spool_dir = dir.join("spool").display().to_string();
    c
}
