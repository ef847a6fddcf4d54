//! File + environment loading with "report every bad key" semantics.
//!
//! The defaults are serialised to a TOML tree that serves as the schema: a key that is
//! not in it is unknown, and each supplied value is type-checked on its own (by
//! deserialising the defaults with just that value replaced), so one bad value never
//! hides another. Semantic checks (`Config::validate`) run once the types are right.

use super::Config;
use std::collections::BTreeMap;
use std::path::Path;
use toml::{Table, Value};

/// Prefix of every environment override.
pub const ENV_PREFIX: &str = "WATCHPOST_";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid configuration ({} problem{}):\n{}", .0.len(), if .0.len() == 1 { "" } else { "s" }, bullet_list(.0))]
    Invalid(Vec<String>),
}

impl ConfigError {
    /// The `key: problem` lines, for tests and tooling.
    pub fn problems(&self) -> Vec<String> {
        match self {
            Self::Read { .. } => vec![self.to_string()],
            Self::Invalid(lines) => lines.clone(),
        }
    }
}

fn bullet_list(lines: &[String]) -> String {
    lines
        .iter()
        .map(|l| format!("  - {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

pub(super) fn load(
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Config, ConfigError> {
    let defaults = match Value::try_from(Config::default()) {
        Ok(Value::Table(t)) => t,
        // The default config is plain data that always serialises to a table.
        _ => unreachable!("default config serialises to a TOML table"),
    };
    let mut problems = Vec::new();
    // Where each supplied value came from, for messages ("file" or the env var name).
    let mut origin: BTreeMap<String, String> = BTreeMap::new();

    let mut input = Table::new();
    if let Some(path) = file {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        match text.parse::<Table>() {
            Ok(table) => input = table,
            Err(e) => problems.push(format!(
                "{}: not valid TOML: {}",
                path.display(),
                e.message()
            )),
        }
    }

    let mut env: Vec<(String, String)> = env.into_iter().collect();
    env.sort();
    for (name, raw) in env {
        let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let path: Vec<String> = if rest == "API_KEYS" {
            vec!["auth".into(), "api_keys".into()]
        } else if rest.contains("__") {
            rest.split("__").map(str::to_ascii_lowercase).collect()
        } else {
            // WATCHPOST_CONFIG, WATCHPOST_LOG and the like are not config keys.
            continue;
        };
        let dotted = path.join(".");
        let Some(default) = lookup(&defaults, &path) else {
            problems.push(format!("{dotted} (from {name}): unknown key"));
            continue;
        };
        let value = match env_value(default, &raw) {
            Some(v) => v,
            None if is_secret(&dotted) => {
                problems.push(format!(
                    "{dotted} (from {name}): cannot parse the value (not shown: it is a secret)"
                ));
                continue;
            }
            None => {
                problems.push(format!(
                    "{dotted} (from {name}): cannot parse {:?}",
                    crate::redact::text(&raw)
                ));
                continue;
            }
        };
        origin.insert(dotted, name.clone());
        insert(&mut input, &path, value);
    }

    // Every phase runs, whatever the earlier ones found, so one run lists every
    // problem: the values that pass the type check go on to the range and semantic
    // checks (with the defaults standing in for the ones that did not).
    let mut typed = Table::new();
    check_tree(
        &defaults,
        &input,
        &mut Vec::new(),
        &defaults,
        &origin,
        &mut problems,
        &mut typed,
    );
    let mut merged = defaults.clone();
    merge(&mut merged, typed);
    // Every duration, whatever its section: finite, not negative, at most a year (a
    // larger or infinite value would overflow a `Duration` later, not fail here).
    check_seconds(&merged, &mut Vec::new(), &origin, &mut problems);
    let config: Config = match Value::Table(merged).try_into() {
        Ok(c) => c,
        Err(e) => {
            problems.push(e.message().to_string());
            return Err(ConfigError::Invalid(problems));
        }
    };
    // A key that failed an earlier phase is not reported again by a later one.
    let reported: std::collections::BTreeSet<String> = problems
        .iter()
        .map(|p| problem_key(p).to_string())
        .collect();
    problems.extend(
        config
            .validate()
            .into_iter()
            .filter(|p| !reported.contains(problem_key(p)))
            .map(|p| with_origin(p, &origin)),
    );
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(ConfigError::Invalid(problems))
    }
}

/// `key: problem` with the environment variable that set `key` named, when one did
/// (`server.bind (from WATCHPOST_SERVER__BIND): …`). List entries (`key[2]`) are
/// named by their list's variable.
fn with_origin(problem: String, origin: &BTreeMap<String, String>) -> String {
    let Some((key, why)) = problem.split_once(": ") else {
        return problem;
    };
    let list = key.split('[').next().unwrap_or(key);
    match origin.get(key).or_else(|| origin.get(list)) {
        Some(var) => format!("{key} (from {var}): {why}"),
        None => problem,
    }
}

/// The key a `key[ (from VAR)]: problem` line is about.
fn problem_key(problem: &str) -> &str {
    let head = problem.split(": ").next().unwrap_or(problem);
    head.split(" (from ").next().unwrap_or(head)
}

/// The longest duration any `*_seconds` key accepts.
pub const MAX_SECONDS: f64 = 365.0 * 24.0 * 3600.0;

fn check_seconds(
    table: &Table,
    path: &mut Vec<String>,
    origin: &BTreeMap<String, String>,
    problems: &mut Vec<String>,
) {
    for (key, value) in table {
        path.push(key.clone());
        let dotted = path.join(".");
        match value {
            Value::Table(t) => check_seconds(t, path, origin, problems),
            Value::Float(_) | Value::Integer(_) if key.ends_with("_seconds") => {
                let v = match value {
                    Value::Float(f) => *f,
                    Value::Integer(i) => *i as f64,
                    _ => 0.0,
                };
                if !(v.is_finite() && (0.0..=MAX_SECONDS).contains(&v)) {
                    let from = origin
                        .get(&dotted)
                        .map(|o| format!(" (from {o})"))
                        .unwrap_or_default();
                    problems.push(format!(
                        "{dotted}{from}: must be a number of seconds from 0 to {MAX_SECONDS} (one year)"
                    ));
                }
            }
            _ => {}
        }
        path.pop();
    }
}

/// Keys whose values must never appear in a message.
fn is_secret(dotted: &str) -> bool {
    dotted.starts_with("auth.")
}

/// Interpret an environment string using the type of the default at that key.
fn env_value(default: &Value, raw: &str) -> Option<Value> {
    match default {
        Value::String(_) => Some(Value::String(raw.to_string())),
        Value::Array(items)
            if !raw.trim_start().starts_with('[')
                && items.iter().all(|i| matches!(i, Value::String(_))) =>
        {
            Some(Value::Array(
                raw.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| Value::String(s.to_string()))
                    .collect(),
            ))
        }
        _ => format!("v = {raw}")
            .parse::<Table>()
            .ok()
            .and_then(|mut t| t.remove("v")),
    }
}

fn lookup<'a>(table: &'a Table, path: &[String]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    let value = table.get(first)?;
    if rest.is_empty() {
        return Some(value);
    }
    match value {
        Value::Table(t) => lookup(t, rest),
        _ => None,
    }
}

fn insert(table: &mut Table, path: &[String], value: Value) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    if rest.is_empty() {
        table.insert(first.clone(), value);
        return;
    }
    let entry = table
        .entry(first.clone())
        .or_insert_with(|| Value::Table(Table::new()));
    if !entry.is_table() {
        *entry = Value::Table(Table::new());
    }
    if let Value::Table(t) = entry {
        insert(t, rest, value);
    }
}

