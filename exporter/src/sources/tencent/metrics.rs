//! Where each Cloud Monitor metric of a CLB instance becomes a family: the one table of the
//! Tencent source (docs/metrics.md renders it).
//!
//! Sources: Tencent Cloud's CLB metric lists for `QCE/LB_PUBLIC` and `QCE/LB_PRIVATE` (Cloud
//! Monitor, "Public Network CLB" / "Private Network CLB"; CLB, "Monitoring Metrics"). Instance-level
//! data is asked for by the `vip` dimension (with `vpcId` for a private CLB), at 60 s.
//!
//! - `ClbHttp5xx`, `ClbHttp502`, ... count the status codes CLB returned to clients, "the sum of
//!   CLB and real server return codes", in codes per minute; `Http5xx`, `Http502`, ... count what
//!   the real servers returned. What CLB generated itself is the difference, per period.
//! - `TotalReq` is requests per second; `InDropPkts`/`OutDropPkts` packets per second and
//!   `InDropBits`/`OutDropBits` bits per second dropped at the bandwidth cap: × period.
//! - `DropTotalConns` is the connections dropped in the period (a count); `SnatFail` the
//!   connections that found no SNAT port (private CLB with SNAT only).
//! - `ConcurConnVipRatio`/`NewConnVipRatio` are % of the instance's specification (LCU and
//!   rate-limited shared instances only); `RspAvg`/`RspMax` the backend response time in ms.
//!
//! Host counts come from the CLB API (`DescribeTargetHealth`), not from a metric.

use std::collections::BTreeSet;

use crate::config::{Collection, TencentNamespace};
use crate::sources::engine::series::{self, PublishedUnit};
use crate::sources::engine::tiers::Tier;
use crate::store::families::{self as f, Family};

/// What a row needs beyond the generic series: whether only private CLB publishes it (SNAT).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClbRow {
    pub private_only: bool,
}

pub type Series = series::Series<ClbRow>;

impl Series {
    pub fn in_namespace(&self, namespace: TencentNamespace) -> bool {
        !self.cloud.private_only || namespace == TencentNamespace::Private
    }
}

const fn s(
    family: &'static Family,
    labels: &'static [(&'static str, &'static str)],
    terms: &'static [(&'static str, f64)],
    unit: PublishedUnit,
) -> Series {
    Series::new(family, labels, terms, unit, ClbRow { private_only: false })
}

/// Only private CLB publishes the row.
const PRIVATE: ClbRow = ClbRow { private_only: true };

use PublishedUnit::{Base as Count, BitsPerSecond, Milliseconds, PerSecond, Percent};

/// Tiers as for AWS (`sources/engine/tiers.rs`), with a sentinel of two metrics: `ClbHttp5xx`,
/// which counts every 5xx CLB returned, the real servers' included, so one alarm covers both
/// origins (read as an alarm only, never exported), and `DropTotalConns`, the connections dropped
/// at the instance's cap, which fail users without a 5xx (counted for the page, waking nothing). The detail tier, back-filled from its
/// watermark, exports the real servers' class (`Http5xx`) and what CLB generated per code (502,
/// 503, 504, as for an ALB, so the rules can tell them apart), and the response times. Requests
/// (the page's denominator), packet drops, utilisation and SNAT failures are read on the slow
/// cadence.
pub static SERIES: &[Series] = &[
    s(&f::LB_REQUESTS, &[], &[("TotalReq", 1.0)], PerSecond).slow(),
    s(&f::LB_RESPONSES, &[], &[("ClbHttp5xx", 1.0)], Count).alarm_only(),
    s(
        &f::LB_RESPONSES,
        &[("origin", "backend"), ("code", "5xx")],
        &[("Http5xx", 1.0)],
        Count,
    ),
    s(
        &f::LB_RESPONSES,
        &[("origin", "lb"), ("code", "502")],
        &[("ClbHttp502", 1.0), ("Http502", -1.0)],
        Count,
    ),
    s(
        &f::LB_RESPONSES,
        &[("origin", "lb"), ("code", "503")],
        &[("ClbHttp503", 1.0), ("Http503", -1.0)],
        Count,
    ),
    s(
        &f::LB_RESPONSES,
        &[("origin", "lb"), ("code", "504")],
        &[("ClbHttp504", 1.0), ("Http504", -1.0)],
        Count,
    ),
    s(&f::LB_TARGET_RESPONSE_TIME, &[], &[("RspAvg", 1.0)], Milliseconds),
    s(
        &f::LB_TARGET_RESPONSE_TIME_MAX,
        &[],
        &[("RspMax", 1.0)],
        Milliseconds,
    ),
    s(
        &f::LB_REJECTED_CONNECTIONS,
        &[],
        &[("DropTotalConns", 1.0)],
        Count,
    )
    .sentinel(),
    s(
        &f::LB_DROPPED_PACKETS,
        &[("direction", "rx")],
        &[("InDropPkts", 1.0)],
        PerSecond,
    )
    .slow(),
    s(
        &f::LB_DROPPED_PACKETS,
        &[("direction", "tx")],
        &[("OutDropPkts", 1.0)],
        PerSecond,
    )
    .slow(),
    s(
        &f::LB_DROPPED_TRAFFIC,
        &[("direction", "rx")],
        &[("InDropBits", 1.0)],
        BitsPerSecond,
    )
    .slow(),
    s(
        &f::LB_DROPPED_TRAFFIC,
        &[("direction", "tx")],
        &[("OutDropBits", 1.0)],
        BitsPerSecond,
    )
    .slow(),
    s(
        &f::LB_CONNECTION_UTILIZATION,
        &[("limit", "max_connections")],
        &[("ConcurConnVipRatio", 1.0)],
        Percent,
    )
    .slow(),
    s(
        &f::LB_CONNECTION_UTILIZATION,
        &[("limit", "new_connections")],
        &[("NewConnVipRatio", 1.0)],
        Percent,
    )
    .slow(),
    s(&f::LB_PORT_ALLOCATION_ERRORS, &[], &[("SnatFail", 1.0)], Count)
        .slow()
        .with(PRIVATE),
];

