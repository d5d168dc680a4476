//! The example Alertmanager configuration (`deploy/alertmanager/alertmanager.yml`): amtool accepts
//! it, routes each severity to its receiver, and a real Alertmanager applies its inhibitions.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::{free_port, http_get, http_request, repo_root, wait_until, Process};

const CONFIG: &str = "deploy/alertmanager/alertmanager.yml";

fn amtool(args: &[&str]) -> (bool, String) {
    crate::support::run_tool("amtool", args, "make test installs prometheus-alertmanager")
}

#[test]
fn amtool_accepts_the_config_and_routes_by_severity() {
    let (ok, text) = amtool(&["check-config", CONFIG]);
    assert!(ok && text.contains("SUCCESS"), "{text}");
    let config = format!("--config.file={CONFIG}");
    for (severity, receiver) in [
        ("critical", "lb-oncall-page"),
        ("warning", "lb-tickets"),
        ("info", "lb-record"),
    ] {
        let verify = format!("--verify.receivers={receiver}");
        let labels = format!("severity={severity}");
        let (ok, text) = amtool(&[
            "config",
            "routes",
            "test",
            &config,
            &verify,
            &labels,
            "cause=target_connection_refused",
            "lb=app/shop/1",
        ]);
        assert!(ok, "{severity} should reach {receiver}: {text}");
    }
    // The check can fail: a critical alert does not open a ticket.
    let (ok, _) = amtool(&[
        "config",
        "routes",
        "test",
        &config,
        "--verify.receivers=lb-tickets",
        "severity=critical",
        "lb=x",
    ]);
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
    let port = free_port();
    let _alertmanager = Process(
        Command::new("prometheus-alertmanager")
            .arg(format!("--config.file={}", repo_root().join(CONFIG).display()))
            .arg(format!("--storage.path={}", dir.path().display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start Alertmanager"),
    );
    wait_until("Alertmanager to be ready", Duration::from_secs(20), || {
        http_get(port, "/-/ready", &[]).is_ok_and(|r| r.status == 200)
    });
    let alerts = serde_json::json!([
        alert(&[
            ("alertname", "LBTargetConnectionRefused"),
            ("severity", "critical"),
            ("cause", "target_connection_refused"),
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
        alert(&[
            ("alertname", "LB5xxUnattributed"),
            ("severity", "warning"),
            ("cause", "lb_5xx_unattributed"),
            ("lb", "app/api/2")
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
        let found = list
            .as_array()?
            .iter()
            .find(|a| a["labels"]["alertname"] == alertname && a["labels"]["lb"] == lb)?;
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
    assert_eq!(
        inhibited("LBTargetConnectionRefused", "app/shop/1"),
        Some(false),
        "the critical cause itself is shown"
    );
    assert_eq!(
        inhibited("LB5xxUnattributed", "app/api/2"),
        Some(false),
        "another load balancer is not affected"
    );
}
