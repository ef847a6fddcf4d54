//! File + environment loading with "report every bad key" semantics.
//!
//! The defaults are serialised to a TOML tree that serves as the schema: a key that is
//! not in it is unknown, and each supplied value is type-checked on its own (by
//! deserialising the defaults with just that value replaced), so one bad value never
//! hides another. Semantic checks (`Config::validate`) run once the types are right.

use super::root::Config;
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

impl Config {
    /// Load from an optional TOML file, then apply `WATCHPOST_*` overrides from `env`.
    /// Returns every problem found, not just the first.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        load(file, env, &|_| Vec::new())
    }

    /// [`Config::load`], with the checks of what plugs in above the config (the
    /// notifier kinds check their own settings): `key: problem` lines, reported with
    /// the config's own.
    pub fn load_checked(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        plugged: &dyn Fn(&Config) -> Vec<String>,
    ) -> Result<Self, ConfigError> {
        load(file, env, plugged)
    }
}

fn load(
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
    plugged: &dyn Fn(&Config) -> Vec<String>,
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
                "{}{}: not valid TOML: {}",
                path.display(),
                e.span()
                    .map(|s| line_and_column(&text, s.start))
                    .unwrap_or_default(),
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
            // WATCHPOST_CONFIG is not a config key; a name that looks like one with a
            // single underscore is reported by `unused_variables`.
            continue;
        };
        let dotted = path.join(".");
        let Some(default) = lookup(&defaults, &path) else {
            problems.push(format!("{dotted} (from {name}): unknown key"));
            continue;
        };
        let value = match env_value(&default, &raw) {
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
            .chain(plugged(&config))
            .filter(|p| !reported.contains(problem_key(p)))
            .map(|p| with_origin(p, &origin)),
    );
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(ConfigError::Invalid(problems))
    }
}

/// `:{line}:{column}` of byte `offset` in `text` (both from 1).
fn line_and_column(text: &str, offset: usize) -> String {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    format!(":{line}:{column}")
}

/// The `WATCHPOST_*` variables that set nothing: not a config key in the
/// `WATCHPOST_<SECTION>__<KEY>` form, nor one of the variables read on their own
/// (`WATCHPOST_CONFIG`, `WATCHPOST_API_KEYS`). Each with the nearest config variable,
/// for a warning at start (`WATCHPOST_REDIS_URL` → `WATCHPOST_REDIS__URL`).
pub fn unused_variables(names: impl IntoIterator<Item = String>) -> Vec<(String, Option<String>)> {
    const READ_ON_THEIR_OWN: [&str; 2] = ["CONFIG", "API_KEYS"];
    let Ok(Value::Table(defaults)) = Value::try_from(Config::default()) else {
        return Vec::new();
    };
    let mut known = Vec::new();
    env_names(&defaults, ENV_PREFIX.to_string(), &mut known);
    let mut out = Vec::new();
    for name in names {
        let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        if rest.contains("__") || READ_ON_THEIR_OWN.contains(&rest) {
            continue; // a key (checked by `load`), or read on its own
        }
        let nearest = known
            .iter()
            .map(|k| (edit_distance(k, &name), k))
            .filter(|(d, _)| *d <= 3)
            .min()
            .map(|(_, k)| k.clone());
        out.push((name, nearest));
    }
    out
}

/// `WATCHPOST_<SECTION>__<KEY>` for every key of `table` (open tables' entries left out).
fn env_names(table: &Table, prefix: String, out: &mut Vec<String>) {
    for (k, v) in table {
        let name = format!("{prefix}{}", k.to_ascii_uppercase());
        match v {
            Value::Table(t) if !t.is_empty() => env_names(t, format!("{name}__"), out),
            _ => out.push(name),
        }
    }
}

/// Levenshtein distance (the names are short ASCII).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let here = row[j + 1];
            row[j + 1] = (row[j] + 1)
                .min(here + 1)
                .min(prev + usize::from(ca != *cb));
            prev = here;
        }
    }
    row[b.len()]
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
        || dotted == "alerting.webhook_token"
        || dotted.starts_with("notify.mqtt.")
        || dotted.starts_with("notify.webhooks")
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

/// The default at `path`; inside an open table (`cameras.overrides.<id>`), the
/// default of one entry.
fn lookup(table: &Table, path: &[String]) -> Option<Value> {
    let mut here = Value::Table(table.clone());
    for (i, key) in path.iter().enumerate() {
        let next = match &here {
            Value::Table(t) => t
                .get(key)
                .cloned()
                .or_else(|| super::cameras::open_table_entry(&path[..=i])),
            _ => None,
        }?;
        here = next;
    }
    Some(here)
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
        let entry = super::cameras::open_table_entry(path);
        match (schema.get(key).or(entry.as_ref()), value) {
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
#[path = "load_tests.rs"]
mod tests;
