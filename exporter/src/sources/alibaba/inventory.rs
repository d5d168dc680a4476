//! The Alibaba Cloud inventory: SLB instances (`DescribeLoadBalancers`, paged by `PageNumber`) and
//! ALB instances (`ListLoadBalancers`, paged by `NextToken`) with their names, addresses and tags,
//! so `lbtriage_lb_info` carries them and an instance deleted from the account disappears; and the
//! backend servers of an SLB instance as its health check sees them (`DescribeHealthStatus`).
//! Nothing here trusts the answer: an entry without an ID is skipped, a missing list is empty.

use std::collections::{BTreeMap, HashSet};

use serde_json::Value;

use super::client::{AlibabaError, CmsClient, Product};
use crate::config::{AlibabaJob, AlibabaNamespace};
use crate::runtime::{LbFacts, Listener, SkippedTarget, TargetFacts, TargetGroupFacts};
use crate::sources::telemetry::ApiCalls;

pub const API_DESCRIBE_LOAD_BALANCERS: &str = "DescribeLoadBalancers";
pub const API_LIST_LOAD_BALANCERS: &str = "ListLoadBalancers";
pub const API_DESCRIBE_HEALTH_STATUS: &str = "DescribeHealthStatus";
/// Both list APIs answer at most 100 instances a page.
const PAGE_SIZE: usize = 100;
/// A runaway page chain stops here (100,000 instances).
const MAX_PAGES: usize = 1000;

#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    pub id: String,
    pub name: String,
    pub namespace: AlibabaNamespace,
    /// SLB: the service address; ALB: the DNS name.
    pub address: String,
    pub tags: BTreeMap<String, String>,
}

/// One backend server behind one SLB listener.
#[derive(Debug, Clone, PartialEq)]
pub struct Backend {
    pub listener_port: String,
    /// The listener's protocol as the answer gives it (`http`, `https`, `tcp`, `udp`).
    pub protocol: String,
    /// `ip:port` (or the server ID where the answer has no IP).
    pub target: String,
    /// `ServerHealthStatus`: `normal`, `abnormal` or `unavailable`.
    pub status: String,
}

fn text(value: &Value, field: &str) -> String {
    match value.get(field) {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Number(number)) => number.to_string(),
        _ => String::new(),
    }
}

/// `{"Outer": {"Inner": [...]}}` (the RPC APIs' XML-shaped lists) or `{"Outer": [...]}`.
fn list<'a>(value: &'a Value, outer: &str, inner: &str) -> &'a [Value] {
    let outer = value.get(outer);
    outer
        .and_then(|v| v.get(inner))
        .or(outer)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn tags(entries: &[Value], key: &str, value: &str) -> BTreeMap<String, String> {
    entries
        .iter()
        .map(|tag| (text(tag, key), text(tag, value)))
        .filter(|(key, _)| !key.is_empty())
        .collect()
}

/// The list API of a namespace, as the self-metrics and the RAM policy name it.
pub fn list_api(namespace: AlibabaNamespace) -> &'static str {
    match namespace {
        AlibabaNamespace::Slb => API_DESCRIBE_LOAD_BALANCERS,
        AlibabaNamespace::Alb => API_LIST_LOAD_BALANCERS,
    }
}

