//! A newcomer's first hour, on the real binary: the database is created (or the log
//! and `/ready` say exactly how), a camera root that cannot be watched shows in the
//! supervisor and the worker metric, config mistakes of every kind come in one run,
//! an AI outage is logged once, every timestamp has one shape, the runbook's own
//! commands and queries work against a live instance, `--version`, and the systemd
//! unit verifies.

use crate::support::{
    client, eventually, get, json, metrics, require, scrape_config, wait_rows, write_image,
    Exporter, Prometheus, Stack, Watchpost,
};
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_postgres_gets_its_database_created_and_an_image_becomes_an_event() {
    let stack = Stack::new(&[]);
    let url = format!("postgres://postgres@127.0.0.1:{}/watchpost", stack.pg.port);
    let mut env = stack.extra.clone();
    env.push(("WATCHPOST_POSTGRES__URL".into(), url));
    let wp = Watchpost::start_in(tempfile::tempdir().expect("dir"), stack.port, &env);
    write_image(&wp.dir.path().join("cameras"), "porch", "a.png");
    eventually("an event in the new database", || async {
        let exists = stack
            .pg
            .psql("select count(*) from pg_database where datname = 'watchpost'");
        if exists != "1" {
            return None;
        }
        // The migrations may still be running: ask for the table before reading it.
        let tables = stack.pg.psql_in(
            "watchpost",
            "select count(*) from pg_tables where tablename = 'events'",
        );
        if tables != "1" {
            return None;
        }
        let n = stack.pg.psql_in("watchpost", "select count(*) from events");
        (n == "1").then_some(())
    })
    .await;
    let log = wp.log();
    assert!(log.contains("created the database"), "{log}");
    // Several first callers find it missing at once: one creates it, none fails.
    assert!(!log.contains("creating it failed"), "{log}");
    let (s, _) = get(format!("{}/ready", wp.url())).await;
    assert_eq!(s, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_that_may_not_create_the_database_is_told_the_command_and_ready_follows() {
    let stack = Stack::new(&[]);
    stack.pg.psql("create role app login");
    let url = format!("postgres://app@127.0.0.1:{}/appdb", stack.pg.port);
    let mut env = stack.extra.clone();
    env.push(("WATCHPOST_POSTGRES__URL".into(), url));
    let wp = Watchpost::start_in(tempfile::tempdir().expect("dir"), stack.port, &env);
    let ready = format!("{}/ready", wp.url());
    let (_, body) = eventually("/ready names the database and the command", || async {
        let (s, b) = get(ready.clone()).await;
        let reasons = b["reasons"].to_string();
        (s == 503
            && reasons.contains(r#"database \"appdb\" does not exist"#)
            && reasons.contains("createdb -h 127.0.0.1")
            && reasons.contains("-U postgres -O app appdb"))
        .then_some((s, b))
    })
    .await;
    assert!(
        body["reasons"]
            .to_string()
            .contains("role \\\"app\\\" may not create it"),
        "{body}"
    );
    let log = wp.log();
    assert!(
        log.contains("does not exist") && log.contains("createdb"),
        "the log says so too: {log}"
    );
    assert!(!log.contains("relation \"schema_migrations\" already exists"));
    // The operator runs the command as it is given; readiness follows without a
    // restart.
    let reasons = body["reasons"].to_string();
    let command = reasons
        .split('`')
        .find(|c| c.starts_with("createdb "))
        .expect("a createdb command")
        .to_string();
    let mut words = command.split_whitespace();
    let bin = crate::support::require(words.next().expect("createdb"), "postgresql");
    let out = std::process::Command::new(bin)
        .args(words)
        .output()
        .expect("run createdb");
    assert!(
        out.status.success(),
        "`{command}` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    eventually("/ready turns 200", || async {
        (get(ready.clone()).await.0 == 200).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_camera_root_that_is_a_file_shows_in_the_supervisor_and_the_worker_metric() {
    let wp = Watchpost::start(&[]);
    let root = wp.dir.path().join("cameras");
    let worker = || async {
        let s = json(format!("{}/api/system/supervisor", wp.url())).await;
        s["workers"]
            .as_array()
            .and_then(|w| w.iter().find(|w| w["name"] == "file_watcher").cloned())
            .expect("file_watcher listed")
    };
    eventually("the watcher is watching", || async {
        worker().await["problem"].is_null().then_some(())
    })
    .await;
    std::fs::remove_dir_all(&root).expect("remove root");
    std::fs::write(&root, b"not a folder").expect("a file instead");
    let w = eventually("the supervisor shows the problem", || async {
        let w = worker().await;
        w["problem"].is_string().then_some(w)
    })
    .await;
    assert_eq!(
        w["status"], "running",
        "it keeps running (the contract's status)"
    );
    assert!(
        w["problem"]
            .as_str()
            .is_some_and(|p| p.contains("not a directory")),
        "{w}"
    );
    let m = metrics(&wp).await;
    for (state, value) in [("impaired", 1), ("running", 0)] {
        let line =
            format!("watchpost_worker_state{{state=\"{state}\",worker=\"file_watcher\"}} {value}");
        assert!(m.contains(&line), "{line} missing");
    }
    // A folder again: back to running, by itself.
    std::fs::remove_file(&root).expect("remove file");
    std::fs::create_dir(&root).expect("folder");
    eventually("the problem clears", || async {
        worker().await["problem"].is_null().then_some(())
    })
    .await;
    assert!(metrics(&wp)
        .await
        .contains("watchpost_worker_state{state=\"running\",worker=\"file_watcher\"} 1"));
}

#[test]
fn config_mistakes_of_every_kind_come_in_one_run_naming_the_variables() {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("watchpost.toml");
    std::fs::write(
        &file,
        "[server]\ncolour = \"red\"\n[health]\nprobe_timeout_seconds = -5\n",
    )
    .expect("config");
    let out = Watchpost::command(dir.path(), crate::support::free_port())
        .env("WATCHPOST_CONFIG", &file)
        .env("WATCHPOST_SERVER__WORKERS", "two")
        .env("WATCHPOST_SERVER__BIND", "nonsense")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for want in [
        "server.colour: unknown key",
        "server.workers (from WATCHPOST_SERVER__WORKERS)",
        "health.probe_timeout_seconds: must be a number of seconds",
        "server.bind (from WATCHPOST_SERVER__BIND): must be an IP:port address",
    ] {
        assert!(err.contains(want), "{want} missing from:\n{err}");
    }
    assert!(err.contains("(4 problems)"), "{err}");
}

#[test]
fn version_prints_the_version() {
    let out = Command::new(env!("CARGO_BIN_EXE_watchpost"))
        .arg("--version")
        .output()
        .expect("run");
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("watchpost {}", env!("CARGO_PKG_VERSION"))
    );
}

/// Log lines at `level` that are about `service` (its `service` field).
fn lines_about(log: &str, level: &str, service: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.contains(&format!(" {level} ")))
        .filter(|l| {
            l.contains(&format!("service=\"{service}\""))
                || l.contains(&format!("service={service} "))
        })
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ai_outage_is_logged_once_when_it_starts_and_once_when_it_ends() {
    let stack = Stack::new(&[]);
    let wp = stack.start(tempfile::tempdir().expect("dir"));
    let root = wp.dir.path().join("cameras");
    write_image(&root, "porch", "first.png");
    wait_rows(&stack, "detections", 1).await;
    let before = json(format!("{}/api/system/health/full", wp.url())).await;
    assert_eq!(before["status"], "healthy", "{before}");
    let yolo = stack.ai.get("yolo26").clone();
    yolo.refuse().await;
    for i in 0..10 {
        write_image(&root, "porch", &format!("waiting{i}.png"));
    }
    // The outage lasts until the item in hand has been retried six times (0.2 s
    // doubling: about 13 s, every retry after three attempts at the service), then the
    // service comes back.
    let wpr = &wp;
    eventually("many retries during the outage", || async move {
        let m = metrics(wpr).await;
        m.lines()
            .find(|l| {
                l.starts_with(
                    "watchpost_pipeline_items_total{result=\"retried\",stage=\"detection\"}",
                )
            })
            .and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .filter(|n| *n >= 6)
    })
    .await;
    eventually("the outage is logged", || async {
        (!lines_about(&wp.log(), "WARN", "yolo26").is_empty()).then_some(())
    })
    .await;
    let full = json(format!("{}/api/system/health/full", wp.url())).await;
    assert_eq!(full["status"], "unhealthy", "{full}");
    yolo.accept().await;
    wait_rows(&stack, "detections", 11).await;
    eventually("the recovery is logged", || async {
        (!lines_about(&wp.log(), "INFO", "yolo26").is_empty()).then_some(())
    })
    .await;
    let log = wp.log();
    let warns = lines_about(&log, "WARN", "yolo26");
    let infos = lines_about(&log, "INFO", "yolo26");
    assert_eq!(warns.len(), 1, "{warns:#?}");
    assert_eq!(infos.len(), 1, "{infos:#?}");
    // The reason reaches the line even when the breaker opened first.
    assert!(warns[0].contains("Connection refused"), "{}", warns[0]);
    for noisy in ["AI call failed", "item delayed", "Some("] {
        assert!(!log.contains(noisy), "{noisy:?} at the default level");
    }
    let change = log
        .lines()
        .find(|l| l.contains("health: ") && l.contains(" → unhealthy ("))
        .unwrap_or_else(|| panic!("the health change in words: {log}"));
    assert!(change.contains("yolo26"), "{change}");
    assert!(change.contains("; mode "), "{change}");
}

/// Is `s` shaped like a timestamp at all (so it must have the one shape)?
fn looks_like_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 19
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
}

/// `YYYY-MM-DDTHH:MM:SS[.ffffff]Z`, at most 6 fractional digits.
fn is_canonical_timestamp(s: &str) -> bool {
    let Some(body) = s.strip_suffix('Z') else {
        return false;
    };
    let (whole, frac) = match body.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (body, None),
    };
    chrono::NaiveDateTime::parse_from_str(whole, "%Y-%m-%dT%H:%M:%S").is_ok()
        && frac.is_none_or(|f| (1..=6).contains(&f.len()) && f.bytes().all(|c| c.is_ascii_digit()))
}

fn timestamps(v: &Value, path: &str, out: &mut Vec<(String, String)>) {
    match v {
        Value::String(s) if looks_like_timestamp(s) => out.push((path.to_string(), s.clone())),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, x)| timestamps(x, &format!("{path}[{i}]"), out)),
        Value::Object(o) => o
            .iter()
            .for_each(|(k, x)| timestamps(x, &format!("{path}.{k}"), out)),
        _ => {}
    }
}

