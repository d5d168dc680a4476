//! End to end, the way users run it: emulated CloudWatch and misbehaving backends → lbtriage →
//! Prometheus evaluating the rendered rules → Alertmanager. Every scenario has a load balancer of its
//! own, so all run at once in one stack; each must fire exactly its expected causes for its `lb`,
//! and the confounders (a healthy LB, a refused vs a blocked backend, keep-alive vs unattributed 5xx,
//! some vs no healthy targets) must stay silent. Rules are rendered with 4 s `for` durations.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

mod dashboards;

use crate::support::servers::{spawn, spawn_tls, Behaviour, Pki};
use crate::support::stack::{self, alert_key, firing, firing_alerts};
use crate::support::{
    dimension, eventually, http_get, refusing_port, repo_root, start_exporter, start_on_a_port,
    with_test_credentials, CmsServer, Emulator, TencentServer,
};

/// Load balancer key → the causes that must fire for it (and nothing else).
fn expected() -> BTreeMap<&'static str, BTreeSet<&'static str>> {
    let set = |causes: &[&'static str]| causes.iter().copied().collect::<BTreeSet<_>>();
    BTreeMap::from([
        ("healthy", set(&[])),
        ("nohealthy", set(&["no_healthy_targets"])),
        ("unhealthy", set(&["targets_unhealthy"])),
        ("rejecting", set(&["lb_connection_limit"])),
        ("targettls", set(&["target_tls_failure"])),
        ("passthrough", set(&["backend_errors_passthrough"])),
        ("unattributed", set(&["lb_5xx_unattributed"])),
        ("keepalive", set(&["target_keepalive_too_short"])),
        ("refused", set(&["target_connection_refused"])),
        ("blocked", set(&["lb_source_blocked"])),
        ("listener", set(&["lb_listener_missing"])),
        ("throttled", set(&["lb_qps_throttled"])),
        ("ports", set(&["lb_port_allocation_exhausted"])),
        // Confounders of the scenarios above: each looks like its neighbour and must not be named so.
        ("backenddown", set(&[])),
        ("plain503", set(&[])),
        ("resets", set(&[])),
        ("surge", set(&[])),
        ("clienttls", set(&["client_tls_negotiation_failure"])),
        // As the providers document them: an empty target group answers 503 while RequestCount
        // stays at 0; with every target unhealthy an ALB fails open (no 503); LB 504s with the
        // slowest response at the discovered idle timeout; a load balancer answering 400 above
        // its documented header limit is working as documented.
        ("emptytg", set(&["no_healthy_targets"])),
        ("allunhealthy", set(&["no_healthy_targets"])),
        ("timeout504", set(&["target_response_timeout"])),
        ("headerlimit", set(&[])),
        // Alibaba Cloud, through CloudMonitor: the same causes from the same rules.
        ("lb-throttled", set(&["lb_qps_throttled"])),
        ("lb-dropping", set(&["lb_connection_limit"])),
        ("lb-bandwidth", set(&["lb_bandwidth_throttled"])),
        ("lb-passthrough", set(&["backend_errors_passthrough"])),
        ("lb-unhealthy", set(&["targets_unhealthy"])),
        ("alb-passthrough", set(&["backend_errors_passthrough"])),
        // Tencent Cloud CLB, through Cloud Monitor and the CLB API: a CLB answering 502 itself
        // (ClbHttp502 without Http502), one passing its real servers' 5xx through, one dropping
        // connections at its cap, one with a real server failing its health check.
        ("lb-tc-own502", set(&["lb_5xx_unattributed"])),
        ("lb-tc-passthrough", set(&["backend_errors_passthrough"])),
        ("lb-tc-dropping", set(&["lb_connection_limit"])),
        ("lb-tc-unhealthy", set(&["targets_unhealthy"])),
    ])
}

/// Load balancers whose 5xx, or connections turned away at capacity, burn the error budget: the
/// symptom page must fire for these, and only these.
fn paged() -> BTreeSet<&'static str> {
    BTreeSet::from([
        "nohealthy",
        "rejecting",
        "lb-dropping",
        "lb-tc-dropping",
        "targettls",
        "refused",
        "blocked",
        "passthrough",
        "unattributed",
        "keepalive",
        "emptytg",
        "timeout504",
        "lb-throttled",
        "lb-passthrough",
        "alb-passthrough",
        "lb-tc-own502",
        "lb-tc-passthrough",
    ])
}

