//! Which load balancers a job watches, with their tags, target groups, per-target health and idle
//! timeout. Discovery is cached for `discovery_ttl`; metric collection reuses it every cycle.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_elasticloadbalancingv2 as elbv2;
use aws_sdk_resourcegroupstagging as tagging;
use futures_util::{stream, StreamExt, TryStreamExt};

use super::{call, pages, AwsError, Clients};
use crate::config::{AwsJob, LoadBalancerType, ShardAssignment};
use crate::sources::telemetry::ApiCalls;
use crate::store::families::{self as f, Family};

/// Per-load-balancer calls (target health, attributes) in flight at once.
const DISCOVERY_CONCURRENCY: usize = 8;

#[derive(Debug, Clone, Default)]
pub struct Inventory {
    pub load_balancers: Vec<LoadBalancer>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LoadBalancer {
    pub arn: String,
    /// The CloudWatch dimension value and the `lb` label: `app/<name>/<id>`, `net/...`, or the
    /// Classic load balancer's name.
    pub dimension: String,
    pub name: String,
    pub lb_type: LoadBalancerType,
    pub dns_name: String,
    pub scheme: String,
    pub tags: BTreeMap<String, String>,
    pub idle_timeout_seconds: Option<f64>,
    /// Classic load balancers have one unnamed group holding their instances.
    pub target_groups: Vec<TargetGroup>,
}

impl LoadBalancer {
    /// What probes may use: the idle timeout, and targets registered by IP address.
    pub fn facts(&self) -> crate::runtime::LbFacts {
        crate::runtime::LbFacts {
            idle_timeout: self.idle_timeout_seconds.map(std::time::Duration::from_secs_f64),
            ip_targets: self
                .target_groups
                .iter()
                .flat_map(|group| group.targets.iter())
                .filter_map(|target| target.target.parse().ok())
                .collect(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct TargetGroup {
    /// `targetgroup/<name>/<id>`; empty for a Classic load balancer's instances.
    pub dimension: String,
    pub targets: Vec<TargetHealth>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TargetHealth {
    /// `id:port` (instance id or IP) or, for Classic, the instance id.
    pub target: String,
    pub state: String,
    pub reason: String,
}

/// The families discovery exports for a kind of load balancer (the snapshot in `mod.rs` writes
/// them): the idle timeout is an attribute of ALB and Classic load balancers only.
pub fn families(lb_type: LoadBalancerType) -> &'static [&'static Family] {
    static WITH_IDLE_TIMEOUT: [&Family; 4] = [
        &f::LB_INFO,
        &f::LB_IDLE_TIMEOUT,
        &f::LB_TARGET_HEALTH,
        &f::LB_REGISTERED_TARGETS,
    ];
    static WITHOUT: [&Family; 3] = [&f::LB_INFO, &f::LB_TARGET_HEALTH, &f::LB_REGISTERED_TARGETS];
    match lb_type {
        LoadBalancerType::Network => &WITHOUT,
        LoadBalancerType::Application | LoadBalancerType::Classic => &WITH_IDLE_TIMEOUT,
    }
}

/// The part of an ELB ARN after `loadbalancer/` or the last `:`; what CloudWatch dimensions use.
pub fn dimension_from_arn(arn: &str) -> Option<&str> {
    if let Some((_, rest)) = arn.split_once(":loadbalancer/") {
        return Some(rest);
    }
    arn.rsplit_once(':')
        .map(|(_, rest)| rest)
        .filter(|rest| rest.starts_with("targetgroup/"))
}

pub async fn discover(
    job: &AwsJob,
    region: &str,
    shard: Option<ShardAssignment>,
    clients: &Clients,
    calls: &ApiCalls,
) -> Result<Inventory, AwsError> {
    let selection = Selection {
        filtered: !job.tag_filters.is_empty(),
        tags: load_balancer_tags(job, clients, calls).await?,
        shard: shard.map(|shard| (shard, region.to_string())),
    };

    let mut load_balancers = Vec::new();
    let want_v2 = job
        .load_balancer_types
        .iter()
        .any(|t| *t != LoadBalancerType::Classic);
    if want_v2 {
        load_balancers.extend(describe_v2(job, clients, calls, &selection).await?);
    }
    if job.load_balancer_types.contains(&LoadBalancerType::Classic) {
        load_balancers.extend(describe_classic(clients, calls, &selection).await?);
    }
    load_balancers.sort_by(|a, b| a.dimension.cmp(&b.dimension));
    Ok(Inventory { load_balancers })
}

/// Which load balancers the tag filters (and this exporter's shard) let through, and their tags.
struct Selection {
    filtered: bool,
    tags: HashMap<String, BTreeMap<String, String>>,
    shard: Option<(ShardAssignment, String)>,
}

impl Selection {
    /// Decided before any per-load-balancer call, so other shards' load balancers cost nothing.
    fn wants(&self, dimension: &str) -> bool {
        let tagged = !self.filtered || self.tags.contains_key(dimension);
        let ours = self
            .shard
            .as_ref()
            .is_none_or(|(shard, region)| shard.owns(&format!("{region}/{dimension}")));
        tagged && ours
    }

    fn tags_of(&self, dimension: &str) -> BTreeMap<String, String> {
        self.tags.get(dimension).cloned().unwrap_or_default()
    }
}

/// Tags of load balancers, keyed by dimension. With tag filters, only the matching ones.
/// No resource-type filter is sent: the ARN says what a resource is, for every ELB generation.
async fn load_balancer_tags(
    job: &AwsJob,
    clients: &Clients,
    calls: &ApiCalls,
) -> Result<HashMap<String, BTreeMap<String, String>>, AwsError> {
    let filters = job
        .tag_filters
        .iter()
        .map(|(key, values)| {
            tagging::types::TagFilter::builder()
                .key(key)
                .set_values(Some(values.clone()))
                .build()
        })
        .collect::<Vec<_>>();
    let request = clients
        .tagging
        .get_resources()
        .set_tag_filters((!filters.is_empty()).then_some(filters))
        .resources_per_page(100);
    let mut out = HashMap::new();
    for page in pages(calls, "GetResources", request.into_paginator().send()).await? {
        for mapping in page.resource_tag_mapping_list() {
            let Some(arn) = mapping.resource_arn() else {
                continue;
            };
            if !arn.contains(":elasticloadbalancing:") {
                continue;
            }
            let Some(dimension) = arn.split_once(":loadbalancer/").map(|(_, d)| d) else {
                continue;
            };
            let tags = mapping
                .tags()
                .iter()
                .map(|tag| (tag.key().to_string(), tag.value().to_string()))
                .collect();
            out.insert(dimension.to_string(), tags);
        }
    }
    Ok(out)
}

async fn describe_v2(
    job: &AwsJob,
    clients: &Clients,
    calls: &ApiCalls,
    selection: &Selection,
) -> Result<Vec<LoadBalancer>, AwsError> {
    let client = &clients.elbv2;
    let mut load_balancers = Vec::new();
    let request = client.describe_load_balancers().page_size(400);
    for page in pages(calls, "DescribeLoadBalancers", request.into_paginator().send()).await? {
        for lb in page.load_balancers() {
            let lb_type = match lb.r#type() {
                Some(elbv2::types::LoadBalancerTypeEnum::Application) => LoadBalancerType::Application,
                Some(elbv2::types::LoadBalancerTypeEnum::Network) => LoadBalancerType::Network,
                _ => continue,
            };
            let arn = lb
                .load_balancer_arn()
                .ok_or_else(|| AwsError::unexpected("DescribeLoadBalancers", "load balancer without ARN"))?;
            let dimension = dimension_from_arn(arn).ok_or_else(|| {
                AwsError::unexpected("DescribeLoadBalancers", format!("unrecognised ARN {arn:?}"))
            })?;
            if !job.load_balancer_types.contains(&lb_type) || !selection.wants(dimension) {
                continue;
            }
            load_balancers.push(LoadBalancer {
                arn: arn.to_string(),
                dimension: dimension.to_string(),
                name: lb.load_balancer_name().unwrap_or_default().to_string(),
                lb_type,
                dns_name: lb.dns_name().unwrap_or_default().to_string(),
                scheme: lb.scheme().map(|s| s.as_str().to_string()).unwrap_or_default(),
                tags: selection.tags_of(dimension),
                idle_timeout_seconds: None,
                target_groups: Vec::new(),
            });
        }
    }
    if load_balancers.is_empty() {
        return Ok(load_balancers);
    }

    // Every target group of the region in one paginated listing, matched to its load balancers.
    let mut groups_by_lb: HashMap<String, Vec<String>> = HashMap::new();
    let request = client.describe_target_groups().page_size(400);
    for page in pages(calls, "DescribeTargetGroups", request.into_paginator().send()).await? {
        for group in page.target_groups() {
            let Some(group_arn) = group.target_group_arn() else {
                continue;
            };
            for lb_arn in group.load_balancer_arns() {
                groups_by_lb
                    .entry(lb_arn.clone())
                    .or_default()
                    .push(group_arn.to_string());
            }
        }
    }

    // Futures are collected first: a lazy `map` inside the stream trips the compiler's Send check.
    let lookups: Vec<_> = load_balancers
        .into_iter()
        .map(|mut lb| {
            let group_arns = groups_by_lb.remove(&lb.arn).unwrap_or_default();
            async move {
                if lb.lb_type == LoadBalancerType::Application {
                    let attributes = call(
                        calls,
                        "DescribeLoadBalancerAttributes",
                        client
                            .describe_load_balancer_attributes()
                            .load_balancer_arn(&lb.arn)
                            .send(),
                    )
                    .await?;
                    lb.idle_timeout_seconds = attributes
                        .attributes()
                        .iter()
                        .find(|a| a.key() == Some("idle_timeout.timeout_seconds"))
                        .and_then(|a| a.value())
                        .and_then(|v| v.parse::<f64>().ok());
                }
                for group_arn in group_arns {
                    let health = call(
                        calls,
                        "DescribeTargetHealth",
                        client
                            .describe_target_health()
                            .target_group_arn(&group_arn)
                            .send(),
                    )
                    .await?;
                    let targets = health
                        .target_health_descriptions()
                        .iter()
                        .map(|description| {
                            let target = description.target();
                            let id = target.and_then(|t| t.id()).unwrap_or_default();
                            let port = target.and_then(|t| t.port());
                            let health = description.target_health();
                            TargetHealth {
                                target: match port {
                                    Some(port) => format!("{id}:{port}"),
                                    None => id.to_string(),
                                },
                                state: health
                                    .and_then(|h| h.state())
                                    .map(|s| s.as_str().to_string())
                                    .unwrap_or_default(),
                                reason: health
                                    .and_then(|h| h.reason())
                                    .map(|r| r.as_str().to_string())
                                    .unwrap_or_default(),
                            }
                        })
                        .collect();
                    lb.target_groups.push(TargetGroup {
                        dimension: dimension_from_arn(&group_arn).unwrap_or(&group_arn).to_string(),
                        targets,
                    });
                }
                lb.target_groups.sort_by(|a, b| a.dimension.cmp(&b.dimension));
                Ok::<_, AwsError>(lb)
            }
        })
        .collect();
    let details = stream::iter(lookups)
        .buffer_unordered(DISCOVERY_CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await?;
    Ok(details)
}

async fn describe_classic(
    clients: &Clients,
    calls: &ApiCalls,
    selection: &Selection,
) -> Result<Vec<LoadBalancer>, AwsError> {
    let client = &clients.elb;
    let mut load_balancers = Vec::new();
    let request = client.describe_load_balancers().page_size(400);
    for page in pages(
        calls,
        "DescribeLoadBalancers (classic)",
        request.into_paginator().send(),
    )
    .await?
    {
        for lb in page.load_balancer_descriptions() {
            let Some(name) = lb.load_balancer_name() else {
                continue;
            };
            if !selection.wants(name) {
                continue;
            }
            load_balancers.push(LoadBalancer {
                arn: String::new(),
                dimension: name.to_string(),
                name: name.to_string(),
                lb_type: LoadBalancerType::Classic,
                dns_name: lb.dns_name().unwrap_or_default().to_string(),
                scheme: lb.scheme().unwrap_or_default().to_string(),
                tags: selection.tags_of(name),
                idle_timeout_seconds: None,
                target_groups: Vec::new(),
            });
        }
    }
    let lookups: Vec<_> = load_balancers
        .into_iter()
        .map(|mut lb| async move {
            let attributes = call(
                calls,
                "DescribeLoadBalancerAttributes (classic)",
                client
                    .describe_load_balancer_attributes()
                    .load_balancer_name(&lb.name)
                    .send(),
            )
            .await?;
            lb.idle_timeout_seconds = attributes
                .load_balancer_attributes()
                .and_then(|a| a.connection_settings())
                .map(|c| f64::from(c.idle_timeout()));
            let health = call(
                calls,
                "DescribeInstanceHealth",
                client
                    .describe_instance_health()
                    .load_balancer_name(&lb.name)
                    .send(),
            )
            .await?;
            let targets = health
                .instance_states()
                .iter()
                .map(|state| TargetHealth {
                    target: state.instance_id().unwrap_or_default().to_string(),
                    state: state.state().unwrap_or_default().to_string(),
                    reason: state.reason_code().unwrap_or_default().to_string(),
                })
                .collect();
            lb.target_groups.push(TargetGroup {
                dimension: String::new(),
                targets,
            });
            Ok::<_, AwsError>(lb)
        })
        .collect();
    stream::iter(lookups)
        .buffer_unordered(DISCOVERY_CONCURRENCY)
        .try_collect()
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dimensions_come_from_arns() {
        assert_eq!(
            dimension_from_arn(
                "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/shop/50dc6c495c0c9188"
            ),
            Some("app/shop/50dc6c495c0c9188")
        );
        assert_eq!(
            dimension_from_arn(
                "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/73e2d6bc24d8a067"
            ),
            Some("targetgroup/web/73e2d6bc24d8a067")
        );
        assert_eq!(
            dimension_from_arn("arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/legacy"),
            Some("legacy")
        );
        assert_eq!(dimension_from_arn("arn:aws:ec2:us-east-1:1:instance/i-1"), None);
    }
}
