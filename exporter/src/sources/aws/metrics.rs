//! Where a CloudWatch metric becomes a Prometheus family: one row per metric lbtriage reads, and only
//! the metrics the cause catalog needs. A family's kind decides the treatment: counter families take
//! the `Sum` of each period once; gauge families take the newest datapoint.
//!
//! Each row also names its tier for adaptive collection (`sources/engine/tiers.rs`): the sentinel is read
//! every cycle and its alarms wake the detail tier; the slow tier holds what matters without 5xx.
//! The detail tier holds only errors that come with an alarm (an ALB answers a failed connection
//! to a target with a 502), so a back-fill over a quiet stretch adds next to nothing.

use crate::config::LoadBalancerType;
use crate::sources::engine::series::{PublishedUnit, Series};
use crate::store::families as f;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Statistic {
    Sum,
    Average,
    Minimum,
    Maximum,
}

impl Statistic {
    pub fn as_str(self) -> &'static str {
        match self {
            Statistic::Sum => "Sum",
            Statistic::Average => "Average",
            Statistic::Minimum => "Minimum",
            Statistic::Maximum => "Maximum",
        }
    }
}

/// Which dimensions a query carries: the load balancer alone, or the load balancer and one target group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    LoadBalancer,
    TargetGroup,
}

/// What a row needs beyond the generic series: the statistic and the dimensions of its query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloudWatch {
    pub statistic: Statistic,
    pub scope: Scope,
}

/// A CloudWatch row: one metric (the single term), already in the family's base unit (counts
/// are `Sum`s of the period, times are seconds).
pub type CloudWatchMetric = Series<CloudWatch>;

/// `m!(name, statistic, scope, family, labels)`: a detail-tier row.
macro_rules! m {
    ($name:literal, $statistic:expr, $scope:expr, $family:expr, $labels:expr) => {
        Series::new(
            $family,
            $labels,
            &[($name, 1.0)],
            PublishedUnit::Base,
            CloudWatch {
                statistic: $statistic,
                scope: $scope,
            },
        )
    };
}

use Scope::{LoadBalancer as Lb, TargetGroup as Tg};
use Statistic::{Average, Maximum, Minimum, Sum};

/// `AWS/ApplicationELB`. Per-code ELB metrics instead of `HTTPCode_ELB_5XX_Count`, so the rules can
/// tell 502 from 503 from 504 (other LB 5xx codes, 501/505/561, are not read). Sentinel: every
/// failure the page counts, read every minute: the two 5xx classes (the alarms) and the
/// connections rejected at capacity (no 5xx is sent for those; they wake nothing, because no
/// detail metric explains them); `HTTPCode_ELB_5XX_Count` is read only as the alarm that wakes
/// the per-code detail. Slow: the request count (the page's denominator, which
/// only weighs while something fails: a fourth sentinel metric would cost a quiet ALB $1.73 a
/// month), client TLS failures, the load balancer's 4xx and the host counts.
#[rustfmt::skip]
pub static APPLICATION: &[CloudWatchMetric] = &[
    m!("RequestCount", Sum, Lb, &f::LB_REQUESTS, &[]).slow(),
    m!("RejectedConnectionCount", Sum, Lb, &f::LB_REJECTED_CONNECTIONS, &[]).sentinel(),
    m!("HTTPCode_ELB_5XX_Count", Sum, Lb, &f::LB_RESPONSES, &[("origin", "lb"), ("code", "5xx")]).alarm_only(),
    m!("HTTPCode_Target_5XX_Count", Sum, Lb, &f::LB_RESPONSES, &[("origin", "backend"), ("code", "5xx")]).alarm(),
    m!("HTTPCode_ELB_500_Count", Sum, Lb, &f::LB_RESPONSES, &[("origin", "lb"), ("code", "500")]),
    m!("HTTPCode_ELB_502_Count", Sum, Lb, &f::LB_RESPONSES, &[("origin", "lb"), ("code", "502")]),
    m!("HTTPCode_ELB_503_Count", Sum, Lb, &f::LB_RESPONSES, &[("origin", "lb"), ("code", "503")]),
    m!("HTTPCode_ELB_504_Count", Sum, Lb, &f::LB_RESPONSES, &[("origin", "lb"), ("code", "504")]),
    m!("TargetConnectionErrorCount", Sum, Lb, &f::LB_TARGET_CONNECTION_ERRORS, &[]),
    m!("TargetTLSNegotiationErrorCount", Sum, Lb, &f::LB_TARGET_TLS_ERRORS, &[]),
    m!("TargetResponseTime", Average, Lb, &f::LB_TARGET_RESPONSE_TIME, &[]),
    // The slowest response of the period: one request at the idle timeout shows (504 signature).
    m!("TargetResponseTime", Maximum, Lb, &f::LB_TARGET_RESPONSE_TIME_MAX, &[]),
    m!("HTTPCode_ELB_4XX_Count", Sum, Lb, &f::LB_RESPONSES, &[("origin", "lb"), ("code", "4xx")]).slow(),
    m!("ClientTLSNegotiationErrorCount", Sum, Lb, &f::LB_CLIENT_TLS_ERRORS, &[]).slow(),
    // The denominator of the client TLS error share.
    m!("NewConnectionCount", Sum, Lb, &f::LB_NEW_CONNECTIONS, &[]).slow(),
    // Each load balancer node reports the targets it sees. Healthy takes the Maximum: a node in a
    // zone without targets reads 0, and "no healthy target" must mean no node sees one. Unhealthy
    // takes the Minimum, as AWS's own alarm advice does: every node agrees the target fails.
    m!("HealthyHostCount", Maximum, Tg, &f::LB_HEALTHY_TARGETS, &[]).slow(),
    m!("UnHealthyHostCount", Minimum, Tg, &f::LB_UNHEALTHY_TARGETS, &[]).slow(),
];

