//! The Tencent Cloud source: TC3-HMAC-SHA256 against the official SDK's reference signatures, and
//! the source in process against the strict Cloud Monitor / CLB test server with a clock the test
//! steps — exact values and their conversions, the CLB-generated 5xx as the difference of the
//! documented counts, inventory paging and ten instances per call, a deleted instance, signature
//! failures, throttling, and the adaptive tiers' back-fill.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use lbtriage::config::Config;
use lbtriage::sources::api::RateLimiter;
use lbtriage::sources::tencent::client::Credentials;
use lbtriage::sources::tencent::{signature, TencentSource};
use lbtriage::sources::Source;
use lbtriage::store::{render, Format};
use serde_json::{json, Value};

use crate::support::{
    base_time, count, parse_exposition, repo_root, value, Series, TencentServer, TENCENT_SECRET_ID,
    TENCENT_SECRET_KEY,
};

#[test]
fn signatures_match_the_official_sdk() {
    let text = std::fs::read_to_string(repo_root().join("tests/fixtures/tencent_signatures.json"))
        .expect("the fixture (tests/emulator/tencent_signatures.py writes it)");
    let fixture: Value = serde_json::from_str(&text).expect("JSON");
    let cases = fixture["cases"].as_array().expect("cases");
    assert!(cases.len() >= 4);
    for case in cases {
        let field = |name: &str| case[name].as_str().unwrap_or_default();
        let request = signature::Request {
            service: field("service"),
            host: field("host"),
            content_type: field("content_type"),
            payload: field("payload").as_bytes(),
            timestamp: case["timestamp"].as_i64().unwrap_or_default(),
        };
        assert_eq!(
            signature::authorization(field("secret_id"), field("secret_key"), &request),
            field("authorization"),
            "case {}",
            case["name"]
        );
    }
}

struct Harness {
    source: TencentSource,
    clock: Arc<AtomicI64>,
}

impl Harness {
    fn new(server: &TencentServer, extra_yaml: &str, secret_key: &str) -> Harness {
        let yaml = format!(
            "tencent:\n  - name: tc\n    regions: [ap-guangzhou]\n    endpoint_url: {}\n    delay: 120s\n    max_calls_per_second: 20\n{extra_yaml}",
            server.endpoint
        );
        let job = Config::parse(&yaml).expect("valid").tencent[0].clone();
        let clock = Arc::new(AtomicI64::new(0));
        let reader = clock.clone();
        let source = TencentSource::with_credentials(
            job,
            "ap-guangzhou".to_string(),
            Ok(Credentials::new(TENCENT_SECRET_ID, secret_key)),
            Arc::new(RateLimiter::new(20)),
            Arc::new(move || reader.load(Ordering::SeqCst)),
        );
        Harness { source, clock }
    }

    fn with_discovered(mut self, discovered: Arc<lbtriage::runtime::Discovered>) -> Harness {
        self.source = self.source.with_discovered(discovered);
        self
    }

    async fn collect_at(&mut self, now: i64) -> Vec<Series> {
        self.clock.store(now, Ordering::SeqCst);
        let samples = self.source.collect().await;
        parse_exposition(&render(samples.iter(), Format::Prometheus))
    }
}

fn load_balancer(id: &str, kind: &str, vip: &str, targets: &[(&str, bool)]) -> Value {
    json!({
        "id": id, "name": format!("{id}-name"), "type": kind, "vip": vip, "vpc_id": "vpc-test",
        "tags": {"team": "shop"},
        "listeners": [{"port": 80, "targets": targets.iter().map(|(ip, healthy)| json!({
            "ip": ip, "port": 8080, "healthy": healthy,
            "detail": if *healthy { "Alive" } else { "Dead" },
        })).collect::<Vec<_>>()}],
    })
}

