//! The Grafana JSON writer: a dashboard of panels (schema, data source and variables, links
//! between the dashboards), and each panel's description naming the causes it evidences, derived
//! from the families its queries show and the families each cause's alert reads.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use super::panels::{Panel, Query, Viz};
use crate::catalog::{Catalog, Cause};
use crate::config::RulesConfig;

/// Grafana's dashboard schema version these files are written in (Grafana 12 and later).
pub const SCHEMA_VERSION: u64 = 42;
/// Every lbtriage dashboard carries this tag; dashboard links find each other by it.
pub const TAG: &str = "lbtriage";
/// The dashboards' UIDs with the default `rules.dashboard_uid_prefix`.
pub const OVERVIEW_UID: &str = "lbtriage-overview";
pub const DETAIL_UID: &str = "lbtriage-detail";
pub const PROBES_UID: &str = "lbtriage-probes";

/// The `lbtriage_…` family names an expression reads.
pub fn families_in(expr: &str) -> BTreeSet<&str> {
    let mut names = BTreeSet::new();
    let mut rest = expr;
    while let Some(start) = rest.find("lbtriage_") {
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.insert(&tail[..end]);
        rest = &tail[end..];
    }
    names
}

/// Causes whose alert reads one of the families these queries show.
fn evidenced<'c>(catalog: &'c Catalog, queries: &[Query]) -> Vec<&'c Cause> {
    let shown: BTreeSet<&str> = queries.iter().flat_map(|q| families_in(q.expr)).collect();
    catalog
        .causes
        .iter()
        .filter(|cause| {
            cause
                .alert
                .as_ref()
                .is_some_and(|alert| families_in(&alert.expr).iter().any(|f| shown.contains(f)))
        })
        .collect()
}

fn datasource() -> Value {
    json!({"type": "prometheus", "uid": "${datasource}"})
}

#[allow(clippy::too_many_arguments)]
pub fn dashboard(
    catalog: &Catalog,
    config: &RulesConfig,
    uid: String,
    title: &str,
    description: &str,
    variables: &[Value],
    panels: Vec<Panel>,
    annotations: &[Value],
) -> (String, Value) {
    let mut templating = vec![json!({
        "name": "datasource",
        "label": "Data source",
        "type": "datasource",
        "query": "prometheus",
        "current": {},
        "hide": 0,
        "refresh": 1,
        "regex": "",
    })];
    templating.extend(variables.iter().cloned());
    let mut all_annotations = vec![json!({
        "builtIn": 1,
        "datasource": {"type": "grafana", "uid": "-- Grafana --"},
        "enable": true,
        "hide": true,
        "iconColor": "rgba(0, 211, 255, 1)",
        "name": "Annotations & Alerts",
        "type": "dashboard",
    })];
    all_annotations.extend(annotations.iter().cloned());
    let (mut x, mut y) = (0, 0);
    let panels: Vec<Value> = panels
        .iter()
        .enumerate()
        .map(|(index, panel)| {
            // Tables take the full width, time series half; rows fill left to right.
            let width = match panel.viz {
                Viz::Table => 24,
                Viz::TimeSeries => 12,
            };
            if x + width > 24 {
                x = 0;
                y += 8;
            }
            let grid = json!({"h": 8, "w": width, "x": x, "y": y});
            x += width;
            if x >= 24 {
                x = 0;
                y += 8;
            }
            render_panel(catalog, config, panel, index + 1, grid)
        })
        .collect();
    let value = json!({
        "uid": uid,
        "title": title,
        "description": description,
        "tags": [TAG],
        "editable": false,
        "graphTooltip": 1,
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "1m",
        "timezone": "",
        "links": [{
            "title": "lbtriage",
            "type": "dashboards",
            "tags": [TAG],
            "asDropdown": true,
            "includeVars": true,
            "keepTime": true,
        }],
        "annotations": {"list": all_annotations},
        "templating": {"list": templating},
        "panels": panels,
    });
    (uid, value)
}

