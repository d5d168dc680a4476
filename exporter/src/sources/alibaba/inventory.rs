//! The Alibaba Cloud inventory: SLB instances (`DescribeLoadBalancers`, paged by `PageNumber`) and
//! ALB instances (`ListLoadBalancers`, paged by `NextToken`) with their names, addresses and tags,
//! so `lbtriage_lb_info` carries them and an instance deleted from the account disappears; and the
//! backend servers of an SLB instance as its health check sees them (`DescribeHealthStatus`).
//! Nothing here trusts the answer: an entry without an ID is skipped, a missing list is empty.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;

use serde_json::Value;

use super::client::{AlibabaError, CmsClient, Product};
use crate::config::{AlibabaJob, AlibabaNamespace};
use crate::runtime::{HealthCheck, LbFacts, TargetFacts};
use crate::sources::engine::telemetry::ApiCalls;

pub const API_DESCRIBE_LOAD_BALANCERS: &str = "DescribeLoadBalancers";
pub const API_LIST_LOAD_BALANCERS: &str = "ListLoadBalancers";
pub const API_DESCRIBE_HEALTH_STATUS: &str = "DescribeHealthStatus";
pub const API_LIST_SERVER_GROUPS: &str = "ListServerGroups";
pub const API_LIST_SERVER_GROUP_SERVERS: &str = "ListServerGroupServers";
pub const API_DESCRIBE_INSTANCES: &str = "DescribeInstances";
/// ECS `DescribeInstances` takes at most 100 instance IDs a call.
const ECS_IDS_PER_CALL: usize = 100;
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

/// An ALB server group and its members (`ListServerGroups`, `ListServerGroupServers`).
#[derive(Debug, Clone, PartialEq)]
pub struct ServerGroup {
    pub id: String,
    /// The ALB instances whose listeners forward to it (`RelatedLoadBalancerIds`).
    pub load_balancers: Vec<String>,
    pub health_check: HealthCheck,
    pub servers: Vec<Server>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Server {
    /// An ECS, ENI or ECI ID, an IP address, or a function's ARN.
    pub id: String,
    /// `Ecs`, `Eni`, `Eci`, `Ip` or `Fc`.
    pub server_type: String,
    /// Empty where the answer gives none.
    pub ip: String,
    pub port: String,
}

/// Pages of a `NextToken`-paged ALB list API, each page's entries under `field`.
async fn alb_pages(
    client: &CmsClient,
    calls: &ApiCalls,
    action: &'static str,
    params: &[(&str, String)],
    field: &str,
) -> Result<Vec<Value>, AlibabaError> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    let mut seen = HashSet::new();
    for _ in 0..MAX_PAGES {
        let mut page_params = params.to_vec();
        page_params.push(("MaxResults", PAGE_SIZE.to_string()));
        if let Some(token) = &token {
            page_params.push(("NextToken", token.clone()));
        }
        let answer = client.call(calls, Product::Alb, action, &page_params).await?;
        out.extend(list(&answer, field, "").iter().cloned());
        match answer.get("NextToken").and_then(Value::as_str) {
            Some(next) if !next.is_empty() && seen.insert(next.to_string()) => token = Some(next.to_string()),
            _ => break,
        }
    }
    Ok(out)
}

/// The server groups of the given ALB instances, with their health checks and members: one
/// listing of the region's groups, then one (paged) call per group that serves one of them.
pub async fn alb_server_groups(
    client: &CmsClient,
    calls: &ApiCalls,
    load_balancers: &[String],
) -> Result<Vec<ServerGroup>, AlibabaError> {
    let mut groups = Vec::new();
    for group in alb_pages(client, calls, API_LIST_SERVER_GROUPS, &[], "ServerGroups").await? {
        let related: Vec<String> = list(&group, "RelatedLoadBalancerIds", "")
            .iter()
            .filter_map(|id| id.as_str().map(str::to_string))
            .filter(|id| load_balancers.contains(id))
            .collect();
        let id = text(&group, "ServerGroupId");
        if related.is_empty() || id.is_empty() {
            continue;
        }
        let check = group.get("HealthCheckConfig").cloned().unwrap_or_default();
        let enabled = check.get("HealthCheckEnabled").and_then(Value::as_bool) != Some(false);
        let path = text(&check, "HealthCheckPath");
        let servers = alb_pages(
            client,
            calls,
            API_LIST_SERVER_GROUP_SERVERS,
            &[("ServerGroupId", id.clone())],
            "Servers",
        )
        .await?
        .iter()
        .map(|server| Server {
            id: text(server, "ServerId"),
            server_type: text(server, "ServerType"),
            ip: text(server, "ServerIp"),
            port: text(server, "Port"),
        })
        .collect();
        groups.push(ServerGroup {
            id,
            load_balancers: related,
            health_check: HealthCheck {
                protocol: if enabled {
                    text(&check, "HealthCheckProtocol").to_ascii_uppercase()
                } else {
                    String::new()
                },
                port: text(&check, "HealthCheckConnectPort")
                    .parse()
                    .ok()
                    .filter(|port: &u16| *port != 0),
                path: (enabled && !path.is_empty()).then_some(path),
            },
            servers,
        });
    }
    Ok(groups)
}

