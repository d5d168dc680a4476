//! The example Alertmanager configuration (`deploy/alertmanager/alertmanager.yml`): amtool accepts
//! it, routes each severity to its receiver, and a real Alertmanager applies its inhibitions.

use std::process::Command;
use std::time::Duration;

use crate::support::{http_get, http_request, repo_root, start_on_a_port, wait_until};

const CONFIG: &str = "deploy/alertmanager/alertmanager.yml";

fn amtool(args: &[&str]) -> (bool, String) {
    crate::support::run_tool("amtool", args, "make test installs prometheus-alertmanager")
}

#[test]
fn amtool_accepts_the_config_and_routes_by_severity() {
    let (ok, text) = amtool(&["check-config", CONFIG]);
    assert!(ok && text.contains("SUCCESS"), "{text}");
    let config = format!("--config.file={CONFIG}");
    let routes_to = |labels: &[&str], receiver: &str| {
        let verify = format!("--verify.receivers={receiver}");
        let mut args = vec!["config", "routes", "test", config.as_str(), verify.as_str()];
        args.extend_from_slice(labels);
        amtool(&args)
    };
    for (severity, receiver) in [
        ("critical", "lb-oncall-page"),
        ("warning", "lb-tickets"),
        ("info", "lb-record"),
    ] {
        let labels = format!("severity={severity}");
        let (ok, text) = routes_to(
            &[&labels, "cause=target_connection_refused", "lb=app/shop/1"],
            receiver,
        );
        assert!(ok, "{severity} should reach {receiver}: {text}");
    }
    // The page routes as critical; lbtriage's own health never pages.
    for (labels, receiver) in [
        (
            ["alertname=LBErrorBudgetBurn", "severity=critical"],
            "lb-oncall-page",
        ),
        (["alertname=LBTriageSourceDown", "severity=warning"], "lb-tickets"),
    ] {
        let (ok, text) = routes_to(&[labels[0], labels[1], "lb=app/shop/1"], receiver);
        assert!(ok, "{labels:?} should reach {receiver}: {text}");
    }
    // The check can fail: a critical alert does not open a ticket.
    let (ok, _) = routes_to(&["severity=critical", "lb=x"], "lb-tickets");
    assert!(!ok);
}

fn alert(labels: &[(&str, &str)]) -> serde_json::Value {
    let labels: serde_json::Map<String, serde_json::Value> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), serde_json::Value::from(*v)))
        .collect();
    serde_json::json!({"labels": labels, "annotations": {"summary": "test"}})
}

