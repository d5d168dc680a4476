//! The committed Grafana dashboards, checked without Grafana: the conventions a dashboard linter
//! enforces, cause coverage, and that every link leads somewhere. Their queries are run against a
//! real Prometheus in the end-to-end suite (`e2e::dashboards`).

use std::collections::BTreeSet;

use serde_json::Value;

use crate::support::repo_root;

/// Every committed dashboard: (uid, JSON).
pub fn load() -> Vec<(String, Value)> {
    let dir = repo_root().join("grafana/dashboards");
    let mut dashboards: Vec<(String, Value)> = std::fs::read_dir(&dir)
        .expect("grafana/dashboards exists")
        .filter_map(|entry| entry.ok())
        .map(|entry| {
            let path = entry.path();
            let text = std::fs::read_to_string(&path).expect("readable");
            let value: Value = serde_json::from_str(&text)
                .unwrap_or_else(|err| panic!("{}: not JSON: {err}", path.display()));
            let stem = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default()
                .to_string();
            (stem, value)
        })
        .collect();
    dashboards.sort_by(|a, b| a.0.cmp(&b.0));
    dashboards
}

pub fn panels(dashboard: &Value) -> &[Value] {
    dashboard["panels"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
}

pub fn exprs(panel: &Value) -> Vec<&str> {
    panel["targets"]
        .as_array()
        .map(|targets| targets.iter().filter_map(|t| t["expr"].as_str()).collect())
        .unwrap_or_default()
}

fn str_of<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key].as_str().unwrap_or_default()
}

/// Every `rate`/`increase`-style range in the queries uses `$__rate_interval`, so panels stay
/// correct whatever the scrape interval and zoom.
fn ranges_use_rate_interval(expr: &str) -> bool {
    expr.match_indices('[')
        .all(|(at, _)| expr[at..].starts_with("[$__rate_interval]"))
}

