//! Adaptive collection against moto: what it costs next to `full` collection of the same fleet over
//! the same cycles, and that every period is still counted exactly once across tier switches,
//! back-fills, failures and retries. The seeded data behaves as CloudWatch documents it: an ALB's
//! `HTTPCode_ELB_5XX_Count` includes each per-code count (seed.py derives it), and a metric without
//! occurrences has no datapoint.

use serde_json::{json, Value};

use crate::support::{base_time, dimension, value, Emulator, Harness, Series};

const PERIOD: i64 = 60;
/// The first cycle: minute 1 is the first complete one (delay 120 s), and counting starts there.
const FIRST_CYCLE: i64 = 190;

fn point(base: i64, lb: &str, metric: &str, minute: i64, value: f64) -> Value {
    json!({"lb": lb, "metric": metric, "timestamp": base + minute * PERIOD + 5, "value": value})
}

fn group_point(base: i64, lb: &str, metric: &str, minute: i64, value: f64) -> Value {
    json!({"lb": lb, "target_group": format!("{lb}-tg"), "metric": metric,
           "timestamp": base + minute * PERIOD + 5, "value": value})
}

/// The minutes (from `base`) the counters cover.
fn counted_minutes(base: i64, series: &[Series]) -> std::ops::Range<i64> {
    let end = value(series, "lbtriage_collection_data_end_timestamp_seconds", &[]) as i64;
    1..(end - base) / PERIOD
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_albs_two_failing_cost_under_30_percent_with_exact_failing_counters() {
    let emulator = Emulator::start();
    let names: Vec<String> = (0..20).map(|i| format!("a{i:02}")).collect();
    let failing = ["a00", "a01"];
    let scanned = "a05";
    let base = base_time();
    let point = |lb: &str, metric: &str, minute: i64, v: f64| point(base, lb, metric, minute, v);
    let group_point = |lb: &str, metric: &str, minute: i64, v: f64| group_point(base, lb, metric, minute, v);
    let mut points = Vec::new();
    for minute in 0..28 {
        for name in &names {
            points.push(point(name, "RequestCount", minute, 100.0));
            points.push(group_point(name, "HealthyHostCount", minute, 2.0));
            points.push(group_point(name, "UnHealthyHostCount", minute, 0.0));
        }
        for name in failing {
            points.push(point(name, "HTTPCode_ELB_502_Count", minute, 4.0));
            points.push(point(name, "TargetConnectionErrorCount", minute, 4.0));
            points.push(point(name, "HTTPCode_Target_5XX_Count", minute, 3.0));
        }
        // Internet scanners failing TLS: noise every internet-facing ALB has, read by the slow tier.
        points.push(point(scanned, "ClientTLSNegotiationErrorCount", minute, 7.0));
        points.push(point(scanned, "NewConnectionCount", minute, 50.0));
    }
    let load_balancers: Vec<Value> = names
        .iter()
        .map(|n| json!({"key": n, "type": "application", "name": n, "target_groups": [format!("{n}-tg")]}))
        .collect();
    let fleet = emulator.seed(
        &json!({"region": "us-east-1", "load_balancers": load_balancers, "datapoints": points}),
        None,
    );

    let mut adaptive = Harness::new(&emulator.endpoint, "").await;
    let mut full = Harness::new(&emulator.endpoint, "    collection: full\n").await;
    let failing_lbs: Vec<String> = failing.iter().map(|name| dimension(&fleet, name)).collect();
    // What the rules read of a failing ALB, cycle by cycle: the same in both modes, so a cause with
    // 5xx is seen in the same cycle (detection latency unchanged).
    let fast = |series: &[Series], lb: &str| -> Vec<f64> {
        [
            (
                "lbtriage_lb_responses_total",
                vec![("origin", "lb"), ("code", "502")],
            ),
            (
                "lbtriage_lb_responses_total",
                vec![("origin", "backend"), ("code", "5xx")],
            ),
            ("lbtriage_lb_target_connection_errors_total", vec![]),
            ("lbtriage_lb_healthy_targets", vec![]),
        ]
        .into_iter()
        .map(|(family, mut labels)| {
            labels.push(("lb", lb));
            value(series, family, &labels)
        })
        .collect()
    };
    let (mut last_adaptive, mut last_full) = (Vec::new(), Vec::new());
    for cycle in 0..24 {
        let now = base + FIRST_CYCLE + cycle * PERIOD;
        last_adaptive = adaptive.collect_at(now).await;
        last_full = full.collect_at(now).await;
        for lb in &failing_lbs {
            assert_eq!(
                fast(&last_adaptive, lb),
                fast(&last_full, lb),
                "cycle {cycle}, {lb}"
            );
        }
    }
    let (a, f) = (&last_adaptive, &last_full);
    assert_eq!(value(a, "lbtriage_source_up", &[]), 1.0);
    let counted = counted_minutes(base, a);
    assert_eq!(counted, counted_minutes(base, f), "both count the same periods");
    let periods = counted.end - counted.start;
    assert!(periods >= 20, "{periods} periods counted");

    let requested = |s: &[Series]| value(s, "lbtriage_cloudwatch_metrics_requested_total", &[]);
    let ratio = requested(a) / requested(f);
    assert!(
        ratio <= 0.30,
        "adaptive requested {} metrics, full {}: {:.1} %",
        requested(a),
        requested(f),
        ratio * 100.0
    );
    let by_tier: f64 = ["sentinel", "detail", "slow"]
        .iter()
        .map(|tier| {
            value(
                a,
                "lbtriage_collection_metrics_requested_total",
                &[("tier", tier)],
            )
        })
        .sum();
    assert_eq!(by_tier, requested(a), "the tiers add up to the bill");

    for name in failing {
        let lb = dimension(&fleet, name);
        for (family, labels, per_minute) in [
            (
                "lbtriage_lb_responses_total",
                vec![("origin", "lb"), ("code", "502")],
                4.0,
            ),
            (
                "lbtriage_lb_responses_total",
                vec![("origin", "backend"), ("code", "5xx")],
                3.0,
            ),
            ("lbtriage_lb_target_connection_errors_total", vec![], 4.0),
        ] {
            let mut labels = labels.clone();
            labels.push(("lb", &lb));
            let expected = per_minute * periods as f64;
            assert_eq!(
                value(a, family, &labels),
                expected,
                "{name} {family} {labels:?} adaptive"
            );
            assert_eq!(
                value(f, family, &labels),
                expected,
                "{name} {family} {labels:?} full"
            );
        }
    }
    // A quiet ALB's detail counters exist at zero, its host counts come from the slow tier.
    let quiet = dimension(&fleet, "a10");
    let quiet_502 = [("lb", quiet.as_str()), ("origin", "lb"), ("code", "502")];
    assert_eq!(value(a, "lbtriage_lb_responses_total", &quiet_502), 0.0);
    assert_eq!(value(a, "lbtriage_lb_healthy_targets", &[("lb", &quiet)]), 2.0);
    // Slow counters are exact, a slow interval (15 minutes) behind full collection, and start that
    // far before it (minute 0 here, the one minute of data before counting starts): client TLS
    // errors, and the request count (the page's denominator), a failing ALB's as a quiet one's.
    let scanned = dimension(&fleet, scanned);
    for (family, lb, per_minute) in [
        ("lbtriage_lb_client_tls_errors_total", &scanned, 7.0),
        ("lbtriage_lb_requests_total", &failing_lbs[0], 100.0),
        ("lbtriage_lb_requests_total", &quiet, 100.0),
    ] {
        let lb = [("lb", lb.as_str())];
        assert_eq!(value(f, family, &lb), per_minute * periods as f64, "{family}");
        assert_eq!(
            value(a, family, &lb),
            per_minute * (periods - 15 + 1) as f64,
            "{family}"
        );
    }
}

/// Errors start in the middle of a quiet stretch, stop, fail a cycle, and start again, and part of
/// an erroring minute reaches CloudWatch after it was counted: the detail tier wakes when the
/// first erroring period is still completing, its counters include that period and the quiet
/// periods before it (back-fill), the late part is added once, and no period is counted twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_after_a_quiet_stretch_are_back_filled_once() {
    let emulator = Emulator::start();
    let base = base_time();
    let point = |lb: &str, metric: &str, minute: i64, v: f64| point(base, lb, metric, minute, v);
    let erroring = |minute: i64| (12..16).contains(&minute) || (20..23).contains(&minute);
    let mut points = Vec::new();
    for minute in 0..30 {
        points.push(point("shop", "RequestCount", minute, 100.0));
        if erroring(minute) {
            points.push(point("shop", "HTTPCode_ELB_502_Count", minute, 5.0));
            points.push(point("shop", "TargetConnectionErrorCount", minute, 5.0));
        }
    }
    // A target connection error in a quiet minute, without a 5xx: only a back-fill counts it.
    points.push(point("shop", "TargetConnectionErrorCount", 8, 3.0));
    let fleet = emulator.seed(
        &json!({"region": "us-east-1",
                "load_balancers": [{"key": "shop", "type": "application", "name": "shop"}],
                "datapoints": points}),
        None,
    );
    let lb = dimension(&fleet, "shop");
    let shop_502 = [("lb", lb.as_str()), ("origin", "lb"), ("code", "502")];
    let connection_errors = [("lb", lb.as_str())];
    let detail_requested = |s: &[Series]| {
        value(
            s,
            "lbtriage_collection_metrics_requested_total",
            &[("tier", "detail")],
        )
    };
    let mut harness = Harness::new(&emulator.endpoint, "").await;
    let at = |minute_complete: i64| base + (minute_complete + 1) * PERIOD + 120 + 10;

    // Quiet until minute 10 is counted: the detail tier was never read.
    let mut series = Vec::new();
    for minute in [0, 4, 8, 10] {
        series = harness.collect_at(at(minute)).await;
    }
    assert_eq!(detail_requested(&series), 0.0);
    assert_eq!(value(&series, "lbtriage_lb_responses_total", &shop_502), 0.0);

    // When minute 11 is counted, minute 12 is still completing: its 5xx wakes the detail tier a
    // read early, which back-fills from its watermark and counts nothing of minute 12 yet.
    series = harness.collect_at(at(11)).await;
    assert!(
        detail_requested(&series) > 0.0,
        "the alarm of the completing minute"
    );
    assert_eq!(value(&series, "lbtriage_lb_responses_total", &shop_502), 0.0);
    assert_eq!(
        value(
            &series,
            "lbtriage_lb_target_connection_errors_total",
            &connection_errors
        ),
        3.0
    );

    // Minute 12 complete: the detail tier, still awake, counts it.
    series = harness.collect_at(at(12)).await;
    assert_eq!(value(&series, "lbtriage_lb_responses_total", &shop_502), 5.0);
    assert_eq!(
        value(
            &series,
            "lbtriage_lb_target_connection_errors_total",
            &connection_errors
        ),
        3.0 + 5.0
    );

    // Late data (`settle: 10m` by default): two more 502s of minute 12 reach CloudWatch after it
    // was counted; the detail tier, awake, re-reads the minute and adds only those two, once.
    let fleet_file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(fleet_file.path(), fleet.to_string()).expect("write the fleet");
    emulator.seed(
        &json!({"region": "us-east-1", "datapoints": [point("shop", "HTTPCode_ELB_502_Count", 12, 2.0)]}),
        Some(fleet_file.path()),
    );
    series = harness.collect_at(at(13)).await;
    assert_eq!(
        value(&series, "lbtriage_lb_responses_total", &shop_502),
        5.0 + 2.0 + 5.0
    );

    // A cycle that fails while errors continue, then its retry.
    emulator.throttle_cloudwatch(100);
    let failed = harness.collect_at(at(14)).await;
    assert_eq!(value(&failed, "lbtriage_source_up", &[]), 0.0);
    assert_eq!(value(&failed, "lbtriage_lb_responses_total", &shop_502), 12.0);
    emulator.throttle_cloudwatch(0);
    for minute in [15, 18, 21, 23, 27] {
        series = harness.collect_at(at(minute)).await;
        assert_eq!(value(&series, "lbtriage_source_up", &[]), 1.0, "minute {minute}");
    }
    let counted = counted_minutes(base, &series);
    assert_eq!(counted, 1..28);
    let errors = counted.clone().filter(|m| erroring(*m)).count() as f64;
    assert_eq!(
        value(&series, "lbtriage_lb_responses_total", &shop_502),
        5.0 * errors + 2.0,
        "each minute once, and the late part once, across wakes, sleeps and a failed cycle"
    );
    assert_eq!(
        value(
            &series,
            "lbtriage_lb_target_connection_errors_total",
            &connection_errors
        ),
        3.0 + 5.0 * errors
    );
    // The request count is a slow-tier series, released a period at a time `slow_interval` behind:
    // whole minutes, none twice, and the oldest ones already there.
    let requests = value(&series, "lbtriage_lb_requests_total", &[("lb", &lb)]);
    assert_eq!(requests % 100.0, 0.0, "{requests}");
    assert!((100.0 * 10.0..=100.0 * 27.0).contains(&requests), "{requests}");
}

