//! Probes that follow the alarm, end to end: cloud jobs and **no `probes:` section**. The
//! emulated AWS fleet's ALBs register loopback IP targets that misbehave, and so do an Alibaba SLB
//! instance (backend servers as `DescribeHealthStatus` names them) and Tencent CLB instances (real
//! servers as `DescribeTargetHealth` names them); lbtriage learns them from the inventories,
//! probes the load balancers whose 5xx alarmed, and the unchanged rules in a real Prometheus name
//! each one's cause. A quiet load balancer's target sees the baseline connect and
//! nothing else; a target this vantage cannot reach yields no `target_connect_timeout`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::servers::{spawn, spawn_counted, Behaviour, InFlight};
use crate::support::stack::{self, firing};
use crate::support::{
    dimension, eventually, http_get, parse_exposition, refusing_port, start_exporter, value,
    with_test_credentials, CmsServer, Emulator, NeverAccepting, TencentServer,
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
        // Alibaba SLB and Tencent CLB answering 5xx themselves while their backend's answers are
        // mis-framed; and a quiet CLB.
        ("lb-ali-misframed", set(&["target_invalid_response"])),
        // Alibaba ALB instances whose server group members refuse, or close keep-alive early.
        ("alb-ali-refuses", set(&["target_connection_refused"])),
        ("alb-ali-keepalive", set(&["target_keepalive_too_short"])),
        ("lb-tc-misframed", set(&["target_invalid_response"])),
        // A CLB that reports a real server unhealthy while every one of them answers lbtriage.
        ("lb-tc-blocked", set(&["lb_source_blocked", "targets_unhealthy"])),
        ("lb-tc-quiet", set(&[])),
    ])
}

/// Alibaba Cloud instances, every minute from ten minutes ago to ten ahead: an SLB instance
/// generating 5xx itself (`InstanceStatusCode5xx` without `InstanceUpstreamCode5xx`) with a
/// mis-framed backend; ALB instances generating 5xx with a refusing member (and failed upstream
/// connections) and with a member closing keep-alive early.
fn seed_alibaba(
    server: &CmsServer,
    misframed: SocketAddr,
    refused: SocketAddr,
    closes_early: SocketAddr,
    now: i64,
) {
    let alb = |id: &str, member: SocketAddr| {
        json!({"id": id, "namespace": "acs_alb", "name": id, "server_groups": [{"id": format!("sgp-{id}"),
            "health_path": "/", "servers": [
                {"id": member.ip().to_string(), "type": "Ip", "ip": member.ip().to_string(), "port": member.port()}]}]})
    };
    server.set_inventory(
        &[
            json!({"id": "lb-ali-misframed", "namespace": "acs_slb_dashboard", "name": "ali-misframed", "backends": [
                {"ip": misframed.ip().to_string(), "port": misframed.port(), "listener_port": 80, "status": "normal"}]}),
            alb("alb-ali-refuses", refused),
            alb("alb-ali-keepalive", closes_early),
        ],
        &json!({}),
    );
    let slb = "acs_slb_dashboard";
    let per_minute: &[(&str, &str, &str, f64)] = &[
        (slb, "lb-ali-misframed", "InstanceQps", 50.0),
        (slb, "lb-ali-misframed", "InstanceStatusCode5xx", 5.0),
        (slb, "lb-ali-misframed", "InstanceUpstreamCode5xx", 0.0),
        ("acs_alb", "alb-ali-refuses", "LoadBalancerQPS", 50.0),
        ("acs_alb", "alb-ali-refuses", "LoadBalancerHTTPCode5XX", 5.0),
        (
            "acs_alb",
            "alb-ali-refuses",
            "LoadBalancerHTTPCodeUpstream5XX",
            0.0,
        ),
        (
            "acs_alb",
            "alb-ali-refuses",
            "LoadBalancerUpstreamConnectionError",
            5.0,
        ),
        ("acs_alb", "alb-ali-keepalive", "LoadBalancerQPS", 50.0),
        ("acs_alb", "alb-ali-keepalive", "LoadBalancerHTTPCode5XX", 5.0),
        (
            "acs_alb",
            "alb-ali-keepalive",
            "LoadBalancerHTTPCodeUpstream5XX",
            0.0,
        ),
    ];
    let mut points = Vec::new();
    for minute in -10..=10 {
        for (namespace, instance, metric, value) in per_minute {
            points.push(
                json!({"namespace": namespace, "metric": metric, "instance": instance,
                "timestamp": now / 60 * 60 + minute * 60, "value": value}),
            );
        }
    }
    server.seed(&points);
}

