//! Committed files rendered from code must match a fresh render. `make generate` rewrites them.

use crate::support::repo_root;

fn check_fresh(relative: &str, fresh: &str) {
    let path = repo_root().join(relative);
    if std::env::var_os("LBTRIAGE_UPDATE_GENERATED").is_some() {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("create the directory");
        }
        std::fs::write(&path, fresh).expect("write the generated file");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == fresh,
        "{relative} is stale: run `make generate` and commit the result"
    );
}

/// The sorted file names in a directory (none when it is missing).
fn file_names(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|dir| {
            dir.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn metrics_doc_is_fresh() {
    check_fresh("docs/metrics.md", &lbtriage::docs::metrics_markdown());
}

#[test]
fn rules_runbooks_and_causes_doc_are_fresh() {
    use lbtriage::catalog::Catalog;
    let catalog = Catalog::embedded();
    let rules =
        lbtriage::rules::render_rules(catalog, &lbtriage::config::RulesConfig::default()).expect("renders");
    check_fresh("alerts/lbtriage.rules.yml", &rules);
    check_fresh("docs/causes.md", &lbtriage::rules::render_causes_doc(catalog));
    let crd = lbtriage::rules::render_prometheus_rule(catalog, &lbtriage::config::RulesConfig::default())
        .expect("renders");
    check_fresh("deploy/kubernetes/prometheusrule.yaml", &crd);
    let runbooks = repo_root().join("alerts/runbooks");
    let mut expected = Vec::new();
    for cause in &catalog.causes {
        if let Some(text) = lbtriage::rules::render_runbook(catalog, cause) {
            check_fresh(&cause.runbook(), &text);
            expected.push(format!("{}.md", cause.id));
        }
    }
    for op in &catalog.operational {
        check_fresh(
            &op.runbook_path(),
            &lbtriage::rules::render_operational_runbook(op),
        );
        expected.push(format!("{}.md", op.id));
    }
    // No runbook left behind for a cause that lost its runbook.
    let present = file_names(&runbooks);
    expected.sort();
    assert_eq!(
        present, expected,
        "alerts/runbooks/ holds exactly the rendered runbooks"
    );
}

#[test]
fn dashboards_are_fresh() {
    let rendered = lbtriage::dashboards::render_all(
        lbtriage::catalog::Catalog::embedded(),
        &lbtriage::config::RulesConfig::default(),
    );
    let mut expected: Vec<String> = Vec::new();
    for (name, text) in &rendered {
        check_fresh(&format!("grafana/dashboards/{name}"), text);
        expected.push(name.clone());
    }
    let present = file_names(&repo_root().join("grafana/dashboards"));
    expected.sort();
    assert_eq!(
        present, expected,
        "grafana/dashboards/ holds exactly the rendered dashboards"
    );
}

#[test]
fn mixin_is_fresh() {
    let files = lbtriage::mixin::render(lbtriage::catalog::Catalog::embedded()).expect("renders");
    for (name, text) in &files {
        check_fresh(&format!("mixin/{name}"), text);
    }
    let present = file_names(&repo_root().join("mixin/dashboards"));
    let mut expected: Vec<String> = files
        .iter()
        .filter_map(|(name, _)| name.strip_prefix("dashboards/").map(str::to_string))
        .collect();
    expected.sort();
    assert_eq!(
        present, expected,
        "mixin/dashboards/ holds exactly the rendered dashboards"
    );
}