/// The ECS members whose address the answer did not give: ECS `DescribeInstances` gives it.
pub fn ecs_members_without_address(groups: &[ServerGroup]) -> Vec<String> {
    let mut ids: Vec<String> = groups
        .iter()
        .flat_map(|g| g.servers.iter())
        .filter(|s| s.server_type == "Ecs" && s.ip.parse::<IpAddr>().is_err())
        .map(|s| s.id.clone())
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// The private address of each ECS instance that exists and has one (VPC address first, else
/// the classic network's inner address).
pub async fn ecs_private_ips(
    client: &CmsClient,
    calls: &ApiCalls,
    region: &str,
    ids: &[String],
) -> Result<HashMap<String, IpAddr>, AlibabaError> {
    let mut out = HashMap::new();
    for chunk in ids.chunks(ECS_IDS_PER_CALL) {
        let params = [
            ("RegionId", region.to_string()),
            ("InstanceIds", Value::from(chunk.to_vec()).to_string()),
            ("PageSize", ECS_IDS_PER_CALL.to_string()),
        ];
        let answer = client
            .call(calls, Product::Ecs, API_DESCRIBE_INSTANCES, &params)
            .await?;
        for instance in list(&answer, "Instances", "Instance") {
            let vpc = instance
                .get("VpcAttributes")
                .map(|v| list(v, "PrivateIpAddress", "IpAddress"))
                .unwrap_or_default();
            let inner = list(instance, "InnerIpAddress", "IpAddress");
            let ip = vpc
                .iter()
                .chain(inner)
                .find_map(|ip| ip.as_str().and_then(|ip| ip.parse::<IpAddr>().ok()));
            if let Some(ip) = ip {
                out.insert(text(instance, "InstanceId"), ip);
            }
        }
    }
    Ok(out)
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

/// What probes can use of an instance: its address (SLB service address, ALB DNS name); for an
/// SLB instance whose backends were read, its listeners and backend servers per listener; for an
/// ALB instance, its server groups with their health checks and members (an ECS member without an
/// IP in the answer at the address `ecs` gives it). Members with no address say why.
pub fn facts(
    instance: &Instance,
    backends: &[Backend],
    groups: &[ServerGroup],
    ecs: &HashMap<String, IpAddr>,
    region: &str,
) -> LbFacts {
    let mut facts = LbFacts {
        provider: "alibaba".to_string(),
        region: region.to_string(),
        name: instance.name.clone(),
        front_door: instance.address.clone(),
        ..LbFacts::default()
    };
    for backend in backends {
        let Ok(port) = backend.listener_port.parse::<u16>() else {
            continue;
        };
        facts.add_listener(port, &backend.protocol);
        let healthy = match backend.status.as_str() {
            "normal" => Some(true),
            "abnormal" => Some(false),
            _ => None,
        };
        let group = format!("listener:{port}");
        match backend.target.parse() {
            Ok(addr) => facts.add_target(&group, &HealthCheck::default(), TargetFacts { addr, healthy }),
            Err(_) => facts.skip(&backend.target, "no_address"),
        }
    }
    for group in groups.iter().filter(|g| g.load_balancers.contains(&instance.id)) {
        for server in &group.servers {
            let ip = server
                .ip
                .parse::<IpAddr>()
                .ok()
                .or_else(|| match server.server_type.as_str() {
                    "Ecs" => ecs.get(&server.id).copied(),
                    _ => None,
                });
            let reason = if server.server_type == "Fc" {
                "function"
            } else {
                "no_address"
            };
            match (ip, server.port.parse::<u16>()) {
                (Some(ip), Ok(port)) => facts.add_target(
                    &group.id,
                    &group.health_check,
                    TargetFacts {
                        addr: std::net::SocketAddr::new(ip, port),
                        healthy: None,
                    },
                ),
                _ => facts.skip(&server.id, reason),
            }
        }
    }
    facts
}