/// A load balancer turning connections away at its capacity sends no 5xx: its rejected
/// connections are read by the sentinel, counted in the same cycle as another load balancer's
/// 502s that started in the same minute, with the default collection settings (adaptive, a 15
/// minute slow tier that has not come round again by then).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_connections_are_counted_as_early_as_5xx() {
    let emulator = Emulator::start();
    let base = base_time();
    let point = |lb: &str, metric: &str, minute: i64, v: f64| point(base, lb, metric, minute, v);
    let mut points = Vec::new();
    for minute in 0..20 {
        points.push(point("shop", "RequestCount", minute, 100.0));
        points.push(point("busy", "RequestCount", minute, 100.0));
        if minute >= 12 {
            points.push(point("shop", "HTTPCode_ELB_502_Count", minute, 5.0));
            points.push(point("busy", "RejectedConnectionCount", minute, 25.0));
        }
    }
    let fleet = emulator.seed(
        &json!({"region": "us-east-1",
                "load_balancers": [{"key": "shop", "type": "application", "name": "shop"},
                                   {"key": "busy", "type": "application", "name": "busy"}],
                "datapoints": points}),
        None,
    );
    let (shop, busy) = (dimension(&fleet, "shop"), dimension(&fleet, "busy"));
    let shop_502 = [("lb", shop.as_str()), ("origin", "lb"), ("code", "502")];
    let busy_rejected = [("lb", busy.as_str())];
    let mut harness = Harness::new(&emulator.endpoint, "").await;
    let at = |minute_complete: i64| base + (minute_complete + 1) * PERIOD + 120 + 10;
    let mut series = Vec::new();
    for minute in [0, 4, 8, 11] {
        series = harness.collect_at(at(minute)).await;
    }
    assert_eq!(value(&series, "lbtriage_lb_responses_total", &shop_502), 0.0);
    assert_eq!(
        value(&series, "lbtriage_lb_rejected_connections_total", &busy_rejected),
        0.0
    );
    series = harness.collect_at(at(12)).await;
    assert_eq!(value(&series, "lbtriage_lb_responses_total", &shop_502), 5.0);
    assert_eq!(
        value(&series, "lbtriage_lb_rejected_connections_total", &busy_rejected),
        25.0,
        "counted in the cycle that counts the first 502s"
    );
    series = harness.collect_at(at(14)).await;
    assert_eq!(value(&series, "lbtriage_lb_responses_total", &shop_502), 15.0);
    assert_eq!(
        value(&series, "lbtriage_lb_rejected_connections_total", &busy_rejected),
        75.0
    );
}

