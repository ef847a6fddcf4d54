//! Tests of `load.rs`: every phase, every problem at once, the example config.
use super::*;
use std::io::Write;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn file(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().expect("temp file");
    f.write_all(text.as_bytes()).expect("write");
    f
}

#[test]
fn every_phase_reports_in_one_run_and_names_the_variables() {
    let f = file("[server]\ncolour = \"red\"\n[health]\nprobe_timeout_seconds = -5\n");
    let err = Config::load(
        Some(f.path()),
        env(&[
            ("WATCHPOST_SERVER__WORKERS", "two"),
            ("WATCHPOST_SERVER__BIND", "nonsense"),
        ]),
    )
    .expect_err("four mistakes");
    let problems = err.problems();
    assert_eq!(problems.len(), 4, "{problems:#?}");
    let all = problems.join("\n");
    for want in [
        "server.colour: unknown key",
        "server.workers (from WATCHPOST_SERVER__WORKERS): ",
        "health.probe_timeout_seconds: must be a number of seconds",
        "server.bind (from WATCHPOST_SERVER__BIND): must be an IP:port address",
    ] {
        assert!(all.contains(want), "{want} missing from:\n{all}");
    }
}

#[test]
fn defaults_load_without_file_or_env() {
    let c = Config::load(None, env(&[])).expect("defaults are valid");
    assert_eq!(c, Config::default());
    assert_eq!(c.server.bind, "127.0.0.1:8000");
    assert!(
        c.prometheus.exporters.is_empty(),
        "no made-up exporter names"
    );
}

#[test]
fn exporters_can_be_given_as_one_variable() {
    let c = Config::load(
        None,
        env(&[(
            "WATCHPOST_PROMETHEUS__EXPORTERS",
            r#"[{name = "redis-exporter", endpoint = "127.0.0.1:9121"}]"#,
        )]),
    )
    .expect("valid");
    assert_eq!(c.prometheus.exporters[0].endpoint, "127.0.0.1:9121");
}

#[test]
fn env_overrides_beat_the_file() {
    let f = file("[redis]\nurl = \"redis://file:1\"\n[batch]\nwindow_seconds = 10\n");
    let c = Config::load(
        Some(f.path()),
        env(&[
            ("WATCHPOST_REDIS__URL", "redis://env:2"),
            ("WATCHPOST_AI__YOLO26__URL", "http://10.0.0.1:9"),
            ("WATCHPOST_BATCH__IDLE_TIMEOUT_SECONDS", "0.2"),
            ("WATCHPOST_API_KEYS", "k1, k2"),
            ("WATCHPOST_CONFIG", "ignored.toml"),
            ("HOME", "/root"),
        ]),
    )
    .expect("valid");
    assert_eq!(c.redis.url, "redis://env:2");
    assert_eq!(c.ai.yolo26.url, "http://10.0.0.1:9");
    assert_eq!(c.batch.window_seconds, 10.0);
    assert_eq!(c.batch.idle_timeout_seconds, 0.2);
    assert_eq!(c.auth.api_keys, vec!["k1", "k2"]);
}

#[test]
fn every_bad_key_is_reported_at_once() {
    let f = file(
        "[server]\nworkers = \"many\"\nbindd = \"x\"\n[batch]\nwindow_seconds = -1\n[supervisor]\nmax_restarts = 2.5\n[nope]\nx = 1\n",
    );
    let err = Config::load(
        Some(f.path()),
        env(&[
            ("WATCHPOST_BREAKER__FAILURE_THRESHOLD", "lots"),
            ("WATCHPOST_FOO__BAR", "1"),
        ]),
    )
    .expect_err("invalid");
    let text = err.to_string();
    for key in [
        "server.workers",
        "server.bindd",
        "supervisor.max_restarts",
        "nope",
        "breaker.failure_threshold (from WATCHPOST_BREAKER__FAILURE_THRESHOLD)",
        "foo.bar (from WATCHPOST_FOO__BAR)",
    ] {
        assert!(text.contains(key), "{key} missing from:\n{text}");
    }
}

