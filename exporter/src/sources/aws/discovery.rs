//! Which load balancers a job watches, with their tags, target groups, per-target health and idle
//! timeout. Discovery is cached for `discovery_ttl`; metric collection reuses it every cycle.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};

use aws_sdk_elasticloadbalancingv2 as elbv2;
use aws_sdk_resourcegroupstagging as tagging;
use futures_util::{stream, StreamExt, TryStreamExt};

use super::api::{call, pages, AwsError};
use super::client::Clients;
use crate::config::{AwsJob, LoadBalancerType, ShardAssignment};
use crate::runtime::{HealthCheck, LbFacts, Listener, SkippedTarget, TargetFacts, TargetGroupFacts};
use crate::sources::engine::telemetry::ApiCalls;
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
    /// From `DescribeListeners` (Classic: the description's listeners); empty when unknown.
    pub listeners: Vec<Listener>,
    /// Classic load balancers have one unnamed group holding their instances.
    pub target_groups: Vec<TargetGroup>,
}

impl LoadBalancer {
    /// What probes may use: the front door, listeners, idle timeout, and the targets with an
    /// address (IP targets as registered, instance targets at the private address EC2 gave).
    pub fn facts(&self, region: &str, instance_ips: &HashMap<String, IpAddr>) -> LbFacts {
        let mut skipped = Vec::new();
        let groups = self
            .target_groups
            .iter()
            .map(|group| {
                let mut targets = Vec::new();
                for target in &group.targets {
                    let ip = match group.target_type.as_str() {
                        "lambda" | "alb" => {
                            let reason = if group.target_type == "alb" {
                                "load_balancer"
                            } else {
                                "lambda"
                            };
                            skipped.push(SkippedTarget {
                                target: target.target.clone(),
                                reason: reason.to_string(),
                            });
                            continue;
                        }
                        "ip" => target.id.parse::<IpAddr>().ok(),
                        _ => instance_ips.get(&target.id).copied(),
                    };
                    let (Some(ip), Some(port)) = (ip, target.port.or(group.port)) else {
                        skipped.push(SkippedTarget {
                            target: target.target.clone(),
                            reason: "no_address".to_string(),
                        });
                        continue;
                    };
                    targets.push(TargetFacts {
                        addr: SocketAddr::new(ip, port),
                        healthy: match target.state.as_str() {
                            "healthy" | "InService" => Some(true),
                            "unhealthy" | "OutOfService" => Some(false),
                            _ => None,
                        },
                    });
                }
                TargetGroupFacts {
                    name: group.dimension.clone(),
                    health_check: group.health_check.clone(),
                    targets,
                }
            })
            .collect();
        LbFacts {
            provider: "aws".to_string(),
            region: region.to_string(),
            name: self.name.clone(),
            front_door: self.dns_name.clone(),
            scheme: self.scheme.clone(),
            listeners: self.listeners.clone(),
            idle_timeout: self.idle_timeout_seconds.map(std::time::Duration::from_secs_f64),
            groups,
            skipped,
        }
    }

