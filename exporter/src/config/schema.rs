//! The configuration's top level: one section per cloud, the probes, the rules and the shard.

use serde::Deserialize;

use super::alibaba::AlibabaJob;
use super::auto_probes::AutoProbes;
use super::aws::AwsJob;
use super::probe::ProbeConfig;
use super::rules::RulesConfig;
use super::shard::Shard;
use super::tencent::TencentJob;

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// CloudWatch jobs, one per account/role and set of regions.
    #[serde(default)]
    pub aws: Vec<AwsJob>,
    /// Alibaba Cloud CloudMonitor jobs (SLB and ALB), one per account and set of regions.
    #[serde(default)]
    pub alibaba: Vec<AlibabaJob>,
    /// Tencent Cloud CLB jobs (Cloud Monitor and the CLB API), one per account and set of regions.
    #[serde(default)]
    pub tencent: Vec<TencentJob>,
    /// Active probes: the path through a load balancer and its backends reached directly.
    #[serde(default)]
    pub probes: Vec<ProbeConfig>,
    /// Probes built from the clouds' inventories for the load balancers `probes:` does not name.
    #[serde(default)]
    pub auto_probes: AutoProbes,
    /// Overrides for the rendered alert rules (`lbtriage rules`).
    #[serde(default)]
    pub rules: RulesConfig,
    /// Splits a large fleet across exporters: this one watches its share of the load balancers
    /// (and of the probes).
    #[serde(default)]
    pub shard: Option<Shard>,
}
