//! The `rules:` section of the config: overrides for the rendered alert rules (`lbtriage
//! rules`), like a monitoring mixin's `_config`, and their validation against the catalog.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::duration::PromDuration;
use crate::catalog::Catalog;

/// The `rules:` section of the config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesConfig {
    /// Added inside every selector, e.g. `job="lbtriage"`.
    #[serde(default)]
    pub selector: String,
    /// Overrides of the catalog's `${name}` tunables (thresholds, minimum request rates).
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    /// `for` overrides, keyed by cause or operational alert id (shortened in the end-to-end suite
    /// and the demo); one for `error_budget_burn` applies to both of its severities.
    #[serde(default, rename = "for")]
    pub for_overrides: BTreeMap<String, PromDuration>,
    /// Where the runbooks are published; `runbook_url` is this plus `<id>.md`.
    #[serde(default = "default_runbook_base_url")]
    pub runbook_base_url: String,
    /// Grafana's base URL; `dashboard_url` opens the detail dashboard for the alert's `lb`.
    #[serde(default = "default_dashboard_base_url")]
    pub dashboard_base_url: String,
    /// The dashboards' UIDs are `<prefix>-overview`, `<prefix>-detail` and `<prefix>-probes`.
    #[serde(default = "default_dashboard_uid_prefix")]
    pub dashboard_uid_prefix: String,
    /// The availability objective the symptom page burns against.
    #[serde(default)]
    pub slo: SloConfig,
}

/// `rules.slo`: the share of requests a load balancer should answer without a 5xx, globally and
/// per selector (over `lbtriage_lb_info`, so `tag_<key>` labels select teams).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SloConfig {
    #[serde(default = "default_objective")]
    pub objective: f64,
    /// The first override whose selector matches a load balancer sets its objective.
    #[serde(default)]
    pub overrides: Vec<SloOverride>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SloOverride {
    /// Label matchers inside braces, e.g. `region="eu-west-1"` or `tag_team="payments"`.
    pub selector: String,
    pub objective: f64,
}

fn default_objective() -> f64 {
    0.999
}

impl Default for SloConfig {
    fn default() -> Self {
        SloConfig {
            objective: default_objective(),
            overrides: Vec::new(),
        }
    }
}

fn default_runbook_base_url() -> String {
    "alerts/runbooks/".to_string()
}
fn default_dashboard_base_url() -> String {
    "/".to_string()
}
fn default_dashboard_uid_prefix() -> String {
    "lbtriage".to_string()
}

impl Default for RulesConfig {
    fn default() -> Self {
        RulesConfig {
            selector: String::new(),
            params: BTreeMap::new(),
            for_overrides: BTreeMap::new(),
            runbook_base_url: default_runbook_base_url(),
            dashboard_base_url: default_dashboard_base_url(),
            dashboard_uid_prefix: default_dashboard_uid_prefix(),
            slo: SloConfig::default(),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RulesError {
    #[error(
        "cause {cause}: expression uses ${{{name}}}, which neither the catalog nor rules.params defines"
    )]
    UnknownParam { cause: String, name: String },
    #[error("rules.{key}: no cause {cause} in the catalog")]
    UnknownCause { key: &'static str, cause: String },
    #[error("rules.params.{0}: the catalog has no such parameter")]
    UnknownOverride(String),
    #[error("rules.slo.{key}: the objective must be between 0 and 1 (exclusive), not {value}")]
    Objective { key: String, value: String },
}

impl RulesConfig {
    pub fn validate(&self, catalog: &Catalog) -> Result<(), RulesError> {
        if let Some(name) = self
            .params
            .keys()
            .find(|name| !catalog.params.contains_key(*name))
        {
            return Err(RulesError::UnknownOverride(name.clone()));
        }
        if let Some(cause) = self
            .for_overrides
            .keys()
            .find(|id| catalog.cause(id).is_none() && catalog.operational(id).is_none())
        {
            return Err(RulesError::UnknownCause {
                key: "for",
                cause: cause.clone(),
            });
        }
        let objectives = std::iter::once(("objective".to_string(), self.slo.objective)).chain(
            self.slo
                .overrides
                .iter()
                .enumerate()
                .map(|(i, o)| (format!("overrides[{i}].objective"), o.objective)),
        );
        for (key, value) in objectives {
            if !(value > 0.0 && value < 1.0) {
                return Err(RulesError::Objective {
                    key,
                    value: value.to_string(),
                });
            }
        }
        Ok(())
    }
}