/// `AWS/NetworkELB`. No HTTP: the resets the load balancer or the targets send and failed source
/// ports are the alarms.
#[rustfmt::skip]
pub static NETWORK: &[CloudWatchMetric] = &[
    m!("TCP_ELB_Reset_Count", Sum, Lb, &f::LB_RESETS, &[("origin", "lb")]).alarm(),
    m!("TCP_Target_Reset_Count", Sum, Lb, &f::LB_RESETS, &[("origin", "target")]).alarm(),
    m!("PortAllocationErrorCount", Sum, Lb, &f::LB_PORT_ALLOCATION_ERRORS, &[]).alarm(),
    m!("TargetTLSNegotiationErrorCount", Sum, Lb, &f::LB_TARGET_TLS_ERRORS, &[]),
    // Clients reset flows all the time: traffic, not an error of the load balancer.
    m!("TCP_Client_Reset_Count", Sum, Lb, &f::LB_RESETS, &[("origin", "client")]).slow(),
    m!("ClientTLSNegotiationErrorCount", Sum, Lb, &f::LB_CLIENT_TLS_ERRORS, &[]).slow(),
    m!("NewFlowCount", Sum, Lb, &f::LB_NEW_CONNECTIONS, &[]).slow(),
    m!("HealthyHostCount", Maximum, Tg, &f::LB_HEALTHY_TARGETS, &[]).slow(),
    m!("UnHealthyHostCount", Minimum, Tg, &f::LB_UNHEALTHY_TARGETS, &[]).slow(),
];