fn render_panel(catalog: &Catalog, config: &RulesConfig, panel: &Panel, id: usize, grid: Value) -> Value {
    let mut description = panel.about.to_string();
    let causes = evidenced(catalog, &panel.queries);
    if !causes.is_empty() {
        let links: Vec<String> = causes
            .iter()
            .map(|c| format!("[{}]({}{}.md)", c.id, config.runbook_base_url, c.id))
            .collect();
        description.push_str(&format!("\n\nEvidence for: {}.", links.join(", ")));
    }
    let instant = matches!(panel.viz, Viz::Table);
    let targets: Vec<Value> = panel
        .queries
        .iter()
        .enumerate()
        .map(|(index, query)| {
            let ref_id = char::from(b'A' + u8::try_from(index).unwrap_or(25));
            json!({
                "refId": ref_id.to_string(),
                "datasource": datasource(),
                "expr": query.expr,
                "legendFormat": query.legend,
                "instant": instant,
                "range": !instant,
                "format": if instant { "table" } else { "time_series" },
            })
        })
        .collect();
    let links = panel.links.iter().map(|(field, title, url)| {
        json!({
            "matcher": {"id": "byName", "options": field},
            "properties": [{"id": "links", "value": [{"title": title, "url": url}]}],
        })
    });
    let units = panel.column_units.iter().map(|(column, unit)| {
        json!({
            "matcher": {"id": "byName", "options": column},
            "properties": [{"id": "unit", "value": unit}],
        })
    });
    let overrides: Vec<Value> = links.chain(units).collect();
    let mut value = json!({
        "id": id,
        "type": match panel.viz { Viz::TimeSeries => "timeseries", Viz::Table => "table" },
        "title": panel.title,
        "description": description,
        "datasource": datasource(),
        "gridPos": grid,
        "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": overrides},
        "targets": targets,
    });
    match panel.viz {
        Viz::TimeSeries => {
            value["options"] = json!({
                "legend": {"displayMode": "list", "placement": "bottom", "showLegend": true},
                "tooltip": {"mode": "multi", "sort": "desc"},
            });
        }
        Viz::Table => {
            value["options"] = json!({"showHeader": true});
            // One row per series: merge the queries' frames and drop the columns nobody reads.
            value["transformations"] = json!([
                {"id": "merge", "options": {}},
                {"id": "organize", "options": {"excludeByName": {"Time": true, "__name__": true, "job": true, "instance": true}}},
            ]);
        }
    }
    value
}

fn query_variable(name: &str, label: &str, query: &str, multi: bool) -> Value {
    let mut variable = json!({
        "name": name,
        "label": label,
        "type": "query",
        "datasource": datasource(),
        "query": {"query": query, "refId": name},
        "definition": query,
        "refresh": 2,
        "sort": 1,
        "hide": 0,
        "multi": multi,
        "includeAll": multi,
        "current": {},
        "options": [],
        "regex": "",
    });
    if multi {
        variable["allValue"] = json!(".+");
    }
    variable
}

pub fn lb_variable() -> Value {
    // Load balancers known from a cloud source or named by a probe.
    let query = r#"label_values({__name__=~"lbtriage_lb_info|lbtriage_probe_http_success"}, lb)"#;
    query_variable("lb", "Load balancer", query, false)
}

pub fn probe_variable() -> Value {
    query_variable(
        "probe",
        "Probe",
        "label_values(lbtriage_probe_http_success, probe)",
        true,
    )
}

/// Firing cause alerts of the selected load balancer as annotations on every time series.
pub fn alerts_annotation() -> Value {
    json!({
        "name": "Firing causes",
        "datasource": datasource(),
        "enable": true,
        "hide": false,
        "iconColor": "red",
        "expr": r#"ALERTS{alertstate="firing", cause!="", lb="$lb"}"#,
        "step": "60s",
        "titleFormat": "{{alertname}}",
        "textFormat": "cause {{cause}}",
        "tagKeys": "cause",
        "useValueForTime": false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dashboards::render_all;

    #[test]
    fn family_names_are_read_from_expressions() {
        let names = families_in(
            r#"sum(rate(lbtriage_lb_requests_total{lb="x"}[5m])) / lbtriage_probe_http_success == 0"#,
        );
        assert_eq!(
            names.into_iter().collect::<Vec<_>>(),
            ["lbtriage_lb_requests_total", "lbtriage_probe_http_success"]
        );
    }

    #[test]
    fn descriptions_name_the_causes_their_families_evidence() {
        let catalog = Catalog::embedded();
        let rendered = render_all(catalog, &RulesConfig::default());
        let detail: Value = serde_json::from_str(&rendered[1].1).expect("JSON");
        let keepalive = detail["panels"]
            .as_array()
            .and_then(|panels| {
                panels.iter().find(|p| {
                    p["title"]
                        .as_str()
                        .is_some_and(|t| t.starts_with("Backend keep-alive"))
                })
            })
            .expect("keep-alive panel");
        let description = keepalive["description"].as_str().unwrap_or_default();
        assert!(
            description
                .contains("[target_keepalive_too_short](alerts/runbooks/target_keepalive_too_short.md)"),
            "{description}"
        );
        assert!(!description.contains("lb_connection_limit"), "{description}");
    }
}