/// `(metric, value)` every minute of `minutes` from `base`, for each instance.
fn points(
    base: i64,
    minutes: std::ops::Range<i64>,
    instances: &[&str],
    metrics: &[(&str, f64)],
) -> Vec<Value> {
    let mut out = Vec::new();
    for minute in minutes {
        for instance in instances {
            for (metric, value) in metrics {
                out.push(json!({"instance": instance, "metric": metric, "timestamp": base + minute * 60, "value": value}));
            }
        }
    }
    out
}

const FULL: &str = "    collection: full\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_exact_values_with_names_tags_and_backend_health() {
    let server = TencentServer::start(20);
    server.seed_load_balancers(&[
        load_balancer(
            "lb-pub",
            "OPEN",
            "203.0.113.10",
            &[("10.0.0.1", true), ("10.0.0.2", false)],
        ),
        load_balancer("lb-priv", "INTERNAL", "10.1.0.10", &[("10.0.1.1", true)]),
    ]);
    let base = base_time();
    let both = ["lb-pub", "lb-priv"];
    server.seed_points(&points(
        base,
        0..6,
        &both,
        &[
            ("TotalReq", 2.0),
            // 7 codes returned by CLB a minute, 3 of them passed through from the backends.
            ("ClbHttp5xx", 7.0),
            ("Http5xx", 3.0),
            ("ClbHttp502", 5.0),
            ("Http502", 1.0),
            ("RspMax", 250.0),
            ("DropTotalConns", 2.0),
            ("InDropBits", 800.0),
            ("ConcurConnVipRatio", 100.0),
        ],
    ));
    // SNAT exists only for a private CLB; a public one publishes nothing for it.
    server.seed_points(&points(base, 0..6, &["lb-priv"], &[("SnatFail", 3.0)]));
    let mut harness = Harness::new(&server, FULL, TENCENT_SECRET_KEY);

    let first = harness.collect_at(base + 120).await;
    assert_eq!(
        value(&first, "lbtriage_source_up", &[("provider", "tencent")]),
        1.0,
        "{}",
        server.stats()
    );
    let public = [("lb", "lb-pub")];
    assert_eq!(value(&first, "lbtriage_lb_requests_total", &public), 0.0);
    assert_eq!(
        value(
            &first,
            "lbtriage_lb_info",
            &[
                ("lb", "lb-pub"),
                ("lb_name", "lb-pub-name"),
                ("lb_type", "clb_public"),
                ("vip", "203.0.113.10"),
                ("tag_team", "shop"),
                ("region", "ap-guangzhou"),
            ]
        ),
        1.0
    );

    // Three minutes later: periods 0, 1 and 2 counted once each.
    let second = harness.collect_at(base + 300).await;
    for lb in both {
        let at = |name: &str, labels: &[(&str, &str)]| {
            let mut all = vec![("lb", lb)];
            all.extend_from_slice(labels);
            value(&second, name, &all)
        };
        assert_eq!(at("lbtriage_lb_requests_total", &[]), 3.0 * 2.0 * 60.0, "{lb}");
        assert_eq!(
            at(
                "lbtriage_lb_responses_total",
                &[("origin", "lb"), ("code", "502")]
            ),
            3.0 * (5.0 - 1.0),
            "{lb}: the 502s CLB generated itself"
        );
        // No 503 was published: counted as zero, not missing.
        assert_eq!(
            at(
                "lbtriage_lb_responses_total",
                &[("origin", "lb"), ("code", "503")]
            ),
            0.0
        );
        assert_eq!(
            at(
                "lbtriage_lb_responses_total",
                &[("origin", "backend"), ("code", "5xx")]
            ),
            3.0 * 3.0
        );
        assert_eq!(at("lbtriage_lb_rejected_connections_total", &[]), 3.0 * 2.0);
        assert_eq!(
            at("lbtriage_lb_dropped_traffic_bytes_total", &[("direction", "rx")]),
            3.0 * 800.0 * 60.0 / 8.0
        );
        assert_eq!(at("lbtriage_lb_target_response_time_max_seconds", &[]), 0.25);
        assert_eq!(
            at(
                "lbtriage_lb_connection_utilization_ratio",
                &[("limit", "max_connections")]
            ),
            1.0
        );
    }
    // The LB-generated class is an alarm, exported per code only: 5.* sums stay exact.
    assert_eq!(
        count(
            &second,
            "lbtriage_lb_responses_total",
            &[("lb", "lb-pub"), ("origin", "lb"), ("code", "5xx")]
        ),
        0
    );
    assert_eq!(
        value(
            &second,
            "lbtriage_lb_port_allocation_errors_total",
            &[("lb", "lb-priv")]
        ),
        9.0
    );
    assert_eq!(
        count(
            &second,
            "lbtriage_lb_port_allocation_errors_total",
            &[("lb", "lb-pub")]
        ),
        0
    );
    // Backend health per listener, from DescribeTargetHealth.
    let listener = [("lb", "lb-pub"), ("target_group", "listener:80")];
    assert_eq!(value(&second, "lbtriage_lb_registered_targets", &listener), 2.0);
    assert_eq!(value(&second, "lbtriage_lb_healthy_targets", &listener), 1.0);
    assert_eq!(value(&second, "lbtriage_lb_unhealthy_targets", &listener), 1.0);
    assert_eq!(
        value(
            &second,
            "lbtriage_lb_target_health_info",
            &[
                ("lb", "lb-pub"),
                ("target", "10.0.0.2:8080"),
                ("state", "unhealthy"),
                ("reason", "Dead")
            ]
        ),
        1.0
    );
    // The same periods again count nothing twice.
    let third = harness.collect_at(base + 300).await;
    assert_eq!(value(&third, "lbtriage_lb_requests_total", &public), 360.0);
    let stats = server.stats();
    assert_eq!(stats["signature_failures"], 0, "{stats}");
    assert_eq!(stats["errors"], 0, "{stats}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_fleet_pages_the_inventory_and_asks_ten_instances_a_call() {
    let server = TencentServer::start(50);
    let ids: Vec<String> = (0..105).map(|i| format!("lb-{i:05}")).collect();
    let fleet: Vec<Value> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| load_balancer(id, "OPEN", &format!("198.51.{}.{}", i / 200, i % 200 + 1), &[]))
        .collect();
    server.seed_load_balancers(&fleet);
    let base = base_time();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    server.seed_points(&points(
        base,
        0..4,
        &refs,
        &[("TotalReq", 1.0), ("DropTotalConns", 1.0)],
    ));
    // Quiet: the default adaptive collection reads the two sentinel metrics.
    let mut harness = Harness::new(&server, "", TENCENT_SECRET_KEY);
    harness.collect_at(base + 120).await;
    let series = harness.collect_at(base + 240).await;
    assert_eq!(count(&series, "lbtriage_lb_info", &[]), 105);
    // Two periods of the sentinel's dropped connections (one a minute) in the last page's instance.
    assert_eq!(
        value(
            &series,
            "lbtriage_lb_rejected_connections_total",
            &[("lb", "lb-00104")]
        ),
        2.0
    );
    let stats = server.stats();
    assert_eq!(stats["max_instances_per_call"], 10, "{stats}");
    // Two inventory pages of at most 100, six target-health calls of at most 20, and eleven calls
    // of ten per metric: the two sentinel metrics (every 5xx CLB returned, dropped connections) in
    // the one cycle that had a new period to read (the first only sets where counting starts),
    // and the slow tier's seven once, over the stretch of its lag before that start.
    assert_eq!(stats["calls"]["DescribeLoadBalancers"], 2, "{stats}");
    assert_eq!(stats["calls"]["DescribeTargetHealth"], 6, "{stats}");
    assert_eq!(stats["calls"]["GetMonitorData"], (2 + 7) * 11, "{stats}");
    assert_eq!(stats["errors"], 0, "{stats}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_instance_disappears_at_the_next_inventory() {
    let server = TencentServer::start(20);
    let pair = [
        load_balancer("lb-keep", "OPEN", "203.0.113.1", &[("10.0.0.1", true)]),
        load_balancer("lb-gone", "OPEN", "203.0.113.2", &[("10.0.0.2", true)]),
    ];
    server.seed_load_balancers(&pair);
    let base = base_time();
    // Dropped connections: a sentinel series every instance exports each minute.
    server.seed_points(&points(
        base,
        0..8,
        &["lb-keep", "lb-gone"],
        &[("DropTotalConns", 60.0)],
    ));
    server.seed_points(&points(base, 0..8, &["lb-gone"], &[("ClbHttp5xx", 5.0)]));
    let discovered = Arc::new(lbtriage::runtime::Discovered::default());
    let mut harness = Harness::new(&server, "    discovery_ttl: 60s\n", TENCENT_SECRET_KEY)
        .with_discovered(discovered.clone());
    harness.collect_at(base + 120).await;
    let before = harness.collect_at(base + 180).await;
    // What the probes learn from the inventory: the VIP, the listener and its real servers, and
    // which instance alarmed.
    let facts = discovered.facts("lb-gone").expect("lb-gone's facts");
    assert_eq!(
        (facts.provider.as_str(), facts.front_door.as_str()),
        ("tencent", "203.0.113.2")
    );
    assert_eq!(facts.scheme, "internet-facing");
    assert_eq!(
        (facts.listeners[0].port, facts.listeners[0].protocol.as_str()),
        (80, "HTTP")
    );
    let targets: Vec<(String, Option<bool>)> =
        facts.targets().map(|t| (t.addr.to_string(), t.healthy)).collect();
    assert_eq!(targets, [("10.0.0.2:8080".to_string(), Some(true))]);
    assert!(discovered.last_alarm_seen("lb-gone").is_some(), "its 5xx alarmed");
    assert!(discovered.last_alarm_seen("lb-keep").is_none(), "quiet");
    assert_eq!(count(&before, "lbtriage_lb_info", &[("lb", "lb-gone")]), 1);
    let rejected = "lbtriage_lb_rejected_connections_total";
    assert_eq!(value(&before, rejected, &[("lb", "lb-gone")]), 60.0);
    server.seed_load_balancers(&pair[..1]);
    let after = harness.collect_at(base + 240).await;
    for family in ["lbtriage_lb_info", rejected, "lbtriage_lb_healthy_targets"] {
        assert_eq!(count(&after, family, &[("lb", "lb-gone")]), 0, "{family}");
    }
    assert_eq!(value(&after, rejected, &[("lb", "lb-keep")]), 120.0);
    assert!(
        discovered.facts("lb-gone").is_none(),
        "a deleted instance is not probed"
    );
    assert!(discovered.facts("lb-keep").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_is_refused_and_marks_the_source_down() {
    let server = TencentServer::start(20);
    server.seed_load_balancers(&[load_balancer("lb-a", "OPEN", "203.0.113.1", &[])]);
    let mut harness = Harness::new(&server, "", "not-the-secret");
    let series = harness.collect_at(base_time()).await;
    assert_eq!(
        value(&series, "lbtriage_source_up", &[("provider", "tencent")]),
        0.0
    );
    assert_eq!(
        value(
            &series,
            "lbtriage_api_calls_total",
            &[("api", "DescribeLoadBalancers"), ("outcome", "error")]
        ),
        1.0
    );
    assert_eq!(server.stats()["signature_failures"], 1);
    assert_eq!(count(&series, "lbtriage_lb_info", &[]), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_is_retried_and_an_outage_loses_no_period() {
    let server = TencentServer::start(20);
    server.seed_load_balancers(&[load_balancer("lb-a", "OPEN", "203.0.113.1", &[])]);
    let base = base_time();
    server.seed_points(&points(
        base,
        0..12,
        &["lb-a"],
        &[("TotalReq", 1.0), ("ClbHttp5xx", 2.0), ("ClbHttp502", 2.0)],
    ));
    let mut harness = Harness::new(&server, FULL, TENCENT_SECRET_KEY);
    harness.collect_at(base + 120).await;
    // Two throttled answers: the client's retries absorb them.
    server.throttle(2);
    let retried = harness.collect_at(base + 180).await;
    let a = [("lb", "lb-a")];
    assert_eq!(value(&retried, "lbtriage_source_up", &[]), 1.0);
    assert_eq!(value(&retried, "lbtriage_lb_requests_total", &a), 60.0);
    // Throttled throughout: the source is down, the last good values stay.
    server.throttle(1000);
    let down = harness.collect_at(base + 300).await;
    assert_eq!(value(&down, "lbtriage_source_up", &[]), 0.0);
    assert_eq!(value(&down, "lbtriage_lb_requests_total", &a), 60.0);
    assert!(value(&down, "lbtriage_api_calls_total", &[("outcome", "throttled")]) >= 1.0);
    // Cleared: every missed period once, none twice.
    server.throttle(0);
    let back = harness.collect_at(base + 360).await;
    assert_eq!(value(&back, "lbtriage_source_up", &[]), 1.0);
    assert_eq!(value(&back, "lbtriage_lb_requests_total", &a), 4.0 * 60.0);
    assert_eq!(
        value(
            &back,
            "lbtriage_lb_responses_total",
            &[("lb", "lb-a"), ("origin", "lb"), ("code", "502")]
        ),
        4.0 * 2.0
    );
}

/// Adaptive collection: quiet periods read only the sentinel; the first erroring period wakes
/// the detail tier, which back-fills from its watermark, so the per-code counters equal full
/// collection's over the same periods.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_after_a_quiet_stretch_are_back_filled_once() {
    let server = TencentServer::start(50);
    server.seed_load_balancers(&[load_balancer(
        "lb-a",
        "OPEN",
        "203.0.113.1",
        &[("10.0.0.1", true)],
    )]);
    let base = base_time();
    server.seed_points(&points(base, 0..12, &["lb-a"], &[("TotalReq", 1.0)]));
    // From minute 5 on, CLB answers 502 itself, 3 a minute.
    server.seed_points(&points(
        base,
        5..12,
        &["lb-a"],
        &[("ClbHttp5xx", 3.0), ("ClbHttp502", 3.0)],
    ));
    let mut harness = Harness::new(&server, "", TENCENT_SECRET_KEY);
    harness.collect_at(base + 120).await;
    let mut detail_calls = Vec::new();
    let mut last = Vec::new();
    for minute in 3..=10 {
        last = harness.collect_at(base + 120 + minute * 60).await;
        detail_calls.push(value(
            &last,
            "lbtriage_collection_calls_total",
            &[("tier", "detail")],
        ));
    }
    // Quiet minutes 0..4 were counted by the sentinel without a detail call.
    assert_eq!(detail_calls[0], 0.0, "{detail_calls:?}");
    assert_eq!(detail_calls[1], 0.0, "{detail_calls:?}");
    assert!(detail_calls[7] > 0.0, "{detail_calls:?}");
    // Periods 0..9 counted: 502s from minute 5 on, each once. The request count is a slow-tier
    // series, released 15 minutes (`slow_interval`) after each period: none of these yet.
    assert_eq!(
        value(&last, "lbtriage_collection_data_end_timestamp_seconds", &[]) as i64,
        base / 60 * 60 + 10 * 60
    );
    assert_eq!(value(&last, "lbtriage_lb_requests_total", &[]), 0.0);
    assert_eq!(
        value(
            &last,
            "lbtriage_lb_responses_total",
            &[("origin", "lb"), ("code", "502")]
        ),
        5.0 * 3.0
    );
}

/// `lbtriage plan` prices a Tencent job from a read-only inventory, and a run then spends what it
/// said: the sentinel's requests every cycle with a new period, and full collection's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_counts_the_requests_a_run_then_makes() {
    let server = TencentServer::start(50);
    let ids: Vec<String> = (0..25).map(|i| format!("lb-plan{i:03}")).collect();
    let fleet: Vec<Value> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| load_balancer(id, "OPEN", &format!("198.51.100.{}", i + 1), &[]))
        .collect();
    server.seed_load_balancers(&fleet);
    let plan = crate::support::run_plan(
        &format!(
            "tencent:\n  - name: tc\n    regions: [ap-guangzhou]\n    endpoint_url: {}\n",
            server.endpoint
        ),
        &[
            ("TENCENTCLOUD_SECRET_ID", TENCENT_SECRET_ID),
            ("TENCENTCLOUD_SECRET_KEY", TENCENT_SECRET_KEY),
        ],
    );
    let row = &plan["jobs"][0];
    assert_eq!(row["provider"], "tencent");
    assert_eq!(row["by_namespace"]["QCE/LB_PUBLIC"]["instances"], 25);
    assert_eq!(row["by_namespace"]["QCE/LB_PRIVATE"]["instances"], 0);
    let per_read = |tier: &str| row["calls_per_read"][tier].as_f64().expect("number");
    // Two sentinel metrics for three calls of ten instances each.
    assert_eq!(per_read("sentinel"), 6.0);
    assert!(row["adaptive_quiet"]["calls_per_month"].as_f64() < row["full"]["calls_per_month"].as_f64());

    let base = base_time();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    server.seed_points(&points(base, 0..12, &refs, &[("TotalReq", 1.0)]));
    let calls =
        |series: &[Series], tier: &str| value(series, "lbtriage_collection_calls_total", &[("tier", tier)]);
    let mut adaptive = Harness::new(&server, "", TENCENT_SECRET_KEY);
    adaptive.collect_at(base + 120).await;
    let mut series = Vec::new();
    for cycle in 1..=4 {
        series = adaptive.collect_at(base + 120 + cycle * 60).await;
    }
    assert_eq!(calls(&series, "sentinel"), 4.0 * per_read("sentinel"));

    let mut full = Harness::new(&server, FULL, TENCENT_SECRET_KEY);
    full.collect_at(base + 120).await;
    let one = full.collect_at(base + 180).await;
    let spent: f64 = ["sentinel", "detail", "slow"]
        .iter()
        .map(|t| calls(&one, t))
        .sum();
    assert_eq!(spent, per_read("full"));
}

/// Real-server health is not what the metrics need: with `DescribeTargetHealth` refused (a CAM
/// policy not updated), metrics keep flowing, the last health answer stays, and the refusal shows
/// in `lbtriage_inventory_call_failing`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_target_health_call_loses_only_health() {
    let server = TencentServer::start(20);
    server.seed_load_balancers(&[load_balancer(
        "lb-pub",
        "OPEN",
        "203.0.113.10",
        &[("10.0.0.1", true), ("10.0.0.2", false)],
    )]);
    let base = base_time();
    server.seed_points(&points(base, 0..8, &["lb-pub"], &[("TotalReq", 1.0)]));
    let mut harness = Harness::new(
        &server,
        "    discovery_ttl: 60s\n    collection: full\n",
        TENCENT_SECRET_KEY,
    );
    harness.collect_at(base + 120).await;
    server.deny(&["DescribeTargetHealth"]);
    harness.collect_at(base + 180).await;
    let refused = harness.collect_at(base + 240).await;
    assert_eq!(value(&refused, "lbtriage_source_up", &[]), 1.0);
    assert_eq!(
        value(&refused, "lbtriage_lb_requests_total", &[("lb", "lb-pub")]),
        120.0,
        "no period lost"
    );
    assert_eq!(
        value(
            &refused,
            "lbtriage_inventory_call_failing",
            &[("api", "DescribeTargetHealth")]
        ),
        1.0
    );
    assert_eq!(
        value(&refused, "lbtriage_lb_unhealthy_targets", &[("lb", "lb-pub")]),
        1.0,
        "the last answer stays"
    );
}
