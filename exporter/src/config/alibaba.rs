//! The `alibaba:` schema and its validation.

use std::collections::HashSet;

use serde::Deserialize;

use super::aws::{default_delay, default_interval, default_period, default_slow_interval};
use super::validate::JobKeys;
use super::Collection;
use super::{Config, ConfigError, PromDuration};

/// The CloudMonitor namespaces lbtriage reads.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AlibabaNamespace {
    /// Server Load Balancer (CLB).
    #[serde(rename = "acs_slb_dashboard")]
    Slb,
    /// Application Load Balancer.
    #[serde(rename = "acs_alb")]
    Alb,
}

impl AlibabaNamespace {
    pub const ALL: [AlibabaNamespace; 2] = [AlibabaNamespace::Slb, AlibabaNamespace::Alb];

    pub fn as_str(self) -> &'static str {
        match self {
            AlibabaNamespace::Slb => "acs_slb_dashboard",
            AlibabaNamespace::Alb => "acs_alb",
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AlibabaJob {
    pub name: String,
    pub regions: Vec<String>,
    /// Default `https://metrics.<region>.aliyuncs.com`.
    #[serde(default)]
    pub endpoint_url: Option<String>,
    #[serde(default = "all_namespaces")]
    pub namespaces: Vec<AlibabaNamespace>,
    /// Only these instances (SLB `lb-...`, ALB `alb-...`); empty: every instance of the region.
    #[serde(default)]
    pub instance_ids: Vec<String>,
    #[serde(default = "default_period")]
    pub period: PromDuration,
    #[serde(default = "default_delay")]
    pub delay: PromDuration,
    #[serde(default = "default_interval")]
    pub interval: PromDuration,
    /// Instances, names, addresses and tags (SLB and ALB APIs) are re-read this often.
    #[serde(default = "default_discovery_ttl")]
    pub discovery_ttl: PromDuration,
    /// As for AWS: `adaptive` (tiers) or `full` (every metric every cycle).
    #[serde(default)]
    pub collection: Collection,
    #[serde(default = "default_slow_interval")]
    pub slow_interval: PromDuration,
    /// An Alibaba Cloud credentials file (INI, as the official SDKs and CLI read it); without it,
    /// `ALIBABA_CLOUD_ACCESS_KEY_ID` and `ALIBABA_CLOUD_ACCESS_KEY_SECRET`.
    #[serde(default)]
    pub credentials_file: Option<std::path::PathBuf>,
    /// The profile (section) of `credentials_file` to use.
    #[serde(default = "default_profile")]
    pub credentials_profile: String,
    /// Calls per second this job makes at most; the account shares 50/s per API across all users.
    #[serde(default = "default_alibaba_calls_per_second")]
    pub max_calls_per_second: u32,
}

fn default_discovery_ttl() -> PromDuration {
    PromDuration(std::time::Duration::from_secs(300))
}
fn all_namespaces() -> Vec<AlibabaNamespace> {
    AlibabaNamespace::ALL.to_vec()
}
fn default_profile() -> String {
    "default".to_string()
}
fn default_alibaba_calls_per_second() -> u32 {
    10
}

impl Config {
    pub(super) fn validate_alibaba<'a>(&'a self, names: &mut HashSet<&'a str>) -> Result<(), ConfigError> {
        for (index, job) in self.alibaba.iter().enumerate() {
            let key = |field: &str| format!("alibaba[{index}].{field}");
            let job_keys = JobKeys {
                prefix: format!("alibaba[{index}]"),
                name: &job.name,
                regions: &job.regions,
                endpoint_url: job.endpoint_url.as_deref(),
                region_example: "cn-hangzhou",
            };
            job_keys.validate(names)?;
            if job.namespaces.is_empty() {
                return Err(ConfigError::at(
                    key("namespaces"),
                    "must list at least one of acs_slb_dashboard, acs_alb",
                ));
            }
            if let Some(id) = job.instance_ids.iter().find(|id| id.trim().is_empty()) {
                return Err(ConfigError::at(
                    key("instance_ids"),
                    format!("{id:?} is not an instance ID"),
                ));
            }
            let period = job.period.as_duration();
            if !matches!(period.as_secs(), 60 | 300 | 900) || period.subsec_millis() != 0 {
                return Err(ConfigError::at(
                    key("period"),
                    format!("{} is not a CloudMonitor period (60s, 300s or 900s)", job.period),
                ));
            }
            job_keys.validate_intervals(&job.interval, &job.slow_interval)?;
            if job.discovery_ttl.as_duration() < std::time::Duration::from_secs(1) {
                return Err(ConfigError::at(key("discovery_ttl"), "must be at least 1s"));
            }
            if !(1..=50).contains(&job.max_calls_per_second) {
                return Err(ConfigError::at(
                    key("max_calls_per_second"),
                    "must be between 1 and 50 (the account-wide limit per API)",
                ));
            }
            if job.credentials_profile.trim().is_empty() {
                return Err(ConfigError::at(key("credentials_profile"), "must not be empty"));
            }
        }
        Ok(())
    }
}