/// Every instance of one namespace in the client's region (and the job's `instance_ids`).
pub async fn instances(
    client: &CmsClient,
    calls: &ApiCalls,
    job: &AlibabaJob,
    region: &str,
    namespace: AlibabaNamespace,
) -> Result<Vec<Instance>, AlibabaError> {
    let mut out = Vec::new();
    if namespace == AlibabaNamespace::Slb {
        for page in 1..=MAX_PAGES {
            let params = [
                ("RegionId", region.to_string()),
                ("PageNumber", page.to_string()),
                ("PageSize", PAGE_SIZE.to_string()),
            ];
            let answer = client
                .call(calls, Product::Slb, API_DESCRIBE_LOAD_BALANCERS, &params)
                .await?;
            let entries = list(&answer, "LoadBalancers", "LoadBalancer");
            out.extend(entries.iter().map(|lb| Instance {
                id: text(lb, "LoadBalancerId"),
                name: text(lb, "LoadBalancerName"),
                namespace: AlibabaNamespace::Slb,
                address: text(lb, "Address"),
                tags: tags(list(lb, "Tags", "Tag"), "TagKey", "TagValue"),
            }));
            let total = answer.get("TotalCount").and_then(Value::as_u64).unwrap_or(0) as usize;
            if entries.is_empty() || page * PAGE_SIZE >= total {
                break;
            }
        }
    } else {
        let mut token: Option<String> = None;
        let mut seen = HashSet::new();
        for _ in 0..MAX_PAGES {
            let mut params = vec![("MaxResults", PAGE_SIZE.to_string())];
            if let Some(token) = &token {
                params.push(("NextToken", token.clone()));
            }
            let answer = client
                .call(calls, Product::Alb, API_LIST_LOAD_BALANCERS, &params)
                .await?;
            out.extend(
                list(&answer, "LoadBalancers", "LoadBalancer")
                    .iter()
                    .map(|lb| Instance {
                        id: text(lb, "LoadBalancerId"),
                        name: text(lb, "LoadBalancerName"),
                        namespace: AlibabaNamespace::Alb,
                        address: text(lb, "DNSName"),
                        tags: tags(list(lb, "Tags", "Tag"), "Key", "Value"),
                    }),
            );
            match answer.get("NextToken").and_then(Value::as_str) {
                Some(next) if !next.is_empty() && seen.insert(next.to_string()) => {
                    token = Some(next.to_string())
                }
                _ => break,
            }
        }
    }
    out.retain(|i| !i.id.is_empty() && (job.instance_ids.is_empty() || job.instance_ids.contains(&i.id)));
    for instance in &mut out {
        if instance.name.is_empty() {
            instance.name = instance.id.clone();
        }
    }
    Ok(out)
}

/// The backend servers of one SLB instance, as its health check sees them.
pub async fn health(
    client: &CmsClient,
    calls: &ApiCalls,
    region: &str,
    id: &str,
) -> Result<Vec<Backend>, AlibabaError> {
    let params = [
        ("RegionId", region.to_string()),
        ("LoadBalancerId", id.to_string()),
    ];
    let answer = client
        .call(calls, Product::Slb, API_DESCRIBE_HEALTH_STATUS, &params)
        .await?;
    Ok(list(&answer, "BackendServers", "BackendServer")
        .iter()
        .filter_map(|server| {
            let ip = text(server, "ServerIp");
            let id = text(server, "ServerId");
            let host = if ip.is_empty() { id } else { ip };
            (!host.is_empty()).then(|| Backend {
                listener_port: text(server, "ListenerPort"),
                protocol: text(server, "Protocol"),
                target: format!("{host}:{}", text(server, "Port")),
                status: text(server, "ServerHealthStatus"),
            })
        })
        .collect())
}

/// What probes can use of an instance: its address (SLB service address, ALB DNS name) and, for an
/// SLB instance whose backends were read, its listeners and backend servers per listener.
/// Backends named by server ID alone (no IP in the answer) have no address to probe.
pub fn facts(instance: &Instance, backends: &[Backend], region: &str) -> LbFacts {
    let mut listeners: Vec<Listener> = Vec::new();
    let mut groups: Vec<TargetGroupFacts> = Vec::new();
    let mut skipped = Vec::new();
    for backend in backends {
        let Ok(port) = backend.listener_port.parse::<u16>() else {
            continue;
        };
        let protocol = backend.protocol.to_ascii_uppercase();
        if !listeners.iter().any(|l| l.port == port) {
            listeners.push(Listener { port, protocol });
        }
        let name = format!("listener:{port}");
        let Ok(addr) = backend.target.parse() else {
            skipped.push(SkippedTarget {
                target: backend.target.clone(),
                reason: "no_address".to_string(),
            });
            continue;
        };
        let healthy = match backend.status.as_str() {
            "normal" => Some(true),
            "abnormal" => Some(false),
            _ => None,
        };
        let target = TargetFacts { addr, healthy };
        match groups.iter_mut().find(|g| g.name == name) {
            Some(group) => group.targets.push(target),
            None => groups.push(TargetGroupFacts {
                name,
                targets: vec![target],
                ..TargetGroupFacts::default()
            }),
        }
    }
    LbFacts {
        provider: "alibaba".to_string(),
        region: region.to_string(),
        name: instance.name.clone(),
        front_door: instance.address.clone(),
        scheme: String::new(),
        listeners,
        idle_timeout: None,
        groups,
        skipped,
    }
}
