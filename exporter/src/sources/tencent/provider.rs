//! The Tencent Cloud row of the provider registry: one unit per job (its regions share the job's
//! call-rate bound, as Cloud Monitor's limit is the account's), the families a CLB fills, and
//! where each family comes from.

use std::collections::BTreeSet;

use super::inventory::{API_DESCRIBE_LOAD_BALANCERS, API_DESCRIBE_TARGET_HEALTH};
use super::metrics::SERIES;
use super::monitor::API_GET_MONITOR_DATA;
use super::TencentSource;
use crate::config::Config;
use crate::runtime::system_clock;
use crate::sources::engine::series::PublishedUnit;
use crate::sources::row::{label_suffix, shared_rate_group, terms_text, LbKind, Provider, SourceGroup};
use crate::store::families::{self as f, Family};

pub static PROVIDER: Provider = Provider {
    name: "tencent",
    title: "Tencent Cloud",
    kinds: &[CLB],
    source_groups,
    families_fed,
    mapping,
    policy_file: "deploy/iam/tencent-cam-policy.json",
    actions,
    notes: &[
        "`ClbHttp5xx`, `ClbHttp502`, ... count every code CLB returned, the real servers' included
         (\"the sum of CLB and real server return codes\"), in codes per minute; what CLB generated
         itself is that minus `Http5xx`, `Http502`, ... per period, never below zero, and a code
         with no datapoint counts zero. The period is 60 s: only there is a per-minute count one
         period's count.",
        "`ClbHttp5xx` (every 5xx CLB returned) is the sentinel's one alarm and is not exported; what
         CLB generated is exported per code (502, 503, 504), as for an ALB, so `code=~\"5.*\"` sums
         stay exact, and the real servers' `Http5xx` comes from the detail tier, back-filled to the
         first erroring period.",
        "Instances, names, VIPs and tags come from `DescribeLoadBalancers`; Cloud Monitor is asked
         by `vip` (with `vpcId` for a private CLB), ten instances a call. Host counts and
         `lbtriage_lb_target_health_info` come from `DescribeTargetHealth` at each inventory, and
         every cycle for an instance whose detail tier is awake.",
        "Sources: Cloud Monitor's CLB metric lists (https://www.tencentcloud.com/document/product/248/10997,
         public; the private namespace's page beside it), CLB's monitoring metrics
         (https://www.tencentcloud.com/document/product/214/32389: `DropTotalConns` a count per period,
         `ConcurConnVipRatio` in %), and the CLB API 2018-03-17 (`DescribeLoadBalancers`,
         `DescribeTargetHealth`).",
    ],
    labels: "`lb` is the CLB instance ID (`lb-...`); `lb_type` is `clb_public` or `clb_private`; `target_group` is `listener:<port>` (each listener's real servers).",
    fuzz: super::monitor::fuzz,
    plan: super::plan::plan,
    credential_env: &[super::client::KEYS.env_id, super::client::KEYS.env_secret],
};

const CLB: LbKind = LbKind {
    id: "tencent_clb",
    title: "Tencent CLB",
};

/// What the inventory exports beside the metric table.
static INVENTORY: [&Family; 5] = [
    &f::LB_INFO,
    &f::LB_REGISTERED_TARGETS,
    &f::LB_HEALTHY_TARGETS,
    &f::LB_UNHEALTHY_TARGETS,
    &f::LB_TARGET_HEALTH,
];

fn source_groups(config: &Config) -> Vec<SourceGroup> {
    config
        .tencent
        .iter()
        .map(|job| {
            shared_rate_group("tencent", job, |job, region, limiter, discovered| {
                TencentSource::new(job, region, limiter, system_clock()).with_discovered(discovered)
            })
        })
        .collect()
}

fn families_fed(kind: LbKind) -> Option<BTreeSet<&'static str>> {
    (kind == CLB).then(|| {
        SERIES
            .iter()
            .filter(|s| s.exported)
            .map(|s| s.family.name)
            .chain(INVENTORY.iter().map(|f| f.name))
            .collect()
    })
}

/// `terms` (unit; tier) → labels lines, and the CLB API for what the inventory fills.
fn mapping(family: &Family) -> Vec<String> {
    let mut out: Vec<String> = SERIES
        .iter()
        .filter(|series| std::ptr::eq(series.family, family))
        .map(|series| {
            let terms = terms_text(series.terms);
            let unit = match series.unit {
                PublishedUnit::Base => "count per period",
                other => other.conversion_text(),
            };
            let namespaces = if series.cloud.private_only {
                "`QCE/LB_PRIVATE`"
            } else {
                "`QCE/LB_PUBLIC`, `QCE/LB_PRIVATE`"
            };
            let tier = match (series.exported, series.alarm) {
                (false, _) => "sentinel alarm, not exported",
                (true, true) => "sentinel, alarm",
                (true, false) => series.tier.as_str(),
            };
            format!(
                "{namespaces} {terms} ({unit}; {tier}){}",
                label_suffix(series.labels)
            )
        })
        .collect();
    if INVENTORY.iter().any(|f| std::ptr::eq(*f, family)) {
        let source = if std::ptr::eq(family, &f::LB_INFO) {
            format!("CLB `{API_DESCRIBE_LOAD_BALANCERS}` (name, VIP, tags)")
        } else {
            format!("CLB `{API_DESCRIBE_TARGET_HEALTH}`, per listener (`target_group=\"listener:<port>\"`)")
        };
        out.push(source);
    }
    out
}

fn actions() -> Vec<String> {
    vec![
        format!("clb:{API_DESCRIBE_LOAD_BALANCERS}"),
        format!("clb:{API_DESCRIBE_TARGET_HEALTH}"),
        format!("monitor:{API_GET_MONITOR_DATA}"),
    ]
}