/// The Tencent Cloud CLB scenarios: the inventory (names, VIPs, real servers and their health)
/// and Cloud Monitor datapoints every minute from ten minutes ago to ten minutes ahead.
fn seed_tencent(server: &TencentServer, now: i64) {
    let clb = |id: &str, vip: &str, healthy: &[bool]| {
        json!({
            "id": id, "name": id, "type": "OPEN", "vip": vip,
            "listeners": [{"port": 80, "targets": healthy.iter().enumerate().map(|(i, ok)| json!({
                "ip": format!("10.0.0.{}", i + 1), "port": 8080, "healthy": ok,
            })).collect::<Vec<_>>()}],
        })
    };
    server.seed_load_balancers(&[
        clb("lb-tc-own502", "203.0.113.11", &[true, true]),
        clb("lb-tc-passthrough", "203.0.113.12", &[true, true]),
        clb("lb-tc-dropping", "203.0.113.13", &[true, true]),
        clb("lb-tc-unhealthy", "203.0.113.14", &[true, true, false]),
    ]);
    // Codes per minute as Cloud Monitor counts them: `ClbHttp*` all CLB returned, `Http*` the
    // real servers' share; nothing is published for a code that was not returned.
    // Requests per second (`TotalReq`) high enough that a fresh stack's 5-minute rates pass the
    // rules' minimum volume within the first counted minute, as the other providers' do.
    let per_minute: &[(&str, &str, f64)] = &[
        ("lb-tc-own502", "TotalReq", 50.0),
        ("lb-tc-own502", "ClbHttp5xx", 300.0),
        ("lb-tc-own502", "ClbHttp502", 300.0),
        ("lb-tc-passthrough", "TotalReq", 50.0),
        ("lb-tc-passthrough", "ClbHttp5xx", 300.0),
        ("lb-tc-passthrough", "Http5xx", 300.0),
        ("lb-tc-dropping", "DropTotalConns", 300.0),
        ("lb-tc-dropping", "ConcurConnVipRatio", 100.0),
    ];
    let mut points = Vec::new();
    for minute in -10..=10 {
        for (instance, metric, value) in per_minute {
            points.push(json!({"instance": instance, "metric": metric, "timestamp": now / 60 * 60 + minute * 60, "value": value}));
        }
    }
    server.seed_points(&points);
}

/// CloudMonitor datapoints every minute from ten minutes ago to ten minutes ahead (the server only
/// answers for periods that have ended).
fn alibaba_datapoints(now: i64) -> Vec<Value> {
    let slb = "acs_slb_dashboard";
    let per_minute: &[(&str, &str, &str, Option<u16>, f64)] = &[
        (slb, "lb-throttled", "InstanceQps", None, 50.0),
        (slb, "lb-throttled", "InstanceQpsUtilization", None, 100.0),
        (slb, "lb-throttled", "InstanceStatusCode5xx", None, 10.0),
        (slb, "lb-throttled", "InstanceUpstreamCode5xx", None, 0.0),
        (slb, "lb-dropping", "InstanceDropConnection", None, 5.0),
        (
            slb,
            "lb-dropping",
            "InstanceMaxConnectionUtilization",
            None,
            100.0,
        ),
        (slb, "lb-bandwidth", "DropTrafficRX", Some(80), 8000.0),
        (slb, "lb-bandwidth", "DropPacketRX", Some(80), 10.0),
        (slb, "lb-passthrough", "InstanceQps", None, 50.0),
        (slb, "lb-passthrough", "InstanceStatusCode5xx", None, 5.0),
        (slb, "lb-passthrough", "InstanceUpstreamCode5xx", None, 5.0),
        (slb, "lb-passthrough", "HeathyServerCount", Some(80), 2.0),
        (slb, "lb-passthrough", "UnhealthyServerCount", Some(80), 0.0),
        (slb, "lb-unhealthy", "HeathyServerCount", Some(80), 2.0),
        (slb, "lb-unhealthy", "UnhealthyServerCount", Some(80), 1.0),
        ("acs_alb", "alb-passthrough", "LoadBalancerQPS", None, 50.0),
        // All 5xx the ALB returned, the backends' passed-through ones included.
        ("acs_alb", "alb-passthrough", "LoadBalancerHTTPCode5XX", None, 5.0),
        (
            "acs_alb",
            "alb-passthrough",
            "LoadBalancerHTTPCodeUpstream5XX",
            None,
            5.0,
        ),
        (
            "acs_alb",
            "alb-passthrough",
            "LoadBalancerHealthyHostCount",
            None,
            2.0,
        ),
        (
            "acs_alb",
            "alb-passthrough",
            "LoadBalancerUnHealthyHostCount",
            None,
            0.0,
        ),
    ];
    let mut points = Vec::new();
    for minute in -10..=10 {
        let timestamp = now / 60 * 60 + minute * 60;
        for (namespace, instance, metric, port, value) in per_minute {
            let mut point = json!({"namespace": namespace, "metric": metric, "timestamp": timestamp, "instance": instance, "value": value});
            if let Some(port) = port {
                point["port"] = json!(port);
            }
            points.push(point);
        }
    }
    points
}

