//! The AWS source against moto (through the CBOR bridge), in process, with a clock the test steps:
//! exact counter and gauge values across cycles, call counts, tag filters, batching, and faults.

use lbtriage::sources::engine::telemetry::Outcome;
use lbtriage::sources::Source;
use lbtriage::store::{render, Format};
use serde_json::json;

use crate::support::{self, base_time, count, dimension, find, value, Emulator, Harness};

fn fleet_spec(base: i64) -> serde_json::Value {
    let point = |lb: &str, metric: &str, offset: i64, value: f64| json!({"lb": lb, "metric": metric, "timestamp": base + offset, "value": value});
    let group_point = |lb: &str, group: &str, metric: &str, offset: i64, value: f64| json!({"lb": lb, "target_group": group, "metric": metric, "timestamp": base + offset, "value": value});
    json!({
        "region": "us-east-1",
        "load_balancers": [
            {"key": "shop", "type": "application", "name": "shop", "tags": {"team": "web", "aws:cloudformation:stack-name": "shop-stack"},
             "idle_timeout": 30, "targets": 2, "stopped_targets": 1, "target_groups": ["shop-web"]},
            {"key": "api", "type": "application", "name": "api", "tags": {"team": "api"}, "targets": 1, "target_groups": ["api-web"]},
            {"key": "edge", "type": "network", "name": "edge", "tags": {"team": "web"}, "targets": 1, "target_groups": ["edge-tcp"]},
            {"key": "legacy", "type": "classic", "name": "legacy", "tags": {"team": "web"}, "idle_timeout": 45, "targets": 2, "stopped_targets": 1}
        ],
        "datapoints": [
            // Before the exporter's first window: history, never counted.
            point("shop", "HTTPCode_ELB_502_Count", 0, 3.0),
            // Two datapoints in one minute: CloudWatch's Sum adds them.
            point("shop", "HTTPCode_ELB_502_Count", 60, 2.0),
            point("shop", "HTTPCode_ELB_502_Count", 61, 3.0),
            point("shop", "HTTPCode_ELB_502_Count", 120, 7.0),
            point("shop", "HTTPCode_ELB_502_Count", 300, 11.0),
            point("shop", "RequestCount", 0, 100.0),
            point("shop", "RequestCount", 60, 100.0),
            point("shop", "RequestCount", 120, 100.0),
            point("shop", "RequestCount", 180, 100.0),
            point("shop", "RequestCount", 240, 100.0),
            point("shop", "HTTPCode_Target_5XX_Count", 120, 6.0),
            point("shop", "TargetResponseTime", 60, 0.2),
            point("shop", "TargetResponseTime", 120, 0.4),
            group_point("shop", "shop-web", "HealthyHostCount", 120, 1.0),
            group_point("shop", "shop-web", "UnHealthyHostCount", 120, 1.0),
            point("api", "RequestCount", 60, 9.0),
            point("edge", "TCP_Target_Reset_Count", 60, 4.0),
            point("edge", "PortAllocationErrorCount", 180, 2.0),
            point("legacy", "HTTPCode_ELB_5XX", 60, 2.0),
            point("legacy", "SurgeQueueLength", 60, 17.0),
            point("legacy", "SpilloverCount", 120, 8.0)
        ]
    })
}

const FULL: &str = "    collection: full\n";

