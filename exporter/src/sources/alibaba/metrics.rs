//! Where each CloudMonitor metric becomes a family: the one table of the Alibaba source.
//!
//! A series is a signed sum of metrics per instance and period (SLB has no metric for responses
//! the load balancer itself generated, so they are `InstanceStatusCode5xx − InstanceUpstreamCode5xx`),
//! converted to the family's base unit. Rates (per second) become counters by rate × period, each
//! period once; levels (host counts, response time, utilisation) are gauges.

use std::collections::BTreeSet;

use crate::config::AlibabaNamespace;
use crate::sources::engine::series::{self, PublishedUnit};
use crate::sources::engine::tiers::Tier;
use crate::store::families::{self as f, Family};

/// How per-listener-port datapoints of one instance combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ports {
    /// Added up (traffic on every listener).
    Sum,
    /// The worst listener.
    Max,
    /// One series per listener, `target_group="listener:<port>"`: each listener has its own
    /// backend servers, as an AWS target group does.
    Each,
}

/// What a row needs beyond the generic series: its namespace, and how its listeners combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CmsRow {
    pub namespace: AlibabaNamespace,
    pub ports: Ports,
}

pub type Series = series::Series<CmsRow>;

const fn s(
    namespace: AlibabaNamespace,
    family: &'static Family,
    labels: &'static [(&'static str, &'static str)],
    terms: &'static [(&'static str, f64)],
    unit: PublishedUnit,
    ports: Ports,
) -> Series {
    Series::new(family, labels, terms, unit, CmsRow { namespace, ports })
}

use AlibabaNamespace::{Alb, Slb};
use Ports::{Each, Max, Sum};
use PublishedUnit::{Base as Count, BitsPerSecond, Milliseconds, PerSecond, Percent};