/// `lbtriage plan` against the emulator, then a run of the same fleet: the plan's metrics per read
/// are what each cycle and slow read spends, and its month is that spend extrapolated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_prices_what_a_run_then_spends() {
    let emulator = Emulator::start();
    let alb =
        |n: &str| json!({"key": n, "type": "application", "name": n, "target_groups": [format!("{n}-tg")]});
    emulator.seed(
        &json!({"region": "us-east-1", "load_balancers": [
            {"key": "web", "type": "application", "name": "web", "target_groups": ["web-tg"], "targets": 2},
            alb("api"), alb("admin"),
            {"key": "edge", "type": "network", "name": "edge", "target_groups": ["edge-tcp", "edge-tls"]},
            {"key": "legacy", "type": "classic", "name": "legacy", "targets": 1}
        ]}),
        None,
    );
    let plan = crate::support::run_plan(
        &format!(
            "aws:\n  - name: test\n    regions: [us-east-1]\n    endpoint_url: {}\n    period: 60s\n    delay: 120s\n",
            emulator.endpoint
        ),
        &[],
    );
    let row = &plan["jobs"][0];
    assert_eq!(row["load_balancers"], 5);
    let per_read = |tier: &str| row["metrics_per_read"][tier].as_f64().expect("number");

    // 31 quiet cycles, a minute apart: the slow tier is due at the first, the 16th and the 31st.
    let mut adaptive = Harness::new(&emulator.endpoint, "").await;
    // As in the exporter, where the probes take what discovery learns.
    adaptive.source = adaptive
        .source
        .with_discovered(std::sync::Arc::new(lbtriage::runtime::Discovered::default()));
    let mut series = Vec::new();
    let base = base_time();
    for cycle in 0..31 {
        series = adaptive.collect_at(base + FIRST_CYCLE + cycle * PERIOD).await;
    }
    let spent = |tier: &str| {
        value(
            &series,
            "lbtriage_collection_metrics_requested_total",
            &[("tier", tier)],
        )
    };
    assert_eq!(spent("sentinel"), 31.0 * per_read("sentinel"));
    assert_eq!(spent("slow"), 3.0 * per_read("slow"));
    assert_eq!(spent("detail"), 0.0, "quiet: the detail tier sleeps");
    // The inventory calls of a refresh (one, within discovery_ttl), instance addresses included.
    let mut inventory_calls = adaptive.source.api_calls().totals();
    inventory_calls.remove("GetMetricData");
    let planned: std::collections::BTreeMap<&str, u64> = row["inventory_calls_per_refresh"]
        .as_object()
        .expect("inventory calls")
        .iter()
        .map(|(api, n)| (api.as_str(), n.as_u64().expect("count")))
        .collect();
    assert_eq!(planned, inventory_calls);
    assert_eq!(planned.get("DescribeInstances"), Some(&1), "one batched call");
    assert_eq!(planned.get("DescribeListeners"), Some(&4), "one per ALB and NLB");
    let month = |mode: &str| row[mode]["metrics_per_month"].as_f64().expect("number");
    assert_eq!(
        month("adaptive_quiet"),
        spent("sentinel") / 31.0 * 43_200.0 + spent("slow") / 3.0 * 2_880.0
    );

    let mut full = Harness::new(&emulator.endpoint, "    collection: full\n").await;
    let series = full.collect_at(base + FIRST_CYCLE).await;
    let full_spent = value(&series, "lbtriage_cloudwatch_metrics_requested_total", &[]);
    assert_eq!(full_spent, per_read("full"));
    assert_eq!(month("full"), full_spent * 43_200.0);
    // List price: $0.01 per 1,000 metrics requested.
    let usd = |mode: &str| row[mode]["usd_per_month"].as_f64().expect("usd");
    assert_eq!(usd("full"), (month("full") / 1000.0).round() / 100.0);
    assert!(usd("adaptive_quiet") < usd("full") * 0.3);
}