#[test]
fn a_real_alertmanager_applies_the_inhibitions() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_alertmanager, port) = start_on_a_port(
        "prometheus-alertmanager",
        |port| {
            let mut command = Command::new("prometheus-alertmanager");
            command
                .arg(format!("--config.file={}", repo_root().join(CONFIG).display()))
                .arg(format!("--storage.path={}", dir.path().display()))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--cluster.listen-address=");
            command
        },
        |port| http_get(port, "/-/ready", &[]).is_ok_and(|r| r.status == 200),
    );
    let alerts = serde_json::json!([
        // app/shop/1: the page (both burn rates), a critical cause, a warning cause that explains
        // 5xx, and lb_5xx_unattributed.
        alert(&[
            ("alertname", "LBErrorBudgetBurn"),
            ("severity", "critical"),
            ("provider", "aws"),
            ("region", "eu-west-1"),
            ("lb", "app/shop/1")
        ]),
        alert(&[
            ("alertname", "LBErrorBudgetBurn"),
            ("severity", "warning"),
            ("provider", "aws"),
            ("region", "eu-west-1"),
            ("lb", "app/shop/1")
        ]),
        alert(&[
            ("alertname", "LBNoHealthyTargets"),
            ("severity", "critical"),
            ("cause", "no_healthy_targets"),
            ("provider", "aws"),
            ("region", "eu-west-1"),
            ("lb", "app/shop/1")
        ]),
        alert(&[
            ("alertname", "LB5xxUnattributed"),
            ("severity", "warning"),
            ("cause", "lb_5xx_unattributed"),
            ("lb", "app/shop/1")
        ]),
        alert(&[
            ("alertname", "LBTargetKeepaliveTooShort"),
            ("severity", "warning"),
            ("cause", "target_keepalive_too_short"),
            ("lb", "app/shop/1")
        ]),
        // app/api/2: a certificate expiring in days explains no 5xx and silences nothing.
        alert(&[
            ("alertname", "LBCertificateInvalid"),
            ("severity", "warning"),
            ("cause", "lb_certificate_invalid"),
            ("lb", "app/api/2")
        ]),
        alert(&[
            ("alertname", "LB5xxUnattributed"),
            ("severity", "warning"),
            ("cause", "lb_5xx_unattributed"),
            ("lb", "app/api/2")
        ]),
        alert(&[
            ("alertname", "LBTriageSourceDown"),
            ("severity", "warning"),
            ("source", "prod"),
            ("region", "eu-west-1")
        ]),
        alert(&[
            ("alertname", "LBTriageDataStale"),
            ("severity", "warning"),
            ("source", "prod"),
            ("region", "eu-west-1")
        ]),
    ]);
    let body = alerts.to_string();
    let posted = http_request(
        port,
        "POST",
        "/api/v2/alerts",
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    )
    .expect("post alerts");
    assert_eq!(posted.status, 200, "{}", posted.text());

    let inhibited = |alertname: &str, lb: &str| -> Option<bool> {
        let response = http_get(port, "/api/v2/alerts", &[]).ok()?;
        let list: serde_json::Value = serde_json::from_slice(&response.body).ok()?;
        let found = list.as_array()?.iter().find(|a| {
            a["labels"]["alertname"] == alertname && a["labels"]["lb"].as_str().unwrap_or("") == lb
        })?;
        Some(
            found["status"]["inhibitedBy"]
                .as_array()
                .is_some_and(|by| !by.is_empty()),
        )
    };
    wait_until("the inhibitions to apply", Duration::from_secs(20), || {
        inhibited("LB5xxUnattributed", "app/shop/1") == Some(true)
            && inhibited("LBTargetKeepaliveTooShort", "app/shop/1") == Some(true)
    });
    let shown = |alertname: &str, lb: &str| inhibited(alertname, lb) == Some(false);
    assert!(
        shown("LBNoHealthyTargets", "app/shop/1"),
        "the critical cause itself is shown"
    );
    assert!(
        shown("LB5xxUnattributed", "app/api/2"),
        "a cause that explains no 5xx silences nothing"
    );
    assert!(shown("LBCertificateInvalid", "app/api/2"));
    let budget = |severity: &str| {
        let response = http_get(port, "/api/v2/alerts", &[]).ok()?;
        let list: serde_json::Value = serde_json::from_slice(&response.body).ok()?;
        let found = list.as_array()?.iter().find(|a| {
            a["labels"]["alertname"] == "LBErrorBudgetBurn" && a["labels"]["severity"] == severity
        })?;
        Some(
            found["status"]["inhibitedBy"]
                .as_array()
                .is_some_and(|by| !by.is_empty()),
        )
    };
    assert_eq!(budget("critical"), Some(false), "the page is shown");
    assert_eq!(
        budget("warning"),
        Some(true),
        "the slow-burn ticket waits behind the page"
    );
    assert_eq!(
        inhibited("LBTriageDataStale", ""),
        Some(true),
        "a source that is down explains its stale data"
    );

    // One notification per load balancer: the page and its critical cause in one group.
    let groups = http_get(port, "/api/v2/alerts/groups", &[]).expect("groups");
    let groups: serde_json::Value = serde_json::from_slice(&groups.body).expect("JSON");
    let page_group = groups
        .as_array()
        .and_then(|groups| {
            groups
                .iter()
                .find(|g| g["receiver"]["name"] == "lb-oncall-page" && g["labels"]["lb"] == "app/shop/1")
        })
        .expect("a paging group for app/shop/1");
    let mut names: Vec<&str> = page_group["alerts"]
        .as_array()
        .map(|alerts| {
            alerts
                .iter()
                .filter_map(|a| a["labels"]["alertname"].as_str())
                .collect()
        })
        .unwrap_or_default();
    names.sort_unstable();
    assert_eq!(names, ["LBErrorBudgetBurn", "LBNoHealthyTargets"]);
}

/// The example's list of causes that silence `lb_5xx_unattributed` is the catalog's.
#[test]
fn the_unattributed_inhibition_lists_the_catalogs_explaining_causes() {
    let config = std::fs::read_to_string(repo_root().join(CONFIG)).expect("read config");
    let explaining = lbtriage::catalog::Catalog::embedded().causes_explaining_lb_5xx();
    assert!(
        config.contains(&format!("'cause=~\"{explaining}\"'")),
        "{CONFIG}: the first inhibition's source must be cause=~\"{explaining}\""
    );
}