/// Tiers as for AWS (`sources/engine/tiers.rs`): requests and the two 5xx series every cycle, the 5xx as
/// alarms; the response time and QPS utilisation (an SLB at its QPS limit answers 503) only while
/// an instance errs; drops, 4xx, connection utilisation and host counts on the slow cadence. The
/// tier is per series; a metric is read in the most frequent tier of the series using it.
pub static SERIES: &[Series] = &[
    // SLB (CLB): instance-level rates, per-listener L4 drops and backend health.
    s(Slb, &f::LB_REQUESTS, &[], &[("InstanceQps", 1.0)], PerSecond, Sum).slow(),
    s(
        Slb,
        &f::LB_RESPONSES,
        &[("origin", "lb"), ("code", "5xx")],
        &[("InstanceStatusCode5xx", 1.0), ("InstanceUpstreamCode5xx", -1.0)],
        PerSecond,
        Sum,
    )
    .alarm(),
    s(
        Slb,
        &f::LB_RESPONSES,
        &[("origin", "backend"), ("code", "5xx")],
        &[("InstanceUpstreamCode5xx", 1.0)],
        PerSecond,
        Sum,
    )
    .alarm(),
    // Listener-level 4xx (instance level has none): what SLB answered itself, 499 when the
    // client closed first, is the difference from what the backends returned.
    s(
        Slb,
        &f::LB_RESPONSES,
        &[("origin", "lb"), ("code", "4xx")],
        &[("StatusCode4xx", 1.0), ("UpstreamCode4xx", -1.0)],
        PerSecond,
        Sum,
    )
    .slow(),
    s(
        Slb,
        &f::LB_REJECTED_CONNECTIONS,
        &[],
        &[("InstanceDropConnection", 1.0)],
        PerSecond,
        Sum,
    )
    .sentinel(),
    s(
        Slb,
        &f::LB_DROPPED_PACKETS,
        &[("direction", "rx")],
        &[("DropPacketRX", 1.0)],
        PerSecond,
        Sum,
    )
    .slow(),
    s(
        Slb,
        &f::LB_DROPPED_PACKETS,
        &[("direction", "tx")],
        &[("DropPacketTX", 1.0)],
        PerSecond,
        Sum,
    )
    .slow(),
    s(
        Slb,
        &f::LB_DROPPED_TRAFFIC,
        &[("direction", "rx")],
        &[("DropTrafficRX", 1.0)],
        BitsPerSecond,
        Sum,
    )
    .slow(),
    s(
        Slb,
        &f::LB_DROPPED_TRAFFIC,
        &[("direction", "tx")],
        &[("DropTrafficTX", 1.0)],
        BitsPerSecond,
        Sum,
    )
    .slow(),
    s(
        Slb,
        &f::LB_HEALTHY_TARGETS,
        &[],
        &[("HeathyServerCount", 1.0)],
        Count,
        Each,
    )
    .slow(),
    s(
        Slb,
        &f::LB_UNHEALTHY_TARGETS,
        &[],
        &[("UnhealthyServerCount", 1.0)],
        Count,
        Each,
    )
    .slow(),
    s(
        Slb,
        &f::LB_TARGET_RESPONSE_TIME,
        &[],
        &[("UpstreamRt", 1.0)],
        Milliseconds,
        Max,
    ),
    s(
        Slb,
        &f::LB_QPS_UTILIZATION,
        &[],
        &[("InstanceQpsUtilization", 1.0)],
        Percent,
        Max,
    ),
    s(
        Slb,
        &f::LB_CONNECTION_UTILIZATION,
        &[("limit", "max_connections")],
        &[("InstanceMaxConnectionUtilization", 1.0)],
        Percent,
        Max,
    )
    .slow(),
    s(
        Slb,
        &f::LB_CONNECTION_UTILIZATION,
        &[("limit", "new_connections")],
        &[("InstanceNewConnectionUtilization", 1.0)],
        Percent,
        Max,
    )
    .slow(),
    // ALB: the statistic is `Value`; codes the ALB generated are reported per code.
    s(
        Alb,
        &f::LB_REQUESTS,
        &[],
        &[("LoadBalancerQPS", 1.0)],
        PerSecond,
        Sum,
    )
    .slow(),
    // `LoadBalancerHTTPCode5XX` counts the 5xx the ALB returned to clients, passed-through ones
    // included (as SLB's `StatusCode5xx` does); what the ALB generated itself is the difference
    // from the backends' count. Its per-code metrics cannot be split the same way, so ALB reports
    // the class only.
    s(
        Alb,
        &f::LB_RESPONSES,
        &[("origin", "lb"), ("code", "5xx")],
        &[
            ("LoadBalancerHTTPCode5XX", 1.0),
            ("LoadBalancerHTTPCodeUpstream5XX", -1.0),
        ],
        PerSecond,
        Sum,
    )
    .alarm(),
    s(
        Alb,
        &f::LB_RESPONSES,
        &[("origin", "backend"), ("code", "5xx")],
        &[("LoadBalancerHTTPCodeUpstream5XX", 1.0)],
        PerSecond,
        Sum,
    )
    .alarm(),
    s(
        Alb,
        &f::LB_REJECTED_CONNECTIONS,
        &[],
        &[("LoadBalancerRejectedConnection", 1.0)],
        PerSecond,
        Sum,
    )
    .sentinel(),
    s(
        Alb,
        &f::LB_TARGET_CONNECTION_ERRORS,
        &[],
        &[("LoadBalancerUpstreamConnectionError", 1.0)],
        PerSecond,
        Sum,
    ),
    s(
        Alb,
        &f::LB_TARGET_TLS_ERRORS,
        &[],
        &[("LoadBalancerUpstreamTLSNegotiationError", 1.0)],
        PerSecond,
        Sum,
    ),
    s(
        Alb,
        &f::LB_CLIENT_TLS_ERRORS,
        &[],
        &[("LoadBalancerClientTLSNegotiationError", 1.0)],
        PerSecond,
        Sum,
    )
    .slow(),
    s(
        Alb,
        &f::LB_TARGET_RESPONSE_TIME,
        &[],
        &[("LoadBalancerUpstreamResponseTime", 1.0)],
        Milliseconds,
        Max,
    ),
    s(
        Alb,
        &f::LB_HEALTHY_TARGETS,
        &[],
        &[("LoadBalancerHealthyHostCount", 1.0)],
        Count,
        Each,
    )
    .slow(),
    s(
        Alb,
        &f::LB_UNHEALTHY_TARGETS,
        &[],
        &[("LoadBalancerUnHealthyHostCount", 1.0)],
        Count,
        Each,
    )
    .slow(),
];