#[test]
fn semantic_problems_are_all_listed() {
    let err = Config::load(
        None,
        env(&[
            ("WATCHPOST_SERVER__BIND", "not an address"),
            ("WATCHPOST_BATCH__WINDOW_SECONDS", "0"),
            ("WATCHPOST_CLEANUP__TIME", "25:00"),
        ]),
    )
    .expect_err("invalid");
    let problems = err.problems();
    assert_eq!(problems.len(), 3, "{problems:?}");
}

#[test]
fn secrets_never_appear_in_debug_output_or_errors() {
    let c = Config::load(
        None,
        env(&[
            ("WATCHPOST_API_KEYS", "supersecret"),
            ("WATCHPOST_REDIS__URL", "redis://:redispass@127.0.0.1:6379"),
            (
                "WATCHPOST_POSTGRES__URL",
                "postgres://app:pgpass@127.0.0.1/db",
            ),
        ]),
    )
    .expect("valid");
    let debug = format!("{c:?}");
    for secret in ["supersecret", "redispass", "pgpass"] {
        assert!(!debug.contains(secret), "{secret} in {debug}");
    }
    let f = file("[auth]\napi_keys = \"topsecret\"\n");
    let err = Config::load(Some(f.path()), env(&[])).expect_err("wrong type");
    assert!(!err.to_string().contains("topsecret"), "{err}");
    assert!(err.to_string().contains("auth.api_keys"));
}

#[test]
fn every_duration_set_to_inf_or_huge_is_refused_not_a_panic() {
    let mut keys = Vec::new();
    match Value::try_from(Config::default()) {
        Ok(Value::Table(t)) => leaf_keys(&t, "", &mut keys),
        _ => panic!("defaults are a table"),
    }
    keys.retain(|k| k.ends_with("_seconds"));
    assert!(keys.len() >= 20, "{keys:?}");
    for key in &keys {
        let var = format!("WATCHPOST_{}", key.replace('.', "__").to_ascii_uppercase());
        for bad in ["inf", "-inf", "nan", "1e300", "-1"] {
            let err = Config::load(None, env(&[(&var, bad)]))
                .expect_err(&format!("{key} = {bad} must be refused"));
            assert!(err.to_string().contains(key.as_str()), "{err}");
        }
    }
}

#[test]
fn counts_are_range_checked() {
    for (var, bad) in [
        ("WATCHPOST_CLEANUP__RETENTION_DAYS", "4000000000"),
        ("WATCHPOST_AI__MAX_ATTEMPTS", "4000000000"),
        ("WATCHPOST_QUEUE__MAX_DELIVERIES", "0"),
        ("WATCHPOST_FILE_WATCHER__MAX_FILE_BYTES", "0"),
    ] {
        assert!(
            Config::load(None, env(&[(var, bad)])).is_err(),
            "{var}={bad} accepted"
        );
    }
}

#[test]
fn allowed_hosts_and_origins_come_from_env_lists_and_are_checked() {
    let c = Config::load(
        None,
        env(&[
            (
                "WATCHPOST_SERVER__ALLOWED_HOSTS",
                "watchpost.lan, 192.168.1.20",
            ),
            (
                "WATCHPOST_SERVER__ALLOWED_ORIGINS",
                "https://grafana.lan:3000",
            ),
        ]),
    )
    .expect("valid");
    assert_eq!(
        c.server.allowed_hosts,
        vec!["watchpost.lan", "192.168.1.20"]
    );
    assert_eq!(c.server.allowed_origins, vec!["https://grafana.lan:3000"]);
    for (var, bad) in [
        ("WATCHPOST_SERVER__ALLOWED_ORIGINS", "*"),
        ("WATCHPOST_SERVER__ALLOWED_ORIGINS", "http://dash.example/"),
        ("WATCHPOST_SERVER__ALLOWED_ORIGINS", "dash.example"),
        ("WATCHPOST_SERVER__ALLOWED_ORIGINS", "null"),
        ("WATCHPOST_SERVER__ALLOWED_HOSTS", "http://watchpost.lan"),
        ("WATCHPOST_SERVER__ALLOWED_HOSTS", "watchpost.lan:8000"),
        ("WATCHPOST_SERVER__ALLOWED_HOSTS", "*.lan"),
    ] {
        let err = Config::load(None, env(&[(var, bad)])).expect_err(bad);
        assert!(err.to_string().contains("server.allowed_"), "{err}");
    }
}

