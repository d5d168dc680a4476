//! The Alibaba Cloud source: Signature V1 against the official SDK's reference signatures, and the
//! source in process against the strict CloudMonitor test server with a clock the test steps —
//! exact values, pagination, the call-rate bound, signature failures and throttling.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use lbtriage::config::Config;
use lbtriage::sources::alibaba::client::Credentials;
use lbtriage::sources::alibaba::{signature, AlibabaSource};
use lbtriage::sources::api::RateLimiter;
use lbtriage::sources::engine::telemetry::Outcome;
use lbtriage::sources::Source;
use lbtriage::store::{render, Format};
use serde_json::{json, Value};

use crate::support::{
    base_time, count, parse_exposition, repo_root, value, CmsServer, Series, ALIBABA_KEY_ID, ALIBABA_SECRET,
};

#[test]
fn signatures_match_the_official_sdk() {
    let text = std::fs::read_to_string(repo_root().join("tests/fixtures/alibaba_signatures.json"))
        .expect("the fixture (tests/emulator/alibaba_signatures.py writes it)");
    let fixture: Value = serde_json::from_str(&text).expect("JSON");
    let cases = fixture["cases"].as_array().expect("cases");
    assert!(cases.len() >= 3);
    for case in cases {
        let params: BTreeMap<String, String> = case["params"]
            .as_object()
            .expect("params")
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
            .collect();
        let secret = case["secret"].as_str().unwrap_or_default();
        assert_eq!(
            signature::sign(&params, secret),
            case["signature"].as_str().unwrap_or_default(),
            "case {}",
            case["name"]
        );
    }
}

/// Every metric every cycle: the exactness, paging and rate tests (the tiers: `adaptive_alibaba`).
const FULL: &str = "    collection: full\n";

struct Harness {
    source: AlibabaSource,
    clock: Arc<AtomicI64>,
}

