//! The deployment artifacts pass the checks their platforms would apply: Kubernetes schemas,
//! systemd's verifier and security rating, promtool for the Prometheus config and the rules inside
//! the PrometheusRule, and each provider's policy (its registry row) grants exactly the API actions
//! its code calls.

use std::collections::BTreeSet;

use crate::support::{python, repo_root, run_tool};

#[test]
fn kubernetes_manifests_validate() {
    let validator = python().with_file_name("kubernetes-validate");
    let dir = repo_root().join("deploy/kubernetes");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .expect("deploy/kubernetes")
        .filter_map(|e| e.ok())
        .map(|e| format!("deploy/kubernetes/{}", e.file_name().to_string_lossy()))
        .collect();
    files.sort();
    let mut args = vec!["--strict"];
    args.extend(files.iter().map(String::as_str));
    let (ok, text) = run_tool(
        validator.to_str().unwrap_or_default(),
        &args,
        "make test installs it into .venv",
    );
    assert!(ok, "{text}");
    // Only the Prometheus Operator's custom resources lack a schema; everything else is checked.
    for line in text.lines().filter(|l| !l.starts_with("INFO")) {
        assert!(
            line.contains("Couldn't find schema for kind ServiceMonitor")
                || line.contains("Couldn't find schema for kind PrometheusRule"),
            "unexpected finding: {line}"
        );
    }
    assert!(
        text.contains("passed for resource statefulset/lbtriage"),
        "{text}"
    );
}

#[test]
fn the_prometheus_rule_carries_rules_promtool_accepts() {
    let crd =
        std::fs::read_to_string(repo_root().join("deploy/kubernetes/prometheusrule.yaml")).expect("read");
    let spec = crd.split_once("spec:\n").map(|(_, spec)| spec).expect("a spec");
    let groups: String = spec
        .lines()
        .map(|l| format!("{}\n", l.strip_prefix("  ").unwrap_or(l)))
        .collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("rules.yml");
    std::fs::write(&path, groups).expect("write");
    let (ok, text) = run_tool(
        "promtool",
        &["check", "rules", path.to_str().unwrap_or_default()],
        "make test installs prometheus",
    );
    assert!(ok && text.contains("SUCCESS: 56 rules found"), "{text}");
}

#[test]
fn prometheus_config_loads_with_the_rules() {
    let (ok, text) = run_tool(
        "promtool",
        &["check", "config", "deploy/prometheus/prometheus.yml"],
        "make test installs prometheus",
    );
    assert!(ok, "{text}");
}

#[test]
fn systemd_unit_verifies_and_is_hardened() {
    let unit =
        std::fs::read_to_string(repo_root().join("deploy/systemd/lbtriage.service")).expect("read unit");
    // systemd checks that ExecStart exists: point it at the binary under test.
    let unit = unit.replace("/usr/local/bin/lbtriage", env!("CARGO_BIN_EXE_lbtriage"));
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("lbtriage.service");
    std::fs::write(&path, unit).expect("write unit");
    let path = path.to_str().unwrap_or_default();
    let (ok, text) = run_tool("systemd-analyze", &["verify", path], "Debian's systemd package");
    assert!(ok && text.trim().is_empty(), "{text}");
    let (_, text) = run_tool(
        "systemd-analyze",
        &["security", "--offline=yes", path],
        "Debian's systemd package",
    );
    let score: f64 = text
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .and_then(|l| l.split(':').nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in {text}"));
    assert!(score <= 2.0, "exposure {score} (OK is below 2.0): {text}");
}

/// API names a provider's code passes to `call`/`pages` or declares as an `API...` constant.
fn apis_called(provider: &str) -> BTreeSet<String> {
    let mut apis = BTreeSet::new();
    let dir = repo_root().join("exporter/src/sources").join(provider);
    for entry in std::fs::read_dir(dir)
        .expect("the provider's folder")
        .filter_map(|e| e.ok())
    {
        let code = std::fs::read_to_string(entry.path()).expect("read source");
        let mut rest = code.as_str();
        while let Some(at) = rest.find("calls,") {
            // The `calls` argument itself, not a name ending in it (`inventory_calls`).
            let whole = rest[..at]
                .chars()
                .last()
                .is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
            rest = rest[at + "calls,".len()..].trim_start();
            if !whole {
                continue;
            }
            if let Some(quoted) = rest.strip_prefix('"') {
                let name = quoted.split('"').next().unwrap_or_default();
                apis.insert(name.trim_end_matches(" (classic)").to_string());
            }
        }
        // `const API...: &str = "Action"` (not `API_VERSION`'s date).
        for line in code
            .lines()
            .filter(|l| l.contains("const API") && l.contains(": &str = \""))
        {
            let name = line.split('"').nth(1).unwrap_or_default();
            if name.starts_with(|c: char| c.is_ascii_uppercase())
                && name.chars().all(|c| c.is_ascii_alphanumeric())
            {
                apis.insert(name.to_string());
            }
        }
    }
    apis
}

/// Each provider's policy grants exactly the actions its row declares, and those are exactly the
/// API calls its code makes (an action is `service:Api`).
#[test]
fn every_policy_grants_exactly_the_actions_the_code_calls() {
    for provider in lbtriage::sources::registry::PROVIDERS {
        let declared: BTreeSet<String> = (provider.actions)().into_iter().collect();
        let called: BTreeSet<String> = declared
            .iter()
            .filter_map(|action| action.split_once(':').map(|(_, api)| api.to_string()))
            .collect();
        assert_eq!(
            called,
            apis_called(provider.name),
            "{}: the declared actions name the calls the code makes",
            provider.name
        );
        let policy: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(repo_root().join(provider.policy_file)).expect("read"),
        )
        .expect("JSON");
        // AWS and Alibaba write `Statement`, Tencent CAM `statement`.
        let field = |value: &serde_json::Value, name: &str| -> serde_json::Value {
            value
                .get(name)
                .or_else(|| value.get(name.to_ascii_lowercase()))
                .cloned()
                .unwrap_or_default()
        };
        let statements = field(&policy, "Statement")
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(
            !statements.is_empty(),
            "{}: a policy with statements",
            provider.name
        );
        let mut granted = BTreeSet::new();
        for statement in &statements {
            assert_eq!(
                field(statement, "Effect")
                    .as_str()
                    .map(str::to_ascii_lowercase)
                    .as_deref(),
                Some("allow"),
                "{}: only grants",
                provider.name
            );
            let actions = &field(statement, "Action");
            let actions = actions
                .as_array()
                .cloned()
                .unwrap_or_else(|| vec![actions.clone()]);
            granted.extend(actions.iter().filter_map(|a| a.as_str().map(str::to_string)));
        }
        assert_eq!(granted, declared, "{}: {}", provider.name, provider.policy_file);
    }
}