#[test]
fn an_unparseable_key_is_never_echoed() {
    let err = Config::load(None, env(&[("WATCHPOST_API_KEYS", "[Sup3rS3cretKey")]))
        .expect_err("not a list");
    assert!(!err.to_string().contains("Sup3rS3cretKey"), "{err}");
    assert!(err.to_string().contains("auth.api_keys"), "{err}");
}

#[test]
fn exporters_can_be_replaced_from_the_file() {
    let f =
        file("[[prometheus.exporters]]\nname = \"redis-exporter\"\nendpoint = \"127.0.0.1:1\"\n");
    let c = Config::load(Some(f.path()), env(&[])).expect("valid");
    assert_eq!(c.prometheus.exporters.len(), 1);
    let f = file("[[prometheus.exporters]]\nname = \"x\"\n");
    assert!(Config::load(Some(f.path()), env(&[])).is_err());
}

/// Every leaf key path of a TOML table (arrays of tables count as one leaf).
fn leaf_keys(table: &Table, prefix: &str, out: &mut Vec<String>) {
    for (k, v) in table {
        let path = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            Value::Table(t) => leaf_keys(t, &path, out),
            _ => out.push(path),
        }
    }
}

#[test]
fn example_config_lists_every_key_with_its_default() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/watchpost.example.toml");
    let c = Config::load(Some(&path), env(&[])).expect("example config is valid");
    assert_eq!(c, Config::default());
    // The settings left out as `#: ` lines count: the example shows every key.
    let text = uncommented(&std::fs::read_to_string(&path).expect("read example"));
    let mut in_file = Vec::new();
    leaf_keys(&text.parse::<Table>().expect("toml"), "", &mut in_file);
    let mut all = Vec::new();
    match Value::try_from(Config::default()) {
        Ok(Value::Table(t)) => leaf_keys(&t, "", &mut all),
        _ => panic!("defaults are a table"),
    }
    in_file.sort();
    all.sort();
    assert_eq!(in_file, all);
}

#[test]
fn camera_overrides_are_checked_entry_by_entry_from_the_file_and_the_environment() {
    let f = file(
        "[cameras.overrides.front_door]\nheartbeat_seconds = 300\ncritical = true\n\
         [cameras.overrides.garage]\nmax_silence_seconds = 7200\n",
    );
    let c = Config::load(
        Some(f.path()),
        env(&[(
            "WATCHPOST_CAMERAS__OVERRIDES__BACK_YARD__HEARTBEAT_SECONDS",
            "60",
        )]),
    )
    .expect("valid overrides");
    let o = |id: &str| c.cameras.override_for(id).cloned().expect(id);
    assert_eq!(o("front_door").heartbeat_seconds, 300.0);
    assert!(o("front_door").critical);
    assert_eq!(o("garage").max_silence_seconds, 7200.0);
    assert_eq!(o("back_yard").heartbeat_seconds, 60.0);

    let f = file(
        "[cameras.overrides.front_door]\nheartbeat = 300\n\
         [cameras.overrides.\"Front Door\"]\ncritical = true\n\
         [cameras.overrides.garage]\nmax_silence_seconds = 60\nheartbeat_seconds = 60\n",
    );
    let err = Config::load(Some(f.path()), env(&[])).expect_err("three mistakes");
    let all = err.problems().join("\n");
    for want in [
        "cameras.overrides.front_door.heartbeat: unknown key",
        "cameras.overrides.Front Door: must be a camera id",
        "cameras.overrides.garage: set max_silence_seconds or heartbeat_seconds, not both",
    ] {
        assert!(all.contains(want), "{want} missing from:\n{all}");
    }
}