/// The metrics a namespace reads in a tier and collection mode: each metric in the most frequent
/// tier of the series using it, so a metric shared with a sentinel series is read every cycle.
pub fn metrics_in(namespace: TencentNamespace, tier: Tier, collection: Collection) -> BTreeSet<&'static str> {
    let read = |s: &&Series| s.in_namespace(namespace) && s.read_in(collection);
    let all: BTreeSet<&'static str> = SERIES
        .iter()
        .filter(read)
        .flat_map(|s| s.terms.iter().map(|(metric, _)| *metric))
        .collect();
    all.into_iter()
        .filter(|metric| {
            SERIES
                .iter()
                .filter(read)
                .filter(|s| s.terms.iter().any(|(m, _)| m == metric))
                .map(|s| s.tier)
                .min()
                == Some(tier)
        })
        .collect()
}

/// The dimensions naming an instance in a namespace: its VIP, and its VPC for a private CLB.
pub fn dimensions(namespace: TencentNamespace, vip: &str, vpc_id: &str) -> Vec<(&'static str, String)> {
    match namespace {
        TencentNamespace::Public => vec![("vip", vip.to_string())],
        TencentNamespace::Private => vec![("vip", vip.to_string()), ("vpcId", vpc_id.to_string())],
    }
}

/// The `lb_type` label.
pub fn lb_type(namespace: TencentNamespace) -> &'static str {
    match namespace {
        TencentNamespace::Public => "clb_public",
        TencentNamespace::Private => "clb_private",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Kind;

    #[test]
    fn rates_and_counts_feed_counters_and_levels_feed_gauges() {
        for series in SERIES {
            let counted = matches!(series.unit, PerSecond | BitsPerSecond | Count);
            assert_eq!(counted, series.family.kind == Kind::Counter, "{:?}", series.terms);
            if series.alarm {
                assert_eq!(series.tier, Tier::Sentinel);
                assert_eq!(series.family.kind, Kind::Counter);
            }
        }
    }

    /// A series' metrics are all read in its own tier, in both modes (none arrives a cycle late).
    #[test]
    fn each_series_reads_its_metrics_in_its_own_tier() {
        for namespace in TencentNamespace::ALL {
            for collection in [Collection::Adaptive, Collection::Full] {
                for series in SERIES
                    .iter()
                    .filter(|s| s.in_namespace(namespace) && s.read_in(collection))
                {
                    for (metric, _) in series.terms {
                        assert!(
                            metrics_in(namespace, series.tier, collection).contains(metric),
                            "{metric} in {:?}",
                            series.tier
                        );
                    }
                }
            }
        }
        assert!(!metrics_in(TencentNamespace::Public, Tier::Slow, Collection::Full).contains("SnatFail"));
        assert!(metrics_in(TencentNamespace::Private, Tier::Slow, Collection::Full).contains("SnatFail"));
        // Full collection does not read the alarm-only class, adaptive reads it every cycle.
        assert!(
            !metrics_in(TencentNamespace::Public, Tier::Sentinel, Collection::Full).contains("ClbHttp5xx")
        );
        assert!(
            metrics_in(TencentNamespace::Public, Tier::Sentinel, Collection::Adaptive).contains("ClbHttp5xx")
        );
    }

    #[test]
    fn units_become_base_units() {
        let series = |metric: &str| SERIES.iter().find(|s| s.terms[0].0 == metric).expect("declared");
        assert_eq!(series("TotalReq").convert(2.5, 60), 150.0);
        assert_eq!(series("ClbHttp502").convert(7.0, 60), 7.0);
        assert_eq!(series("InDropBits").convert(800.0, 60), 6000.0);
        assert_eq!(series("RspMax").convert(250.0, 60), 0.25);
        assert_eq!(series("ConcurConnVipRatio").convert(100.0, 60), 1.0);
    }
}
