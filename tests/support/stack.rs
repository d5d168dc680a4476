//! The monitoring stack as users run it, for tests that need alerts from the shipped rules: the
//! rule file rendered with every `for` shortened, and Prometheus scraping one exporter.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use super::{http_get, start_on_a_port, Process};

/// Writes the rules as `lbtriage rules` renders them, every cause's and the page's `for` set to
/// `short_for`, into `dir/rules.yml`.
pub fn rules_with_short_for(dir: &Path, short_for: &str) -> PathBuf {
    let catalog = lbtriage::catalog::Catalog::embedded();
    let mut rules_config = lbtriage::config::RulesConfig::default();
    let short_for = lbtriage::config::PromDuration::parse(short_for).expect("valid");
    for cause in catalog.causes.iter().filter(|c| c.alert.is_some()) {
        rules_config.for_overrides.insert(cause.id.clone(), short_for);
    }
    rules_config
        .for_overrides
        .insert("error_budget_burn".to_string(), short_for);
    let rules = dir.join("rules.yml");
    std::fs::write(
        &rules,
        lbtriage::rules::render_rules(catalog, &rules_config).expect("renders"),
    )
    .expect("write rules");
    rules
}

pub fn ready(port: u16) -> bool {
    http_get(port, "/-/ready", &[]).is_ok_and(|r| r.status == 200)
}

/// Prometheus scraping the exporter every second and evaluating `rules` every second, sending
/// alerts to Alertmanager when a port is given.
pub fn start_prometheus(
    dir: &Path,
    exporter_port: u16,
    rules: &Path,
    alertmanager_port: Option<u16>,
) -> (Process, u16) {
    let alerting = alertmanager_port
        .map(|port| {
            format!("alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['127.0.0.1:{port}']\n")
        })
        .unwrap_or_default();
    std::fs::write(
        dir.join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files: ['{}']\n{alerting}scrape_configs:\n  - job_name: lbtriage\n    static_configs:\n      - targets: ['127.0.0.1:{exporter_port}']\n",
            rules.display()
        ),
    )
    .expect("write prometheus.yml");
    start_on_a_port(
        "prometheus",
        |port| {
            let mut command = Command::new("prometheus");
            command.args([
                format!("--config.file={}/prometheus.yml", dir.display()),
                format!("--storage.tsdb.path={}/tsdb", dir.display()),
                format!("--web.listen-address=127.0.0.1:{port}"),
            ]);
            command
        },
        ready,
    )
}

/// Firing alerts from Prometheus.
pub fn firing_alerts(prometheus: u16) -> Option<Vec<Value>> {
    let response = http_get(prometheus, "/api/v1/alerts", &[]).ok()?;
    let body: Value = serde_json::from_slice(&response.body).ok()?;
    Some(
        body["data"]["alerts"]
            .as_array()?
            .iter()
            .filter(|a| a["state"] == "firing")
            .cloned()
            .collect(),
    )
}

/// (lb, cause); for the symptom page, which has no cause, (lb, alertname).
pub fn alert_key(alert: &Value) -> (String, String) {
    let label = |name: &str| alert["labels"][name].as_str().unwrap_or_default().to_string();
    let cause = label("cause");
    (
        label("lb"),
        if cause.is_empty() {
            label("alertname")
        } else {
            cause
        },
    )
}

/// Firing alerts from Prometheus as [`alert_key`]s.
pub fn firing(prometheus: u16) -> Option<BTreeSet<(String, String)>> {
    Some(firing_alerts(prometheus)?.iter().map(alert_key).collect())
}
