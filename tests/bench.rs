//! API-efficiency benchmark (ignored by default; `make bench` runs it): for N ALBs with one target
//! group each, GetMetricData calls per cycle must be ceil(N·M/500), metrics requested N·M, and
//! discovery calls within the TTL zero. Prints the rows of the table in docs/BENCHMARKS.md.

use serde_json::json;

use crate::support::{base_time, value, Emulator, Harness};

/// Queries per ALB with one target group: 14 load-balancer metrics + 2 target-group metrics.
const QUERIES_PER_ALB: u64 = 16;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run by `make bench`"]
async fn bench_api_efficiency() {
    println!("| ALBs | queries/cycle | GetMetricData calls/cycle | discovery calls, cycles 2-3 | seed s | cycle s |");
    println!("|---|---|---|---|---|---|");
    for albs in [10u64, 100, 1000] {
        let emulator = Emulator::start();
        let started = std::time::Instant::now();
        let load_balancers: Vec<serde_json::Value> = (0..albs)
            .map(|i| json!({"key": format!("lb{i}"), "type": "application", "name": format!("lb{i}"), "target_groups": [format!("tg{i}")]}))
            .collect();
        emulator.seed(
            &json!({"region": "us-east-1", "load_balancers": load_balancers}),
            None,
        );
        let seed_seconds = started.elapsed().as_secs_f64();
        // Full collection: the formula is about reading every metric every cycle.
        let mut harness = Harness::new(
            &emulator.endpoint,
            "    discovery_ttl: 1h\n    collection: full\n",
        )
        .await;
        let base = base_time();
        let first = harness.collect_at(base).await;
        let discovery = |series: &[crate::support::Series]| {
            [
                "GetResources",
                "DescribeLoadBalancers",
                "DescribeTargetGroups",
                "DescribeTargetHealth",
                "DescribeLoadBalancerAttributes",
            ]
            .iter()
            .map(|api| {
                value(
                    series,
                    "lbtriage_api_calls_total",
                    &[("api", api), ("outcome", "success")],
                )
            })
            .sum::<f64>()
        };
        let discovery_after_first = discovery(&first);
        let cycle_start = std::time::Instant::now();
        harness.collect_at(base + 60).await;
        let cycle_seconds = cycle_start.elapsed().as_secs_f64();
        let third = harness.collect_at(base + 120).await;
        let calls = value(
            &third,
            "lbtriage_api_calls_total",
            &[("api", "GetMetricData"), ("outcome", "success")],
        );
        let requested = value(&third, "lbtriage_cloudwatch_metrics_requested_total", &[]);
        let queries = albs * QUERIES_PER_ALB;
        let expected_calls = queries.div_ceil(500);
        assert_eq!(calls, 3.0 * expected_calls as f64, "{albs} ALBs");
        assert_eq!(requested, 3.0 * queries as f64, "{albs} ALBs");
        assert_eq!(
            discovery(&third),
            discovery_after_first,
            "no discovery within the TTL"
        );
        println!(
            "| {albs} | {queries} | {expected_calls} | {} | {seed_seconds:.1} | {cycle_seconds:.2} |",
            discovery(&third) - discovery_after_first
        );
    }
}