    /// Instance IDs whose addresses EC2 must give.
    pub fn instance_ids(&self) -> impl Iterator<Item = &str> {
        self.target_groups
            .iter()
            .filter(|group| group.target_type == "instance")
            .flat_map(|group| group.targets.iter().map(|t| t.id.as_str()))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct TargetGroup {
    /// `targetgroup/<name>/<id>`; empty for a Classic load balancer's instances.
    pub dimension: String,
    /// `instance`, `ip`, `lambda` or `alb` (Classic: `instance`).
    pub target_type: String,
    /// The group's traffic port, for targets registered without one.
    pub port: Option<u16>,
    pub health_check: HealthCheck,
    pub targets: Vec<TargetHealth>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TargetHealth {
    /// `id:port` (instance id or IP) or, for Classic, the instance id.
    pub target: String,
    /// The instance ID or IP address alone, and the port where registered with one.
    pub id: String,
    pub port: Option<u16>,
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

/// The job's load balancers in `region`. With `probe_facts`, also what only probes use: each
/// ALB's and NLB's listeners.
pub async fn discover(
    job: &AwsJob,
    region: &str,
    shard: Option<ShardAssignment>,
    clients: &Clients,
    calls: &ApiCalls,
    probe_facts: bool,
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
        load_balancers.extend(describe_v2(job, clients, calls, &selection, probe_facts).await?);
    }
    if job.load_balancer_types.contains(&LoadBalancerType::Classic) {
        load_balancers.extend(describe_classic(clients, calls, &selection).await?);
    }
    load_balancers.sort_by(|a, b| a.dimension.cmp(&b.dimension));
    Ok(Inventory { load_balancers })
}

/// The private addresses of the inventory's instance targets, for the probes only: a refused or
/// failing `DescribeInstances` loses those addresses and nothing else (it shows in
/// `lbtriage_inventory_call_failing`).
pub async fn instance_addresses(
    inventory: &Inventory,
    clients: &Clients,
    calls: &ApiCalls,
) -> HashMap<String, IpAddr> {
    const API: &str = "DescribeInstances";
    let mut ids: Vec<String> = inventory
        .load_balancers
        .iter()
        .flat_map(LoadBalancer::instance_ids)
        .map(str::to_string)
        .collect();
    ids.sort();
    ids.dedup();
    let Some(ec2) = clients.ec2.as_ref().filter(|_| !ids.is_empty()) else {
        return HashMap::new();
    };
    match ec2.private_ips(calls, &ids).await {
        Ok(found) => {
            calls.optional_outcome(API, false);
            found
        }
        Err(err) => {
            calls.optional_outcome(API, true);
            tracing::warn!(error = %err, "instance targets have no address for the probes");
            HashMap::new()
        }
    }
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
    probe_facts: bool,
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
                listeners: Vec::new(),
                target_groups: Vec::new(),
            });
        }
    }
    if load_balancers.is_empty() {
        return Ok(load_balancers);
    }

    // Every target group of the region in one paginated listing, matched to its load balancers.
    let mut groups_by_lb: HashMap<String, Vec<GroupSpec>> = HashMap::new();
    let request = client.describe_target_groups().page_size(400);
    for page in pages(calls, "DescribeTargetGroups", request.into_paginator().send()).await? {
        for group in page.target_groups() {
            let Some(group_arn) = group.target_group_arn() else {
                continue;
            };
            let spec = GroupSpec {
                arn: group_arn.to_string(),
                target_type: group
                    .target_type()
                    .map(|t| t.as_str().to_string())
                    .unwrap_or_else(|| "instance".to_string()),
                port: group.port().and_then(|p| u16::try_from(p).ok()),
                health_check: HealthCheck {
                    protocol: group
                        .health_check_protocol()
                        .map(|p| p.as_str().to_string())
                        .unwrap_or_default(),
                    port: group.health_check_port().and_then(|p| p.parse().ok()),
                    path: group.health_check_path().map(str::to_string),
                },
            };
            for lb_arn in group.load_balancer_arns() {
                groups_by_lb.entry(lb_arn.clone()).or_default().push(spec.clone());
            }
        }
    }

    // Futures are collected first: a lazy `map` inside the stream trips the compiler's Send check.
    let lookups: Vec<_> = load_balancers
        .into_iter()
        .map(|mut lb| {
            let groups = groups_by_lb.remove(&lb.arn).unwrap_or_default();
            async move {
                if probe_facts {
                    lb.listeners = listeners(client, calls, &lb.arn).await;
                }
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
                for group in groups {
                    let health = call(
                        calls,
                        "DescribeTargetHealth",
                        client
                            .describe_target_health()
                            .target_group_arn(&group.arn)
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
                                id: id.to_string(),
                                port: port.and_then(|p| u16::try_from(p).ok()),
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
                        dimension: dimension_from_arn(&group.arn).unwrap_or(&group.arn).to_string(),
                        target_type: group.target_type,
                        port: group.port,
                        health_check: group.health_check,
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
    // Per load balancer: the instance port of its first listener, and its health check.
    let mut classic_groups: HashMap<String, (Option<u16>, HealthCheck)> = HashMap::new();
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
            let described: Vec<_> = lb
                .listener_descriptions()
                .iter()
                .filter_map(|d| d.listener())
                .collect();
            let listeners = described
                .iter()
                .filter_map(|l| {
                    Some(Listener {
                        port: u16::try_from(l.load_balancer_port()).ok()?,
                        protocol: l.protocol().to_ascii_uppercase(),
                    })
                })
                .collect();
            let instance_port = described
                .first()
                .and_then(|l| u16::try_from(l.instance_port()).ok());
            let health_check = lb
                .health_check()
                .map(|h| classic_health_check(h.target()))
                .unwrap_or_default();
            classic_groups.insert(name.to_string(), (instance_port, health_check));
            load_balancers.push(LoadBalancer {
                arn: String::new(),
                dimension: name.to_string(),
                name: name.to_string(),
                lb_type: LoadBalancerType::Classic,
                dns_name: lb.dns_name().unwrap_or_default().to_string(),
                scheme: lb.scheme().unwrap_or_default().to_string(),
                tags: selection.tags_of(name),
                idle_timeout_seconds: None,
                listeners,
                target_groups: Vec::new(),
            });
        }
    }
    let lookups: Vec<_> = load_balancers
        .into_iter()
        .map(|mut lb| {
            let (port, health_check) = classic_groups.remove(&lb.name).unwrap_or_default();
            async move {
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
                        id: state.instance_id().unwrap_or_default().to_string(),
                        port: None,
                        state: state.state().unwrap_or_default().to_string(),
                        reason: state.reason_code().unwrap_or_default().to_string(),
                    })
                    .collect();
                lb.target_groups.push(TargetGroup {
                    dimension: String::new(),
                    target_type: "instance".to_string(),
                    port,
                    health_check,
                    targets,
                });
                Ok::<_, AwsError>(lb)
            }
        })
        .collect();
    stream::iter(lookups)
        .buffer_unordered(DISCOVERY_CONCURRENCY)
        .try_collect()
        .await
}

