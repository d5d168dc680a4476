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
    use lbtriage::sources::registry;
    use lbtriage::sources::row::LbKind;
    let fed: Vec<(LbKind, BTreeSet<&str>)> = registry::kinds()
        .into_iter()
        .map(|kind| (kind, lbtriage::sources::families_fed(kind)))
        .collect();
    let feeds = |kind: &str, family: &str| {
        fed.iter()
            .any(|(k, families)| k.id == kind && families.contains(family))
    };
    for cause in Catalog::embedded().causes.iter() {
        let Some(alert) = &cause.alert else { continue };
        let read = lb_families(&alert.expr);
        for family in &read {
            assert!(
                cause.providers.iter().any(|kind| feeds(kind, family)),
                "{} reads {family}, which none of its providers {:?} feeds",
                cause.id,
                cause.providers
            );
        }
        // Each listed provider feeds something the rule reads (probe-only rules read no family).
        for kind in &cause.providers {
            assert!(
                read.is_empty() || read.iter().any(|family| feeds(kind, family)),
                "{} lists {} but reads none of its families ({read:?})",
                cause.id,
                kind
            );
        }
    }
    // The check can fail: an ALB feeds no port allocation errors, an NLB does.
    let kind = |id: &str| registry::kind(id).expect("a registered kind").id;
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

/// Undoes Go's `%q` quoting (promtool prints annotations so): `\"`, `\\`, `\n`, `\t`.
fn go_unquote(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// Every `description="..."` in promtool's report; every case expects no alert, so each is one it got.
fn got_descriptions(output: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = output;
    while let Some(at) = rest.find("description=\"") {
        rest = &rest[at + "description=\"".len()..];
        let bytes = rest.as_bytes();
        let mut end = 0;
        let mut escaped = false;
        while end < bytes.len() && (escaped || bytes[end] != b'"') {
            escaped = !escaped && bytes[end] == b'\\';
            end += 1;
        }
        found.push(go_unquote(&rest[..end]));
        rest = &rest[end..];
    }
    found
}

/// What a person must not have to decode: an SI milli prefix on a number ("255.5m": a per-second
/// rate that reads as 255 million; "1m 30s" is a duration and fine), or a decimal number with more
/// than three significant digits. Dotted addresses are not numbers.
fn unreadable(description: &str) -> Option<String> {
    let bytes = description.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_digit()
            || (i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'.'))
        {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
            i += 1;
        }
        let number = &description[start..i];
        let dotted = number.matches('.').count();
        if dotted == 1 && !number.ends_with('.') {
            let digits: String = number.chars().filter(char::is_ascii_digit).collect();
            let significant = digits.trim_start_matches('0').len();
            if significant > 3 {
                return Some(format!("{number} has {significant} significant digits"));
            }
        }
        let next = description[i..].chars().next();
        let after = description[i..].chars().nth(1);
        let duration = description[i..]
            .strip_prefix("m ")
            .is_some_and(|rest| rest.chars().next().is_some_and(|c| c.is_ascii_digit()));
        if dotted <= 1 && next == Some('m') && !after.is_some_and(|c| c.is_ascii_alphabetic()) && !duration {
            return Some(format!("{number}m is an SI milli prefix"));
        }
    }
    None
}

/// Every alert's description, rendered by promtool's template engine for values from tiny to
/// large: none prints an SI milli prefix or a float a person has to round.
#[test]
fn every_description_reads_in_the_units_a_person_thinks_in() {
    let rules = lbtriage::rules::render_rules(Catalog::embedded(), &lbtriage::config::RulesConfig::default())
        .expect("renders");
    let parsed = lbtriage::mixin::yaml_to_json(&rules).expect("YAML");
    let descriptions: Vec<String> = parsed["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
        .filter_map(|r| r["annotations"]["description"].as_str().map(str::to_string))
        .collect();
    assert!(descriptions.len() >= 30, "every alert: {}", descriptions.len());
    const SAMPLES: [f64; 9] = [
        0.000123,
        0.004255,
        0.2555,
        1.0,
        3.15159,
        42.4242,
        255.5,
        12345.678,
        3_000_000.0,
    ];
    let labels = r#"lb="app/shop/50dc6c495c0c9188", lb_name="shop", provider="aws", region="us-east-1", probe="auto:app/shop/50dc6c495c0c9188", target="10.0.1.5:8080", vantage="eu", path="lb", header_bytes="16384", target_group="targetgroup/web/1", source="prod", api="DescribeInstances", instance="lbtriage:10502""#;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut rule_file = String::from("groups:\n  - name: descriptions\n    rules:\n");
    let mut tests = String::from("evaluation_interval: 1m\ntests:\n  - interval: 1m\n    input_series:\n");
    for (index, value) in SAMPLES.iter().enumerate() {
        tests.push_str(&format!(
            "      - series: 'sample{{{labels}, sample=\"{index}\"}}'\n        values: '{value}x5'\n"
        ));
    }
    tests.push_str("    alert_rule_test:\n");
    for (index, description) in descriptions.iter().enumerate() {
        rule_file.push_str(&format!(
            "      - alert: D{index}\n        expr: sample\n        annotations:\n          description: {}\n",
            serde_json::to_string(description).expect("JSON")
        ));
        tests.push_str(&format!(
            "      - eval_time: 2m\n        alertname: D{index}\n        exp_alerts: []\n"
        ));
    }
    let rules_path = dir.path().join("descriptions.rules.yml");
    std::fs::write(&rules_path, rule_file).expect("write rules");
    let test_file = dir.path().join("descriptions.test.yml");
    std::fs::write(
        &test_file,
        format!("rule_files: ['{}']\n{tests}", rules_path.display()),
    )
    .expect("write tests");
    // Every case "fails" on purpose: what promtool got is the rendering to read.
    let (_, output) = promtool(&["test", "rules", test_file.to_str().unwrap_or_default()]);
    let rendered = got_descriptions(&output);
    assert_eq!(
        rendered.len(),
        descriptions.len() * SAMPLES.len(),
        "every description rendered for every sample: {output}"
    );
    let problems: Vec<String> = rendered
        .iter()
        .filter_map(|text| unreadable(text).map(|why| format!("{why}: {text}")))
        .collect();
    assert!(problems.is_empty(), "{problems:#?}");
    // The helpers do what they say: a tenth of a second reads per minute, a share as a percentage.
    assert!(
        rendered.iter().any(|t| t.contains("15.3 per minute")),
        "{rendered:#?}"
    );
    assert!(rendered.iter().any(|t| t.contains("25.6%")), "{rendered:#?}");
    assert!(rendered
        .iter()
        .any(|t| t.contains("shop (app/shop/50dc6c495c0c9188)")));
}

#[test]
fn the_readability_check_catches_what_humanize_printed() {
    assert!(unreadable("drops 255.5m connections/s").is_some());
    assert!(unreadable("at 0.2555 per second").is_some());
    assert!(unreadable("expires in 1m 30s").is_none());
    assert!(unreadable("target 10.0.1.5:8080 answers 15.3 per minute").is_none());
    assert!(unreadable("2.13% of requests").is_none());
}
