//! The `tencent:` schema and its validation: Tencent Cloud CLB, read from Cloud Monitor
//! (`GetMonitorData`) with the instances, names, tags and backend health from the CLB API.

use std::collections::HashSet;
use std::time::Duration;

use serde::Deserialize;

use super::aws::{default_delay, default_interval, default_slow_interval};
use super::validate::JobKeys;
use super::{Collection, Config, ConfigError, PromDuration};

/// The Cloud Monitor namespaces of CLB instances.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TencentNamespace {
    /// Public network CLB (`LoadBalancerType` `OPEN`).
    #[serde(rename = "QCE/LB_PUBLIC")]
    Public,
    /// Private network CLB (`INTERNAL`).
    #[serde(rename = "QCE/LB_PRIVATE")]
    Private,
}

impl TencentNamespace {
    pub const ALL: [TencentNamespace; 2] = [TencentNamespace::Public, TencentNamespace::Private];

    pub fn as_str(self) -> &'static str {
        match self {
            TencentNamespace::Public => "QCE/LB_PUBLIC",
            TencentNamespace::Private => "QCE/LB_PRIVATE",
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TencentJob {
    pub name: String,
    pub regions: Vec<String>,
    /// One endpoint for the job's Cloud Monitor and CLB calls (a test server, a private
    /// endpoint); default `https://monitor.tencentcloudapi.com` and `https://clb.tencentcloudapi.com`.
    #[serde(default)]
    pub endpoint_url: Option<String>,
    #[serde(default = "all_namespaces")]
    pub namespaces: Vec<TencentNamespace>,
    /// Only these instances (`lb-...`); empty: every CLB instance of the region.
    #[serde(default)]
    pub instance_ids: Vec<String>,
    #[serde(default = "default_period")]
    pub period: PromDuration,
    #[serde(default = "default_delay")]
    pub delay: PromDuration,
    #[serde(default = "default_interval")]
    pub interval: PromDuration,
    /// Instances, names, tags and backend health are re-read this often.
    #[serde(default = "default_discovery_ttl")]
    pub discovery_ttl: PromDuration,
    /// As for AWS: `adaptive` (tiers) or `full` (every metric every cycle).
    #[serde(default)]
    pub collection: Collection,
    #[serde(default = "default_slow_interval")]
    pub slow_interval: PromDuration,
    /// A Tencent Cloud credentials file (INI, `secret_id` and `secret_key`, as the official
    /// SDKs' profile provider reads it); without it, `TENCENTCLOUD_SECRET_ID` and
    /// `TENCENTCLOUD_SECRET_KEY`.
    #[serde(default)]
    pub credentials_file: Option<std::path::PathBuf>,
    #[serde(default = "default_profile")]
    pub credentials_profile: String,
    /// Calls per second this job makes at most (Cloud Monitor allows 20 per second).
    #[serde(default = "default_calls_per_second")]
    pub max_calls_per_second: u32,
}

fn all_namespaces() -> Vec<TencentNamespace> {
    TencentNamespace::ALL.to_vec()
}
fn default_period() -> PromDuration {
    PromDuration(Duration::from_secs(60))
}
fn default_discovery_ttl() -> PromDuration {
    PromDuration(Duration::from_secs(300))
}
fn default_profile() -> String {
    "default".to_string()
}
fn default_calls_per_second() -> u32 {
    10
}

impl Config {
    pub(super) fn validate_tencent<'a>(&'a self, names: &mut HashSet<&'a str>) -> Result<(), ConfigError> {
        for (index, job) in self.tencent.iter().enumerate() {
            let key = |field: &str| format!("tencent[{index}].{field}");
            let job_keys = JobKeys {
                prefix: format!("tencent[{index}]"),
                name: &job.name,
                regions: &job.regions,
                endpoint_url: job.endpoint_url.as_deref(),
                region_example: "ap-guangzhou",
            };
            job_keys.validate(names)?;
            if job.namespaces.is_empty() {
                return Err(ConfigError::at(
                    key("namespaces"),
                    "must list at least one of QCE/LB_PUBLIC, QCE/LB_PRIVATE",
                ));
            }
            if let Some(id) = job.instance_ids.iter().find(|id| !id.starts_with("lb-")) {
                return Err(ConfigError::at(
                    key("instance_ids"),
                    format!("{id:?} is not a CLB instance ID (lb-...)"),
                ));
            }
            // The status-code metrics are documented in codes per minute for 60 s periods and
            // up; only at 60 s is a datapoint exactly one period's count.
            if job.period.as_duration() != Duration::from_secs(60) {
                return Err(ConfigError::at(
                    key("period"),
                    format!(
                        "{} is not supported: CLB's status-code metrics count per minute, so the period is 60s",
                        job.period
                    ),
                ));
            }
            job_keys.validate_intervals(&job.interval, &job.slow_interval)?;
            if job.discovery_ttl.as_duration() < Duration::from_secs(1) {
                return Err(ConfigError::at(key("discovery_ttl"), "must be at least 1s"));
            }
            if !(1..=20).contains(&job.max_calls_per_second) {
                return Err(ConfigError::at(
                    key("max_calls_per_second"),
                    "must be between 1 and 20 (Cloud Monitor's limit per second)",
                ));
            }
            if job.credentials_profile.trim().is_empty() {
                return Err(ConfigError::at(key("credentials_profile"), "must not be empty"));
            }
        }
        Ok(())
    }
}
