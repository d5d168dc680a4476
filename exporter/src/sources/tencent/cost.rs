//! What a job's reads cost in Cloud Monitor requests, for `lbtriage plan`: `GetMonitorData` takes
//! one metric of at most ten instances, so a read costs its metrics × the tens of instances.

use std::collections::BTreeMap;

use super::inventory::IDS_PER_CALL;
use super::metrics::metrics_in;
use super::monitor::INSTANCES_PER_CALL;
use crate::config::{Collection, TencentJob, TencentNamespace};
use crate::sources::engine::tiers::Tier;

/// `GetMonitorData` requests per read, and the CLB calls of one inventory.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Calls {
    /// Every cycle with a new complete period.
    pub sentinel: f64,
    /// Every `slow_interval`.
    pub slow: f64,
    /// Every cycle while one instance errs: its detail metrics and its backend health.
    pub awake: f64,
    /// Every cycle in `full` collection.
    pub full: f64,
    /// Every `discovery_ttl`: `DescribeLoadBalancers` pages and `DescribeTargetHealth` calls.
    pub inventory: f64,
}

pub fn calls_per_read(job: &TencentJob, instances: &BTreeMap<TencentNamespace, u64>) -> Calls {
    let mut calls = Calls::default();
    let names = |namespace, tier, collection| metrics_in(namespace, tier, collection).len() as f64;
    for (namespace, count) in instances.iter().filter(|(_, count)| **count > 0) {
        let namespace = *namespace;
        let tens = count.div_ceil(INSTANCES_PER_CALL as u64) as f64;
        calls.sentinel += names(namespace, Tier::Sentinel, Collection::Adaptive) * tens;
        calls.slow += names(namespace, Tier::Slow, Collection::Adaptive) * tens;
        calls.awake = calls
            .awake
            .max(names(namespace, Tier::Detail, Collection::Adaptive) + 1.0);
        calls.full += Tier::ALL
            .iter()
            .map(|tier| names(namespace, *tier, Collection::Full))
            .sum::<f64>()
            * tens;
    }
    let total: u64 = instances.values().sum();
    calls.inventory = total.div_ceil(100).max(1) as f64 + total.div_ceil(IDS_PER_CALL as u64) as f64;
    if job.collection == Collection::Full {
        calls.awake = 0.0;
    }
    calls
}
