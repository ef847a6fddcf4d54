//! Prometheus helpers: a scrape config for a test's Prometheus, and promtool's lint.

use std::io::Write;
use std::process::Stdio;

pub fn scrape_config(jobs: &[(&str, String)], interval: &str) -> String {
    let mut cfg = format!(
        "global:\n  scrape_interval: {interval}\n  scrape_timeout: {interval}\n  evaluation_interval: {interval}\nscrape_configs:\n"
    );
    for (job, target) in jobs {
        cfg.push_str(&format!(
            "  - job_name: {job}\n    static_configs:\n      - targets: ['{target}']\n"
        ));
    }
    cfg
}

/// `promtool check metrics` must be clean (exit 0, no lint lines).
pub fn promtool_check_metrics(text: &str) {
    let promtool = crate::support::require("promtool", "prometheus");
    let mut child = std::process::Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn promtool");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write metrics");
    let out = child.wait_with_output().expect("promtool");
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
