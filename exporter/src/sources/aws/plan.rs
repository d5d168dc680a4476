//! AWS's `lbtriage plan` rows: the load balancers discovery finds (read-only calls), the metrics
//! their reads request per tier (billed per metric) and one inventory refresh's calls.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::discovery::{self, Inventory};
use super::{client, cloudwatch, tier_sizes, timing, Clients};
use crate::config::{AutoProbeWhen, AwsJob, Config};
use crate::sources::engine::telemetry::ApiCalls;
use crate::sources::engine::tiers::{self, TierSizes};
use crate::sources::pricing::{latencies, per_month, PlanFuture, ERRORING_SHARE};

/// CloudWatch `GetMetricData`: $0.01 per 1,000 metrics requested (no free tier).
const USD_PER_METRIC: f64 = 0.01 / 1000.0;
/// Queries per `GetMetricData` call.
const QUERIES_PER_CALL: u64 = cloudwatch::MAX_QUERIES_PER_CALL as u64;

pub fn plan(config: &Config) -> PlanFuture<'_> {
    Box::pin(async move {
        let shard = config.shard_assignment().map_err(|err| err.to_string())?;
        let probe_facts = config.auto_probes.when != AutoProbeWhen::Never;
        let mut rows = Vec::new();
        for job in &config.aws {
            for region in &job.regions {
                let sdk = client::sdk_config(job, region).await;
                let calls = ApiCalls::default();
                let clients = Clients::new(&sdk);
                let inventory = discovery::discover(job, region, shard, &clients, &calls, probe_facts)
                    .await
                    .map_err(|err| format!("discovering aws job {:?} in {region}: {err}", job.name))?;
                // What a refresh of the inventory costs in calls, the probes' listeners and
                // instance addresses included when automatic probes run.
                if probe_facts {
                    discovery::instance_addresses(&inventory, &clients, &calls).await;
                }
                rows.push(row(job, region, &inventory, &calls.totals()));
            }
        }
        Ok(rows)
    })
}

/// CloudWatch bills metrics requested; the ELB, tagging and EC2 inventory calls (one refresh every
/// `discovery_ttl`) are not billed but count against those APIs' rate limits.
fn row(
    job: &AwsJob,
    region: &str,
    inventory: &Inventory,
    inventory_calls: &BTreeMap<&'static str, u64>,
) -> Value {
    let mut sizes = TierSizes::default();
    let mut by_type = std::collections::BTreeMap::new();
    for lb in &inventory.load_balancers {
        sizes += tier_sizes(lb);
        *by_type.entry(lb.lb_type.label()).or_insert(0u64) += 1;
    }
    let timing = timing(job);
    let interval = job.interval.as_duration();
    let (quiet, full) = tiers::metrics_per_month(sizes, &timing, interval, 0.0);
    let (erroring, _) = tiers::metrics_per_month(sizes, &timing, interval, ERRORING_SHARE);
    let calls = |metrics: u64| metrics.div_ceil(QUERIES_PER_CALL) as f64;
    let quiet_calls = per_month(interval) * calls(sizes.sentinel)
        + per_month(job.slow_interval.as_duration()) * calls(sizes.slow);
    let mode = |metrics: f64, calls: Option<f64>| {
        json!({
            "metrics_per_month": metrics.round(),
            "usd_per_month": (metrics * USD_PER_METRIC * 100.0).round() / 100.0,
            "get_metric_data_calls_per_month": calls.map(f64::round),
        })
    };
    json!({
        "provider": "aws",
        "job": job.name,
        "region": region,
        "collection": job.collection.as_str(),
        "load_balancers": inventory.load_balancers.len(),
        "by_type": by_type,
        // What the compliance suite compares with a run, in the unit the provider bills.
        "billed": {"per": "metric", "sentinel_per_read": sizes.sentinel, "full_per_read": sizes.full},
        "metrics_per_read": {
            "sentinel": sizes.sentinel,
            "detail": sizes.detail,
            "slow": sizes.slow,
            "slow_gauges": sizes.slow_gauges,
            "full": sizes.full,
        },
        "adaptive_quiet": mode(quiet, Some(quiet_calls)),
        "adaptive_erroring_5pct": mode(erroring, None),
        "full": mode(full, Some(per_month(interval) * calls(sizes.full))),
        "inventory_calls_per_refresh": inventory_calls,
        "inventory_calls_per_month": (inventory_calls.values().sum::<u64>() as f64
            * per_month(job.discovery_ttl.as_duration()))
        .round(),
        "worst_latency_seconds": latencies(&timing, interval),
    })
}
