//! The cause catalog (`alerts/catalog.yml`), embedded in the binary: the single source of cause
//! ids, titles and runbook locations for rules, runbooks, dashboards and `diagnose`.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

const CATALOG_YAML: &str = include_str!("../../alerts/catalog.yml");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Layer {
    FrontDoor,
    LbToTarget,
    Target,
    RunbookOnly,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Critical,
    Warning,
    Info,
}

impl Layer {
    pub fn as_str(self) -> &'static str {
        match self {
            Layer::FrontDoor => "front_door",
            Layer::LbToTarget => "lb_to_target",
            Layer::Target => "target",
            Layer::RunbookOnly => "runbook_only",
        }
    }
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

/// The alert of a cause. Expressions use `${name}` for tunables (`rules.params` in the config
/// overrides them) and `${selector}` inside every selector's braces (`rules.selector`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Alert {
    pub expr: String,
    #[serde(rename = "for")]
    pub for_: String,
    /// Go template: the load balancer, the evidence values, humanized.
    pub description: String,
}

/// The runbook sections, in the project's own words.
#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Runbook {
    pub meaning: String,
    pub impact: String,
    pub diagnosis: String,
    pub mitigation: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Cause {
    pub id: String,
    pub title: String,
    pub layer: Layer,
    pub severity: Severity,
    /// Keys of `guides`.
    pub sources: Vec<String>,
    /// What separates this cause from its neighbours.
    #[serde(default)]
    pub evidence: Vec<String>,
    /// None for runbook-only causes, and where `no_alert` says why no signal exists yet.
    #[serde(default)]
    pub alert: Option<Alert>,
    /// Why an alertable cause has no alert (no metric separates it yet).
    #[serde(default)]
    pub no_alert: Option<String>,
    #[serde(default)]
    pub related: Vec<String>,
    #[serde(default)]
    pub runbook: Option<Runbook>,
}

impl Cause {
    /// The runbook's path in the repository.
    pub fn runbook(&self) -> String {
        format!("alerts/runbooks/{}.md", self.id)
    }

    /// `LB` and the id in CamelCase, without a leading `lb_`: `target_keepalive_too_short` →
    /// `LBTargetKeepaliveTooShort`, `lb_listener_missing` → `LBListenerMissing`.
    pub fn alert_name(&self) -> String {
        let id = self.id.strip_prefix("lb_").unwrap_or(&self.id);
        let mut name = String::from("LB");
        for word in id.split('_') {
            let mut chars = word.chars();
            if let Some(first) = chars.next() {
                name.extend(first.to_uppercase());
                name.push_str(chars.as_str());
            }
        }
        name
    }

    /// The summary annotation: the title as a sentence.
    pub fn summary(&self) -> String {
        format!("{}.", self.title.trim_end_matches('.'))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    pub guides: BTreeMap<String, String>,
    /// Defaults of the `${name}` tunables used in expressions.
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    pub causes: Vec<Cause>,
}

#[derive(Debug, thiserror::Error)]
#[error("alerts/catalog.yml: {0}")]
pub struct CatalogError(String);

impl Catalog {
    pub fn parse(text: &str) -> Result<Catalog, CatalogError> {
        let catalog: Catalog = config::Config::builder()
            .add_source(config::File::from_str(text, config::FileFormat::Yaml))
            .build()
            .and_then(|raw| raw.try_deserialize())
            .map_err(|err| CatalogError(err.to_string()))?;
        let mut seen = std::collections::HashSet::new();
        for cause in &catalog.causes {
            let fail = |message: String| Err(CatalogError(format!("cause {}: {message}", cause.id)));
            if !seen.insert(cause.id.as_str()) {
                return fail("listed twice".to_string());
            }
            if let Some(unknown) = cause.sources.iter().find(|s| !catalog.guides.contains_key(*s)) {
                return fail(format!("unknown source {unknown}"));
            }
            if cause.layer == Layer::RunbookOnly && (cause.alert.is_some() || cause.no_alert.is_some()) {
                return fail("runbook-only causes have no alert".to_string());
            }
            if cause.layer != Layer::RunbookOnly && cause.alert.is_none() == cause.no_alert.is_none() {
                return fail("an alertable cause has either an alert or a no_alert reason".to_string());
            }
            if cause.alert_name().len() > 40 {
                return fail("alert name longer than 40 characters".to_string());
            }
            if cause.runbook.is_none() {
                return fail("every cause has a runbook".to_string());
            }
            if let Some(unknown) = cause
                .related
                .iter()
                .find(|r| !catalog.causes.iter().any(|c| &c.id == *r))
            {
                return fail(format!("related cause {unknown} does not exist"));
            }
        }
        Ok(catalog)
    }

