//! The deployment artifacts pass the checks their platforms would apply: Kubernetes schemas,
//! systemd's verifier and security rating, promtool for the Prometheus config and the rules inside
//! the PrometheusRule, and an IAM policy that grants exactly the API actions the code calls.

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
    assert!(ok && text.contains("SUCCESS: 55 rules found"), "{text}");
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

/// API names the AWS source passes to `call`/`pages` (and its `API` constants).
fn apis_called() -> BTreeSet<String> {
    let mut apis = BTreeSet::new();
    let dir = repo_root().join("exporter/src/sources/aws");
    for entry in std::fs::read_dir(dir)
        .expect("sources/aws")
        .filter_map(|e| e.ok())
    {
        let code = std::fs::read_to_string(entry.path()).expect("read source");
        let mut rest = code.as_str();
        while let Some(at) = rest.find("calls,") {
            rest = rest[at + "calls,".len()..].trim_start();
            if let Some(quoted) = rest.strip_prefix('"') {
                let name = quoted.split('"').next().unwrap_or_default();
                apis.insert(name.trim_end_matches(" (classic)").to_string());
            }
        }
        for line in code.lines().filter(|l| l.contains("const API: &str = \"")) {
            if let Some(name) = line.split('"').nth(1) {
                apis.insert(name.to_string());
            }
        }
    }
    apis
}

#[test]
fn iam_policy_grants_exactly_the_actions_the_code_calls() {
    let expected: BTreeSet<String> = apis_called()
        .into_iter()
        .map(|api| match api.as_str() {
            "GetMetricData" => format!("cloudwatch:{api}"),
            "GetResources" => format!("tag:{api}"),
            _ => format!("elasticloadbalancing:{api}"),
        })
        .collect();
    assert!(expected.len() >= 7, "found the calls: {expected:?}");
    let policy: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("deploy/iam/aws-policy.json")).expect("read"),
    )
    .expect("JSON");
    let granted: BTreeSet<String> = policy["Statement"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|statement| statement["Action"].as_array().cloned().unwrap_or_default())
        .filter_map(|action| action.as_str().map(str::to_string))
        .collect();
    assert_eq!(granted, expected);
}

#[test]
fn dockerfile_builds_in_stages_and_runs_as_non_root() {
    // No Docker engine runs here, so the image is not built; its shape is checked.
    let dockerfile = std::fs::read_to_string(repo_root().join("deploy/docker/Dockerfile")).expect("read");
    assert_eq!(
        dockerfile.lines().filter(|l| l.starts_with("FROM ")).count(),
        2,
        "multi-stage"
    );
    assert!(dockerfile.contains("COPY --from=build"));
    let user = dockerfile
        .lines()
        .rev()
        .find(|l| l.starts_with("USER "))
        .expect("a USER line");
    let name = user
        .trim_start_matches("USER ")
        .split(':')
        .next()
        .unwrap_or_default()
        .trim();
    assert!(
        !name.is_empty() && name != "root" && name != "0",
        "runs as {name:?}"
    );
    assert!(!dockerfile.contains(":latest"));
}

#[test]
fn alibaba_ram_policy_grants_exactly_the_api_the_code_calls() {
    let policy: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("deploy/iam/alibaba-ram-policy.json")).expect("read"),
    )
    .expect("JSON");
    let granted: Vec<&str> = policy["Statement"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|statement| statement["Action"].as_array().into_iter().flatten())
        .filter_map(serde_json::Value::as_str)
        .collect();
    assert_eq!(
        granted,
        [format!("cms:{}", lbtriage::sources::alibaba::client::API)],
        "read-only CloudMonitor, nothing else"
    );
    assert_eq!(policy["Statement"][0]["Effect"], "Allow");
}
