//! Probes that follow the alarm, end to end: a cloud job and **no `probes:` section**. The
//! emulated fleet's ALBs register loopback IP targets that misbehave; lbtriage learns them from
//! the inventory, probes the load balancers whose 5xx alarmed, and the unchanged rules in a real
//! Prometheus name each one's cause. A quiet load balancer's target sees the baseline connect and
//! nothing else; a target this vantage cannot reach yields no `target_connect_timeout`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::servers::{spawn, spawn_counted, Behaviour, InFlight};
use crate::support::stack::{self, firing};
use crate::support::{
    dimension, eventually, http_get, parse_exposition, refusing_port, start_exporter, value,
    with_test_credentials, Emulator, NeverAccepting,
};

/// CloudWatch datapoints per 10 s period, as an ALB publishes them for each scenario: a failed
/// connection to a target is a `TargetConnectionErrorCount` with a 502 (refused) or a 504 (timed
/// out); a target closing keep-alive early or answering mis-framed shows as 502s alone.
fn per_period() -> &'static [(&'static str, &'static str, f64)] {
    &[
        ("refuses", "TargetConnectionErrorCount", 30.0),
        ("refuses", "HTTPCode_ELB_502_Count", 30.0),
        ("keepalive", "RequestCount", 600.0),
        ("keepalive", "HTTPCode_ELB_502_Count", 60.0),
        ("misframed", "RequestCount", 600.0),
        ("misframed", "HTTPCode_ELB_502_Count", 60.0),
        ("blocked", "TargetConnectionErrorCount", 30.0),
        ("blocked", "HTTPCode_ELB_504_Count", 30.0),
        ("unreachable", "TargetConnectionErrorCount", 30.0),
        ("unreachable", "HTTPCode_ELB_504_Count", 30.0),
        ("quiet", "RequestCount", 600.0),
    ]
}

