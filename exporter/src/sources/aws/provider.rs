//! The AWS row of the provider registry: one unit per job and region, the families each type of
//! load balancer fills, and where each family comes from.

use std::collections::BTreeSet;

use super::{discovery, metrics, source_key, AwsSource, Clients};
use crate::config::{Config, LoadBalancerType};
use crate::runtime::system_clock;
use crate::sources::row::{label_suffix, LbKind, Provider, SourceGroup};
use crate::store::families::Family;

pub static PROVIDER: Provider = Provider {
    name: "aws",
    title: "AWS",
    kinds: &[ALB, NLB, CLB],
    source_groups,
    families_fed,
    mapping,
    policy_file: "deploy/iam/aws-policy.json",
    actions,
    notes: &[
        "`lbtriage_lb_target_health_info` comes from `DescribeTargetHealth` (ALB/NLB: `state`, `reason`
         such as `Target.Timeout`) and `DescribeInstanceHealth` (Classic: `InService`/`OutOfService`),
         refreshed with discovery (`discovery_ttl`). `lbtriage_lb_idle_timeout_seconds` comes from
         `DescribeLoadBalancerAttributes` (`idle_timeout.timeout_seconds`, Classic `ConnectionSettings`).",
        "ALB responses are read per code (500, 502, 503, 504) so rules can tell them apart; other
         load-balancer 5xx codes (501, 505, 561) are not read. Classic reports only the `5xx` class.",
        "`HTTPCode_ELB_4XX_Count` includes 460 (client closed early) and 463 (forwarding loop);
         CloudWatch has no per-code 4xx metric.",
    ],
    labels: "`lb` is the CloudWatch `LoadBalancer` dimension (`app/<name>/<id>`, `net/<name>/<id>`) or a Classic load balancer's name; `lb_type` is `application`, `network` or `classic`; `target_group` is the `TargetGroup` dimension (`targetgroup/<name>/<id>`).",
    fuzz: super::ec2::fuzz,
    plan: super::plan::plan,
    credential_env: &["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"],
};

/// One source per job and region, each with the exporter's shard (an invalid shard never gets
/// this far: it fails validation).
fn source_groups(config: &Config) -> Vec<SourceGroup> {
    let shard = config.shard_assignment().ok().flatten();
    let mut groups = Vec::new();
    for job in &config.aws {
        for region in &job.regions {
            let key = source_key(&job.name, region);
            let settings = (job, region, shard);
            let (job, region) = (job.clone(), region.clone());
            groups.push(SourceGroup::new(
                key.clone(),
                &settings,
                vec![key],
                move |context, tasks| {
                    let (job, region) = (job.clone(), region.clone());
                    tasks.spawn(async move {
                        let sdk = super::client::sdk_config(&job, &region).await;
                        let source = AwsSource::new(job, region, Clients::new(&sdk), system_clock())
                            .with_discovered(context.discovered)
                            .with_shard(shard);
                        crate::sources::engine::run_source(source, context.store, context.shutdown).await;
                    });
                },
            ));
        }
    }
    groups
}

const ALB: LbKind = LbKind {
    id: "aws_alb",
    title: "AWS ALB",
};
const NLB: LbKind = LbKind {
    id: "aws_nlb",
    title: "AWS NLB",
};
const CLB: LbKind = LbKind {
    id: "aws_clb",
    title: "AWS CLB",
};

fn lb_type(kind: LbKind) -> Option<LoadBalancerType> {
    match kind {
        ALB => Some(LoadBalancerType::Application),
        NLB => Some(LoadBalancerType::Network),
        CLB => Some(LoadBalancerType::Classic),
        _ => None,
    }
}

fn families_fed(kind: LbKind) -> Option<BTreeSet<&'static str>> {
    let lb_type = lb_type(kind)?;
    let table = metrics::for_type(lb_type).1.iter().map(|m| m.family.name);
    let discovered = discovery::families(lb_type).iter().map(|f| f.name);
    Some(table.chain(discovered).collect())
}

/// `Namespace MetricName (Statistic; tier) → labels` lines.
fn mapping(family: &Family) -> Vec<String> {
    let mut out = Vec::new();
    for lb_type in LoadBalancerType::ALL {
        let (namespace, table) = metrics::for_type(lb_type);
        for metric in table
            .iter()
            .filter(|m| m.exported && std::ptr::eq(m.family, family))
        {
            let scope = match metric.cloud.scope {
                metrics::Scope::LoadBalancer => "",
                metrics::Scope::TargetGroup => ", per target group",
            };
            let alarm = if metric.alarm { ", alarm" } else { "" };
            out.push(format!(
                "`{namespace}` `{}` ({}{scope}; {}{alarm}){}",
                metric.metric(),
                metric.cloud.statistic.as_str(),
                metric.tier.as_str(),
                label_suffix(metric.labels)
            ));
        }
    }
    out
}

/// Every call the source makes (tests/deploy.rs checks this list against the code).
fn actions() -> Vec<String> {
    [
        "cloudwatch:GetMetricData",
        "ec2:DescribeInstances",
        "elasticloadbalancing:DescribeInstanceHealth",
        "elasticloadbalancing:DescribeListeners",
        "elasticloadbalancing:DescribeLoadBalancerAttributes",
        "elasticloadbalancing:DescribeLoadBalancers",
        "elasticloadbalancing:DescribeTargetGroups",
        "elasticloadbalancing:DescribeTargetHealth",
        "tag:GetResources",
    ]
    .map(String::from)
    .to_vec()
}
