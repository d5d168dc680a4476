//! What a job's reads cost on CloudMonitor: `DescribeMetricList` calls per read of each tier,
//! pages included (`lbtriage plan` prices them; the source's tests check a run spends as much).

use super::metrics;
use std::time::Duration;

use crate::config::{AlibabaJob, AlibabaNamespace, Collection};
use crate::sources::engine::counting::GAUGE_LOOKBACK_PERIODS;
use crate::sources::engine::tiers::{Tier, Timing};

/// The tier timing of a job. CloudMonitor answers at most 1,000 datapoints per call, so a slow
/// read of 15 one-minute periods of 500 instances would take 8 calls per metric: the slow tier
/// reads 300 s periods instead (one of the documented 60/300/900), once `slow_interval` allows.
pub fn timing(job: &AlibabaJob) -> Timing {
    let period = job.period.as_duration();
    let coarse = Duration::from_secs(300);
    let slow_interval = job.slow_interval.as_duration();
    let slow_period = if slow_interval >= coarse && period <= coarse && job.collection == Collection::Adaptive
    {
        coarse
    } else {
        period
    };
    Timing {
        collection: job.collection,
        period,
        delay: job.delay.as_duration(),
        slow_interval,
        slow_period,
        settle: job.settle.as_duration(),
    }
}

/// What one namespace of a region holds, as `lbtriage plan` finds it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Fleet {
    pub instances: u64,
    /// (instance, listener) pairs: per-listener metrics return one datapoint per listener.
    pub listeners: u64,
}

/// `DescribeMetricList` calls per read of each tier for one namespace, pages included.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CallsPerRead {
    /// Every cycle (0 for a namespace without instances: it is probed on the slow cadence).
    pub sentinel: f64,
    /// Every `slow_interval` (for an empty namespace: its sentinel and slow metrics, once).
    pub slow: f64,
    /// Every cycle in which an instance of the namespace errs: detail and host counts.
    pub awake: f64,
    /// Every cycle in `full` collection.
    pub full: f64,
}

/// The documented page size of `DescribeMetricList`.
const POINTS_PER_PAGE: u64 = 1000;

/// The calls a job's reads take for a namespace holding `fleet`: one per metric and page.
pub fn calls_per_read(job: &AlibabaJob, namespace: AlibabaNamespace, fleet: Fleet) -> CallsPerRead {
    let timing = timing(job);
    let period = timing.period.as_secs().max(1);
    // A read also reaches back over the unsettled periods (`settle`, off by default here: every
    // ten of them on 500 instances is another page per metric).
    let per_cycle =
        job.interval.as_duration().as_secs().div_ceil(period).max(1) + timing.settle.as_secs() / period;
    let per_slow_read = (timing.slow_interval.as_secs() / timing.slow_period.as_secs().max(1)).max(1);
    let pages = |tier: Tier, periods: u64| -> f64 {
        metrics::metrics_in(namespace, tier)
            .iter()
            .map(|metric| {
                let series = if metrics::per_listener(namespace, metric) {
                    fleet.listeners
                } else {
                    fleet.instances
                };
                // `(start, end]` holds the period at `end` too.
                (series * (periods + 1)).div_ceil(POINTS_PER_PAGE).max(1) as f64
            })
            .sum()
    };
    let names = |tier: Tier| metrics::metrics_in(namespace, tier).len() as f64;
    let host_counts = metrics::metrics_in(namespace, Tier::Slow)
        .iter()
        .filter(|m| metrics::read_while_awake(namespace, m))
        .count() as f64;
    // In `full`, the detail tier's gauges are read over the gauge lookback every cycle.
    let full = pages(Tier::Sentinel, per_cycle)
        + pages(Tier::Detail, GAUGE_LOOKBACK_PERIODS as u64)
        + pages(Tier::Slow, per_cycle);
    if fleet.instances == 0 {
        return CallsPerRead {
            sentinel: 0.0,
            slow: names(Tier::Sentinel) + names(Tier::Slow),
            awake: 0.0,
            full,
        };
    }
    CallsPerRead {
        sentinel: pages(Tier::Sentinel, per_cycle),
        slow: pages(Tier::Slow, per_slow_read),
        awake: names(Tier::Detail) + host_counts,
        full,
    }
}