/// CloudWatch datapoints for every 10 s period of the next `periods`, seeded up front.
fn datapoints(start: i64, periods: i64) -> Vec<Value> {
    let per_period: &[(&str, Option<&str>, &str, f64)] = &[
        ("healthy", None, "RequestCount", 600.0),
        ("nohealthy", Some("nohealthy-tg"), "HealthyHostCount", 0.0),
        ("nohealthy", None, "HTTPCode_ELB_503_Count", 30.0),
        ("unhealthy", Some("unhealthy-tg"), "UnHealthyHostCount", 1.0),
        ("unhealthy", Some("unhealthy-tg"), "HealthyHostCount", 2.0),
        ("rejecting", None, "RejectedConnectionCount", 40.0),
        // An ALB answers a failed TLS handshake with a target, a refused connection with 502, and a
        // connection that times out with 504 (docs/causes.md): each comes with its LB 5xx.
        ("targettls", None, "TargetTLSNegotiationErrorCount", 20.0),
        ("targettls", None, "HTTPCode_ELB_502_Count", 20.0),
        ("passthrough", None, "RequestCount", 600.0),
        ("passthrough", None, "HTTPCode_Target_5XX_Count", 60.0),
        ("passthrough", Some("passthrough-tg"), "HealthyHostCount", 2.0),
        ("passthrough", Some("passthrough-tg"), "UnHealthyHostCount", 0.0),
        ("unattributed", None, "RequestCount", 600.0),
        ("unattributed", None, "HTTPCode_ELB_502_Count", 60.0),
        ("keepalive", None, "RequestCount", 600.0),
        ("keepalive", None, "HTTPCode_ELB_502_Count", 60.0),
        ("refused", None, "TargetConnectionErrorCount", 30.0),
        ("refused", None, "HTTPCode_ELB_502_Count", 30.0),
        ("blocked", None, "TargetConnectionErrorCount", 30.0),
        ("blocked", None, "HTTPCode_ELB_504_Count", 30.0),
        ("ports", None, "PortAllocationErrorCount", 25.0),
        ("resets", None, "TCP_Target_Reset_Count", 25.0),
        ("surge", None, "SurgeQueueLength", 300.0),
        ("surge", None, "SpilloverCount", 0.0),
        ("clienttls", None, "ClientTLSNegotiationErrorCount", 20.0),
        ("clienttls", None, "NewConnectionCount", 100.0),
        // No RequestCount at all: no target can be chosen.
        ("emptytg", None, "HTTPCode_ELB_503_Count", 30.0),
        ("allunhealthy", None, "RequestCount", 600.0),
        ("allunhealthy", Some("allunhealthy-tg"), "HealthyHostCount", 0.0),
        ("allunhealthy", Some("allunhealthy-tg"), "UnHealthyHostCount", 2.0),
        ("timeout504", None, "RequestCount", 600.0),
        ("timeout504", None, "HTTPCode_ELB_504_Count", 20.0),
        ("timeout504", None, "TargetResponseTime", 30.0),
        // Feeds the dashboards' response-time panel; far below any slow-response threshold.
        ("healthy", None, "TargetResponseTime", 0.2),
    ];
    let mut points = Vec::new();
    for period in 0..periods {
        for (lb, group, metric, value) in per_period {
            let mut point =
                json!({"lb": lb, "metric": metric, "timestamp": start + period * 10 + 1, "value": value});
            if let Some(group) = group {
                point["target_group"] = json!(group);
            }
            points.push(point);
        }
    }
    points
}