    /// The embedded catalog. It is checked by the test suite, so failing here is a build defect.
    pub fn embedded() -> &'static Catalog {
        static CATALOG: OnceLock<Catalog> = OnceLock::new();
        CATALOG.get_or_init(|| match Catalog::parse(CATALOG_YAML) {
            Ok(catalog) => catalog,
            Err(err) => panic!("the embedded catalog is invalid: {err}"),
        })
    }

    pub fn cause(&self, id: &str) -> Option<&Cause> {
        self.causes.iter().find(|c| c.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The public contract: exactly these ids (../shared/reference/causes.md).
    pub const CAUSE_IDS: [&str; 29] = [
        "lb_listener_missing",
        "client_network_blocked",
        "lb_certificate_invalid",
        "client_tls_negotiation_failure",
        "request_header_too_large",
        "lb_connection_limit",
        "lb_qps_throttled",
        "lb_bandwidth_throttled",
        "lb_port_allocation_exhausted",
        "dns_misrouted",
        "forwarding_loop",
        "targets_unhealthy",
        "no_healthy_targets",
        "health_check_flapping",
        "target_connection_refused",
        "lb_source_blocked",
        "target_connect_timeout",
        "target_tls_failure",
        "target_keepalive_too_short",
        "target_invalid_response",
        "target_response_timeout",
        "backend_errors_passthrough",
        "backend_saturated",
        "target_deregistration_in_flight",
        "backend_mtu_mismatch",
        "client_closed_early",
        "lb_5xx_unattributed",
        "ddos_protection_misconfigured",
        "windows_backend_l4_loopback",
    ];

    #[test]
    fn embedded_catalog_has_exactly_the_contract_ids() {
        let catalog = Catalog::embedded();
        let ids: Vec<&str> = catalog.causes.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, CAUSE_IDS);
        assert_eq!(
            catalog
                .cause("target_keepalive_too_short")
                .map(Cause::runbook)
                .as_deref(),
            Some("alerts/runbooks/target_keepalive_too_short.md")
        );
    }

    #[test]
    fn alert_names_are_camel_case_with_the_lb_prefix() {
        let catalog = Catalog::embedded();
        let name = |id: &str| catalog.cause(id).map(Cause::alert_name);
        assert_eq!(
            name("target_keepalive_too_short").as_deref(),
            Some("LBTargetKeepaliveTooShort")
        );
        assert_eq!(name("lb_listener_missing").as_deref(), Some("LBListenerMissing"));
        assert_eq!(name("lb_5xx_unattributed").as_deref(), Some("LB5xxUnattributed"));
        for cause in &catalog.causes {
            let name = cause.alert_name();
            assert!(name.len() <= 40 && name.starts_with("LB"), "{name}");
            assert!(name.chars().all(|c| c.is_ascii_alphanumeric()), "{name}");
        }
    }

    #[test]
    fn rejects_duplicates_and_unknown_sources() {
        let dup = "guides: {a: A}\ncauses:\n  - {id: x, title: X, layer: runbook_only, severity: info, sources: [a]}\n  - {id: x, title: X, layer: runbook_only, severity: info, sources: [a]}\n";
        assert!(Catalog::parse(dup).is_err());
        let unknown =
            "guides: {a: A}\ncauses:\n  - {id: x, title: X, layer: target, severity: info, sources: [b]}\n";
        assert!(Catalog::parse(unknown).is_err());
    }
}