/// The emulator seeded with [`fleet_spec`], the base time, the fleet, and a source pointed at it.
async fn seeded(extra_yaml: &str) -> (Emulator, i64, serde_json::Value, Harness) {
    let emulator = Emulator::start();
    let base = base_time();
    let fleet = emulator.seed(&fleet_spec(base), None);
    let harness = Harness::new(&emulator.endpoint, extra_yaml).await;
    (emulator, base, fleet, harness)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_each_period_once_with_exact_values() {
    // `full` collection: every metric every cycle (adaptive tiers: tests/adaptive.rs), each
    // period counted once (`settle: 0s`, the behaviour before re-reads; late data within `settle`:
    // tests/compliance/).
    let (emulator, base, fleet, mut harness) = seeded(&format!("{FULL}    settle: 0s\n")).await;
    let shop = dimension(&fleet, "shop");
    let edge = dimension(&fleet, "edge");
    let shop_group = fleet["shop"]["target_groups"]["shop-web"]
        .as_str()
        .expect("group")
        .to_string();
    let errors = |h: &Harness| h.source.api_calls().count("GetMetricData", Outcome::Error);

    // Cycle 1: complete periods end at base+60; counting starts there, at zero.
    let first = harness.collect_at(base + 60 + 120 + 10).await;
    assert_eq!(errors(&harness), 0);
    assert_eq!(value(&first, "lbtriage_source_up", &[]), 1.0);
    let shop_502 = [("lb", shop.as_str()), ("origin", "lb"), ("code", "502")];
    assert_eq!(value(&first, "lbtriage_lb_responses_total", &shop_502), 0.0);
    assert_eq!(value(&first, "lbtriage_lb_requests_total", &[("lb", &shop)]), 0.0);
    assert_eq!(
        count(
            &first,
            "lbtriage_lb_target_response_time_seconds",
            &[("lb", &shop)]
        ),
        0,
        "no datapoint yet: absent, not zero"
    );
    // Inventory: four load balancers, tags as labels, configured idle timeouts, per-target health.
    assert_eq!(count(&first, "lbtriage_lb_info", &[]), 4);
    let info = find(&first, "lbtriage_lb_info", &[("lb", &shop)]);
    assert_eq!(info.label("lb_name"), Some("shop"));
    assert_eq!(info.label("lb_type"), Some("application"));
    assert_eq!(info.label("tag_team"), Some("web"));
    assert_eq!(
        info.label("tag_aws_cloudformation_stack_name"),
        Some("shop-stack")
    );
    assert_eq!(info.label("provider"), Some("aws"));
    assert_eq!(info.label("region"), Some("us-east-1"));
    assert_eq!(
        value(&first, "lbtriage_lb_idle_timeout_seconds", &[("lb", &shop)]),
        30.0
    );
    assert_eq!(
        value(&first, "lbtriage_lb_idle_timeout_seconds", &[("lb", "legacy")]),
        45.0
    );
    assert_eq!(
        count(
            &first,
            "lbtriage_lb_target_health_info",
            &[("lb", &shop), ("target_group", &shop_group)]
        ),
        2
    );
    let stopped = find(
        &first,
        "lbtriage_lb_target_health_info",
        &[("lb", &shop), ("state", "unused")],
    );
    assert_eq!(stopped.label("reason"), Some("Target.InvalidState"));
    assert_eq!(
        count(
            &first,
            "lbtriage_lb_target_health_info",
            &[("lb", "legacy"), ("state", "OutOfService")]
        ),
        1
    );

    // Cycle 2: the minute starting at base+60 is complete: 2 + 3 summed by CloudWatch.
    let second = harness.collect_at(base + 250).await;
    assert_eq!(value(&second, "lbtriage_lb_responses_total", &shop_502), 5.0);
    assert_eq!(
        value(&second, "lbtriage_lb_requests_total", &[("lb", &shop)]),
        100.0
    );
    assert_eq!(
        value(
            &second,
            "lbtriage_lb_target_response_time_seconds",
            &[("lb", &shop)]
        ),
        0.2
    );
    assert_eq!(
        value(
            &second,
            "lbtriage_lb_requests_total",
            &[("lb", &dimension(&fleet, "api"))]
        ),
        9.0
    );
    assert_eq!(
        value(
            &second,
            "lbtriage_lb_resets_total",
            &[("lb", &edge), ("origin", "target")]
        ),
        4.0
    );
    assert_eq!(
        value(
            &second,
            "lbtriage_lb_resets_total",
            &[("lb", &edge), ("origin", "lb")]
        ),
        0.0
    );
    assert_eq!(
        value(
            &second,
            "lbtriage_lb_responses_total",
            &[("lb", "legacy"), ("origin", "lb"), ("code", "5xx")]
        ),
        2.0
    );
    assert_eq!(
        value(&second, "lbtriage_lb_surge_queue_length", &[("lb", "legacy")]),
        17.0
    );

    // Cycle 3, four minutes later: every complete minute since is added once.
    let third = harness.collect_at(base + 500).await;
    assert_eq!(
        value(&third, "lbtriage_lb_responses_total", &shop_502),
        5.0 + 7.0 + 11.0
    );
    assert_eq!(
        value(&third, "lbtriage_lb_requests_total", &[("lb", &shop)]),
        400.0
    );
    assert_eq!(
        value(
            &third,
            "lbtriage_lb_responses_total",
            &[("lb", &shop), ("origin", "backend"), ("code", "5xx")]
        ),
        6.0
    );
    assert_eq!(
        value(
            &third,
            "lbtriage_lb_target_response_time_seconds",
            &[("lb", &shop)]
        ),
        0.4
    );
    assert_eq!(
        value(
            &third,
            "lbtriage_lb_healthy_targets",
            &[("lb", &shop), ("target_group", &shop_group)]
        ),
        1.0
    );
    assert_eq!(
        value(
            &third,
            "lbtriage_lb_unhealthy_targets",
            &[("lb", &shop), ("target_group", &shop_group)]
        ),
        1.0
    );
    assert_eq!(
        value(
            &third,
            "lbtriage_lb_port_allocation_errors_total",
            &[("lb", &edge)]
        ),
        2.0
    );
    assert_eq!(
        value(&third, "lbtriage_lb_spillover_total", &[("lb", "legacy")]),
        8.0
    );
    assert_eq!(
        value(&third, "lbtriage_collection_data_end_timestamp_seconds", &[]),
        (base + 360) as f64
    );

    // Late data: a point for a counted minute is not added again; one for the next minute is.
    let late = json!({"region": "us-east-1", "datapoints": [
        {"lb": "shop", "metric": "HTTPCode_ELB_502_Count", "timestamp": base + 180, "value": 1000.0},
        {"lb": "shop", "metric": "HTTPCode_ELB_502_Count", "timestamp": base + 360, "value": 1.0}
    ]});
    let fleet_file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(fleet_file.path(), fleet.to_string()).expect("write fleet");
    emulator.seed(&late, Some(fleet_file.path()));
    let fourth = harness.collect_at(base + 560).await;
    assert_eq!(value(&fourth, "lbtriage_lb_responses_total", &shop_502), 24.0);

    // API use: discovery once within its TTL, one GetMetricData call per cycle for 52 queries
    // (ALB 14 + 2 per target group, NLB 7 + 2, Classic 11), each query billed once per call.
    let calls = |api: &str| {
        value(
            &fourth,
            "lbtriage_api_calls_total",
            &[("api", api), ("outcome", "success")],
        )
    };
    assert_eq!(calls("GetMetricData"), 4.0);
    assert_eq!(calls("DescribeLoadBalancers"), 1.0);
    assert_eq!(calls("GetResources"), 1.0);
    assert_eq!(calls("DescribeTargetHealth"), 3.0);
    assert_eq!(
        value(&fourth, "lbtriage_cloudwatch_metrics_requested_total", &[]),
        4.0 * 52.0
    );
    let rendered = render(harness.source.collect().await.iter(), Format::Prometheus);
    assert_eq!(
        support::promtool_check_metrics(&rendered),
        "",
        "promtool findings"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tag_filters_select_load_balancers() {
    let (emulator, base, fleet, mut harness) = seeded("    tag_filters: {team: [web]}\n").await;
    let series = harness.collect_at(base + 250).await;
    let mut lbs: Vec<&str> = series
        .iter()
        .filter(|s| s.name == "lbtriage_lb_info")
        .filter_map(|s| s.label("lb_name"))
        .collect();
    lbs.sort();
    assert_eq!(lbs, ["edge", "legacy", "shop"]);
    let api = &dimension(&fleet, "api");
    assert_eq!(series.iter().filter(|s| s.label("lb") == Some(api)).count(), 0);

    let mut only_classic = Harness::new(&emulator.endpoint, "    load_balancer_types: [classic]\n").await;
    let series = only_classic.collect_at(base + 250).await;
    assert_eq!(count(&series, "lbtriage_lb_info", &[]), 1);
    assert_eq!(count(&series, "lbtriage_lb_info", &[("lb", "legacy")]), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_queries_by_500() {
    let emulator = Emulator::start();
    let load_balancers: Vec<serde_json::Value> = (0..40)
        .map(|i| json!({"key": format!("lb{i}"), "type": "application", "name": format!("lb{i}"), "target_groups": [format!("tg{i}")]}))
        .collect();
    emulator.seed(
        &json!({"region": "us-east-1", "load_balancers": load_balancers}),
        None,
    );
    let mut harness = Harness::new(&emulator.endpoint, FULL).await;
    let base = base_time();
    harness.collect_at(base).await;
    let series = harness.collect_at(base + 60).await;
    // 40 × (14 load-balancer metrics + 2 target-group metrics) = 640 queries → 2 calls per cycle.
    assert_eq!(
        value(
            &series,
            "lbtriage_api_calls_total",
            &[("api", "GetMetricData"), ("outcome", "success")]
        ),
        4.0
    );
    assert_eq!(
        value(&series, "lbtriage_cloudwatch_metrics_requested_total", &[]),
        2.0 * 640.0
    );
    assert_eq!(count(&series, "lbtriage_lb_info", &[]), 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_failure_keeps_last_good_values_and_recounts_nothing() {
    let (mut emulator, base, fleet, mut harness) = seeded("").await;
    let shop = dimension(&fleet, "shop");
    let shop_502 = [("lb", shop.as_str()), ("origin", "lb"), ("code", "502")];
    harness.collect_at(base + 190).await;
    let good = harness.collect_at(base + 250).await;
    assert_eq!(value(&good, "lbtriage_lb_responses_total", &shop_502), 5.0);

    emulator.kill();
    let down = harness.collect_at(base + 500).await;
    assert_eq!(value(&down, "lbtriage_source_up", &[]), 0.0);
    assert_eq!(
        value(&down, "lbtriage_lb_responses_total", &shop_502),
        5.0,
        "last good value keeps serving"
    );
    assert_eq!(
        value(
            &down,
            "lbtriage_lb_target_response_time_seconds",
            &[("lb", &shop)]
        ),
        0.2
    );
    assert_eq!(count(&down, "lbtriage_lb_info", &[]), 4);
    assert_eq!(
        value(&down, "lbtriage_collection_data_end_timestamp_seconds", &[]),
        (base + 120) as f64,
        "data age grows while the source is down"
    );
    assert!(down
        .iter()
        .any(|s| s.name == "lbtriage_api_calls_total" && s.label("outcome") == Some("error")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_is_retried_then_marks_the_source_down() {
    let (emulator, base, fleet, mut harness) = seeded(FULL).await;
    let shop = dimension(&fleet, "shop");
    let shop_502 = [("lb", shop.as_str()), ("origin", "lb"), ("code", "502")];
    harness.collect_at(base + 190).await;

    // Two throttled attempts, then success: the SDK retried with backoff; the period is counted once.
    let before = emulator.cloudwatch_requests();
    emulator.throttle_cloudwatch(2);
    let retried = harness.collect_at(base + 250).await;
    assert_eq!(
        emulator.cloudwatch_requests() - before,
        3,
        "two throttled attempts and one success"
    );
    assert_eq!(value(&retried, "lbtriage_source_up", &[]), 1.0);
    assert_eq!(value(&retried, "lbtriage_lb_responses_total", &shop_502), 5.0);

    // Throttled past the retry budget: the cycle fails, is recorded as throttled, and nothing moves.
    emulator.throttle_cloudwatch(100);
    let throttled = harness.collect_at(base + 500).await;
    assert_eq!(value(&throttled, "lbtriage_source_up", &[]), 0.0);
    assert_eq!(
        value(
            &throttled,
            "lbtriage_api_calls_total",
            &[("api", "GetMetricData"), ("outcome", "throttled")]
        ),
        1.0
    );
    assert_eq!(value(&throttled, "lbtriage_lb_responses_total", &shop_502), 5.0);

    // Recovery on the next cycle reads every missed period exactly once.
    emulator.throttle_cloudwatch(0);
    let recovered = harness.collect_at(base + 500).await;
    assert_eq!(value(&recovered, "lbtriage_source_up", &[]), 1.0);
    assert_eq!(
        value(&recovered, "lbtriage_lb_responses_total", &shop_502),
        5.0 + 7.0 + 11.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_shards_split_300_load_balancers_disjointly_and_completely() {
    let emulator = Emulator::start();
    let load_balancers: Vec<serde_json::Value> = (0..300)
        .map(|i| json!({"key": format!("lb{i}"), "type": "application", "name": format!("lb{i}")}))
        .collect();
    emulator.seed(
        &json!({"region": "us-east-1", "load_balancers": load_balancers}),
        None,
    );
    let base = base_time();
    let mut owned: Vec<std::collections::BTreeSet<String>> = Vec::new();
    for index in 0..3 {
        let mut harness = Harness::new(&emulator.endpoint, "").await.with_shard(index, 3);
        let series = harness.collect_at(base).await;
        let lbs: std::collections::BTreeSet<String> = series
            .iter()
            .filter(|s| s.name == "lbtriage_lb_info")
            .filter_map(|s| s.label("lb").map(str::to_string))
            .collect();
        // Other shards' load balancers cost no per-load-balancer calls.
        let attribute_calls = value(
            &series,
            "lbtriage_api_calls_total",
            &[("api", "DescribeLoadBalancerAttributes"), ("outcome", "success")],
        );
        assert_eq!(attribute_calls, lbs.len() as f64, "shard {index}");
        assert!(
            (60..=140).contains(&lbs.len()),
            "shard {index} owns {} of 300",
            lbs.len()
        );
        owned.push(lbs);
    }
    for (i, a) in owned.iter().enumerate() {
        for b in owned.iter().skip(i + 1) {
            assert!(a.is_disjoint(b), "shards overlap");
        }
    }
    let all: std::collections::BTreeSet<&String> = owned.iter().flatten().collect();
    assert_eq!(all.len(), 300, "the shards together cover every load balancer");
}

/// Instance targets get the private address EC2 reports for them (moto's own `DescribeInstances`
/// answer is the reference), for ALB and Classic alike; listeners and health checks come along.
/// The addresses are only compared here, never connected to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instance_targets_resolve_to_the_private_addresses_ec2_reports() {
    let emulator = Emulator::start();
    let fleet = emulator.seed(
        &json!({"region": "us-east-1", "load_balancers": [
            {"key": "shop", "type": "application", "name": "shop", "targets": 2, "target_groups": ["shop-web"]},
            {"key": "legacy", "type": "classic", "name": "legacy", "targets": 1}
        ]}),
        None,
    );
    let script = "import boto3, json, sys\nc = boto3.client('ec2', endpoint_url=sys.argv[1], region_name='us-east-1', aws_access_key_id='testing', aws_secret_access_key='testing')\nprint(json.dumps({i['InstanceId']: i['PrivateIpAddress'] for r in c.describe_instances()['Reservations'] for i in r['Instances']}))\n";
    let output = std::process::Command::new(support::python())
        .args(["-c", script, &emulator.moto_endpoint])
        .output()
        .expect("python runs");
    let reported: std::collections::BTreeMap<String, String> =
        serde_json::from_slice(&output.stdout).expect("moto's instances as JSON");
    let discovered = std::sync::Arc::new(lbtriage::runtime::Discovered::default());
    let harness = Harness::new(&emulator.endpoint, "").await;
    let mut source = harness.source.with_discovered(discovered.clone());
    source.collect().await;
    for (key, port) in [("shop", 8080), ("legacy", 8080)] {
        let lb = dimension(&fleet, key);
        let facts = discovered.facts(&lb).expect("facts");
        let instances: Vec<String> = fleet[key]["instances"]
            .as_array()
            .expect("instances")
            .iter()
            .filter_map(|i| i.as_str().map(str::to_string))
            .collect();
        let mut expected: Vec<String> = instances
            .iter()
            .map(|id| format!("{}:{port}", reported[id]))
            .collect();
        expected.sort();
        let mut found: Vec<String> = facts.targets().map(|t| t.addr.to_string()).collect();
        found.sort();
        assert_eq!(found, expected, "{key}: moto's private addresses");
        assert!(facts.skipped.is_empty(), "{key}: {:?}", facts.skipped);
        assert!(!facts.listeners.is_empty(), "{key}: listeners");
        assert_eq!(
            facts.front_door,
            fleet[key]["dns_name"].as_str().unwrap_or_default()
        );
    }
    let calls = source.api_calls();
    assert_eq!(
        calls.count("DescribeInstances", Outcome::Success),
        1,
        "one batched call"
    );
    assert!(!calls.optional_failing("DescribeInstances"));
    assert!(!calls.optional_failing("DescribeListeners"));
}

/// The inventory calls only the probes need degrade: with `DescribeInstances` and
/// `DescribeListeners` refused (a policy not yet updated after an upgrade), metrics are collected
/// and counted as before, instance targets have no address (and say why), and both refusals show
/// in `lbtriage_inventory_call_failing`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_probe_inventory_calls_lose_only_what_they_provide() {
    let emulator = Emulator::start();
    let base = base_time();
    let fleet = emulator.seed(
        &json!({"region": "us-east-1", "load_balancers": [
            {"key": "shop", "type": "application", "name": "shop", "targets": 1, "target_groups": ["shop-web"]}
        ], "datapoints": [
            {"lb": "shop", "metric": "RequestCount", "timestamp": base + 60, "value": 5.0},
            {"lb": "shop", "metric": "RequestCount", "timestamp": base + 120, "value": 7.0}
        ]}),
        None,
    );
    emulator.deny(&["DescribeInstances", "DescribeListeners"]);
    let lb = dimension(&fleet, "shop");
    let discovered = std::sync::Arc::new(lbtriage::runtime::Discovered::default());
    let mut harness = Harness::new(&emulator.endpoint, FULL).await;
    harness.source = harness.source.with_discovered(discovered.clone());
    harness.collect_at(base + 120 + 120).await;
    let series = harness.collect_at(base + 180 + 120).await;
    assert_eq!(value(&series, "lbtriage_source_up", &[]), 1.0);
    assert_eq!(
        value(&series, "lbtriage_lb_requests_total", &[("lb", &lb)]),
        7.0,
        "metrics flow"
    );
    for api in ["DescribeInstances", "DescribeListeners"] {
        assert_eq!(
            value(&series, "lbtriage_inventory_call_failing", &[("api", api)]),
            1.0,
            "{api}"
        );
    }
    let facts = discovered.facts(&lb).expect("facts");
    assert!(facts.listeners.is_empty());
    assert_eq!(facts.targets().count(), 0);
    assert_eq!(facts.skipped.len(), 1);
    assert_eq!(facts.skipped[0].reason, "no_address");

    emulator.deny(&[]);
    let mut harness = Harness::new(&emulator.endpoint, "").await;
    harness.source = harness.source.with_discovered(discovered.clone());
    let series = harness.collect_at(base + 240 + 120).await;
    for api in ["DescribeInstances", "DescribeListeners"] {
        assert_eq!(
            value(&series, "lbtriage_inventory_call_failing", &[("api", api)]),
            0.0,
            "{api} granted again"
        );
    }
    assert_eq!(discovered.facts(&lb).expect("facts").targets().count(), 1);
}
