//! The mixin (`mixin/`) evaluates with jsonnet (go-jsonnet, from the registry's gojsonnet) to exactly
//! what `lbtriage rules` and `lbtriage dashboards` render for the same settings: the defaults, and a
//! configuration that sets every `_config` field.

use std::collections::BTreeMap;
use std::process::Command;

use serde_json::Value;

use crate::support::{python, repo_root};

/// `prometheusRules`, `prometheusAlerts` and `grafanaDashboards` of the mixin with `config`
/// (jsonnet object fields) merged into `_config`.
fn evaluate(config: &str) -> Value {
    let snippet = format!(
        "local mixin = (import 'mixin.libsonnet') + {{ _config+:: {{ {config} }} }};\n\
         {{ rules: mixin.prometheusRules, alerts: mixin.prometheusAlerts, dashboards: mixin.grafanaDashboards }}"
    );
    let file = repo_root().join("mixin/evaluate.jsonnet");
    let output = Command::new(python())
        .args([
            "-c",
            "import sys, _gojsonnet; print(_gojsonnet.evaluate_snippet(sys.argv[1], sys.argv[2]))",
            file.to_str().unwrap_or_default(),
            &snippet,
        ])
        .output()
        .expect("python with gojsonnet (make test installs it)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("jsonnet output is JSON")
}

/// `lbtriage rules` and `lbtriage dashboards` with `rules_yaml` as the `rules:` section.
fn rendered(rules_yaml: &str) -> (Value, BTreeMap<String, Value>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("lbtriage.yml");
    std::fs::write(&config, rules_yaml).expect("write config");
    let config_arg = format!("--config.file={}", config.display());
    let rules = Command::new(env!("CARGO_BIN_EXE_lbtriage"))
        .args(["rules", &config_arg])
        .output()
        .expect("lbtriage rules");
    assert!(
        rules.status.success(),
        "{}",
        String::from_utf8_lossy(&rules.stderr)
    );
    let rules = lbtriage::mixin::yaml_to_json(&String::from_utf8_lossy(&rules.stdout)).expect("YAML");
    let out = dir.path().join("dashboards");
    let status = Command::new(env!("CARGO_BIN_EXE_lbtriage"))
        .args([
            "dashboards",
            &config_arg,
            &format!("--output-dir={}", out.display()),
        ])
        .status()
        .expect("lbtriage dashboards");
    assert!(status.success());
    let mut dashboards = BTreeMap::new();
    for entry in std::fs::read_dir(&out).expect("dashboards").flatten() {
        let text = std::fs::read_to_string(entry.path()).expect("dashboard");
        dashboards.insert(
            entry.file_name().to_string_lossy().into_owned(),
            serde_json::from_str(&text).expect("JSON"),
        );
    }
    (rules, dashboards)
}

fn assert_same(mixin: &Value, (rules, dashboards): &(Value, BTreeMap<String, Value>)) {
    let groups: Vec<Value> = ["rules", "alerts"]
        .iter()
        .flat_map(|part| mixin[*part]["groups"].as_array().cloned().unwrap_or_default())
        .collect();
    assert_eq!(&Value::Array(groups), &rules["groups"], "rule groups, in order");
    assert!(
        mixin["rules"]["groups"]
            .as_array()
            .is_some_and(|g| g.iter().all(|g| g["rules"]
                .as_array()
                .is_some_and(|r| r.iter().all(|r| r.get("record").is_some())))),
        "prometheusRules holds the recording rules"
    );
    let from_mixin: BTreeMap<String, Value> = mixin["dashboards"]
        .as_object()
        .map(|o| o.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    assert_eq!(&from_mixin, dashboards);
}

#[test]
fn the_mixin_renders_what_lbtriage_renders_for_the_same_settings() {
    assert_same(&evaluate(""), &rendered(""));
    let custom = evaluate(
        "selector: 'job=\"lbtriage\"', sloObjective: 0.995, minRequestRate: 2, \
         runbookBaseUrl: 'https://runbooks.example.com/lbtriage/', dashboardUidPrefix: 'lbt'",
    );
    let expected = rendered(
        "rules:\n  selector: 'job=\"lbtriage\"'\n  params: {min_request_rate: \"2\"}\n  \
         runbook_base_url: https://runbooks.example.com/lbtriage/\n  dashboard_uid_prefix: lbt\n  \
         slo: {objective: 0.995}\n",
    );
    assert_same(&custom, &expected);
    assert!(expected.1.contains_key("lbt-detail.json"));
    let text = custom.to_string();
    assert!(
        text.contains(r#"job=\"lbtriage\""#) && !text.contains("@@"),
        "every placeholder filled"
    );
}
