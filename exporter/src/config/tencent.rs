//! The `tencent:` schema and its validation: Tencent Cloud CLB, read from Cloud Monitor
//! (`GetMonitorData`) with the instances, names, tags and backend health from the CLB API.

use std::time::Duration;

use serde::Deserialize;

use super::error::ConfigError;
use super::job::JobKeys;

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

super::job::cloud_job! {
    /// A Tencent Cloud CLB job: one account and its regions. One endpoint serves the job's Cloud
    /// Monitor and CLB calls when set; default `https://monitor.tencentcloudapi.com` and
    /// `https://clb.tencentcloudapi.com`. Credentials: `credentials_file` (INI, `secret_id` and
    /// `secret_key`, as the official SDKs' profile provider reads it), else
    /// `TENCENTCLOUD_SECRET_ID` and `TENCENTCLOUD_SECRET_KEY`.
    pub struct TencentJob {
        #[serde(default = "all_namespaces")]
        pub namespaces: Vec<TencentNamespace>,
        /// Only these instances (`lb-...`); empty: every CLB instance of the region.
        #[serde(default)]
        pub instance_ids: Vec<String>,
    }
    delay = "crate::config::job::default_delay", settle = "crate::config::job::default_settle"
    key_pair(calls_per_second = "default_calls_per_second")
}

fn all_namespaces() -> Vec<TencentNamespace> {
    TencentNamespace::ALL.to_vec()
}
fn default_calls_per_second() -> u32 {
    10
}

/// Cloud Monitor's limit per second.
pub(super) const MAX_CALLS_PER_SECOND: (u32, &str) = (20, "Cloud Monitor's limit per second");

impl TencentJob {
    /// What only a Tencent Cloud job can get wrong (the shared fields are checked by
    /// `validate_core`).
    pub(super) fn validate(&self, keys: &JobKeys<'_>) -> Result<(), ConfigError> {
        if self.namespaces.is_empty() {
            return Err(ConfigError::at(
                keys.key("namespaces"),
                "must list at least one of QCE/LB_PUBLIC, QCE/LB_PRIVATE",
            ));
        }
        if let Some(id) = self.instance_ids.iter().find(|id| !id.starts_with("lb-")) {
            return Err(ConfigError::at(
                keys.key("instance_ids"),
                format!("{id:?} is not a CLB instance ID (lb-...)"),
            ));
        }
        // The status-code metrics are documented in codes per minute for 60 s periods and
        // up; only at 60 s is a datapoint exactly one period's count.
        if self.period.as_duration() != Duration::from_secs(60) {
            return Err(ConfigError::at(
                keys.key("period"),
                format!(
                    "{} is not supported: CLB's status-code metrics count per minute, so the period is 60s",
                    self.period
                ),
            ));
        }
        Ok(())
    }
}