fn merge(base: &mut Table, over: Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(Value::Table(b)), Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(key, v);
            }
        }
    }
}

/// Walk the supplied tree against the defaults: unknown keys, wrong shapes, and a
/// per-leaf type check so that every bad value is reported. The values that pass are
/// copied into `typed`.
fn check_tree(
    schema: &Table,
    input: &Table,
    path: &mut Vec<String>,
    defaults: &Table,
    origin: &BTreeMap<String, String>,
    problems: &mut Vec<String>,
    typed: &mut Table,
) {
    for (key, value) in input {
        path.push(key.clone());
        let dotted = path.join(".");
        let from = origin
            .get(&dotted)
            .map(|o| format!(" (from {o})"))
            .unwrap_or_default();
        match (schema.get(key), value) {
            (None, _) => problems.push(format!("{dotted}{from}: unknown key")),
            (Some(Value::Table(s)), Value::Table(i)) => {
                check_tree(s, i, path, defaults, origin, problems, typed)
            }
            (Some(Value::Table(_)), _) => problems.push(format!("{dotted}{from}: must be a table")),
            (Some(_), v) => {
                let mut probe = defaults.clone();
                insert(&mut probe, path, v.clone());
                match Value::Table(probe).try_into::<Config>() {
                    Ok(_) => insert(typed, path, v.clone()),
                    Err(e) => {
                        // serde's message quotes the value; never echo a secret.
                        let why = if is_secret(&dotted) {
                            "has the wrong type (expected a list of strings)".to_string()
                        } else {
                            crate::redact::text(e.message())
                        };
                        problems.push(format!("{dotted}{from}: {why}"));
                    }
                }
            }
        }
        path.pop();
    }
}

#[cfg(test)]
mod tests {
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
        let f = file(
            "[[prometheus.exporters]]\nname = \"redis-exporter\"\nendpoint = \"127.0.0.1:1\"\n",
        );
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
        let text = std::fs::read_to_string(&path).expect("read example");
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
}