/// The statistic each namespace reports.
pub fn statistic(namespace: AlibabaNamespace) -> &'static str {
    match namespace {
        AlibabaNamespace::Slb => "Average",
        AlibabaNamespace::Alb => "Value",
    }
}

/// The dimension naming the instance.
pub fn instance_dimension(namespace: AlibabaNamespace) -> &'static str {
    match namespace {
        AlibabaNamespace::Slb => "instanceId",
        AlibabaNamespace::Alb => "loadBalancerId",
    }
}

/// The `lb_type` label.
pub fn lb_type(namespace: AlibabaNamespace) -> &'static str {
    match namespace {
        AlibabaNamespace::Slb => "slb",
        AlibabaNamespace::Alb => "alb",
    }
}

/// Every metric a namespace's series read, each once.
pub fn metrics(namespace: AlibabaNamespace) -> BTreeSet<&'static str> {
    SERIES
        .iter()
        .filter(|series| series.cloud.namespace == namespace)
        .flat_map(|series| series.terms.iter().map(|(metric, _)| *metric))
        .collect()
}

/// The metrics a namespace reads in a tier: each metric in the most frequent tier of the series
/// using it, so a metric shared with a sentinel series is read every cycle.
pub fn metrics_in(namespace: AlibabaNamespace, tier: Tier) -> BTreeSet<&'static str> {
    metrics(namespace)
        .into_iter()
        .filter(|metric| metric_tier(namespace, metric) == Some(tier))
        .collect()
}

/// Whether a metric answers one datapoint per listener (SLB's listener-level metrics) rather than
/// one per instance: what its pages depend on.
pub fn per_listener(namespace: AlibabaNamespace, metric: &str) -> bool {
    namespace == AlibabaNamespace::Slb && !metric.starts_with("Instance")
}

/// Whether every series reading `metric` is also read while an instance's detail tier is awake.
pub fn read_while_awake(namespace: AlibabaNamespace, metric: &str) -> bool {
    SERIES
        .iter()
        .filter(|s| s.cloud.namespace == namespace && s.terms.iter().any(|(m, _)| *m == metric))
        .all(|s| crate::sources::engine::tiers::read_while_awake(s.family))
}

fn metric_tier(namespace: AlibabaNamespace, metric: &str) -> Option<Tier> {
    SERIES
        .iter()
        .filter(|s| s.cloud.namespace == namespace && s.terms.iter().any(|(m, _)| *m == metric))
        .map(|s| s.tier)
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Kind;

    /// A series' metrics are all read in its tier (none would arrive a cycle late), alarms are
    /// counters of the sentinel, and each namespace has one.
    #[test]
    fn each_series_reads_its_metrics_in_its_own_tier() {
        for series in SERIES {
            for (metric, _) in series.terms {
                assert_eq!(
                    metric_tier(series.cloud.namespace, metric),
                    Some(series.tier),
                    "{metric}"
                );
            }
            if series.alarm {
                assert_eq!(series.tier, Tier::Sentinel);
                assert_eq!(series.family.kind, Kind::Counter);
            }
        }
        for namespace in AlibabaNamespace::ALL {
            assert!(SERIES.iter().any(|s| s.cloud.namespace == namespace && s.alarm));
        }
    }

    #[test]
    fn rates_feed_counters_and_levels_feed_gauges() {
        for series in SERIES {
            let rate = matches!(series.unit, PerSecond | BitsPerSecond);
            assert_eq!(
                rate,
                series.family.kind == Kind::Counter,
                "{}: {:?}",
                series.family.name,
                series.terms
            );
        }
    }

    #[test]
    fn units_become_base_units() {
        let series = |metric: &str| SERIES.iter().find(|s| s.terms[0].0 == metric).expect("declared");
        assert_eq!(series("InstanceQps").convert(2.5, 60), 150.0);
        assert_eq!(series("DropTrafficRX").convert(800.0, 60), 6000.0);
        assert_eq!(series("UpstreamRt").convert(250.0, 60), 0.25);
        assert_eq!(series("InstanceQpsUtilization").convert(100.0, 60), 1.0);
    }
}
