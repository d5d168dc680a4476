//! What every provider's `lbtriage plan` row shares: months of reads, the "erroring" estimate, a
//! mode's calls against a free quota, and the worst-case latency of each tier.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use serde_json::{json, Value};

use super::engine::tiers::{self, Tier, Timing, MONTH_SECONDS};

/// A provider's plan rows for a config: one per job and region, surveyed with read-only calls.
pub type PlanFuture<'a> = Pin<Box<dyn Future<Output = Result<Vec<Value>, String>> + Send + 'a>>;

/// The share of time the "erroring" estimate keeps each load balancer's detail tier awake.
pub const ERRORING_SHARE: f64 = 0.05;

/// How many times something done every `every` happens in the month the plan prices.
pub fn per_month(every: Duration) -> f64 {
    MONTH_SECONDS as f64 / every.as_secs_f64().max(1.0)
}

/// Calls a month, and their share of a free quota (Alibaba and Tencent bill past one).
pub fn quota_mode(calls: f64, free_calls: f64) -> Value {
    json!({
        "calls_per_month": calls.round(),
        "share_of_free_quota": (calls / free_calls * 1000.0).round() / 1000.0,
    })
}

/// The longest each tier's data waits after its period ended before a cycle exports it.
pub fn latencies(timing: &Timing, interval: Duration) -> Value {
    let latency = |tier| tiers::worst_latency(tier, timing, interval).as_secs();
    json!({
        "sentinel": latency(Tier::Sentinel),
        "detail": latency(Tier::Detail),
        "slow": latency(Tier::Slow),
    })
}
