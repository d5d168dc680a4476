//! The `alibaba:` schema and its validation.

use serde::Deserialize;

use super::error::ConfigError;
use super::job::JobKeys;

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

super::job::cloud_job! {
    /// A CloudMonitor job (SLB and ALB): one account and its regions. Default endpoint:
    /// `https://metrics.<region>.aliyuncs.com`. Credentials: `credentials_file` (INI, as the
    /// official SDKs and CLI read it), else `ALIBABA_CLOUD_ACCESS_KEY_ID` and
    /// `ALIBABA_CLOUD_ACCESS_KEY_SECRET`; the account shares 50 calls/s per API across all users.
    pub struct AlibabaJob {
        #[serde(default = "all_namespaces")]
        pub namespaces: Vec<AlibabaNamespace>,
        /// Only these instances (SLB `lb-...`, ALB `alb-...`); empty: every instance of the region.
        #[serde(default)]
        pub instance_ids: Vec<String>,
    }
    delay = "crate::config::job::default_delay", settle = "crate::config::job::default_settle"
    key_pair(calls_per_second = "default_calls_per_second")
}

fn all_namespaces() -> Vec<AlibabaNamespace> {
    AlibabaNamespace::ALL.to_vec()
}
fn default_calls_per_second() -> u32 {
    10
}

/// The account-wide limit per API.
pub(super) const MAX_CALLS_PER_SECOND: (u32, &str) = (50, "the account-wide limit per API");

impl AlibabaJob {
    /// What only an Alibaba Cloud job can get wrong (the shared fields are checked by
    /// `validate_core`).
    pub(super) fn validate(&self, keys: &JobKeys<'_>) -> Result<(), ConfigError> {
        if self.namespaces.is_empty() {
            return Err(ConfigError::at(
                keys.key("namespaces"),
                "must list at least one of acs_slb_dashboard, acs_alb",
            ));
        }
        if let Some(id) = self.instance_ids.iter().find(|id| id.trim().is_empty()) {
            return Err(ConfigError::at(
                keys.key("instance_ids"),
                format!("{id:?} is not an instance ID"),
            ));
        }
        let period = self.period.as_duration();
        if !matches!(period.as_secs(), 60 | 300 | 900) || period.subsec_millis() != 0 {
            return Err(ConfigError::at(
                keys.key("period"),
                format!("{} is not a CloudMonitor period (60s, 300s or 900s)", self.period),
            ));
        }
        Ok(())
    }
}