impl Harness {
    fn new(server: &CmsServer, extra_yaml: &str, secret: &str, calls_per_second: u32) -> Harness {
        let yaml = format!(
            "alibaba:\n  - name: ali\n    regions: [cn-hangzhou]\n    endpoint_url: {}\n    period: 60s\n    delay: 120s\n{extra_yaml}",
            server.endpoint
        );
        let job = Config::parse(&yaml).expect("valid").alibaba[0].clone();
        let clock = Arc::new(AtomicI64::new(0));
        let reader = clock.clone();
        let source = AlibabaSource::with_credentials(
            job,
            "cn-hangzhou".to_string(),
            Ok(Credentials::new(ALIBABA_KEY_ID, secret)),
            Arc::new(RateLimiter::new(calls_per_second)),
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

fn point(
    namespace: &str,
    metric: &str,
    timestamp: i64,
    instance: &str,
    port: Option<u16>,
    value: f64,
) -> Value {
    let mut point = json!({"namespace": namespace, "metric": metric, "timestamp": timestamp, "instance": instance, "value": value});
    if let Some(port) = port {
        point["port"] = json!(port);
    }
    point
}

/// Six minutes of data for one SLB and one ALB, from `base`.
fn seed(server: &CmsServer, base: i64) {
    let mut points = Vec::new();
    for minute in 0..6 {
        let t = base + minute * 60;
        let slb = |metric: &str, port: Option<u16>, value: f64| {
            point("acs_slb_dashboard", metric, t, "lb-shop", port, value)
        };
        points.extend([
            slb("InstanceQps", None, 2.0),
            slb("InstanceStatusCode5xx", None, 0.5),
            slb("InstanceUpstreamCode5xx", None, 0.2),
            slb("InstanceDropConnection", None, 0.1),
            slb("DropTrafficRX", Some(80), 800.0),
            slb("DropTrafficRX", Some(443), 1600.0),
            slb("HeathyServerCount", Some(80), 2.0),
            slb("HeathyServerCount", Some(443), 1.0),
            slb("UnhealthyServerCount", Some(80), 1.0),
            slb("UnhealthyServerCount", Some(443), 0.0),
            slb("UpstreamRt", Some(80), 120.0),
            slb("UpstreamRt", Some(443), 480.0),
            slb("InstanceQpsUtilization", None, 100.0),
            // Listener-level 4xx: what SLB answered (499s among them) minus the backends' 4xx.
            slb("StatusCode4xx", Some(80), 0.5),
            slb("StatusCode4xx", Some(443), 0.25),
            slb("UpstreamCode4xx", Some(80), 0.25),
        ]);
        let alb = |metric: &str, value: f64| point("acs_alb", metric, t, "alb-api", None, value);
        points.extend([
            alb("LoadBalancerQPS", 1.0),
            // 5xx the ALB returned, 0.05/s of them passed through from the backends.
            alb("LoadBalancerHTTPCode5XX", 0.15),
            alb("LoadBalancerHTTPCodeUpstream5XX", 0.05),
            alb("LoadBalancerUpstreamConnectionError", 0.25),
            alb("LoadBalancerHealthyHostCount", 3.0),
        ]);
    }
    server.seed(&points);
}

/// SLB datapoints for instances `lb-000`.. each minute of `minutes` from `base`:
/// (metric, listener port, value).
fn every_instance(
    base: i64,
    minutes: std::ops::Range<i64>,
    instances: usize,
    metrics: &[(&str, Option<u16>, f64)],
) -> Vec<Value> {
    let mut points = Vec::new();
    for minute in minutes {
        for i in 0..instances {
            let id = format!("lb-{i:03}");
            for (metric, port, value) in metrics {
                points.push(point(
                    "acs_slb_dashboard",
                    metric,
                    base + minute * 60,
                    &id,
                    *port,
                    *value,
                ));
            }
        }
    }
    points
}

fn at(series: &[Series], name: &str, labels: &[(&str, &str)]) -> f64 {
    value(series, name, labels)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_exact_values_across_every_page() {
    // Two points per page: every metric's three-plus periods span several pages.
    let server = CmsServer::start(2, 50);
    let base = base_time();
    seed(&server, base);
    let mut harness = Harness::new(&server, FULL, ALIBABA_SECRET, 50);

    // The first cycle starts counting at the newest complete period; counters appear at zero.
    let first = harness.collect_at(base + 120).await;
    let shop = [("lb", "lb-shop")];
    assert_eq!(
        at(&first, "lbtriage_source_up", &[("provider", "alibaba")]),
        1.0,
        "{}",
        server.stats()
    );
    assert_eq!(at(&first, "lbtriage_lb_requests_total", &shop), 0.0);
    assert_eq!(
        at(
            &first,
            "lbtriage_lb_info",
            &[
                ("lb", "lb-shop"),
                ("provider", "alibaba"),
                ("lb_type", "slb"),
                ("region", "cn-hangzhou")
            ]
        ),
        1.0
    );

    // Three minutes later: periods 0, 1 and 2 counted once, rate × 60 s each.
    let second = harness.collect_at(base + 300).await;
    assert_eq!(at(&second, "lbtriage_lb_requests_total", &shop), 3.0 * 2.0 * 60.0);
    assert!(
        (at(
            &second,
            "lbtriage_lb_responses_total",
            &[("lb", "lb-shop"), ("origin", "lb"), ("code", "5xx")]
        ) - 3.0 * 0.3 * 60.0)
            .abs()
            < 1e-9
    );
    assert!(
        (at(
            &second,
            "lbtriage_lb_responses_total",
            &[("lb", "lb-shop"), ("origin", "backend")]
        ) - 3.0 * 0.2 * 60.0)
            .abs()
            < 1e-9
    );
    assert!((at(&second, "lbtriage_lb_rejected_connections_total", &shop) - 3.0 * 0.1 * 60.0).abs() < 1e-9);
    assert_eq!(
        at(
            &second,
            "lbtriage_lb_responses_total",
            &[("lb", "lb-shop"), ("origin", "lb"), ("code", "4xx")]
        ),
        3.0 * 0.5 * 60.0
    );
    // bit/s summed over both listeners, × 60 s / 8.
    assert_eq!(
        at(
            &second,
            "lbtriage_lb_dropped_traffic_bytes_total",
            &[("lb", "lb-shop"), ("direction", "rx")]
        ),
        3.0 * 2400.0 * 60.0 / 8.0
    );
    // Levels: per listener, the worst listener, a ratio.
    assert_eq!(
        at(
            &second,
            "lbtriage_lb_healthy_targets",
            &[("lb", "lb-shop"), ("target_group", "listener:80")]
        ),
        2.0
    );
    assert_eq!(
        at(
            &second,
            "lbtriage_lb_healthy_targets",
            &[("lb", "lb-shop"), ("target_group", "listener:443")]
        ),
        1.0
    );
    assert_eq!(
        at(
            &second,
            "lbtriage_lb_unhealthy_targets",
            &[("lb", "lb-shop"), ("target_group", "listener:80")]
        ),
        1.0
    );
    assert_eq!(
        at(&second, "lbtriage_lb_target_response_time_seconds", &shop),
        0.48
    );
    assert_eq!(at(&second, "lbtriage_lb_qps_utilization_ratio", &shop), 1.0);
    let api = [("lb", "alb-api")];
    assert_eq!(at(&second, "lbtriage_lb_requests_total", &api), 180.0);
    assert!(
        (at(
            &second,
            "lbtriage_lb_responses_total",
            &[("lb", "alb-api"), ("origin", "lb"), ("code", "5xx")]
        ) - 18.0)
            .abs()
            < 1e-9
    );
    assert!((at(&second, "lbtriage_lb_target_connection_errors_total", &api) - 45.0).abs() < 1e-9);
    assert_eq!(
        at(
            &second,
            "lbtriage_lb_healthy_targets",
            &[("lb", "alb-api"), ("lb_type", "alb")]
        ),
        3.0
    );
    assert_eq!(
        at(
            &second,
            "lbtriage_collection_data_end_timestamp_seconds",
            &[("provider", "alibaba")]
        ),
        (base + 180) as f64
    );

    // Pagination was followed to the end, each page one successful call.
    let stats = server.stats();
    assert!(stats["pages_with_token"].as_u64().unwrap_or(0) > 20, "{stats}");
    assert_eq!(
        stats["signature_failures"], 0,
        "every request signed right: {stats}"
    );
    let calls = harness.source.api_calls();
    assert_eq!(
        calls.count("DescribeMetricList", Outcome::Success),
        stats["ok"].as_u64().unwrap_or(0)
    );
    assert_eq!(calls.count("DescribeMetricList", Outcome::Error), 0);
    assert!(second
        .iter()
        .all(|s| s.labels.iter().all(|(_, v)| !v.contains(ALIBABA_SECRET))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_is_refused_and_marks_the_source_down() {
    let server = CmsServer::start(1000, 50);
    let base = base_time();
    seed(&server, base);
    let mut harness = Harness::new(&server, "", "not-the-secret", 50);
    let series = harness.collect_at(base + 120).await;
    assert_eq!(at(&series, "lbtriage_source_up", &[("provider", "alibaba")]), 0.0);
    assert_eq!(count(&series, "lbtriage_lb_info", &[]), 0);
    assert!(server.stats()["signature_failures"].as_u64().unwrap_or(0) >= 1);
    // The inventory is the first call: refused once, not retried.
    assert_eq!(
        harness
            .source
            .api_calls()
            .count("DescribeLoadBalancers", Outcome::Error),
        1,
        "not retried"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_is_retried_and_an_outage_loses_no_period() {
    let server = CmsServer::start(1000, 50);
    let base = base_time();
    seed(&server, base);
    let mut harness = Harness::new(
        &server,
        "    namespaces: [acs_alb]\n    collection: full\n",
        ALIBABA_SECRET,
        50,
    );
    let shop = [("lb", "alb-api")];
    harness.collect_at(base + 120).await;
    let good = harness.collect_at(base + 180).await;
    assert_eq!(at(&good, "lbtriage_lb_requests_total", &shop), 60.0);

    // Two throttled answers: the retries absorb them.
    server.throttle(2);
    let retried = harness.collect_at(base + 240).await;
    assert_eq!(
        at(&retried, "lbtriage_source_up", &[("provider", "alibaba")]),
        1.0
    );
    assert_eq!(at(&retried, "lbtriage_lb_requests_total", &shop), 120.0);
    assert_eq!(server.stats()["throttled"], 2);

    // Throttled past the retries: down, the last good values keep serving.
    server.throttle(100);
    let down = harness.collect_at(base + 300).await;
    assert_eq!(at(&down, "lbtriage_source_up", &[("provider", "alibaba")]), 0.0);
    assert_eq!(at(&down, "lbtriage_lb_requests_total", &shop), 120.0);
    assert!(
        harness
            .source
            .api_calls()
            .count("DescribeMetricList", Outcome::Throttled)
            >= 1
    );

    // Recovered: the missed period is counted, once.
    server.throttle(0);
    let back = harness.collect_at(base + 360).await;
    assert_eq!(at(&back, "lbtriage_source_up", &[("provider", "alibaba")]), 1.0);
    assert_eq!(at(&back, "lbtriage_lb_requests_total", &shop), 240.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_call_rate_stays_under_the_bound() {
    // A server that throttles above 5 calls/s: lbtriage bounded at 4/s is never throttled, while the
    // same work unbounded is (the server does enforce its limit).
    let server = CmsServer::start(1000, 5);
    let base = base_time();
    seed(&server, base);
    let mut bounded = Harness::new(&server, FULL, ALIBABA_SECRET, 4);
    let series = bounded.collect_at(base + 120).await;
    assert_eq!(at(&series, "lbtriage_source_up", &[("provider", "alibaba")]), 1.0);
    let stats = server.stats();
    assert_eq!(stats["throttled"], 0, "{stats}");
    assert!(
        stats["ok"].as_u64().unwrap_or(0) >= 20,
        "enough calls to matter: {stats}"
    );

    let mut unbounded = Harness::new(&server, FULL, ALIBABA_SECRET, 50);
    unbounded.collect_at(base + 120).await;
    assert!(
        server.stats()["throttled"].as_u64().unwrap_or(0) > 0,
        "the server enforces its limit"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instance_ids_narrow_the_query_and_the_export() {
    let server = CmsServer::start(1000, 50);
    let base = base_time();
    seed(&server, base);
    let mut harness = Harness::new(
        &server,
        "    instance_ids: [lb-shop]\n    collection: full\n",
        ALIBABA_SECRET,
        50,
    );
    let series = harness.collect_at(base + 300).await;
    assert_eq!(at(&series, "lbtriage_source_up", &[("provider", "alibaba")]), 1.0);
    assert_eq!(count(&series, "lbtriage_lb_info", &[("lb", "lb-shop")]), 1);
    assert_eq!(
        count(&series, "lbtriage_lb_info", &[("lb", "alb-api")]),
        0,
        "filtered out"
    );
    assert_eq!(
        server.stats()["errors"],
        0,
        "the Dimensions parameter was well formed"
    );
}

/// Adaptive collection of 500 SLB instances at 60 s against CloudMonitor's documented page of
/// 1,000 datapoints: the calls stay under 300,000 a month per region (the free quota is 1,000,000
/// per account), the erroring instance's counters are exact, and the slow tier's request counts
/// (read at 300 s periods) are released exactly, spread over their minutes, `slow_interval` late.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adaptive_500_instances_stay_under_300000_calls_a_month_with_exact_counters() {
    let server = CmsServer::start(1000, 50);
    // On a 5-minute boundary, so the slow tier's 300 s periods hold whole minutes of data.
    let base = (base_time() - 1200).div_euclid(300) * 300;
    let erroring = |minute: i64| (10..14).contains(&minute);
    // Through the last cycle's data end (about minute 31) and a few more.
    let mut points = every_instance(
        base,
        0..36,
        500,
        &[("InstanceQps", None, 2.0), ("HeathyServerCount", Some(80), 2.0)],
    );
    for minute in 0..36 {
        let t = base + minute * 60;
        if erroring(minute) {
            points.push(point(
                "acs_slb_dashboard",
                "InstanceStatusCode5xx",
                t,
                "lb-007",
                None,
                0.5,
            ));
            points.push(point(
                "acs_slb_dashboard",
                "InstanceUpstreamCode5xx",
                t,
                "lb-007",
                None,
                0.2,
            ));
        }
        points.push(point(
            "acs_slb_dashboard",
            "InstanceDropConnection",
            t,
            "lb-042",
            None,
            0.1,
        ));
    }
    server.seed(&points);
    let mut harness = Harness::new(&server, "", ALIBABA_SECRET, 50);
    let first = base + 190;
    let cycles = 31;
    let mut series = Vec::new();
    for cycle in 0..cycles {
        series = harness.collect_at(first + cycle * 60).await;
        assert_eq!(at(&series, "lbtriage_source_up", &[]), 1.0, "cycle {cycle}");
    }
    // The quota is CloudMonitor's: SLB's inventory and health calls are another product's.
    let calls = at(
        &series,
        "lbtriage_api_calls_total",
        &[("api", "DescribeMetricList"), ("outcome", "success")],
    );
    let per_month = calls / cycles as f64 * 43_200.0;
    // The figure docs/BENCHMARKS.md records (`--nocapture`).
    eprintln!("{calls} calls in {cycles} cycles: {per_month:.0} a month");
    assert!(
        per_month < 300_000.0,
        "{calls} calls in {cycles} cycles: {per_month:.0} a month"
    );
    let tier_calls: f64 = ["sentinel", "detail", "slow"]
        .iter()
        .map(|tier| at(&series, "lbtriage_collection_calls_total", &[("tier", tier)]))
        .sum();
    assert_eq!(tier_calls, calls);
    // The ALB namespace has no instance: probed on the slow cadence, not every cycle.
    assert_eq!(
        at(
            &series,
            "lbtriage_collection_calls_total",
            &[("tier", "sentinel")]
        ),
        3.0 * cycles as f64 + 3.0 * 3.0
    );

    // Counted: minutes 1 .. data end (the first cycle's window starts at minute 1).
    let data_end = at(&series, "lbtriage_collection_data_end_timestamp_seconds", &[]) as i64;
    let minutes = 1..(data_end - base) / 60;
    let errors = minutes.clone().filter(|m| erroring(*m)).count() as f64;
    let lb007 = [("lb", "lb-007")];
    let lb5xx = at(
        &series,
        "lbtriage_lb_responses_total",
        &[("lb", "lb-007"), ("origin", "lb"), ("code", "5xx")],
    );
    assert!((lb5xx - errors * 0.3 * 60.0).abs() < 1e-6, "{lb5xx}");
    let backend = at(
        &series,
        "lbtriage_lb_responses_total",
        &[("lb", "lb-007"), ("origin", "backend"), ("code", "5xx")],
    );
    assert!((backend - errors * 0.2 * 60.0).abs() < 1e-6, "{backend}");
    // Dropped connections fail users without a 5xx: the sentinel counts every minute of them.
    let drops = at(
        &series,
        "lbtriage_lb_rejected_connections_total",
        &[("lb", "lb-042")],
    );
    assert!((drops - (minutes.end - 1) as f64 * 6.0).abs() < 1e-6, "{drops}");
    // A quiet instance's host count, from the slow tier's 5-minute average.
    assert_eq!(
        at(
            &series,
            "lbtriage_lb_healthy_targets",
            &[("lb", "lb-321"), ("target_group", "listener:80")]
        ),
        2.0
    );

    // Slow requests: 5-minute periods from where the data begins (the slow tier starts its lag, 19
    // minutes, before the sentinel's start), released up to the last slow read's end and 19
    // minutes (15 + 5 − 1) behind the data end.
    let slow_start = base;
    let last_slow_read = first + 30 * 60;
    let read_until = (last_slow_read - 120).div_euclid(300) * 300;
    let until = read_until.min(data_end - 19 * 60);
    let released = ((until - slow_start) / 60).max(0) as f64;
    assert!(released >= 5.0, "{released} minutes released");
    let requests = at(&series, "lbtriage_lb_requests_total", &lb007);
    assert!(
        (requests - released * 120.0).abs() < 1e-6,
        "{requests} against {released} minutes of 120"
    );
}

/// Late data on CloudMonitor, with the default `settle: 10m`: a read re-reads the unsettled
/// minutes only as far as its pages hold anyway. Three instances fit ten minutes in a page, so a
/// minute re-posted larger adds the difference at the next cycle; 500 instances fill the page with
/// one minute, so nothing is re-read and every cycle still costs one call per sentinel metric.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_data_is_reconciled_as_far_as_the_pages_hold() {
    for (instances, reconciled) in [(3, true), (500, false)] {
        let server = CmsServer::start(1000, 50);
        let base = base_time() - 1200;
        server.seed(&every_instance(
            base,
            0..12,
            instances,
            &[("InstanceDropConnection", None, 0.1)],
        ));
        let mut harness = Harness::new(
            &server,
            "    namespaces: [acs_slb_dashboard]\n",
            ALIBABA_SECRET,
            50,
        );
        let cycle = |k: i64| base + 190 + k * 60;
        let drops =
            |series: &[Series], lb: &str| at(series, "lbtriage_lb_rejected_connections_total", &[("lb", lb)]);
        let sentinel_calls =
            |series: &[Series]| at(series, "lbtriage_collection_calls_total", &[("tier", "sentinel")]);
        let mut series = Vec::new();
        for k in 0..4 {
            series = harness.collect_at(cycle(k)).await;
        }
        assert_eq!(drops(&series, "lb-000"), drops(&series, "lb-001"));
        // Minute 1, counted cycles ago, grows as late data arrives: 0.1 more per second.
        server.seed(&[point(
            "acs_slb_dashboard",
            "InstanceDropConnection",
            base + 60,
            "lb-000",
            None,
            0.2,
        )]);
        let before = sentinel_calls(&series);
        series = harness.collect_at(cycle(4)).await;
        let late = drops(&series, "lb-000") - drops(&series, "lb-001");
        assert_eq!(late, if reconciled { 6.0 } else { 0.0 }, "{instances} instances");
        assert_eq!(
            sentinel_calls(&series) - before,
            3.0,
            "{instances} instances: one page per sentinel metric"
        );
    }
}

/// `lbtriage plan` surveys the CloudMonitor test server (read-only calls) and prices the job;
/// a run then makes exactly the calls per read it priced: 240 instances with one listener each,
/// so a detail read over the five-period gauge lookback (and the period at its end) takes two
/// pages in `full`, and everything else one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_counts_the_calls_a_run_then_makes() {
    let server = CmsServer::start(1000, 50);
    // 25 minutes ago to 5 minutes ahead: `plan` surveys the real last minutes.
    let base = base_time() + 35 * 60;
    server.seed(&every_instance(
        base,
        0..30,
        240,
        &[
            ("InstanceQps", None, 2.0),
            ("InstanceQpsUtilization", None, 10.0),
            ("UpstreamRt", Some(80), 20.0),
            ("HeathyServerCount", Some(80), 2.0),
        ],
    ));
    let plan = crate::support::run_plan(
        &format!(
            "alibaba:\n  - name: ali\n    regions: [cn-hangzhou]\n    endpoint_url: {}\n    namespaces: [acs_slb_dashboard]\n",
            server.endpoint
        ),
        &[
            ("ALIBABA_CLOUD_ACCESS_KEY_ID", ALIBABA_KEY_ID),
            ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", ALIBABA_SECRET),
        ],
    );
    let row = &plan["jobs"][0];
    assert_eq!(
        row["by_namespace"]["acs_slb_dashboard"],
        json!({"instances": 240, "listeners": 240})
    );
    let per_read = |tier: &str| row["calls_per_read"][tier].as_f64().expect("number");
    // 3 sentinel metrics, one page each; 11 slow metrics, one page each (4 periods × 240).
    assert_eq!((per_read("sentinel"), per_read("slow")), (3.0, 11.0));

    let tier_calls =
        |series: &[Series], tier: &str| at(series, "lbtriage_collection_calls_total", &[("tier", tier)]);
    let mut adaptive = Harness::new(
        &server,
        "    namespaces: [acs_slb_dashboard]\n",
        ALIBABA_SECRET,
        50,
    );
    // Ten minutes into the data, so every read's range holds data.
    let first = base + 600;
    let mut series = Vec::new();
    for cycle in 0..16 {
        series = adaptive.collect_at(first + cycle * 60).await;
    }
    assert_eq!(at(&series, "lbtriage_source_up", &[]), 1.0);
    assert_eq!(tier_calls(&series, "sentinel"), 16.0 * per_read("sentinel"));
    assert_eq!(
        tier_calls(&series, "slow"),
        2.0 * per_read("slow"),
        "slow reads at cycles 0 and 15"
    );
    assert_eq!(tier_calls(&series, "detail"), 0.0);
    let month = |mode: &str| row[mode]["calls_per_month"].as_f64().expect("number");
    assert_eq!(month("adaptive_quiet"), 3.0 * 43_200.0 + 11.0 * 2_880.0);

    let mut full = Harness::new(
        &server,
        "    namespaces: [acs_slb_dashboard]\n    collection: full\n",
        ALIBABA_SECRET,
        50,
    );
    let total = |series: &[Series]| -> f64 {
        ["sentinel", "detail", "slow"]
            .iter()
            .map(|t| tier_calls(series, t))
            .sum()
    };
    let after_first = total(&full.collect_at(first).await);
    let second_cycle = total(&full.collect_at(first + 60).await) - after_first;
    assert_eq!(second_cycle, per_read("full"));
    assert_eq!(per_read("full"), 3.0 + 2.0 * 2.0 + 11.0);
}

/// The SLB and ALB inventory names instances and carries their addresses and tags, a deleted
/// instance disappears at the next inventory (its metrics may outlive it), an instance the
/// inventory does not list is never exported, and an SLB instance that alarmed shows each backend
/// server's health.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inventory_names_instances_and_a_deleted_one_disappears() {
    let server = CmsServer::start(1000, 50);
    let base = base_time();
    seed(&server, base);
    let extra: Vec<Value> = (0..6)
        .flat_map(|minute| {
            ["lb-gone", "lb-ghost"].map(|id| {
                point(
                    "acs_slb_dashboard",
                    "InstanceQps",
                    base + minute * 60,
                    id,
                    None,
                    1.0,
                )
            })
        })
        .collect();
    server.seed(&extra);
    let shop = json!({"id": "lb-shop", "namespace": "acs_slb_dashboard", "name": "shop",
        "address": "203.0.113.5", "tags": {"team": "web"}, "backends": [
            {"ip": "10.0.0.1", "port": 80, "listener_port": 80, "status": "normal"},
            {"ip": "10.0.0.2", "port": 80, "listener_port": 80, "status": "abnormal"}]});
    let api = json!({"id": "alb-api", "namespace": "acs_alb", "name": "api"});
    let gone = json!({"id": "lb-gone", "namespace": "acs_slb_dashboard", "name": "gone"});
    server.set_instances(&[shop.clone(), api.clone(), gone]);
    let discovered = Arc::new(lbtriage::runtime::Discovered::default());
    let mut harness = Harness::new(
        &server,
        "    discovery_ttl: 60s\n    collection: full\n",
        ALIBABA_SECRET,
        50,
    )
    .with_discovered(discovered.clone());
    harness.collect_at(base + 120).await;
    let before = harness.collect_at(base + 180).await;
    assert_eq!(at(&before, "lbtriage_source_up", &[]), 1.0);
    assert_eq!(
        at(
            &before,
            "lbtriage_lb_info",
            &[
                ("lb", "lb-shop"),
                ("lb_name", "shop"),
                ("address", "203.0.113.5"),
                ("tag_team", "web")
            ]
        ),
        1.0
    );
    assert_eq!(
        count(
            &before,
            "lbtriage_lb_info",
            &[("lb", "alb-api"), ("lb_name", "api")]
        ),
        1
    );
    assert_eq!(
        at(&before, "lbtriage_lb_requests_total", &[("lb", "lb-gone")]),
        60.0
    );
    assert_eq!(
        count(&before, "lbtriage_lb_info", &[("lb", "lb-ghost")]),
        0,
        "not in the inventory"
    );
    // lb-shop's 5xx alarmed: its backend servers' health is read.
    assert_eq!(
        at(
            &before,
            "lbtriage_lb_target_health_info",
            &[
                ("lb", "lb-shop"),
                ("target", "10.0.0.2:80"),
                ("state", "unhealthy"),
                ("reason", "abnormal")
            ]
        ),
        1.0
    );
    assert_eq!(
        count(&before, "lbtriage_lb_target_health_info", &[("lb", "alb-api")]),
        0
    );
    // What the probes learn: lb-shop alarmed, its address and the backends its health check names.
    let facts = discovered.facts("lb-shop").expect("lb-shop's facts");
    assert_eq!(facts.front_door, "203.0.113.5");
    assert_eq!(facts.provider, "alibaba");
    let targets: Vec<(String, Option<bool>)> =
        facts.targets().map(|t| (t.addr.to_string(), t.healthy)).collect();
    assert_eq!(
        targets,
        [
            ("10.0.0.1:80".to_string(), Some(true)),
            ("10.0.0.2:80".to_string(), Some(false))
        ]
    );
    assert_eq!(facts.listeners[0].port, 80);
    assert!(
        discovered.last_alarm_seen("lb-shop").is_some(),
        "lb-shop's alarm is shared"
    );
    assert!(discovered.facts("lb-ghost").is_none(), "only listed instances");

    server.set_instances(&[shop, api]);
    let after = harness.collect_at(base + 240).await;
    for family in ["lbtriage_lb_info", "lbtriage_lb_requests_total"] {
        assert_eq!(count(&after, family, &[("lb", "lb-gone")]), 0, "{family}");
    }
    assert_eq!(
        at(&after, "lbtriage_lb_requests_total", &[("lb", "lb-shop")]),
        2.0 * 2.0 * 60.0
    );
}

/// A refused inventory call degrades: with SLB's `DescribeLoadBalancers` refused (a RAM policy not
/// yet updated after an upgrade), the SLB instances the metrics name keep being counted, without
/// names; ALB's listing still names its instances; the refusal shows in
/// `lbtriage_inventory_call_failing`; and once the call is granted the names come back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_inventory_call_loses_names_not_metrics() {
    let server = CmsServer::start(1000, 50);
    let base = base_time();
    seed(&server, base);
    server.set_instances(&[
        json!({"id": "lb-shop", "namespace": "acs_slb_dashboard", "name": "shop"}),
        json!({"id": "alb-api", "namespace": "acs_alb", "name": "api"}),
    ]);
    server.deny(&["DescribeLoadBalancers"]);
    let mut harness = Harness::new(
        &server,
        "    discovery_ttl: 60s\n    collection: full\n",
        ALIBABA_SECRET,
        50,
    );
    harness.collect_at(base + 120).await;
    let refused = harness.collect_at(base + 180).await;
    assert_eq!(at(&refused, "lbtriage_source_up", &[]), 1.0, "collection goes on");
    assert_eq!(
        at(&refused, "lbtriage_lb_requests_total", &[("lb", "lb-shop")]),
        2.0 * 60.0,
        "the instances the metrics name are counted"
    );
    assert_eq!(
        at(
            &refused,
            "lbtriage_inventory_call_failing",
            &[("api", "DescribeLoadBalancers")]
        ),
        1.0
    );
    assert_eq!(
        at(
            &refused,
            "lbtriage_inventory_call_failing",
            &[("api", "ListLoadBalancers")]
        ),
        0.0
    );
    assert_eq!(
        count(
            &refused,
            "lbtriage_lb_info",
            &[("lb", "alb-api"), ("lb_name", "api")]
        ),
        1
    );
    assert_eq!(
        count(
            &refused,
            "lbtriage_lb_info",
            &[("lb", "lb-shop"), ("lb_name", "shop")]
        ),
        0,
        "no name without the inventory"
    );

    server.deny(&[]);
    let granted = harness.collect_at(base + 240).await;
    assert_eq!(
        at(
            &granted,
            "lbtriage_inventory_call_failing",
            &[("api", "DescribeLoadBalancers")]
        ),
        0.0
    );
    assert_eq!(
        count(
            &granted,
            "lbtriage_lb_info",
            &[("lb", "lb-shop"), ("lb_name", "shop")]
        ),
        1
    );
    assert_eq!(
        at(&granted, "lbtriage_lb_requests_total", &[("lb", "lb-shop")]),
        2.0 * 2.0 * 60.0,
        "no period lost or counted twice across the refusal"
    );
}

/// ALB instances get their server groups' members for the probes: an IP member as registered, an
/// ECS member at the private address ECS `DescribeInstances` gives, a function skipped; the group's
/// health-check path comes along. A refused `DescribeInstances` costs only the ECS members'
/// addresses, a refused `ListServerGroups` only the members; metrics flow either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alb_server_group_members_reach_the_probes_and_their_refusals_degrade() {
    let server = CmsServer::start(1000, 50);
    let base = base_time();
    seed(&server, base);
    server.set_inventory(
        &[json!({"id": "alb-api", "namespace": "acs_alb", "name": "api", "address": "api.example.alb.aliyuncs.com",
            "server_groups": [{"id": "sgp-web", "health_path": "/healthz", "servers": [
                {"id": "10.0.3.4", "type": "Ip", "ip": "10.0.3.4", "port": 8080},
                {"id": "i-ecs1", "type": "Ecs", "port": 80},
                {"id": "acs:fc:cn-hangzhou:1:functions/f", "type": "Fc", "port": 0}]}]})],
        &json!({"i-ecs1": "10.0.1.9"}),
    );
    let discovered = Arc::new(lbtriage::runtime::Discovered::default());
    let mut harness = Harness::new(
        &server,
        "    discovery_ttl: 60s\n    namespaces: [acs_alb]\n    collection: full\n",
        ALIBABA_SECRET,
        50,
    )
    .with_discovered(discovered.clone());
    harness.collect_at(base + 120).await;
    let facts = discovered.facts("alb-api").expect("facts");
    assert_eq!(facts.front_door, "api.example.alb.aliyuncs.com");
    let targets: Vec<String> = facts.targets().map(|t| t.addr.to_string()).collect();
    assert_eq!(targets, ["10.0.3.4:8080", "10.0.1.9:80"]);
    assert_eq!(facts.groups[0].health_check.path.as_deref(), Some("/healthz"));
    assert_eq!(facts.skipped.len(), 1);
    assert_eq!(facts.skipped[0].reason, "function");
    // `lbtriage plan` counts the calls of that refresh: the listing, the groups, their members
    // and the ECS addresses.
    let mut spent = harness.source.api_calls().totals();
    spent.remove("DescribeMetricList");
    let plan = crate::support::run_plan(
        &format!(
            "alibaba:\n  - name: ali\n    regions: [cn-hangzhou]\n    endpoint_url: {}\n    namespaces: [acs_alb]\n",
            server.endpoint
        ),
        &[
            ("ALIBABA_CLOUD_ACCESS_KEY_ID", ALIBABA_KEY_ID),
            ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", ALIBABA_SECRET),
        ],
    );
    let planned: std::collections::BTreeMap<&str, u64> = plan["jobs"][0]["inventory_calls_per_refresh"]
        .as_object()
        .expect("inventory calls")
        .iter()
        .map(|(api, n)| (api.as_str(), n.as_u64().expect("count")))
        .collect();
    assert_eq!(planned, spent);
    assert_eq!(planned.len(), 4, "{planned:?}");

    server.deny(&["DescribeInstances"]);
    let refused = harness.collect_at(base + 180).await;
    assert_eq!(at(&refused, "lbtriage_source_up", &[]), 1.0);
    // Within discovery_ttl nothing is read again; past it, the refusal shows.
    let refused = harness.collect_at(base + 250).await;
    assert_eq!(
        at(
            &refused,
            "lbtriage_inventory_call_failing",
            &[("api", "DescribeInstances")]
        ),
        1.0
    );
    assert_eq!(
        at(
            &refused,
            "lbtriage_inventory_call_failing",
            &[("api", "ListServerGroups")]
        ),
        0.0
    );
    assert!(
        at(&refused, "lbtriage_lb_requests_total", &[("lb", "alb-api")]) > 0.0,
        "metrics flow"
    );

    server.deny(&["ListServerGroups"]);
    let refused = harness.collect_at(base + 320).await;
    assert_eq!(at(&refused, "lbtriage_source_up", &[]), 1.0);
    assert_eq!(
        at(
            &refused,
            "lbtriage_inventory_call_failing",
            &[("api", "ListServerGroups")]
        ),
        1.0
    );
    assert_eq!(
        discovered.facts("alb-api").expect("facts").targets().count(),
        2,
        "the members last read stay"
    );
}
