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

/// How many periods further back a read of `periods` periods of `series` series can reach without
/// another page. Reads re-read unsettled periods only that far (`settle` is the cap): a fleet of 90
/// instances reconciles ten minutes for nothing, one of 500 nothing at all, and no fleet pays a
/// page for it.
pub fn free_reach(series: u64, periods: u64) -> u64 {
    if series == 0 {
        return 0;
    }
    // `(start, end]` holds the period at `end` too.
    let points = series * (periods + 1);
    let pages = points.div_ceil(POINTS_PER_PAGE).max(1);
    (pages * POINTS_PER_PAGE / series).saturating_sub(periods + 1)
}

/// The calls a job's reads take for a namespace holding `fleet`: one per metric and page.
pub fn calls_per_read(job: &AlibabaJob, namespace: AlibabaNamespace, fleet: Fleet) -> CallsPerRead {
    let timing = timing(job);
    let period = timing.period.as_secs().max(1);
    // Reads re-read unsettled periods only as far as their pages hold anyway (`free_reach`), so
    // `settle` adds no call.
    let per_cycle = job.interval.as_duration().as_secs().div_ceil(period).max(1);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The reach is what the pages of the plain read leave room for, and never costs a page.
    #[test]
    fn the_free_reach_fills_the_pages_already_read() {
        // One period (two points a series: `(start, end]`) of 90 instances: 180 of 1,000 points.
        assert_eq!(free_reach(90, 1), 9);
        // 500 instances fill the page with one period: nothing to spare.
        assert_eq!(free_reach(500, 1), 0);
        // 400: 800 points, room for 200 more, half a period each... no whole one.
        assert_eq!(free_reach(400, 1), 0);
        // 300 instances over two pages' worth (four periods: 1,500 points) leave room for one.
        assert_eq!(free_reach(300, 4), 1);
        assert_eq!(free_reach(0, 1), 0);
        for (series, periods) in [(1, 1), (90, 1), (333, 2), (499, 3), (2500, 1)] {
            let reach = free_reach(series, periods);
            let pages = |periods: u64| (series * (periods + 1)).div_ceil(POINTS_PER_PAGE);
            assert_eq!(pages(periods + reach), pages(periods), "{series} × {periods}");
        }
    }
}