fn fleet() -> Value {
    let alb = |key: &str, groups: &[&str]| json!({"key": key, "type": "application", "name": key, "target_groups": groups});
    json!({"region": "us-east-1", "load_balancers": [
        alb("healthy", &[]), alb("nohealthy", &["nohealthy-tg"]), {"key": "unhealthy", "type": "application", "name": "unhealthy", "target_groups": ["unhealthy-tg"], "targets": 2},
        alb("rejecting", &[]), alb("targettls", &[]), alb("passthrough", &["passthrough-tg"]),
        alb("unattributed", &[]), alb("keepalive", &[]), alb("refused", &[]), alb("blocked", &[]),
        alb("listener", &[]), alb("throttled", &[]), alb("backenddown", &[]), alb("plain503", &[]),
        alb("clienttls", &[]), alb("emptytg", &["emptytg-tg"]),
        {"key": "allunhealthy", "type": "application", "name": "allunhealthy", "target_groups": ["allunhealthy-tg"], "targets": 2},
        {"key": "timeout504", "type": "application", "name": "timeout504", "idle_timeout": 30},
        alb("headerlimit", &[]),
        {"key": "ports", "type": "network", "name": "ports"},
        {"key": "resets", "type": "network", "name": "resets"},
        {"key": "surge", "type": "classic", "name": "surge"}
    ]})
}