#[test]
fn notifiers_take_a_few_lines_and_every_mistake_is_named() {
    let f = file(
        "[notify.mqtt]\nurl = \"mqtt://bob:s3cret@127.0.0.1:1883\"\nmatchers.severity = \"critical\"\n\
         [[notify.webhooks]]\nname = \"phone\"\nurl = \"https://ntfy.sh/topic\"\nformat = \"ntfy\"\n",
    );
    let c = Config::load(Some(f.path()), env(&[])).expect("valid");
    assert!(c.notify.mqtt.enabled());
    assert_eq!(c.notify.mqtt.matchers["severity"], "critical");
    assert_eq!(c.notify.webhooks[0].format, "ntfy");
    assert_eq!(c.notify.webhooks[0].min_severity, "warning");
    let shown = format!("{:?}", c.notify);
    assert!(!shown.contains("s3cret"), "{shown}");

    let f = file(
        "[notify.mqtt]\nurl = \"http://broker\"\nmatchers.colour = \"red\"\n\
         [[notify.webhooks]]\nname = \"mqtt\"\nurl = \"no address\"\nformat = \"X M L\"\ntoken = \"has space\"\n",
    );
    let problems = Config::load(Some(f.path()), env(&[]))
        .expect_err("invalid")
        .problems();
    for key in [
        "notify.mqtt.url",
        "notify.mqtt.matchers",
        "notify.webhooks[0].name",
        "notify.webhooks[0].url",
        "notify.webhooks[0].format",
        "notify.webhooks[0].token",
    ] {
        assert!(
            problems.iter().any(|p| p.starts_with(key)),
            "{key} in {problems:?}"
        );
    }

    // From the environment: the webhooks as one TOML array.
    let c = Config::load(
        None,
        env(&[(
            "WATCHPOST_NOTIFY__WEBHOOKS",
            r#"[{name = "hook", url = "http://127.0.0.1:9/h", format = "alertmanager"}]"#,
        )]),
    )
    .expect("valid");
    assert_eq!(c.notify.webhooks[0].name, "hook");
    let bad = Config::load(
        None,
        env(&[("WATCHPOST_NOTIFY__WEBHOOKS", "[{token = 5}]")]),
    )
    .expect_err("a webhook without a name or url")
    .problems();
    assert!(bad.iter().all(|p| !p.contains('5')), "{bad:?}");
}

/// The example's text with its `#: ` settings put back in.
fn uncommented(text: &str) -> String {
    text.lines()
        .map(|l| l.strip_prefix("#: ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The TOML code blocks of the README's "Get told" section.
fn get_told_snippets() -> Vec<String> {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README");
    let start = readme.find("## Get told").expect("a Get told section");
    let end = readme[start + 3..]
        .find("\n## ")
        .map_or(readme.len(), |i| start + 3 + i);
    readme[start..end]
        .split("```toml\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap_or("").to_string())
        .collect()
}

#[test]
fn each_get_told_snippet_pasted_at_the_end_of_the_example_loads() {
    let example = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("config/watchpost.example.toml"),
    )
    .expect("read example");
    let snippets = get_told_snippets();
    assert_eq!(
        snippets.len(),
        6,
        "ntfy, Telegram, e-mail, MQTT, the dead man's switch and Alertmanager: {snippets:?}"
    );
    for snippet in &snippets {
        // As a user pastes it: the `…` placeholders filled in.
        let pasted = format!(
            "{example}\n{}",
            snippet.replace('…', "filled-in-0123456789")
        );
        let f = file(&pasted);
        let c = Config::load(Some(f.path()), env(&[]))
            .unwrap_or_else(|e| panic!("the snippet\n{snippet}\ndoes not load: {e}"));
        assert_ne!(
            c,
            Config::default(),
            "the snippet set something:\n{snippet}"
        );
    }
}

#[test]
fn a_toml_mistake_names_its_file_line_and_column() {
    let f = file("[server]\nbind = \"127.0.0.1:8000\"\n[notify]\nrepeat_seconds = = 3\n");
    let err = Config::load(Some(f.path()), env(&[]))
        .expect_err("not TOML")
        .to_string();
    assert!(err.contains(&format!("{}:4:", f.path().display())), "{err}");
}

#[test]
fn a_variable_that_sets_nothing_is_named_with_the_nearest_key() {
    let found = unused_variables(
        [
            "WATCHPOST_REDIS_URL",
            "WATCHPOST_CONFIG",
            "WATCHPOST_API_KEYS",
            "WATCHPOST_REDIS__URL",
            "WATCHPOST_SOMETHING_ELSE_ENTIRELY",
            "HOME",
        ]
        .map(String::from),
    );
    assert_eq!(
        found,
        vec![
            (
                "WATCHPOST_REDIS_URL".to_string(),
                Some("WATCHPOST_REDIS__URL".to_string())
            ),
            ("WATCHPOST_SOMETHING_ELSE_ENTIRELY".to_string(), None),
        ]
    );
}
