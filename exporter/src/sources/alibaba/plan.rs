//! Alibaba Cloud's `lbtriage plan` rows: the instances and listeners of each namespace (read-only
//! calls), what reading them costs in CloudMonitor calls, and one inventory refresh's calls.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{json, Value};

use super::cost::{calls_per_read, timing, CallsPerRead, Fleet};
use super::AlibabaSource;
use crate::config::{AlibabaJob, AlibabaNamespace, AutoProbeWhen, Config};
use crate::runtime::system_clock;
use crate::sources::api::RateLimiter;
use crate::sources::pricing::{latencies, per_month, quota_mode, PlanFuture, ERRORING_SHARE};

/// CloudMonitor's free query calls a month, per account.
const FREE_CALLS: f64 = 1_000_000.0;

pub fn plan(config: &Config) -> PlanFuture<'_> {
    Box::pin(async move {
        let probe_facts = config.auto_probes.when != AutoProbeWhen::Never;
        let mut rows = Vec::new();
        for job in &config.alibaba {
            let limiter = Arc::new(RateLimiter::new(job.max_calls_per_second));
            for region in &job.regions {
                let source = AlibabaSource::new(job.clone(), region.clone(), limiter.clone(), system_clock());
                let fleets = source
                    .survey(system_clock()())
                    .await
                    .map_err(|err| format!("surveying alibaba job {:?} in {region}: {err}", job.name))?;
                let inventory_calls = source
                    .inventory_calls(probe_facts)
                    .await
                    .map_err(|err| format!("listing alibaba job {:?} in {region}: {err}", job.name))?;
                rows.push(row(job, region, &fleets, &inventory_calls));
            }
        }
        Ok(rows)
    })
}

/// CloudMonitor bills calls past a free quota: calls a month per tier and mode; the SLB, ALB and ECS inventory calls (one refresh
/// every `discovery_ttl`) are other products' and not billed.
fn row(
    job: &AlibabaJob,
    region: &str,
    fleets: &BTreeMap<AlibabaNamespace, Fleet>,
    inventory_calls: &BTreeMap<&'static str, u64>,
) -> Value {
    let interval = job.interval.as_duration();
    let timing = timing(job);
    let (cycles, slow_reads) = (per_month(interval), per_month(timing.slow_interval));
    let mut per_read = CallsPerRead::default();
    let mut found = BTreeMap::new();
    for (namespace, fleet) in fleets {
        let calls = calls_per_read(job, *namespace, *fleet);
        per_read.sentinel += calls.sentinel;
        per_read.slow += calls.slow;
        per_read.awake += calls.awake;
        per_read.full += calls.full;
        found.insert(
            namespace.as_str(),
            json!({"instances": fleet.instances, "listeners": fleet.listeners}),
        );
    }
    let quiet = per_read.sentinel * cycles + per_read.slow * slow_reads;
    let mode = |calls: f64| quota_mode(calls, FREE_CALLS);
    json!({
        "provider": "alibaba",
        "job": job.name,
        "region": region,
        "collection": job.collection.as_str(),
        "load_balancers": fleets.values().map(|f| f.instances).sum::<u64>(),
        "by_namespace": found,
        // What the compliance suite compares with a run, in the unit the provider bills.
        "billed": {"per": "call", "sentinel_per_read": per_read.sentinel, "full_per_read": per_read.full},
        "calls_per_read": {
            "sentinel": per_read.sentinel,
            "slow": per_read.slow,
            "awake": per_read.awake,
            "full": per_read.full,
        },
        "adaptive_quiet": mode(quiet),
        "adaptive_erroring_5pct": mode(quiet + ERRORING_SHARE * cycles * per_read.awake),
        "full": mode(per_read.full * cycles),
        "inventory_calls_per_refresh": inventory_calls,
        "inventory_calls_per_month": (inventory_calls.values().sum::<u64>() as f64
            * per_month(job.discovery_ttl.as_duration()))
        .round(),
        "worst_latency_seconds": latencies(&timing, interval),
    })
}