fn command(program: &str, args: &[String]) -> Command {
    let mut command = Command::new(program);
    command.args(args);
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_fires_exactly_its_causes_through_prometheus_and_alertmanager() {
    let started = Instant::now();
    let emulator = Emulator::start();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let fleet_spec = {
        let mut spec = fleet();
        spec["datapoints"] = json!(datapoints(now / 10 * 10 - 20, 30));
        spec
    };
    let fleet = emulator.seed(&fleet_spec, None);
    let cms = CmsServer::start(1000, 50);
    cms.seed(&alibaba_datapoints(now));
    let tencent = TencentServer::start(20);
    seed_tencent(&tencent, now);
    // AWS scenarios are named by key; Alibaba and Tencent ones by their instance ID.
    let lb = |key: &str| {
        if key.starts_with("lb-") || key.starts_with("alb-") {
            key.to_string()
        } else {
            dimension(&fleet, key)
        }
    };

    // Backends and what the probes see.
    let healthy = spawn(Behaviour::Healthy).await;
    // The healthy load balancer is HTTPS with a valid certificate (feeds the certificate panels).
    let pki = Pki::new();
    let (chain, key) = pki.leaf(&["127.0.0.1"], (2020, 1, 1), (2099, 1, 1));
    let secure = spawn_tls(Behaviour::Healthy, chain, key).await;
    let closes_early = spawn(Behaviour::KeepAliveCloses(Duration::from_millis(800))).await;
    let throttled = spawn(Behaviour::Status(503, vec![("ALB-QPS-Limited", "Limited")])).await;
    let plain_503 = spawn(Behaviour::Status(503, vec![])).await;
    let header_limit = spawn(Behaviour::EnforcesHeaderLimit(16 * 1024)).await;
    let (_held, refused) = refusing_port();
    let (_held_too, no_listener) = refusing_port();
    let probe = |name: &str, url: String, backends: &[std::net::SocketAddr]| {
        let backends: Vec<String> = backends.iter().map(|b| format!("'{b}'")).collect();
        format!(
            "  - name: {name}\n    url: {url}\n    lb: {}\n    backends: [{}]\n    lb_idle_timeout: 2s\n    interval: 2s\n    timeout: 2s\n    vantage: e2e\n",
            lb(name),
            backends.join(", ")
        )
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &pki.ca_pem).expect("write CA");
    let config = dir.path().join("lbtriage.yml");
    let probes = [
        probe("healthy", format!("https://{secure}/"), &[secure])
            + &format!(
                "    tls_ca_file: {}\n    backend_scheme: https\n",
                ca_file.display()
            ),
        probe("keepalive", format!("http://{healthy}/"), &[closes_early]),
        probe("refused", format!("http://{healthy}/"), &[refused]),
        probe("blocked", format!("http://{healthy}/"), &[healthy]),
        probe("listener", format!("http://{no_listener}/"), &[]),
        probe("throttled", format!("http://{throttled}/"), &[]),
        // A refusing backend behind a working listener, with no cloud evidence: no cause yet.
        probe("backenddown", format!("http://{healthy}/"), &[refused]),
        // 503 without the QPS marker: not throttling.
        probe("plain503", format!("http://{plain_503}/"), &[]),
        // 400 above 16 K of header, as AWS documents: nothing to report.
        probe("headerlimit", format!("http://{header_limit}/"), &[healthy]),
    ];
    // The default; `LBTRIAGE_E2E_COLLECTION=full` measures full collection for docs/e2e.md.
    let collection = std::env::var("LBTRIAGE_E2E_COLLECTION").unwrap_or_else(|_| "adaptive".to_string());
    std::fs::write(
        &config,
        format!(
            "auto_probes:\n  when: never\naws:\n  - name: e2e\n    regions: [us-east-1]\n    endpoint_url: {}\n    period: 10s\n    delay: 1s\n    interval: 2s\n    discovery_ttl: 1m\n    collection: {collection}\n    slow_interval: 10s\nalibaba:\n  - name: e2e-ali\n    regions: [cn-hangzhou]\n    endpoint_url: {}\n    period: 60s\n    delay: 0s\n    interval: 2s\n    collection: {collection}\n    slow_interval: 2s\ntencent:\n  - name: e2e-tc\n    regions: [ap-guangzhou]\n    endpoint_url: {}\n    delay: 0s\n    interval: 2s\n    discovery_ttl: 1m\n    collection: {collection}\n    slow_interval: 2s\nprobes:\n{}",
            emulator.endpoint,
            cms.endpoint,
            tencent.endpoint,
            probes.concat()
        ),
    )
    .expect("write config");
    let (_lbtriage, exporter_port) = start_exporter(&config, with_test_credentials);

    // The rules as users render them, with every `for` shortened.
    let rules = stack::rules_with_short_for(dir.path(), "4s");

    std::fs::write(
        dir.path().join("alertmanager.yml"),
        "route:\n  receiver: blackhole\n  group_by: [lb, cause]\nreceivers:\n  - name: blackhole\n",
    )
    .expect("write alertmanager.yml");
    let (_alertmanager, alertmanager_port) = start_on_a_port(
        "prometheus-alertmanager",
        |port| {
            command(
                "prometheus-alertmanager",
                &[
                    format!("--config.file={}/alertmanager.yml", dir.path().display()),
                    format!("--storage.path={}/am", dir.path().display()),
                    format!("--web.listen-address=127.0.0.1:{port}"),
                    "--cluster.listen-address=".to_string(),
                ],
            )
        },
        stack::ready,
    );
    let (_prometheus, prometheus_port) =
        stack::start_prometheus(dir.path(), exporter_port, &rules, Some(alertmanager_port));

    // Every expected cause fires for its load balancer; note when each first did.
    let expected = expected();
    let want: BTreeSet<(String, String)> = expected
        .iter()
        .flat_map(|(key, causes)| causes.iter().map(|cause| (lb(key), cause.to_string())))
        .chain(
            paged()
                .into_iter()
                .map(|key| (lb(key), "LBErrorBudgetBurn".to_string())),
        )
        .collect();
    let mut first_seen: BTreeMap<(String, String), Duration> = BTreeMap::new();
    eventually("every expected alert to fire", Duration::from_secs(150), || {
        let now = firing(prometheus_port)?;
        for pair in now.iter().filter(|p| want.contains(*p)) {
            first_seen
                .entry(pair.clone())
                .or_insert_with(|| started.elapsed());
        }
        want.is_subset(&now).then_some(())
    })
    .await;
    // Then, once everything had time to settle, exactly those and nothing else. Nothing can be
    // awaited here: the pause gives a late, unexpected alert three `for` periods to show.
    tokio::time::sleep(Duration::from_secs(12)).await;
    let now = firing(prometheus_port).expect("alerts");
    let unexpected: Vec<&(String, String)> = now.difference(&want).collect();
    let missing: Vec<&(String, String)> = want.difference(&now).collect();
    assert!(
        unexpected.is_empty() && missing.is_empty(),
        "unexpected {unexpected:?}, missing {missing:?}"
    );

    // The page for the empty target group names its cause and the runbook.
    let alerts = firing_alerts(prometheus_port).expect("alerts");
    let page = alerts
        .iter()
        .find(|a| {
            a["labels"]["alertname"] == "LBErrorBudgetBurn" && a["labels"]["lb"] == lb("emptytg").as_str()
        })
        .expect("the empty target group's page");
    let description = page["annotations"]["description"].as_str().unwrap_or_default();
    assert!(
        description.contains("no_healthy_targets (alerts/runbooks/no_healthy_targets.md)"),
        "{description}"
    );
    assert_eq!(page["labels"]["provider"], "aws");
    assert_eq!(page["labels"]["region"], "us-east-1");

    // The `/` page lists every provider's source of this stack as up.
    let page = http_get(exporter_port, "/", &[]).expect("the / page").text();
    for source in [
        "aws/e2e/us-east-1",
        "alibaba/e2e-ali/cn-hangzhou",
        "tencent/e2e-tc/ap-guangzhou",
    ] {
        assert!(
            page.contains(&format!("<tr class=\"source\" data-up=\"1\"><td>{source}</td>")),
            "the / page shows {source} up"
        );
    }

    // The dashboards show this stack: every panel query works and has data in its scenario.
    dashboards::every_panel_returns_data(prometheus_port, lb);

    // Alertmanager received them, each with a runbook that exists.
    let received = eventually(
        "Alertmanager to hold every alert",
        Duration::from_secs(30),
        || {
            let response = http_get(alertmanager_port, "/api/v2/alerts", &[]).ok()?;
            let alerts: Value = serde_json::from_slice(&response.body).ok()?;
            let alerts = alerts.as_array()?.clone();
            let pairs: BTreeSet<(String, String)> = alerts.iter().map(alert_key).collect();
            want.is_subset(&pairs).then_some(alerts)
        },
    )
    .await;
    for alert in &received {
        let runbook = alert["annotations"]["runbook_url"].as_str().unwrap_or_default();
        let cause = alert["labels"]["cause"].as_str().unwrap_or_default();
        if !cause.is_empty() {
            assert_eq!(runbook, format!("alerts/runbooks/{cause}.md"));
        }
        assert!(repo_root().join(runbook).is_file(), "{runbook} exists");
    }

    // Detection latency: stack start (every fault is present from the start) → alert firing.
    let mut report = String::from("detection latency from stack start:\n");
    for ((lb, cause), took) in &first_seen {
        report.push_str(&format!("  {cause:<32} {lb:<40} {:>5.1} s\n", took.as_secs_f64()));
    }
    // How long a collection cycle took at most: what the cycle adds to each latency above.
    let query = "/api/v1/query?query=max%20by%20(provider)%20(max_over_time(lbtriage_collection_duration_seconds%5B10m%5D))";
    if let Some(body) = http_get(prometheus_port, query, &[])
        .ok()
        .and_then(|r| serde_json::from_slice::<Value>(&r.body).ok())
    {
        for result in body["data"]["result"].as_array().into_iter().flatten() {
            report.push_str(&format!(
                "  longest collection cycle, {}: {} s\n",
                result["metric"]["provider"].as_str().unwrap_or_default(),
                result["value"][1].as_str().unwrap_or_default()
            ));
        }
    }
    eprintln!("{report}");
}