/// Tencent CLB instances with loopback real servers: one answering 502 itself (`ClbHttp502`
/// without `Http502`) with a mis-framed real server, one reporting a real server unhealthy that
/// answers lbtriage, one quiet.
fn seed_tencent(server: &TencentServer, targets: &TencentTargets, now: i64) {
    let clb = |id: &str, vip: &str, servers: &[(SocketAddr, bool)]| {
        let servers: Vec<Value> = servers
            .iter()
            .map(|(addr, healthy)| json!({"ip": addr.ip().to_string(), "port": addr.port(), "healthy": healthy}))
            .collect();
        json!({"id": id, "name": id, "type": "OPEN", "vip": vip, "listeners": [{"port": 80, "targets": servers}]})
    };
    server.seed_load_balancers(&[
        clb("lb-tc-misframed", "203.0.113.21", &[(targets.misframed, true)]),
        clb("lb-tc-quiet", "203.0.113.22", &[(targets.quiet, true)]),
        clb(
            "lb-tc-blocked",
            "203.0.113.23",
            &[(targets.answering[0], true), (targets.answering[1], false)],
        ),
    ]);
    let mut points = Vec::new();
    for minute in -10..=10 {
        for (instance, metric, value) in [
            ("lb-tc-misframed", "TotalReq", 50.0),
            ("lb-tc-misframed", "ClbHttp5xx", 300.0),
            ("lb-tc-misframed", "ClbHttp502", 300.0),
            ("lb-tc-quiet", "TotalReq", 50.0),
            ("lb-tc-blocked", "TotalReq", 50.0),
        ] {
            points.push(json!({"instance": instance, "metric": metric, "timestamp": now / 60 * 60 + minute * 60, "value": value}));
        }
    }
    server.seed_points(&points);
}

/// The Tencent scenarios' real servers.
struct TencentTargets {
    misframed: SocketAddr,
    quiet: SocketAddr,
    answering: [SocketAddr; 2],
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
    let cms = CmsServer::start(1000, 50);
    seed_alibaba(&cms, misframed, refused, closes_early, now);
    let tencent = TencentServer::start(20);
    let tc_quiet_counts = Arc::new(InFlight::default());
    let tencent_targets = TencentTargets {
        misframed,
        quiet: spawn_counted(Behaviour::Healthy, tc_quiet_counts.clone()).await,
        answering: [spawn(Behaviour::Healthy).await, spawn(Behaviour::Healthy).await],
    };
    seed_tencent(&tencent, &tencent_targets, now);
    // AWS load balancers are named by key, Alibaba and Tencent ones by their instance ID.
    let lb = |key: &str| {
        if key.starts_with("lb-") || key.starts_with("alb-") {
            key.to_string()
        } else {
            dimension(&fleet, key)
        }
    };

    // No `probes:`. The front door stays unchecked: an emulated load balancer's DNS name is no
    // address of this host, and the test sends nothing off it.
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("lbtriage.yml");
    std::fs::write(
        &config,
        format!(
            "aws:\n  - name: auto\n    regions: [us-east-1]\n    endpoint_url: {}\n    period: 10s\n    delay: 1s\n    interval: 2s\n    discovery_ttl: 1m\n    slow_interval: 10s\nalibaba:\n  - name: auto-ali\n    regions: [cn-hangzhou]\n    endpoint_url: {}\n    period: 60s\n    delay: 0s\n    interval: 2s\n    slow_interval: 2s\ntencent:\n  - name: auto-tc\n    regions: [ap-guangzhou]\n    endpoint_url: {}\n    delay: 0s\n    interval: 2s\n    discovery_ttl: 1m\n    slow_interval: 2s\nauto_probes:\n  when: alarmed\n  interval: 2s\n  timeout: 2s\n  front_door: false\n  baseline_interval: 10m\n  vantage: e2e\n",
            emulator.endpoint, cms.endpoint, tencent.endpoint
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
    // Auto probes run for the alarmed load balancers, named as automatic, and not for quiet ones.
    for key in [
        "refuses",
        "keepalive",
        "misframed",
        "blocked",
        "unreachable",
        "lb-ali-misframed",
        "alb-ali-refuses",
        "alb-ali-keepalive",
        "lb-tc-misframed",
        "lb-tc-blocked",
    ] {
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
    for quiet in ["quiet", "lb-tc-quiet"] {
        assert!(
            !series
                .iter()
                .any(|s| s.name == "lbtriage_auto_probe_active" && s.label("lb") == Some(&lb(quiet))),
            "{quiet} is not probed"
        );
    }
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
    // The `/` page shows the automatic probes' findings like any probe's.
    let page = http_get(exporter_port, "/", &[]).expect("the / page").text();
    for (key, cause) in [
        ("refuses", "target_connection_refused"),
        ("misframed", "target_invalid_response"),
    ] {
        assert!(
            page.contains(&format!(
                "data-lb=\"{}\" data-cause=\"{cause}\"><td>{}</td><td>auto:{}</td>",
                lb(key),
                lb(key),
                lb(key)
            )),
            "the / page names {cause} for {key}"
        );
    }
    // The instance addresses lookup ran (no instance targets here, so no call) and nothing failed.
    assert!(
        !series
            .iter()
            .any(|s| s.name == "lbtriage_inventory_call_failing" && s.value == 1.0),
        "no inventory call failing"
    );
}
