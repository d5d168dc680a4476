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
fn every_alert_has_a_positive_and_a_negative_test() {
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
    // Every cause alert, the symptom page and the self-monitoring alerts.
    let catalog = Catalog::embedded();
    let alerts = catalog
        .causes
        .iter()
        .filter(|c| c.alert.is_some())
        .map(|c| (c.id.clone(), c.alert_name()))
        .chain(catalog.operational.iter().map(|o| (o.id.clone(), o.alert_name())));
    for (id, name) in alerts {
        assert!(
            positive.contains(&name),
            "{id} ({name}) has no positive rule test"
        );
        assert!(
            negative.contains(&name),
            "{id} ({name}) has no negative rule test"
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

/// `lbtriage rules` with this config file; the directory holds the config and stays alive with it.
fn render_with(config_yaml: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("lbtriage.yml");
    std::fs::write(&config, config_yaml).expect("write config");
    let output = Command::new(env!("CARGO_BIN_EXE_lbtriage"))
        .args(["rules", &format!("--config.file={}", config.display())])
        .output()
        .expect("run lbtriage rules");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    (dir, String::from_utf8_lossy(&output.stdout).into_owned())
}

#[test]
fn rules_subcommand_applies_config_overrides() {
    let (_dir, text) = render_with(
        "rules:\n  selector: 'job=\"lbtriage\"'\n  params: {lb_5xx_ratio: '0.05'}\n  for: {lb_listener_missing: 30s}\n  runbook_base_url: https://wiki.example/runbooks/\n",
    );
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

/// The `lbtriage_lb_*` families an expression reads.
fn lb_families(expr: &str) -> BTreeSet<String> {
    let emitted: BTreeSet<String> = lbtriage::store::families::ALL
        .iter()
        .map(|family| lbtriage::docs::sample_name(family))
        .collect();
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|token| token.starts_with("lbtriage_lb_") && emitted.contains(*token))
        .map(|token| token.trim_end_matches("_total").to_string())
        .collect()
}

#[test]
fn no_rule_reads_a_family_that_no_listed_provider_feeds() {
    use lbtriage::catalog::LbKind;
    let fed: Vec<(LbKind, BTreeSet<&str>)> = LbKind::all()
        .into_iter()
        .map(|kind| (kind, lbtriage::sources::families_fed(kind)))
        .collect();
    let feeds = |kind: LbKind, family: &str| {
        fed.iter()
            .any(|(k, families)| *k == kind && families.contains(family))
    };
    for cause in Catalog::embedded().causes.iter() {
        let Some(alert) = &cause.alert else { continue };
        let read = lb_families(&alert.expr);
        for family in &read {
            assert!(
                cause.providers.iter().any(|kind| feeds(*kind, family)),
                "{} reads {family}, which none of its providers {:?} feeds",
                cause.id,
                cause.providers
            );
        }
        // Each listed provider feeds something the rule reads (probe-only rules read no family).
        for kind in &cause.providers {
            assert!(
                read.is_empty() || read.iter().any(|family| feeds(*kind, family)),
                "{} lists {} but reads none of its families ({read:?})",
                cause.id,
                kind.as_str()
            );
        }
    }
    // The check can fail: an ALB feeds no port allocation errors, an NLB does.
    let kind = |id: &str| LbKind::find(id).expect("a registered kind");
    assert!(!feeds(kind("aws_alb"), "lbtriage_lb_port_allocation_errors"));
    assert!(feeds(kind("aws_nlb"), "lbtriage_lb_port_allocation_errors"));
}

/// `rules.slo` overrides, rendered and evaluated by promtool: the same 0.5 % error ratio pages a
/// load balancer held to 99.9 % and not one whose team chose 99 %.
#[test]
fn slo_overrides_per_selector_change_which_load_balancer_pages() {
    let (dir, rules) = render_with(
        "rules:\n  slo:\n    objective: 0.999\n    overrides:\n      - selector: 'tag_team=\"batch\"'\n        objective: 0.99\n",
    );
    std::fs::write(dir.path().join("rules.yml"), rules).expect("write rules");
    let series = |lb: &str, team: &str| {
        format!(
            "      - series: 'lbtriage_lb_info{{provider=\"aws\",region=\"eu-west-1\",lb=\"{lb}\",lb_name=\"{lb}\",tag_team=\"{team}\"}}'\n        values: '1x20'\n\
             \x20     - series: 'lbtriage_lb_requests_total{{provider=\"aws\",region=\"eu-west-1\",lb=\"{lb}\",lb_name=\"{lb}\"}}'\n        values: '0+60000x20'\n\
             \x20     - series: 'lbtriage_lb_responses_total{{provider=\"aws\",region=\"eu-west-1\",lb=\"{lb}\",lb_name=\"{lb}\",origin=\"backend\",code=\"5xx\"}}'\n        values: '0+1200x20'\n"
        )
    };
    let tests = format!(
        "rule_files: [rules.yml]\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n    input_series:\n{}{}    \
         promql_expr_test:\n      - expr: lbtriage:lb_slo_objective:ratio\n        eval_time: 5m\n        exp_samples:\n          \
         - labels: 'lbtriage:lb_slo_objective:ratio{{provider=\"aws\",region=\"eu-west-1\",lb=\"web\",lb_name=\"web\"}}'\n            value: 0.999\n          \
         - labels: 'lbtriage:lb_slo_objective:ratio{{provider=\"aws\",region=\"eu-west-1\",lb=\"etl\",lb_name=\"etl\"}}'\n            value: 0.99\n    \
         \x20 - expr: ALERTS{{alertname=\"LBErrorBudgetBurn\", alertstate=\"firing\"}}\n        eval_time: 8m\n        exp_samples:\n          \
         - labels: 'ALERTS{{alertname=\"LBErrorBudgetBurn\",alertstate=\"firing\",severity=\"critical\",provider=\"aws\",region=\"eu-west-1\",lb=\"web\",lb_name=\"web\"}}'\n            value: 1\n",
        series("web", "shop"),
        series("etl", "batch"),
    );
    let test_file = dir.path().join("slo.test.yml");
    std::fs::write(&test_file, tests).expect("write tests");
    let (ok, text) = promtool(&["test", "rules", &test_file.display().to_string()]);
    assert!(ok, "{text}");
}

/// No rule alerts on a single event: a rate is compared with a minimum (`min_error_rate`,
/// `min_request_rate`) or taken as a share of traffic, never with `> 0`.
#[test]
fn no_rate_is_compared_with_zero() {
    let rules = std::fs::read_to_string(repo_root().join("alerts/lbtriage.rules.yml")).expect("rules file");
    let offending: Vec<&str> = rules
        .lines()
        .filter(|line| line.contains("rate("))
        .filter(|line| {
            let line = line.trim_end().trim_end_matches(')');
            line.ends_with("> 0") || line.ends_with(">0")
        })
        .collect();
    assert!(offending.is_empty(), "{offending:#?}");
}
