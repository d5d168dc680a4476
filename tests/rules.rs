//! The rendered rule pack: promtool accepts it, its unit tests pass, every alerting cause has a
//! positive and a negative test, and every metric a rule reads is one the exporter emits.

use std::collections::BTreeSet;
use std::process::Command;

use lbtriage::catalog::Catalog;

use crate::support::repo_root;

fn promtool(args: &[&str]) -> (bool, String) {
    crate::support::run_tool("promtool", args, "make test installs the prometheus package")
}

fn test_files() -> Vec<String> {
    let dir = repo_root().join("alerts/tests");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .expect("alerts/tests exists")
        .filter_map(|e| e.ok())
        .map(|e| format!("alerts/tests/{}", e.file_name().to_string_lossy()))
        .filter(|name| name.ends_with(".yml"))
        .collect();
    files.sort();
    files
}

#[test]
fn promtool_checks_and_unit_tests_pass() {
    let (ok, text) = promtool(&["check", "rules", "alerts/lbtriage.rules.yml"]);
    assert!(ok && text.contains("SUCCESS"), "{text}");
    let files = test_files();
    let mut args = vec!["test", "rules"];
    args.extend(files.iter().map(String::as_str));
    let (ok, text) = promtool(&args);
    assert!(ok, "{text}");
}

#[test]
fn every_alerting_cause_has_a_positive_and_a_negative_test() {
    let mut positive = BTreeSet::new();
    let mut negative = BTreeSet::new();
    for file in test_files() {
        let text = std::fs::read_to_string(repo_root().join(&file)).expect("read test file");
        let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
        for (i, line) in lines.iter().enumerate() {
            let Some(alert) = line.strip_prefix("alertname: ") else {
                continue;
            };
            match lines.get(i + 1) {
                Some(&"exp_alerts: []") => negative.insert(alert.to_string()),
                Some(&"exp_alerts:") => positive.insert(alert.to_string()),
                other => panic!("{file}: {alert} is followed by {other:?}"),
            };
        }
    }
    for cause in Catalog::embedded().causes.iter().filter(|c| c.alert.is_some()) {
        let name = cause.alert_name();
        assert!(
            positive.contains(&name),
            "{} ({name}) has no positive rule test",
            cause.id
        );
        assert!(
            negative.contains(&name),
            "{} ({name}) has no negative rule test",
            cause.id
        );
    }
}

#[test]
fn rules_read_only_metrics_the_exporter_emits() {
    let emitted: BTreeSet<String> = lbtriage::store::families::ALL
        .iter()
        .map(|family| lbtriage::docs::sample_name(family))
        .collect();
    let rules = std::fs::read_to_string(repo_root().join("alerts/lbtriage.rules.yml")).expect("rules file");
    let mut used = BTreeSet::new();
    for token in rules.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        if token.starts_with("lbtriage_") {
            used.insert(token.to_string());
        }
    }
    assert!(!used.is_empty());
    let unknown: Vec<&String> = used.iter().filter(|name| !emitted.contains(*name)).collect();
    assert!(
        unknown.is_empty(),
        "rules read metrics the exporter never emits: {unknown:?}"
    );
}

#[test]
fn rules_subcommand_applies_config_overrides() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("lbtriage.yml");
    std::fs::write(
        &config,
        "rules:\n  selector: 'job=\"lbtriage\"'\n  params: {lb_5xx_ratio: '0.05'}\n  for: {lb_listener_missing: 30s}\n  runbook_base_url: https://wiki.example/runbooks/\n",
    )
    .expect("write config");
    let output = Command::new(env!("CARGO_BIN_EXE_lbtriage"))
        .args(["rules", &format!("--config.file={}", config.display())])
        .output()
        .expect("run lbtriage rules");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("reason=\"refused\", job=\"lbtriage\"}"), "{text}");
    assert!(text.contains("> 0.05"));
    assert!(text.contains("        for: 30s\n        labels:\n          severity: critical\n          cause: lb_listener_missing"));
    assert!(text.contains("runbook_url: \"https://wiki.example/runbooks/lb_listener_missing.md\""));
    // The committed file is the default render.
    let default = Command::new(env!("CARGO_BIN_EXE_lbtriage"))
        .arg("rules")
        .output()
        .expect("run");
    let committed =
        std::fs::read_to_string(repo_root().join("alerts/lbtriage.rules.yml")).expect("rules file");
    assert_eq!(String::from_utf8_lossy(&default.stdout), committed);

    let causes = Command::new(env!("CARGO_BIN_EXE_lbtriage"))
        .args(["causes", "--output", "json"])
        .output()
        .expect("run");
    let causes: serde_json::Value = serde_json::from_slice(&causes.stdout).expect("JSON");
    assert_eq!(causes.as_array().map(Vec::len), Some(29));
    assert_eq!(causes[0]["cause"], "lb_listener_missing");
    assert_eq!(causes[0]["alert"], "LBListenerMissing");
}
