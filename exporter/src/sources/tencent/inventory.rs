//! The CLB inventory: every instance of a region (`DescribeLoadBalancers`, paged by `Offset` and
//! `Limit`) with its name, network type, VIPs, VPC and tags, and the health of the real servers
//! behind each listener (`DescribeTargetHealth`). Nothing here trusts the answer: an instance
//! without an ID or a VIP is skipped, a missing list is empty.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::client::{Service, TencentClient, TencentError};
use crate::config::{TencentJob, TencentNamespace};
use crate::runtime::{HealthCheck, LbFacts, TargetFacts};
use crate::sources::engine::telemetry::ApiCalls;

pub const API_DESCRIBE_LOAD_BALANCERS: &str = "DescribeLoadBalancers";
pub const API_DESCRIBE_TARGET_HEALTH: &str = "DescribeTargetHealth";
/// `DescribeLoadBalancers` answers at most 100 instances per page.
const PAGE_LIMIT: usize = 100;
/// Instance IDs per `DescribeLoadBalancers` filter and per `DescribeTargetHealth` call.
pub const IDS_PER_CALL: usize = 20;
/// A runaway `Offset` chain stops here (100,000 instances).
const MAX_PAGES: usize = 1000;

#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    pub id: String,
    pub name: String,
    pub namespace: TencentNamespace,
    /// The VIP Cloud Monitor names the instance by.
    pub vip: String,
    pub vpc_id: String,
    pub tags: BTreeMap<String, String>,
}

/// One real server behind one listener, as CLB's health check sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub listener_port: u16,
    /// The listener's protocol (`HTTP`, `HTTPS`, `TCP`, `UDP`, `TCP_SSL`, `QUIC`).
    pub listener_protocol: String,
    /// `ip:port`.
    pub target: String,
    pub healthy: bool,
    /// `HealthStatusDetail` (`Alive`, `Dead`, `Unknown`, ...).
    pub detail: String,
}

fn text(value: &Value, field: &str) -> String {
    match value.get(field) {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Number(number)) => number.to_string(),
        _ => String::new(),
    }
}

fn list<'a>(value: &'a Value, field: &str) -> &'a [Value] {
    value
        .get(field)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// Every CLB instance of the client's region in the job's namespaces (and `instance_ids`).
pub async fn load_balancers(
    client: &TencentClient,
    calls: &ApiCalls,
    job: &TencentJob,
) -> Result<Vec<Instance>, TencentError> {
    let filters: Vec<Option<&[String]>> = if job.instance_ids.is_empty() {
        vec![None]
    } else {
        job.instance_ids.chunks(IDS_PER_CALL).map(Some).collect()
    };
    let mut instances = Vec::new();
    for ids in filters {
        let mut offset = 0;
        for _ in 0..MAX_PAGES {
            let mut request = json!({"Offset": offset, "Limit": PAGE_LIMIT});
            if let Some(ids) = ids {
                request["LoadBalancerIds"] = json!(ids);
            }
            let response = client
                .call(calls, Service::Clb, API_DESCRIBE_LOAD_BALANCERS, &request)
                .await?;
            let page = list(&response, "LoadBalancerSet");
            instances.extend(page.iter().filter_map(|lb| instance(lb, job)));
            offset += page.len();
            let total = response.get("TotalCount").and_then(Value::as_u64).unwrap_or(0) as usize;
            if page.is_empty() || offset >= total {
                break;
            }
        }
    }
    instances.sort_by(|a, b| a.id.cmp(&b.id));
    instances.dedup_by(|a, b| a.id == b.id);
    Ok(instances)
}

fn instance(lb: &Value, job: &TencentJob) -> Option<Instance> {
    let id = text(lb, "LoadBalancerId");
    let namespace = match text(lb, "LoadBalancerType").as_str() {
        "OPEN" => TencentNamespace::Public,
        "INTERNAL" => TencentNamespace::Private,
        _ => return None,
    };
    let vip = list(lb, "LoadBalancerVips")
        .iter()
        .find_map(|v| v.as_str().filter(|v| !v.is_empty()))?
        .to_string();
    if id.is_empty() || !job.namespaces.contains(&namespace) {
        return None;
    }
    let tags = list(lb, "Tags")
        .iter()
        .map(|tag| (text(tag, "TagKey"), text(tag, "TagValue")))
        .filter(|(key, _)| !key.is_empty())
        .collect();
    Some(Instance {
        name: Some(text(lb, "LoadBalancerName"))
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| id.clone()),
        id,
        namespace,
        vip,
        vpc_id: text(lb, "VpcId"),
        tags,
    })
}

/// The real servers of each listed instance, by instance ID.
pub async fn target_health(
    client: &TencentClient,
    calls: &ApiCalls,
    ids: &[String],
) -> Result<BTreeMap<String, Vec<Target>>, TencentError> {
    let mut out: BTreeMap<String, Vec<Target>> = BTreeMap::new();
    for chunk in ids.chunks(IDS_PER_CALL) {
        let response = client
            .call(
                calls,
                Service::Clb,
                API_DESCRIBE_TARGET_HEALTH,
                &json!({"LoadBalancerIds": chunk}),
            )
            .await?;
        for lb in list(&response, "LoadBalancers") {
            let targets = out.entry(text(lb, "LoadBalancerId")).or_default();
            for listener in list(lb, "Listeners") {
                let Some(port) = listener
                    .get("Port")
                    .and_then(Value::as_u64)
                    .and_then(|p| u16::try_from(p).ok())
                else {
                    continue;
                };
                for rule in list(listener, "Rules") {
                    for target in list(rule, "Targets") {
                        let ip = text(target, "IP");
                        if ip.is_empty() {
                            continue;
                        }
                        targets.push(Target {
                            listener_port: port,
                            listener_protocol: text(listener, "Protocol").to_ascii_uppercase(),
                            target: format!("{ip}:{}", text(target, "Port")),
                            healthy: target.get("HealthStatus").and_then(Value::as_bool) == Some(true),
                            detail: text(target, "HealthStatusDetail"),
                        });
                    }
                }
            }
        }
    }
    out.retain(|id, _| ids.contains(id));
    Ok(out)
}

/// What probes can use of an instance: its VIP, the listeners `DescribeTargetHealth` names and the
/// real servers behind each, with CLB's view of their health. CLB health-check paths are not read
/// (they would take `DescribeListeners`, one call per instance): probes use `/`.
pub fn facts(instance: &Instance, targets: &[Target], region: &str) -> LbFacts {
    let mut facts = LbFacts {
        provider: "tencent".to_string(),
        region: region.to_string(),
        name: instance.name.clone(),
        front_door: instance.vip.clone(),
        scheme: match instance.namespace {
            TencentNamespace::Public => "internet-facing",
            TencentNamespace::Private => "internal",
        }
        .to_string(),
        ..LbFacts::default()
    };
    for target in targets {
        facts.add_listener(target.listener_port, &target.listener_protocol);
        match target.target.parse() {
            Ok(addr) => facts.add_target(
                &format!("listener:{}", target.listener_port),
                &HealthCheck::default(),
                TargetFacts {
                    addr,
                    healthy: Some(target.healthy),
                },
            ),
            Err(_) => facts.skip(&target.target, "no_address"),
        }
    }
    facts
}