#[test]
fn dashboards_follow_the_linter_conventions() {
    let dashboards = load();
    let uids: Vec<&str> = dashboards.iter().map(|(_, d)| str_of(d, "uid")).collect();
    assert_eq!(
        uids,
        [
            lbtriage::dashboards::DETAIL_UID,
            lbtriage::dashboards::OVERVIEW_UID,
            lbtriage::dashboards::PROBES_UID
        ],
        "three dashboards with stable uids"
    );
    for (file, dashboard) in &dashboards {
        let name = str_of(dashboard, "title");
        assert_eq!(file, str_of(dashboard, "uid"), "{name}: file named after its uid");
        assert_eq!(
            dashboard["schemaVersion"].as_u64(),
            Some(lbtriage::dashboards::SCHEMA_VERSION),
            "{name}: current schemaVersion"
        );
        let tags = dashboard["tags"].as_array().cloned().unwrap_or_default();
        assert!(tags.iter().any(|t| t == "lbtriage"), "{name}: tagged lbtriage");
        let links = dashboard["links"].as_array().cloned().unwrap_or_default();
        assert!(!links.is_empty(), "{name}: links to the other dashboards");
        for link in &links {
            assert_eq!(
                link["keepTime"], true,
                "{name}: dashboard links keep the time range"
            );
            assert_eq!(
                link["includeVars"], true,
                "{name}: dashboard links carry the variables"
            );
        }
        let variables = dashboard["templating"]["list"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let datasource = variables.iter().find(|v| v["name"] == "datasource");
        assert!(
            datasource.is_some_and(|v| v["type"] == "datasource" && v["query"] == "prometheus"),
            "{name}: a Prometheus datasource variable"
        );
        for variable in variables.iter().filter(|v| v["type"] == "query") {
            assert_eq!(
                variable["datasource"]["uid"], "${datasource}",
                "{name}: variable on $datasource"
            );
        }
        let mut ids = BTreeSet::new();
        for panel in panels(dashboard) {
            let title = str_of(panel, "title");
            assert!(
                ids.insert(panel["id"].as_u64()),
                "{name}/{title}: unique panel id"
            );
            assert!(!title.is_empty(), "{name}: every panel has a title");
            assert!(
                !str_of(panel, "description").is_empty(),
                "{name}/{title}: has a description"
            );
            assert!(
                !str_of(&panel["fieldConfig"]["defaults"], "unit").is_empty(),
                "{name}/{title}: has a unit"
            );
            assert_eq!(
                panel["datasource"]["uid"], "${datasource}",
                "{name}/{title}: uses $datasource"
            );
            let targets = panel["targets"].as_array().cloned().unwrap_or_default();
            assert!(!targets.is_empty(), "{name}/{title}: has queries");
            for target in &targets {
                assert_eq!(
                    target["datasource"]["uid"], "${datasource}",
                    "{name}/{title}: target on $datasource"
                );
                let expr = str_of(target, "expr");
                assert!(
                    ranges_use_rate_interval(expr),
                    "{name}/{title}: {expr} must use $__rate_interval"
                );
            }
        }
    }
}

#[test]
fn every_alertable_cause_is_evidenced_by_some_panel() {
    let descriptions: String = load()
        .iter()
        .flat_map(|(_, d)| panels(d).iter().map(|p| str_of(p, "description").to_string()))
        .collect();
    let catalog = lbtriage::catalog::Catalog::embedded();
    let missing: Vec<&str> = catalog
        .causes
        .iter()
        .filter(|c| c.alert.is_some())
        .map(|c| c.id.as_str())
        .filter(|id| !descriptions.contains(&format!("[{id}](alerts/runbooks/{id}.md)")))
        .collect();
    assert!(
        missing.is_empty(),
        "causes no panel description names: {missing:?}"
    );
}

#[test]
fn every_link_leads_somewhere() {
    let dashboards = load();
    let uids: BTreeSet<&str> = dashboards.iter().map(|(_, d)| str_of(d, "uid")).collect();
    let catalog = lbtriage::catalog::Catalog::embedded();
    let mut checked = 0;
    for (_, dashboard) in &dashboards {
        for panel in panels(dashboard) {
            // Runbook links in descriptions: markdown `(path)` after `](`.
            let description = str_of(panel, "description");
            for (at, _) in description.match_indices("](") {
                let target = &description[at + 2..];
                let target = &target[..target.find(')').unwrap_or(target.len())];
                assert!(repo_root().join(target).is_file(), "{target} exists");
                checked += 1;
            }
            for link in panel["fieldConfig"]["overrides"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|o| o["properties"].as_array().into_iter().flatten())
                .filter(|p| p["id"] == "links")
                .flat_map(|p| p["value"].as_array().into_iter().flatten())
            {
                let url = str_of(link, "url");
                if let Some(rest) = url.strip_prefix("/d/") {
                    let uid = rest.split('/').next().unwrap_or_default();
                    assert!(uids.contains(uid), "{url}: no dashboard {uid}");
                    assert!(url.contains("var-lb=${__data.fields.lb}"), "{url} carries lb");
                    assert!(
                        url.contains("${__url_time_range}"),
                        "{url} carries the time range"
                    );
                } else {
                    // A runbook link, one per cause: every alertable cause's runbook exists.
                    let template = url.replace("${__data.fields.cause}", "{}");
                    assert_ne!(template, url, "{url}: a runbook link built from the cause");
                    for cause in catalog.causes.iter().filter(|c| c.alert.is_some()) {
                        let path = template.replace("{}", &cause.id);
                        assert!(repo_root().join(&path).is_file(), "{path} exists");
                    }
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 30, "links were found and checked ({checked})");
    // The alert rules' dashboard_url opens the detail dashboard too.
    let rules = std::fs::read_to_string(repo_root().join("alerts/lbtriage.rules.yml")).expect("rules");
    assert!(rules.contains(&format!("/d/{}/", lbtriage::dashboards::DETAIL_UID)));
}

#[test]
fn provisioning_points_at_the_dashboards() {
    let load_yaml = |relative: &str| {
        let text = std::fs::read_to_string(repo_root().join(relative)).expect(relative);
        yaml_rust2::YamlLoader::load_from_str(&text)
            .unwrap_or_else(|err| panic!("{relative}: {err}"))
            .remove(0)
    };
    let provider = load_yaml("deploy/grafana/provisioning/dashboards/lbtriage.yaml");
    let provider = &provider["providers"][0];
    assert_eq!(provider["type"].as_str(), Some("file"));
    assert_eq!(provider["folder"].as_str(), Some("lbtriage"));
    assert!(provider["options"]["path"].as_str().is_some());
    let datasources = load_yaml("deploy/grafana/provisioning/datasources/prometheus.yaml");
    assert_eq!(datasources["datasources"][0]["type"].as_str(), Some("prometheus"));
}
