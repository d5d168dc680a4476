//! Every query of every committed dashboard, run against the end-to-end stack's Prometheus: none may
//! fail, and every panel must show data in the scenario that feeds it.

use serde_json::Value;

use crate::dashboards::{exprs, load, panels};
use crate::support::http_get;

/// The scenario (load balancer key) that feeds each panel of the detail dashboard.
fn feeding_scenario(panel: &str) -> Option<&'static str> {
    Some(match panel {
        "Firing causes" | "Responses by origin and code" => "unattributed",
        "Connection and TLS errors" | "Probes through the load balancer and against each backend" => {
            "refused"
        }
        "Rejected and dropped connections" => "rejecting",
        "Surge queue" => "surge",
        "Healthy and unhealthy targets" | "Target health and reasons" => "unhealthy",
        "Target response time against the load balancer's timeouts"
        | "Probe request phases"
        | "Certificate expiry"
        | "Load balancer" => "healthy",
        "Backend keep-alive against the load balancer idle timeout" => "keepalive",
        "Oversized requests, QPS limit and addresses" => "throttled",
        "Capacity utilisation" => "lb-throttled",
        "Dropped traffic" => "lb-bandwidth",
        _ => return None,
    })
}

/// The Tencent Cloud scenario that must show in a detail panel too: the dashboards are the same
/// for every provider.
fn tencent_scenario(panel: &str) -> Option<&'static str> {
    Some(match panel {
        "Responses by origin and code" => "lb-tc-own502",
        "Rejected and dropped connections" => "lb-tc-dropping",
        "Healthy and unhealthy targets" | "Target health and reasons" => "lb-tc-unhealthy",
        _ => return None,
    })
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Grafana's variables as Grafana would expand them for this load balancer.
fn expand(expr: &str, lb: &str) -> String {
    expr.replace("$__rate_interval", "30s")
        .replace("$lb", lb)
        .replace("$probe", ".+")
}

/// The series an instant query returns; panics on a query error, naming the panel.
fn query(prometheus: u16, what: &str, expr: &str) -> usize {
    let response = http_get(prometheus, &format!("/api/v1/query?query={}", encode(expr)), &[])
        .unwrap_or_else(|err| panic!("{what}: Prometheus unreachable: {err}"));
    let body: Value = serde_json::from_slice(&response.body).unwrap_or_default();
    assert_eq!(body["status"], "success", "{what}: `{expr}` failed: {body}");
    body["data"]["result"].as_array().map_or(0, Vec::len)
}

pub fn every_panel_returns_data(prometheus: u16, lb: impl Fn(&str) -> String) {
    let mut empty = Vec::new();
    for (uid, dashboard) in load() {
        for panel in panels(&dashboard) {
            let title = panel["title"].as_str().unwrap_or_default();
            let what = format!("{uid} / {title}");
            let scenarios = if uid == lbtriage::dashboards::DETAIL_UID {
                let scenario = feeding_scenario(title)
                    .unwrap_or_else(|| panic!("{what}: name the scenario that feeds it"));
                [Some(scenario), tencent_scenario(title)]
            } else {
                [Some("healthy"), None]
            };
            for scenario in scenarios.into_iter().flatten() {
                let series: usize = exprs(panel)
                    .iter()
                    .map(|expr| query(prometheus, &what, &expand(expr, &lb(scenario))))
                    .sum();
                if series == 0 {
                    empty.push(format!("{what} (scenario {scenario})"));
                }
            }
        }
        for annotation in dashboard["annotations"]["list"].as_array().into_iter().flatten() {
            if let Some(expr) = annotation["expr"].as_str() {
                let series = query(
                    prometheus,
                    &format!("{uid} annotation"),
                    &expand(expr, &lb("unattributed")),
                );
                assert!(
                    series > 0,
                    "{uid}: the firing-cause annotation finds the unattributed LB's alert"
                );
            }
        }
        // The lb variable lists every load balancer of the stack.
        for variable in dashboard["templating"]["list"].as_array().into_iter().flatten() {
            let Some(definition) = variable["definition"].as_str() else {
                continue;
            };
            let Some(inner) = definition
                .strip_prefix("label_values(")
                .and_then(|d| d.strip_suffix(')'))
            else {
                continue;
            };
            let (matcher, label) = inner.rsplit_once(", ").expect("label_values(match, label)");
            let response = http_get(
                prometheus,
                &format!("/api/v1/label/{label}/values?match[]={}", encode(matcher)),
                &[],
            )
            .expect("Prometheus");
            let body: Value = serde_json::from_slice(&response.body).unwrap_or_default();
            let values: Vec<&str> = body["data"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            assert!(!values.is_empty(), "{uid}: variable {label} has values");
            if label == "lb" {
                for key in ["healthy", "refused", "listener", "lb-tc-own502"] {
                    assert!(
                        values.contains(&lb(key).as_str()),
                        "{uid}: variable lb lists {key}"
                    );
                }
            }
        }
    }
    assert!(
        empty.is_empty(),
        "panels without data in their scenario: {empty:#?}"
    );
}
