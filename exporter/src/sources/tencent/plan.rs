//! Tencent Cloud's `lbtriage plan` rows: the instances of each namespace (read-only CLB calls) and
//! what reading them costs in Cloud Monitor requests.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{json, Value};

use super::cost::calls_per_read;
use super::TencentSource;
use crate::config::{Config, TencentJob, TencentNamespace};
use crate::runtime::system_clock;
use crate::sources::api::RateLimiter;
use crate::sources::pricing::{latencies, per_month, quota_mode, PlanFuture, ERRORING_SHARE};

/// Tencent Cloud Monitor's free `GetMonitorData` requests a month (cloud-metrics reference).
const FREE_CALLS: f64 = 1_000_000.0;

pub fn plan(config: &Config) -> PlanFuture<'_> {
    Box::pin(async move {
        let mut rows = Vec::new();
        for job in &config.tencent {
            let limiter = Arc::new(RateLimiter::new(job.max_calls_per_second));
            for region in &job.regions {
                let source = TencentSource::new(job.clone(), region.clone(), limiter.clone(), system_clock());
                let instances = source
                    .survey()
                    .await
                    .map_err(|err| format!("surveying tencent job {:?} in {region}: {err}", job.name))?;
                rows.push(row(job, region, &instances));
            }
        }
        Ok(rows)
    })
}

/// Cloud Monitor bills requests past a free quota: requests a month per tier and mode, and the
/// inventory's CLB calls beside them.
fn row(job: &TencentJob, region: &str, instances: &BTreeMap<TencentNamespace, u64>) -> Value {
    let interval = job.interval.as_duration();
    let timing = super::timing(job);
    let (cycles, slow_reads) = (per_month(interval), per_month(timing.slow_interval));
    let calls = calls_per_read(job, instances);
    let count: u64 = instances.values().sum();
    let quiet = calls.sentinel * cycles + calls.slow * slow_reads;
    let mode = |requests: f64| quota_mode(requests, FREE_CALLS);
    let by_namespace: BTreeMap<&str, Value> = instances
        .iter()
        .map(|(namespace, count)| (namespace.as_str(), json!({ "instances": count })))
        .collect();
    json!({
        "provider": "tencent",
        "job": job.name,
        "region": region,
        "collection": job.collection.as_str(),
        "load_balancers": count,
        "by_namespace": by_namespace,
        // What the compliance suite compares with a run, in the unit the provider bills.
        "billed": {"per": "call", "sentinel_per_read": calls.sentinel, "full_per_read": calls.full},
        "calls_per_read": {
            "sentinel": calls.sentinel,
            "slow": calls.slow,
            "awake": calls.awake,
            "full": calls.full,
        },
        "adaptive_quiet": mode(quiet),
        // Each instance erring 5 % of the time, one at a time (its detail calls are its own).
        "adaptive_erroring_5pct": mode(quiet + ERRORING_SHARE * cycles * calls.awake * count as f64),
        "full": mode(calls.full * cycles),
        "inventory_calls_per_month": (calls.inventory * per_month(job.discovery_ttl.as_duration())).round(),
        "worst_latency_seconds": latencies(&timing, interval),
    })
}
