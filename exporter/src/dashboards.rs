//! Grafana dashboards rendered from the cause catalog: `lbtriage dashboards` writes them, and the
//! committed copies in `grafana/dashboards/` are checked for freshness.
//!
//! Panels are declared here with their queries; which causes a panel evidences is not written by
//! hand but derived: a panel evidences every cause whose alert expression reads one of the
//! families the panel shows. Its description names those causes and links their runbooks, so a new
//! cause in the catalog shows up on the dashboards without touching this file.

use std::collections::BTreeSet;

use serde_json::{json, Value};

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

/// The detail dashboard's URL for one load balancer, keeping the time range and data source.
/// The detail dashboard of a row's load balancer.
fn detail_link(config: &RulesConfig) -> String {
    format!(
        "/d/{}-detail/load-balancer-triage-detail?var-lb=${{__data.fields.lb}}&var-datasource=${{datasource}}&${{__url_time_range}}",
        config.dashboard_uid_prefix
    )
}

#[derive(Clone, Copy)]
enum Viz {
    TimeSeries,
    /// An instant query shown as a table, one row per series.
    Table,
}

struct Query {
    expr: &'static str,
    legend: &'static str,
}

const fn q(expr: &'static str, legend: &'static str) -> Query {
    Query { expr, legend }
}

struct Panel {
    title: &'static str,
    /// What the panel shows, one sentence; the evidenced causes are appended.
    about: &'static str,
    viz: Viz,
    unit: &'static str,
    queries: Vec<Query>,
    /// Column links: (field, link title, URL with `${__data.fields.<name>}` placeholders).
    links: Vec<(&'static str, &'static str, String)>,
    /// Tables: units of single columns (`Value #B`) that differ from the panel's.
    column_units: Vec<(&'static str, &'static str)>,
}

fn panel(
    title: &'static str,
    about: &'static str,
    viz: Viz,
    unit: &'static str,
    queries: Vec<Query>,
) -> Panel {
    Panel {
        title,
        about,
        viz,
        unit,
        queries,
        links: Vec::new(),
        column_units: Vec::new(),
    }
}

impl Panel {
    fn link(mut self, field: &'static str, title: &'static str, url: String) -> Self {
        self.links.push((field, title, url));
        self
    }

    fn column_unit(mut self, column: &'static str, unit: &'static str) -> Self {
        self.column_units.push((column, unit));
        self
    }
}

/// The three dashboards as (file name, JSON text).
pub fn render_all(catalog: &Catalog, config: &RulesConfig) -> Vec<(String, String)> {
    let runbook = format!("{}${{__data.fields.cause}}.md", config.runbook_base_url);
    let detail = detail_link(config);
    let uid = |kind: &str| format!("{}-{kind}", config.dashboard_uid_prefix);
    [
        dashboard(
            catalog,
            config,
            uid("overview"),
            "Load balancer triage — overview",
            "Every load balancer's traffic and 5xx by origin, and the causes firing now.",
            &[],
            overview_panels(&runbook, &detail),
            &[],
        ),
        dashboard(
            catalog,
            config,
            uid("detail"),
            "Load balancer triage — detail",
            "One load balancer: the evidence behind each cause lbtriage can name.",
            &[lb_variable()],
            detail_panels(&runbook),
            &[alerts_annotation()],
        ),
        dashboard(
            catalog,
            config,
            uid("probes"),
            "Load balancer triage — probes",
            "Active probes through each load balancer and directly against its backends.",
            &[probe_variable()],
            probes_panels(&detail),
            &[],
        ),
    ]
    .into_iter()
    .map(|(uid, value)| {
        let text = serde_json::to_string_pretty(&value).unwrap_or_default();
        (format!("{uid}.json"), text + "\n")
    })
    .collect()
}

