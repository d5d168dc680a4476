//! The `aws:` schema.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::{Collection, PromDuration};

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum LoadBalancerType {
    Application,
    Network,
    Classic,
}

impl LoadBalancerType {
    pub const ALL: [LoadBalancerType; 3] = [Self::Application, Self::Network, Self::Classic];

    /// The value of the `lb_type` label.
    pub fn label(self) -> &'static str {
        match self {
            Self::Application => "application",
            Self::Network => "network",
            Self::Classic => "classic",
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AwsJob {
    pub name: String,
    pub regions: Vec<String>,
    /// One endpoint for every AWS client of the job: an emulator or a VPC endpoint.
    #[serde(default)]
    pub endpoint_url: Option<String>,
    #[serde(default)]
    pub role_arn: Option<String>,
    /// The external ID the role's trust policy requires (usual for cross-account roles); only
    /// with `role_arn`.
    #[serde(default)]
    pub external_id: Option<String>,
    #[serde(default = "all_types")]
    pub load_balancer_types: Vec<LoadBalancerType>,
    /// Tag key → accepted values; a load balancer must match every key. Empty: every load balancer.
    #[serde(default)]
    pub tag_filters: BTreeMap<String, Vec<String>>,
    #[serde(default = "default_period")]
    pub period: PromDuration,
    #[serde(default = "default_delay")]
    pub delay: PromDuration,
    #[serde(default = "default_interval")]
    pub interval: PromDuration,
    #[serde(default = "default_discovery_ttl")]
    pub discovery_ttl: PromDuration,
    /// Which metrics are read when: `adaptive` (tiers) or `full` (every metric every cycle).
    #[serde(default)]
    pub collection: Collection,
    /// How often the slow tier is read in `adaptive` collection.
    #[serde(default = "default_slow_interval")]
    pub slow_interval: PromDuration,
}

fn all_types() -> Vec<LoadBalancerType> {
    LoadBalancerType::ALL.to_vec()
}
pub(super) fn default_period() -> PromDuration {
    PromDuration(Duration::from_secs(60))
}
pub(super) fn default_delay() -> PromDuration {
    // CloudWatch completes a minute's data about two minutes after it ends.
    PromDuration(Duration::from_secs(120))
}
pub(super) fn default_interval() -> PromDuration {
    PromDuration(Duration::from_secs(60))
}
pub(super) fn default_slow_interval() -> PromDuration {
    // 15 minutes keeps a quiet ALB under $1.50 a month (docs/BENCHMARKS.md); 5m costs $1.81.
    PromDuration(Duration::from_secs(900))
}
fn default_discovery_ttl() -> PromDuration {
    PromDuration(Duration::from_secs(300))
}
