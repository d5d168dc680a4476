//! The `aws:` schema.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::error::ConfigError;
use super::job::JobKeys;

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

super::job::cloud_job! {
    /// A CloudWatch job: one account (or assumed role) and its regions.
    pub struct AwsJob {
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
    }
    delay = "crate::config::job::sixty_seconds", settle = "crate::config::job::default_settle"
}

fn all_types() -> Vec<LoadBalancerType> {
    LoadBalancerType::ALL.to_vec()
}

impl AwsJob {
    /// What only an AWS job can get wrong (the shared fields are checked by `validate_core`).
    pub(super) fn validate(&self, keys: &JobKeys<'_>) -> Result<(), ConfigError> {
        if let Some(arn) = &self.role_arn {
            if !(arn.starts_with("arn:") && arn.contains(":role/")) {
                return Err(ConfigError::at(
                    keys.key("role_arn"),
                    format!("{arn:?} is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)"),
                ));
            }
        }
        if self.external_id.is_some() && self.role_arn.is_none() {
            return Err(ConfigError::at(
                keys.key("external_id"),
                "is sent when assuming `role_arn`, which is not set",
            ));
        }
        if self
            .external_id
            .as_deref()
            .is_some_and(|id| !(2..=1224).contains(&id.len()))
        {
            return Err(ConfigError::at(
                keys.key("external_id"),
                "must be 2 to 1,224 characters (the STS AssumeRole limit)",
            ));
        }
        if self.load_balancer_types.is_empty() {
            return Err(ConfigError::at(
                keys.key("load_balancer_types"),
                "must list at least one of application, network, classic",
            ));
        }
        for (tag, values) in &self.tag_filters {
            if tag.is_empty() || values.is_empty() {
                return Err(ConfigError::at(
                    keys.key(&format!("tag_filters.{tag}")),
                    "a tag filter needs a non-empty key and at least one value",
                ));
            }
        }
        let period = self.period.as_duration().as_secs();
        let whole_seconds = self.period.as_duration().subsec_millis() == 0;
        if !whole_seconds || !(matches!(period, 1 | 5 | 10 | 30) || (period >= 60 && period % 60 == 0)) {
            return Err(ConfigError::at(
                keys.key("period"),
                format!(
                    "{} is not a CloudWatch period (1s, 5s, 10s, 30s or a multiple of 60s)",
                    self.period
                ),
            ));
        }
        Ok(())
    }
}