/// The fenced blocks of `language` in a Markdown text, by the `## ` section they are in.
fn blocks(markdown: &str, language: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut section = String::new();
    let mut inside: Option<String> = None;
    for line in markdown.lines() {
        if let Some(code) = inside.as_mut() {
            if line.trim_start().starts_with("```") {
                out.push((section.clone(), std::mem::take(code)));
                inside = None;
            } else {
                code.push_str(line);
                code.push('\n');
            }
        } else if let Some(title) = line.strip_prefix("## ") {
            section = title.trim().to_string();
        } else if line.trim_start() == format!("```{language}") {
            inside = Some(String::new());
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_timestamp_has_one_shape_and_the_runbooks_checks_work_on_a_live_instance() {
    let jq = require("jq", "jq");
    let stack = Stack::new(&[]);
    let exporter = Exporter::redis(&stack.redis.url());
    let prom = Prometheus::start(&scrape_config(
        &[
            ("watchpost", format!("127.0.0.1:{}", stack.port)),
            ("redis-exporter", exporter.endpoint()),
        ],
        "1s",
    ));
    let mut env = stack.extra.clone();
    env.push(("WATCHPOST_PROMETHEUS__URL".into(), prom.url()));
    env.push((
        "WATCHPOST_PROMETHEUS__EXPORTERS".into(),
        format!(
            r#"[{{name = "redis-exporter", endpoint = "{}"}}]"#,
            exporter.endpoint()
        ),
    ));
    // A notifier, so that the notifier section's checks have series to read.
    env.push((
        "WATCHPOST_NOTIFY__WEBHOOKS".into(),
        r#"[{name = "phone", url = "http://127.0.0.1:9/", format = "ntfy"}]"#.into(),
    ));
    let wp = Watchpost::start_in(tempfile::tempdir().expect("dir"), stack.port, &env);
    write_image(&wp.dir.path().join("cameras"), "porch", "a.png");
    wait_rows(&stack, "events", 1).await;
    // A dead letter as an older watchpost wrote it (`+00:00`, nine digits).
    let redis_cli = require("redis-cli", "redis-server");
    let out = Command::new(&redis_cli)
        .args(["-p", &stack.redis.port.to_string(), "XADD"])
        .args([
            &format!(
                "{}:dead",
                crate::support::stack::detection_stream(&wp.dir.path().join("cameras"))
            ),
            "*",
            "p",
            r#"{"file_path":"/nowhere/x.png"}"#,
        ])
        .args(["reason", "not_regular", "detail", "old", "source_id", "0-1"])
        .args([
            "deliveries",
            "1",
            "at",
            "2026-01-01T00:00:00.123456789+00:00",
        ])
        .output()
        .expect("redis-cli");
    assert!(out.status.success());
    let base = prom.url();
    eventually(
        "Prometheus scraped the pipeline and the exporter",
        || async {
            let v = json(format!(
                "{base}/api/v1/query?query=watchpost_pipeline_items_total"
            ))
            .await;
            let h = json(format!("{}/api/system/monitoring/health", wp.url())).await;
            (v["data"]["result"].as_array().map_or(0, Vec::len) > 0
                && h["exporters"][0]["last_scrape"].is_string()
                && h["metrics_collection"]["last_successful_scrape"].is_string())
            .then_some(())
        },
    )
    .await;

    // Every timestamp in every GET answer: UTC, `Z`, at most 6 digits.
    let mut paths: Vec<String> = watchpost::api::routes()
        .iter()
        .filter(|r| r.method.as_str() == "GET" && !r.path.contains('{'))
        .filter(|r| !["/ws", "/metrics", "/openapi.json"].contains(&r.path))
        .filter(|r| !r.path.starts_with("/static") && r.path != "/")
        .map(|r| r.path.to_string())
        .collect();
    paths.push("/api/system/pipeline/dead-letters/detection".into());
    paths.push("/api/system/supervisor/restart-history".into());
    let mut seen = 0;
    for path in &paths {
        let (_, body) = get(format!("{}{path}", wp.url())).await;
        let mut found = Vec::new();
        timestamps(&body, path, &mut found);
        for (at, ts) in &found {
            assert!(is_canonical_timestamp(ts), "{at}: {ts}");
        }
        seen += found.len();
    }
    assert!(seen >= 30, "only {seen} timestamps seen");
    let dead = json(format!(
        "{}/api/system/pipeline/dead-letters/detection",
        wp.url()
    ))
    .await;
    assert_eq!(
        dead["items"][0]["dead_lettered_at"],
        "2026-01-01T00:00:00.123456Z"
    );

    // The runbook: every alert has a section with checks, and every check works.
    let runbook = std::fs::read_to_string(repo().join("docs/runbook.md")).expect("runbook");
    let rules = std::fs::read_to_string(repo().join("rules/watchpost.yml")).expect("rules");
    let (bash, promql) = (blocks(&runbook, "bash"), blocks(&runbook, "promql"));
    for alert in rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
    {
        assert!(
            bash.iter().chain(&promql).any(|(s, _)| s == alert),
            "{alert}: no runnable check in its runbook section"
        );
    }
    let jq_dir = jq.parent().expect("dir").to_path_buf();
    let path = format!(
        "{}:{}",
        jq_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut commands = 0;
    for (section, code) in &bash {
        for line in code
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        {
            let out = Command::new("bash")
                .args(["-o", "pipefail", "-c", line])
                .env("PATH", &path)
                .env("WP", wp.url())
                .env("WORKER", "file_watcher")
                .env("QUEUE", "detection")
                .env("BREAKER", "yolo26")
                .env("CAMERA", "porch")
                .output()
                .expect("bash");
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "{section}: `{line}` failed: {}{stdout}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                !stdout.lines().any(|l| l.trim() == "null"),
                "{section}: `{line}` names a field that does not exist:\n{stdout}"
            );
            commands += 1;
        }
    }
    let mut queries = 0;
    for (section, code) in &promql {
        for q in code.lines().filter(|l| !l.trim().is_empty()) {
            let v = eventually(&format!("{section}: {q} returns series"), || async {
                let r = client()
                    .get(format!("{base}/api/v1/query"))
                    .query(&[("query", q)])
                    .send()
                    .await
                    .expect("query");
                let v: Value = r.json().await.expect("json");
                assert_eq!(v["status"], "success", "{section}: {q}: {v}");
                (v["data"]["result"].as_array().map_or(0, Vec::len) > 0).then_some(v)
            })
            .await;
            assert!(v["data"]["result"].is_array());
            queries += 1;
        }
    }
    assert!(
        commands >= 20 && queries >= 15,
        "{commands} commands, {queries} queries"
    );
    drop(wp);
}

#[test]
fn the_systemd_unit_verifies_cleanly() {
    let analyze = require("systemd-analyze", "systemd");
    let unit = std::fs::read_to_string(repo().join("deploy/watchpost.service")).expect("unit");
    assert!(unit.contains("ExecStart=/usr/local/bin/watchpost "));
    // Verify checks that the program exists: point it at the binary just built.
    let dir = tempfile::tempdir().expect("dir");
    let copy = dir.path().join("watchpost.service");
    std::fs::write(
        &copy,
        unit.replace(
            "ExecStart=/usr/local/bin/watchpost",
            &format!("ExecStart={}", env!("CARGO_BIN_EXE_watchpost")),
        ),
    )
    .expect("copy");
    let out = Command::new(analyze)
        .arg("verify")
        .arg(&copy)
        .output()
        .expect("systemd-analyze");
    // `verify` exits 0 even for a bad value (it warns and ignores it): silence is the
    // pass.
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success() && said.trim().is_empty(), "{said}");
    for key in [
        "ProtectSystem=strict",
        "Restart=on-failure",
        "DynamicUser=yes",
        "EnvironmentFile=-/etc/watchpost/secrets.env",
        // The config is root-only, handed over as a credential.
        "LoadCredential=watchpost.toml:/etc/watchpost/watchpost.toml",
        "--config ${CREDENTIALS_DIRECTORY}/watchpost.toml",
        // More descriptors than websocket.max_clients' default of 1,000.
        "LimitNOFILE=65536",
    ] {
        assert!(unit.contains(key), "{key}");
    }
}

/// `watchpost --check-config FILE` checks without starting anything: 0 for the example
/// with a README snippet pasted at its end, 2 for a broken copy, naming the line.
#[test]
fn check_config_says_whether_a_config_is_valid_and_where_it_is_not() {
    let example =
        std::fs::read_to_string(repo().join("config/watchpost.example.toml")).expect("example");
    let dir = tempfile::tempdir().expect("dir");
    let run = |text: &str| {
        let path = dir.path().join("watchpost.toml");
        std::fs::write(&path, text).expect("write");
        Command::new(env!("CARGO_BIN_EXE_watchpost"))
            .arg("--check-config")
            .arg(&path)
            .env_clear()
            .env("WATCHPOST_REDIS_URL", "redis://typo:6379")
            .output()
            .expect("run watchpost")
    };
    let pasted = format!(
        "{example}\n[[notify.webhooks]]\nname = \"phone\"\nurl = \"https://ntfy.sh/my-secret-topic\"\nformat = \"ntfy\"\n"
    );
    let ok = run(&pasted);
    let said = String::from_utf8_lossy(&ok.stderr).to_string();
    assert_eq!(ok.status.code(), Some(0), "{said}");
    assert!(String::from_utf8_lossy(&ok.stdout).contains("valid"));
    assert!(
        said.contains("WATCHPOST_REDIS_URL") && said.contains("WATCHPOST_REDIS__URL"),
        "a variable that sets nothing is named with the nearest key: {said}"
    );
    let lines = pasted.lines().count();
    let broken = format!("{pasted}retry_max_seconds = = 3\n");
    let bad = run(&broken);
    let said = String::from_utf8_lossy(&bad.stderr).to_string();
    assert_eq!(bad.status.code(), Some(2), "{said}");
    assert!(
        said.contains(&format!("watchpost.toml:{}:", lines + 1)),
        "the line is named: {said}"
    );
}