/// The cause alerts each load balancer must fire, and nothing else. The unreachable one has no
/// probe evidence from here, so its 504s stay unexplained.
fn expected() -> BTreeMap<&'static str, BTreeSet<&'static str>> {
    let set = |causes: &[&'static str]| causes.iter().copied().collect::<BTreeSet<_>>();
    BTreeMap::from([
        ("refuses", set(&["target_connection_refused"])),
        ("keepalive", set(&["target_keepalive_too_short"])),
        ("misframed", set(&["target_invalid_response"])),
        ("blocked", set(&["lb_source_blocked"])),
        ("unreachable", set(&["lb_5xx_unattributed"])),
        ("quiet", set(&[])),
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_alarmed_load_balancer_is_explained_with_no_probe_configured() {
    let emulator = Emulator::start();
    let (_refusing, refused) = refusing_port();
    let closes_early = spawn(Behaviour::KeepAliveCloses(Duration::from_millis(800))).await;
    let misframed = spawn(Behaviour::MalformedHeader).await;
    let healthy = spawn(Behaviour::Healthy).await;
    let quiet_counts = Arc::new(InFlight::default());
    let quiet_target = spawn_counted(Behaviour::Healthy, quiet_counts.clone()).await;
    let unreachable = NeverAccepting::new();

    let alb = |key: &str, target: std::net::SocketAddr| json!({"key": key, "type": "application", "name": key, "idle_timeout": 2, "ip_targets": [target.to_string()]});
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let start = now / 10 * 10 - 20;
    let datapoints: Vec<Value> = (0..30)
        .flat_map(|period| {
            per_period().iter().map(move |(lb, metric, value)| {
                json!({"lb": lb, "metric": metric, "timestamp": start + period * 10 + 1, "value": value})
            })
        })
        .collect();
    let fleet = emulator.seed(
        &json!({"region": "us-east-1", "load_balancers": [
            alb("refuses", refused), alb("keepalive", closes_early), alb("misframed", misframed),
            alb("blocked", healthy), alb("quiet", quiet_target), alb("unreachable", unreachable.addr),
        ], "datapoints": datapoints}),
        None,
    );
    let lb = |key: &str| dimension(&fleet, key);

    // No `probes:`. The front door stays unchecked: an emulated load balancer's DNS name is no
    // address of this host, and the test sends nothing off it.
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("lbtriage.yml");
    std::fs::write(
        &config,
        format!(
            "aws:\n  - name: auto\n    regions: [us-east-1]\n    endpoint_url: {}\n    period: 10s\n    delay: 1s\n    interval: 2s\n    discovery_ttl: 1m\n    slow_interval: 10s\nauto_probes:\n  when: alarmed\n  interval: 2s\n  timeout: 2s\n  front_door: false\n  baseline_interval: 10m\n  vantage: e2e\n",
            emulator.endpoint
        ),
    )
    .expect("write config");
    let (_lbtriage, exporter_port) = start_exporter(&config, with_test_credentials);
    let rules = stack::rules_with_short_for(dir.path(), "4s");
    let (_prometheus, prometheus_port) = stack::start_prometheus(dir.path(), exporter_port, &rules, None);

    let want: BTreeSet<(String, String)> = expected()
        .iter()
        .flat_map(|(key, causes)| causes.iter().map(|cause| (lb(key), cause.to_string())))
        .collect();
    let causes_firing = || -> Option<BTreeSet<(String, String)>> {
        Some(
            firing(prometheus_port)?
                .into_iter()
                .filter(|(_, name)| !name.starts_with("LB"))
                .collect(),
        )
    };
    eventually("every expected cause to fire", Duration::from_secs(150), || {
        want.is_subset(&causes_firing()?).then_some(())
    })
    .await;
    // Nothing can be awaited here: the pause gives a late, unexpected alert three `for` periods.
    tokio::time::sleep(Duration::from_secs(12)).await;
    let now_firing = causes_firing().expect("alerts");
    let unexpected: Vec<_> = now_firing.difference(&want).collect();
    let missing: Vec<_> = want.difference(&now_firing).collect();
    assert!(
        unexpected.is_empty() && missing.is_empty(),
        "unexpected {unexpected:?}, missing {missing:?}"
    );

    let metrics = http_get(exporter_port, "/metrics", &[]).expect("scrape").text();
    let series = parse_exposition(&metrics);
    // Auto probes run for the alarmed load balancers, named as automatic, and not for the quiet one.
    for key in ["refuses", "keepalive", "misframed", "blocked", "unreachable"] {
        let lb = lb(key);
        assert_eq!(
            value(&series, "lbtriage_auto_probe_active", &[("lb", &lb)]),
            1.0,
            "{key} is probed"
        );
        let probe = format!("auto:{lb}");
        assert!(
            series
                .iter()
                .any(|s| s.name == "lbtriage_probe_interval_seconds" && s.label("probe") == Some(&probe)),
            "{key}'s probe series carry probe=\"auto:<lb>\""
        );
    }
    assert!(
        !series
            .iter()
            .any(|s| s.name == "lbtriage_auto_probe_active" && s.label("lb") == Some(&lb("quiet"))),
        "the quiet load balancer is not probed"
    );
    // The target this vantage never reached: reported as such, and the load balancer named blind.
    let unreachable_lb = lb("unreachable");
    assert_eq!(
        value(
            &series,
            "lbtriage_probe_tcp_success",
            &[("lb", &unreachable_lb), ("reason", "unreachable_from_vantage")]
        ),
        0.0
    );
    assert_eq!(
        value(
            &series,
            "lbtriage_auto_probe_blind",
            &[("lb", &unreachable_lb), ("reason", "no_reachable_target")]
        ),
        1.0
    );
    assert!(
        !series.iter().any(|s| s.name == "lbtriage_probe_tcp_success"
            && s.label("lb") == Some(&unreachable_lb)
            && s.label("reason") == Some("timeout")),
        "no timeout evidence from an unreachable target"
    );
    // The quiet load balancer's target saw the one baseline connect, and no request.
    assert_eq!(
        quiet_counts.requests.load(Ordering::SeqCst),
        0,
        "no request to a quiet target"
    );
    assert!(
        quiet_counts.connections.load(Ordering::SeqCst) <= 1,
        "only the baseline connect reaches a quiet target, saw {}",
        quiet_counts.connections.load(Ordering::SeqCst)
    );
    assert_eq!(
        value(
            &series,
            "lbtriage_auto_probe_targets",
            &[("lb", &lb("quiet")), ("state", "reachable")]
        ),
        1.0
    );
    // The instance addresses lookup ran (no instance targets here, so no call) and nothing failed.
    assert!(
        !series
            .iter()
            .any(|s| s.name == "lbtriage_inventory_call_failing" && s.value == 1.0),
        "no inventory call failing"
    );
}