fn overview_panels(runbook: &str, detail: &str) -> Vec<Panel> {
    vec![
        panel(
            "Firing causes",
            "Cause alerts firing now, one row per load balancer and cause; the cause links to its runbook, the load balancer to its detail dashboard.",
            Viz::Table,
            "none",
            vec![q(r#"ALERTS{alertstate="firing", cause!=""}"#, "")],
        )
        .link("cause", "Runbook", runbook.to_string())
        .link("lb", "Load balancer detail", detail.to_string()),
        panel(
            "Load balancers",
            "Request rate and the share of requests answered with a 5xx, by who generated it.",
            Viz::Table,
            "reqps",
            vec![
                q(r#"sum by (provider, region, lb_name, lb) (rate(lbtriage_lb_requests_total[$__rate_interval]))"#, "requests/s"),
                q(
                    r#"sum by (provider, region, lb_name, lb) (rate(lbtriage_lb_responses_total{origin="lb", code=~"5.."}[$__rate_interval])) / sum by (provider, region, lb_name, lb) (rate(lbtriage_lb_requests_total[$__rate_interval]))"#,
                    "lb 5xx ratio",
                ),
                q(
                    r#"sum by (provider, region, lb_name, lb) (rate(lbtriage_lb_responses_total{origin="backend", code=~"5.."}[$__rate_interval])) / sum by (provider, region, lb_name, lb) (rate(lbtriage_lb_requests_total[$__rate_interval]))"#,
                    "backend 5xx ratio",
                ),
            ],
        )
        .column_unit("Value #B", "percentunit")
        .column_unit("Value #C", "percentunit")
        .link("lb", "Load balancer detail", detail.to_string()),
        panel(
            "Error budget burn rate (last hour)",
            "How many times faster than its SLO allows each load balancer spends its error budget over the last hour (all 5xx, its own and passed through). The page (LBErrorBudgetBurn) needs 14.4 here and over the last five minutes; 1 spends the budget exactly over the SLO window. Needs lbtriage's recording rules.",
            Viz::TimeSeries,
            "short",
            vec![q(
                r#"lbtriage:lb_error_ratio:rate1h / (1 - lbtriage:lb_slo_objective:ratio)"#,
                "{{lb_name}}",
            )],
        ),
        panel(
            "Request rate",
            "Requests each load balancer received.",
            Viz::TimeSeries,
            "reqps",
            vec![q(r#"sum by (lb_name, lb) (rate(lbtriage_lb_requests_total[$__rate_interval]))"#, "{{lb_name}}")],
        ),
        panel(
            "Load-balancer-generated 5xx ratio",
            "Share of requests the load balancer itself answered with a 5xx: the target never produced these.",
            Viz::TimeSeries,
            "percentunit",
            vec![q(
                r#"sum by (lb_name, lb) (rate(lbtriage_lb_responses_total{origin="lb", code=~"5.."}[$__rate_interval])) / sum by (lb_name, lb) (rate(lbtriage_lb_requests_total[$__rate_interval]))"#,
                "{{lb_name}}",
            )],
        ),
        panel(
            "Backend 5xx ratio",
            "Share of requests answered with a 5xx that a target produced and the load balancer passed through.",
            Viz::TimeSeries,
            "percentunit",
            vec![q(
                r#"sum by (lb_name, lb) (rate(lbtriage_lb_responses_total{origin="backend", code=~"5.."}[$__rate_interval])) / sum by (lb_name, lb) (rate(lbtriage_lb_requests_total[$__rate_interval]))"#,
                "{{lb_name}}",
            )],
        ),
        panel(
            "Sources",
            "Whether each cloud source's last collection worked, and how old its newest data is: evidence is only as fresh as this.",
            Viz::Table,
            "s",
            vec![
                q(r#"lbtriage_source_up"#, "up"),
                q(r#"time() - lbtriage_collection_data_end_timestamp_seconds"#, "data age"),
            ],
        )
        .column_unit("Value #A", "bool_yes_no"),
    ]
}

fn detail_panels(runbook: &str) -> Vec<Panel> {
    vec![
        panel(
            "Firing causes",
            "Cause alerts firing now for this load balancer; the cause links to its runbook.",
            Viz::Table,
            "none",
            vec![q(r#"ALERTS{alertstate="firing", cause!="", lb="$lb"}"#, "")],
        )
        .link("cause", "Runbook", runbook.to_string()),
        panel(
            "Responses by origin and code",
            "Requests, and responses by who generated them (lb: the load balancer itself; backend: passed through from a target) and code.",
            Viz::TimeSeries,
            "reqps",
            vec![
                q(r#"sum(rate(lbtriage_lb_requests_total{lb="$lb"}[$__rate_interval]))"#, "requests"),
                q(
                    r#"sum by (origin, code) (rate(lbtriage_lb_responses_total{lb="$lb"}[$__rate_interval]))"#,
                    "{{origin}} {{code}}",
                ),
            ],
        ),
        panel(
            "Connection and TLS errors",
            "Connections the load balancer could not open to targets, failed TLS handshakes on either side, source-port exhaustion and resets.",
            Viz::TimeSeries,
            "cps",
            vec![
                q(r#"sum(rate(lbtriage_lb_target_connection_errors_total{lb="$lb"}[$__rate_interval]))"#, "target connection errors"),
                q(r#"sum(rate(lbtriage_lb_target_tls_errors_total{lb="$lb"}[$__rate_interval]))"#, "target TLS errors"),
                q(r#"sum(rate(lbtriage_lb_client_tls_errors_total{lb="$lb"}[$__rate_interval]))"#, "client TLS errors"),
                q(r#"sum(rate(lbtriage_lb_port_allocation_errors_total{lb="$lb"}[$__rate_interval]))"#, "port allocation errors"),
                q(r#"sum by (origin) (rate(lbtriage_lb_resets_total{lb="$lb"}[$__rate_interval]))"#, "resets by {{origin}}"),
            ],
        ),
        panel(
            "Rejected and dropped connections",
            "Client connections refused at capacity, requests spilled from a full surge queue, and packets dropped at the bandwidth cap.",
            Viz::TimeSeries,
            "cps",
            vec![
                q(r#"sum(rate(lbtriage_lb_rejected_connections_total{lb="$lb"}[$__rate_interval]))"#, "rejected connections"),
                q(r#"sum(rate(lbtriage_lb_spillover_total{lb="$lb"}[$__rate_interval]))"#, "spillover"),
                q(r#"sum by (direction) (rate(lbtriage_lb_dropped_packets_total{lb="$lb"}[$__rate_interval]))"#, "dropped packets {{direction}}"),
            ],
        ),
        panel(
            "Capacity utilisation",
            "Requests per second and connections as a share of the load balancer's limits, where the provider reports them (Alibaba SLB).",
            Viz::TimeSeries,
            "percentunit",
            vec![
                q(r#"max(lbtriage_lb_qps_utilization_ratio{lb="$lb"})"#, "QPS"),
                q(r#"max by (limit) (lbtriage_lb_connection_utilization_ratio{lb="$lb"})"#, "{{limit}}"),
            ],
        ),
        panel(
            "Dropped traffic",
            "Bytes the load balancer dropped at its bandwidth cap, by direction.",
            Viz::TimeSeries,
            "Bps",
            vec![q(
                r#"sum by (direction) (rate(lbtriage_lb_dropped_traffic_bytes_total{lb="$lb"}[$__rate_interval]))"#,
                "{{direction}}",
            )],
        ),
        panel(
            "Surge queue",
            "Requests waiting for a free target connection (Classic load balancers).",
            Viz::TimeSeries,
            "short",
            vec![q(r#"max(lbtriage_lb_surge_queue_length{lb="$lb"})"#, "queued requests")],
        ),
        panel(
            "Healthy and unhealthy targets",
            "Targets the load balancer's health checks pass and fail, and targets registered (from discovery), per target group. Registered at 0 is an empty group; healthy at 0 with unhealthy targets is an ALB failing open.",
            Viz::TimeSeries,
            "short",
            vec![
                q(r#"sum by (target_group) (lbtriage_lb_healthy_targets{lb="$lb"})"#, "healthy {{target_group}}"),
                q(r#"sum by (target_group) (lbtriage_lb_unhealthy_targets{lb="$lb"})"#, "unhealthy {{target_group}}"),
                q(r#"sum by (target_group) (lbtriage_lb_registered_targets{lb="$lb"})"#, "registered {{target_group}}"),
            ],
        ),
        panel(
            "Target health and reasons",
            "Each registered target with the state and reason code the load balancer gives for it.",
            Viz::Table,
            "none",
            vec![q(r#"lbtriage_lb_target_health_info{lb="$lb"}"#, "")],
        ),
        panel(
            "Target response time against the load balancer's timeouts",
            "How long targets take to answer, against the idle timeout and the response timeout the load balancer enforces.",
            Viz::TimeSeries,
            "s",
            vec![
                q(r#"max(lbtriage_lb_target_response_time_seconds{lb="$lb"})"#, "target response time"),
                q(r#"max(lbtriage_lb_target_response_time_max_seconds{lb="$lb"})"#, "slowest response"),
                q(r#"max(lbtriage_lb_idle_timeout_seconds{lb="$lb"})"#, "idle timeout"),
                q(r#"max(lbtriage_probe_lb_response_timeout_seconds{lb="$lb"})"#, "response timeout"),
            ],
        ),
        panel(
            "Probes through the load balancer and against each backend",
            "The latest probe result per address, with the failure reason: through the load balancer (path=lb) and directly to each backend (path=backend).",
            Viz::Table,
            "bool_yes_no",
            vec![
                q(r#"lbtriage_probe_http_success{lb="$lb"}"#, "HTTP"),
                q(r#"lbtriage_probe_tcp_success{lb="$lb"}"#, "TCP"),
            ],
        ),
        panel(
            "Probe request phases",
            "Where the probe's time goes, per address, against the load balancer's response timeout.",
            Viz::TimeSeries,
            "s",
            vec![
                q(
                    r#"max by (path, target, phase) (lbtriage_probe_http_phase_seconds{lb="$lb", request="app"})"#,
                    "{{path}} {{target}} {{phase}}",
                ),
                q(r#"max(lbtriage_probe_lb_response_timeout_seconds{lb="$lb"})"#, "response timeout"),
            ],
        ),
        panel(
            "Backend keep-alive against the load balancer idle timeout",
            "How long each backend keeps an idle connection open; below the load balancer's idle timeout, the load balancer reuses connections the backend already closed.",
            Viz::TimeSeries,
            "s",
            vec![
                q(r#"max by (target) (lbtriage_probe_keepalive_idle_seconds{lb="$lb"})"#, "{{target}} keep-alive"),
                q(r#"max(lbtriage_probe_lb_idle_timeout_seconds{lb="$lb"})"#, "load balancer idle timeout"),
            ],
        ),
        panel(
            "Oversized requests, QPS limit and addresses",
            "Per address: whether a request with a large header or body got through, whether the load balancer marked a response as QPS-limited, and how many addresses its name resolves to.",
            Viz::Table,
            "short",
            vec![
                q(r#"lbtriage_probe_large_header_success{lb="$lb"}"#, "large header"),
                q(r#"lbtriage_probe_large_body_success{lb="$lb"}"#, "large body"),
                q(r#"lbtriage_probe_qps_limited{lb="$lb"}"#, "QPS limited"),
                q(r#"lbtriage_probe_dns_addresses{lb="$lb"}"#, "addresses"),
            ],
        ),
        panel(
            "Certificate expiry",
            "Time left before the first certificate of each presented chain expires, and whether the chain and name verify.",
            Viz::Table,
            "s",
            vec![
                q(r#"min by (path, target) (lbtriage_probe_tls_earliest_expiry_timestamp_seconds{lb="$lb"}) - time()"#, "expires in"),
                q(r#"min by (path, target) (lbtriage_probe_tls_chain_valid{lb="$lb"})"#, "chain valid"),
                q(r#"min by (path, target) (lbtriage_probe_tls_hostname_match{lb="$lb"})"#, "name matches"),
            ],
        )
        .column_unit("Value #B", "bool_yes_no")
        .column_unit("Value #C", "bool_yes_no"),
        panel(
            "Load balancer",
            "What the cloud API says about this load balancer: type, DNS name, scheme and tags.",
            Viz::Table,
            "none",
            vec![q(r#"lbtriage_lb_info{lb="$lb"}"#, "")],
        ),
    ]
}

fn probes_panels(detail: &str) -> Vec<Panel> {
    vec![
        panel(
            "Latest results",
            "The latest result of every probe per address and request, with the failure reason.",
            Viz::Table,
            "bool_yes_no",
            vec![
                q(r#"lbtriage_probe_http_success{probe=~"$probe"}"#, "HTTP"),
                q(r#"lbtriage_probe_tcp_success{probe=~"$probe"}"#, "TCP"),
            ],
        )
        .link("lb", "Load balancer detail", detail.to_string()),
        panel(
            "Phases per target",
            "Duration of each phase of the application request per address.",
            Viz::TimeSeries,
            "s",
            vec![q(
                r#"max by (probe, path, target, phase) (lbtriage_probe_http_phase_seconds{probe=~"$probe", request="app"})"#,
                "{{probe}} {{path}} {{target}} {{phase}}",
            )],
        ),
        panel(
            "Failures by reason and vantage",
            "Failing probe requests, by why they failed and where the probe ran.",
            Viz::TimeSeries,
            "short",
            vec![q(
                r#"count by (reason, vantage, path) (lbtriage_probe_http_success{probe=~"$probe"} == 0)"#,
                "{{reason}} via {{path}} from {{vantage}}",
            )],
        ),
        panel(
            "TLS certificate expiry",
            "Time left before the first certificate of each presented chain expires.",
            Viz::TimeSeries,
            "s",
            vec![q(
                r#"min by (probe, path, target) (lbtriage_probe_tls_earliest_expiry_timestamp_seconds{probe=~"$probe"}) - time()"#,
                "{{probe}} {{path}} {{target}}",
            )],
        ),
        panel(
            "Keep-alive against the load balancer idle timeout",
            "How long each backend keeps an idle connection open, against the idle timeout it is compared with.",
            Viz::TimeSeries,
            "s",
            vec![
                q(r#"max by (probe, target) (lbtriage_probe_keepalive_idle_seconds{probe=~"$probe"})"#, "{{probe}} {{target}}"),
                q(r#"max by (probe) (lbtriage_probe_lb_idle_timeout_seconds{probe=~"$probe"})"#, "{{probe}} idle timeout"),
            ],
        ),
    ]
}

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
fn dashboard(
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

fn lb_variable() -> Value {
    // Load balancers known from a cloud source or named by a probe.
    let query = r#"label_values({__name__=~"lbtriage_lb_info|lbtriage_probe_http_success"}, lb)"#;
    query_variable("lb", "Load balancer", query, false)
}

fn probe_variable() -> Value {
    query_variable(
        "probe",
        "Probe",
        "label_values(lbtriage_probe_http_success, probe)",
        true,
    )
}

/// Firing cause alerts of the selected load balancer as annotations on every time series.
fn alerts_annotation() -> Value {
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