/// `AWS/ELB` (Classic). It reports only the 5xx class, and has no target groups. Sentinel: requests
/// and both 5xx classes, exported as they are.
#[rustfmt::skip]
pub static CLASSIC: &[CloudWatchMetric] = &[
    m!("RequestCount", Sum, Lb, &f::LB_REQUESTS, &[]).sentinel(),
    m!("HTTPCode_ELB_5XX", Sum, Lb, &f::LB_RESPONSES, &[("origin", "lb"), ("code", "5xx")]).alarm(),
    m!("HTTPCode_Backend_5XX", Sum, Lb, &f::LB_RESPONSES, &[("origin", "backend"), ("code", "5xx")]).alarm(),
    // Includes health-check connection failures, unlike the ALB metric.
    m!("BackendConnectionErrors", Sum, Lb, &f::LB_TARGET_CONNECTION_ERRORS, &[]),
    m!("SpilloverCount", Sum, Lb, &f::LB_SPILLOVER, &[]),
    m!("Latency", Average, Lb, &f::LB_TARGET_RESPONSE_TIME, &[]),
    m!("Latency", Maximum, Lb, &f::LB_TARGET_RESPONSE_TIME_MAX, &[]),
    m!("HTTPCode_ELB_4XX", Sum, Lb, &f::LB_RESPONSES, &[("origin", "lb"), ("code", "4xx")]).slow(),
    // A queue builds before it spills over: worth seeing without a 5xx.
    m!("SurgeQueueLength", Maximum, Lb, &f::LB_SURGE_QUEUE_LENGTH, &[]).slow(),
    // Without an AvailabilityZone dimension, Classic counts across zones only with cross-zone
    // load balancing on; otherwise per zone, and the Maximum is the best zone's view.
    m!("HealthyHostCount", Maximum, Lb, &f::LB_HEALTHY_TARGETS, &[]).slow(),
    m!("UnHealthyHostCount", Minimum, Lb, &f::LB_UNHEALTHY_TARGETS, &[]).slow(),
];

pub fn for_type(lb_type: LoadBalancerType) -> (&'static str, &'static [CloudWatchMetric]) {
    match lb_type {
        LoadBalancerType::Application => ("AWS/ApplicationELB", APPLICATION),
        LoadBalancerType::Network => ("AWS/NetworkELB", NETWORK),
        LoadBalancerType::Classic => ("AWS/ELB", CLASSIC),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Collection;
    use crate::sources::engine::tiers::Tier;
    use crate::store::Kind;

    /// Each node reports the targets it sees: "no healthy target" must mean no node sees one
    /// (Maximum), "unhealthy" that every node agrees (Minimum, as AWS alarms on it).
    #[test]
    fn host_counts_read_healthy_at_the_maximum_and_unhealthy_at_the_minimum() {
        for lb_type in LoadBalancerType::ALL {
            let (_, table) = for_type(lb_type);
            let statistic = |name: &str| {
                table
                    .iter()
                    .find(|m| m.metric() == name)
                    .map(|m| m.cloud.statistic)
            };
            assert_eq!(
                statistic("HealthyHostCount"),
                Some(Statistic::Maximum),
                "{lb_type:?}"
            );
            assert_eq!(
                statistic("UnHealthyHostCount"),
                Some(Statistic::Minimum),
                "{lb_type:?}"
            );
        }
    }

    /// Alarms are read every cycle; a metric read only as an alarm is one; the slow tier holds
    /// no alarm; and every table has at least one alarm, or its detail tier would never wake.
    #[test]
    fn tiers_are_consistent() {
        for lb_type in LoadBalancerType::ALL {
            let (_, table) = for_type(lb_type);
            for metric in table {
                if metric.alarm {
                    assert_eq!(metric.tier, Tier::Sentinel, "{}", metric.metric());
                    assert_eq!(metric.family.kind, Kind::Counter, "{}", metric.metric());
                }
                if !metric.exported {
                    assert!(metric.alarm, "{}", metric.metric());
                    assert!(!metric.read_in(Collection::Full), "{}", metric.metric());
                }
            }
            assert!(table.iter().any(|m| m.alarm), "{lb_type:?}");
        }
    }

    #[test]
    fn counters_read_sums_and_gauges_do_not() {
        for lb_type in LoadBalancerType::ALL {
            let (_, table) = for_type(lb_type);
            let mut seen = std::collections::HashSet::new();
            for metric in table {
                assert!(
                    seen.insert((metric.metric(), metric.cloud.statistic)),
                    "{} listed twice",
                    metric.metric()
                );
                let is_counter = metric.family.kind == Kind::Counter;
                assert_eq!(
                    is_counter,
                    metric.cloud.statistic == Statistic::Sum,
                    "{}",
                    metric.metric()
                );
                assert_ne!(metric.family.kind, Kind::Info, "{}", metric.metric());
            }
        }
    }
}
