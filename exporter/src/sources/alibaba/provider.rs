//! The Alibaba Cloud row of the provider registry: one unit per job (its regions share the job's
//! call-rate bound, as the limit is the account's), the families SLB and ALB fill, and where each
//! family comes from.

use std::collections::BTreeSet;

use super::inventory::{
    API_DESCRIBE_HEALTH_STATUS, API_DESCRIBE_INSTANCES, API_DESCRIBE_LOAD_BALANCERS, API_LIST_LOAD_BALANCERS,
    API_LIST_SERVER_GROUPS, API_LIST_SERVER_GROUP_SERVERS,
};
use super::metrics::{self, Ports, SERIES};
use super::AlibabaSource;
use crate::config::{AlibabaNamespace, Config};
use crate::runtime::system_clock;
use crate::sources::engine::series::PublishedUnit;
use crate::sources::row::{label_suffix, shared_rate_group, terms_text, LbKind, Provider, SourceGroup};
use crate::store::families::{Family, LB_INFO, LB_TARGET_HEALTH};

pub static PROVIDER: Provider = Provider {
    name: "alibaba",
    title: "Alibaba Cloud",
    kinds: &[SLB, ALB],
    source_groups,
    families_fed,
    mapping,
    policy_file: "deploy/iam/alibaba-ram-policy.json",
    actions,
    notes: &[
        "SLB has no metric for responses the load balancer generated, so they are
         `InstanceStatusCode5xx − InstanceUpstreamCode5xx` per period (never below zero), and no
         QPS-throttled count: `lbtriage_lb_qps_utilization_ratio` at 1 with load-balancer 5xx stands
         for it. Rates (Count/s, bit/s) become counters by rate × period.",
        "Instances are the ones the SLB and ALB APIs list, re-read every `discovery_ttl`; a
         CloudMonitor datapoint of an instance they do not list is ignored, and a deleted instance's
         series disappear with it.",
    ],
    labels: "`lb` is the instance ID (`lb-...` for SLB, `alb-...` for ALB); `lb_type` is `slb` or `alb`; `target_group` is `listener:<port>` on SLB (each listener's backend servers).",
    fuzz: super::datapoints::fuzz,
    plan: super::plan::plan,
    credential_env: &[super::client::KEYS.env_id, super::client::KEYS.env_secret],
};

fn source_groups(config: &Config) -> Vec<SourceGroup> {
    config
        .alibaba
        .iter()
        .map(|job| {
            shared_rate_group("alibaba", job, |job, region, limiter, discovered| {
                AlibabaSource::new(job, region, limiter, system_clock()).with_discovered(discovered)
            })
        })
        .collect()
}

const SLB: LbKind = LbKind {
    id: "alibaba_slb",
    title: "Alibaba SLB",
};
const ALB: LbKind = LbKind {
    id: "alibaba_alb",
    title: "Alibaba ALB",
};

fn families_fed(kind: LbKind) -> Option<BTreeSet<&'static str>> {
    let namespace = match kind {
        SLB => AlibabaNamespace::Slb,
        ALB => AlibabaNamespace::Alb,
        _ => return None,
    };
    let table = SERIES
        .iter()
        .filter(|s| s.cloud.namespace == namespace)
        .map(|s| s.family.name);
    let inventory = match namespace {
        AlibabaNamespace::Slb => vec![LB_INFO.name, LB_TARGET_HEALTH.name],
        AlibabaNamespace::Alb => vec![LB_INFO.name],
    };
    Some(table.chain(inventory).collect())
}

/// `namespace` `terms` (statistic, unit, listeners; tier) → labels lines, and the SLB and ALB
/// APIs for what the inventory fills.
fn mapping(family: &Family) -> Vec<String> {
    let mut out = series_mapping(family);
    if std::ptr::eq(family, &LB_INFO) {
        out.push(format!(
            "SLB `{API_DESCRIBE_LOAD_BALANCERS}`, ALB `{API_LIST_LOAD_BALANCERS}` (name, address, tags)"
        ));
    }
    if std::ptr::eq(family, &LB_TARGET_HEALTH) {
        out.push(format!(
            "SLB `{API_DESCRIBE_HEALTH_STATUS}`, for instances whose 5xx alarmed in the last five periods"
        ));
    }
    out
}

fn series_mapping(family: &Family) -> Vec<String> {
    SERIES
        .iter()
        .filter(|series| std::ptr::eq(series.family, family))
        .map(|series| {
            let terms = terms_text(series.terms);
            let unit = match series.unit {
                PublishedUnit::Base => "count",
                other => other.conversion_text(),
            };
            let ports = match series.cloud.ports {
                Ports::Sum => "",
                Ports::Max => ", worst listener",
                Ports::Each => ", per listener",
            };
            let alarm = if series.alarm { ", alarm" } else { "" };
            format!(
                "`{}` {terms} ({}, {unit}{ports}; {}{alarm}){}",
                series.cloud.namespace.as_str(),
                metrics::statistic(series.cloud.namespace),
                series.tier.as_str(),
                label_suffix(series.labels)
            )
        })
        .collect()
}

fn actions() -> Vec<String> {
    vec![
        format!("cms:{}", super::client::API),
        format!("slb:{API_DESCRIBE_LOAD_BALANCERS}"),
        format!("slb:{API_DESCRIBE_HEALTH_STATUS}"),
        format!("alb:{API_LIST_LOAD_BALANCERS}"),
        format!("alb:{API_LIST_SERVER_GROUPS}"),
        format!("alb:{API_LIST_SERVER_GROUP_SERVERS}"),
        format!("ecs:{API_DESCRIBE_INSTANCES}"),
    ]
}