#[derive(Debug, Clone)]
struct GroupSpec {
    arn: String,
    target_type: String,
    port: Option<u16>,
    health_check: HealthCheck,
}

/// A load balancer's listeners. The probes can do without them (they fall back to port 80), so a
/// refused or failing call costs only them and shows in `lbtriage_inventory_call_failing`.
async fn listeners(client: &elbv2::Client, calls: &ApiCalls, lb_arn: &str) -> Vec<Listener> {
    const API: &str = "DescribeListeners";
    let request = client
        .describe_listeners()
        .load_balancer_arn(lb_arn)
        .page_size(400);
    match pages(calls, API, request.into_paginator().send()).await {
        Ok(pages) => {
            calls.optional_outcome(API, false);
            pages
                .iter()
                .flat_map(|page| page.listeners())
                .filter_map(|l| {
                    Some(Listener {
                        port: u16::try_from(l.port()?).ok()?,
                        protocol: l.protocol()?.as_str().to_string(),
                    })
                })
                .collect()
        }
        Err(err) => {
            calls.optional_outcome(API, true);
            tracing::warn!(error = %err, "listeners unknown; probes fall back to port 80");
            Vec::new()
        }
    }
}

/// A Classic health check target, `PROTOCOL:PORT[/PATH]` (`HTTP:80/index.html`, `TCP:8080`).
fn classic_health_check(target: &str) -> HealthCheck {
    let (protocol, rest) = target.split_once(':').unwrap_or((target, ""));
    let (port, path) = match rest.find('/') {
        Some(slash) => (&rest[..slash], Some(rest[slash..].to_string())),
        None => (rest, None),
    };
    HealthCheck {
        protocol: protocol.to_ascii_uppercase(),
        port: port.parse().ok(),
        path,
    }
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

    #[test]
    fn classic_health_checks_are_read_from_their_target() {
        assert_eq!(
            classic_health_check("HTTP:80/index.html"),
            HealthCheck {
                protocol: "HTTP".to_string(),
                port: Some(80),
                path: Some("/index.html".to_string())
            }
        );
        assert_eq!(classic_health_check("tcp:8080").path, None);
        assert_eq!(classic_health_check("TCP:8080").port, Some(8080));
        assert_eq!(
            classic_health_check("garbage"),
            HealthCheck {
                protocol: "GARBAGE".to_string(),
                port: None,
                path: None
            }
        );
    }

    fn balancer(target_type: &str, targets: &[(&str, Option<u16>, &str)]) -> LoadBalancer {
        LoadBalancer {
            arn: String::new(),
            dimension: "app/shop/1".to_string(),
            name: "shop".to_string(),
            lb_type: LoadBalancerType::Application,
            dns_name: "shop-1.us-east-1.elb.amazonaws.com".to_string(),
            scheme: "internet-facing".to_string(),
            tags: BTreeMap::new(),
            idle_timeout_seconds: Some(60.0),
            listeners: vec![Listener {
                port: 443,
                protocol: "HTTPS".to_string(),
            }],
            target_groups: vec![TargetGroup {
                dimension: "targetgroup/web/1".to_string(),
                target_type: target_type.to_string(),
                port: Some(8080),
                health_check: HealthCheck::default(),
                targets: targets
                    .iter()
                    .map(|(id, port, state)| TargetHealth {
                        target: id.to_string(),
                        id: id.to_string(),
                        port: *port,
                        state: state.to_string(),
                        reason: String::new(),
                    })
                    .collect(),
            }],
        }
    }

    #[test]
    fn instance_targets_take_the_private_address_ec2_gave_and_others_say_why_not() {
        let lb = balancer(
            "instance",
            &[
                ("i-1", Some(9000), "healthy"),
                ("i-2", None, "unhealthy"),
                ("i-gone", None, "healthy"),
            ],
        );
        assert_eq!(lb.instance_ids().collect::<Vec<_>>(), ["i-1", "i-2", "i-gone"]);
        let ips = HashMap::from([
            ("i-1".to_string(), "10.0.1.5".parse().expect("ip")),
            ("i-2".to_string(), "10.0.1.6".parse().expect("ip")),
        ]);
        let facts = lb.facts("us-east-1", &ips);
        let targets: Vec<_> = facts.targets().map(|t| (t.addr.to_string(), t.healthy)).collect();
        assert_eq!(
            targets,
            [
                ("10.0.1.5:9000".to_string(), Some(true)),
                ("10.0.1.6:8080".to_string(), Some(false))
            ]
        );
        assert_eq!(
            facts.skipped,
            [SkippedTarget {
                target: "i-gone".to_string(),
                reason: "no_address".to_string()
            }]
        );
        assert!(facts.has_unhealthy_targets());
        assert_eq!(facts.front_door, "shop-1.us-east-1.elb.amazonaws.com");

        let lambda = balancer(
            "lambda",
            &[("arn:aws:lambda:us-east-1:1:function:f", None, "healthy")],
        );
        let facts = lambda.facts("us-east-1", &HashMap::new());
        assert_eq!(facts.targets().count(), 0);
        assert_eq!(facts.skipped[0].reason, "lambda");
        assert!(lambda.instance_ids().next().is_none());
        let chained = balancer(
            "alb",
            &[(
                "arn:aws:elasticloadbalancing:us-east-1:1:loadbalancer/app/inner/2",
                Some(80),
                "healthy",
            )],
        );
        assert_eq!(
            chained.facts("us-east-1", &HashMap::new()).skipped[0].reason,
            "load_balancer"
        );
        let ip = balancer("ip", &[("10.0.2.7", Some(80), "draining")]);
        let facts = ip.facts("us-east-1", &HashMap::new());
        assert_eq!(
            facts.targets().next().map(|t| (t.addr.to_string(), t.healthy)),
            Some(("10.0.2.7:80".to_string(), None))
        );
    }
}
