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
    /// Empty for the symptom page, whose expression is rendered from the SLO configuration.
    #[serde(default)]
    pub expr: String,
    #[serde(rename = "for")]
    pub for_: String,
    /// Go template: the load balancer, the evidence values in the units of `units.rs`.
    pub description: String,
    /// The first thing to look at (Go template), appended to the description: required of every
    /// alert, so on-call always has a next step.
    pub first_look: String,
    /// A critical alert whose value is above this is a warning instead (the `severity` label is
    /// templated on `$value`): a certificate that still has days left is not yet an outage.
    #[serde(default)]
    pub warning_above: Option<f64>,
}

/// The runbook sections, in the project's own words.
#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Runbook {
    pub meaning: String,
    pub impact: String,
    pub diagnosis: String,
    pub mitigation: String,
    /// What buys time before the fix.
    #[serde(default)]
    pub stopgap: Option<String>,
    /// The exact commands per provider, by its registry name (`aws`, `alibaba`, `tencent`).
    #[serde(default)]
    pub commands: BTreeMap<String, String>,
    /// How the cause shows in the load balancer's access log.
    #[serde(default)]
    pub access_log: Option<String>,
}

/// A documented behaviour of a provider's metric or API that a cause's alert relies on.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Semantic {
    pub fact: String,
    /// Where the provider documents it: a URL or a key of `guides`.
    pub source: String,
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
    /// The kinds of load balancer the alert can fire for (its families have a source there), by
    /// the ids the providers' registry rows declare (`aws_alb`, ...; checked in `sources/registry.rs`).
    #[serde(default)]
    pub providers: Vec<String>,
    /// The cause makes the load balancer generate 5xx itself: while its alert fires, it explains
    /// them, and `lb_5xx_unattributed` stays silent.
    #[serde(default)]
    pub explains_lb_5xx: bool,
    /// The documented metric semantics the alert relies on.
    #[serde(default)]
    pub semantics: Vec<Semantic>,
}

/// `LB` and the id in CamelCase, without a leading `lb_`: `target_keepalive_too_short` →
/// `LBTargetKeepaliveTooShort`, `lb_listener_missing` → `LBListenerMissing`.
pub fn alert_name(id: &str) -> String {
    let id = id.strip_prefix("lb_").unwrap_or(id);
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

/// The runbook's path in the repository.
pub fn runbook_path(id: &str) -> String {
    format!("alerts/runbooks/{id}.md")
}

/// The summary annotation: the title as a sentence.
pub fn summary(title: &str) -> String {
    format!("{}.", title.trim_end_matches('.'))
}

/// An alert that names no cause: the symptom page (users are failing now) and lbtriage's own
/// health. It carries no `cause` label.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Operational {
    pub id: String,
    pub title: String,
    pub severity: Severity,
    /// The symptom page: its expression comes from `rules.slo`, in a critical (fast burn) and a
    /// warning (slow burn) form.
    #[serde(default)]
    pub slo: bool,
    pub alert: Alert,
    pub runbook: Runbook,
}

impl Operational {
    pub fn alert_name(&self) -> String {
        alert_name(&self.id)
    }

    pub fn runbook_path(&self) -> String {
        runbook_path(&self.id)
    }

    pub fn summary(&self) -> String {
        summary(&self.title)
    }
}

impl Cause {
    /// See [`runbook_path`].
    pub fn runbook(&self) -> String {
        runbook_path(&self.id)
    }

    /// See [`alert_name`].
    pub fn alert_name(&self) -> String {
        alert_name(&self.id)
    }

    /// See [`summary`].
    pub fn summary(&self) -> String {
        summary(&self.title)
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
    /// The symptom page and the self-monitoring alerts.
    #[serde(default)]
    pub operational: Vec<Operational>,
}

#[derive(Debug, thiserror::Error)]
#[error("alerts/catalog.yml: {0}")]
pub struct CatalogError(String);

impl Catalog {
    pub fn parse(text: &str) -> Result<Catalog, CatalogError> {
        let catalog: Catalog = crate::yaml::from_str(text).map_err(|err| {
            let at = err.path.map(|path| format!("{path}: ")).unwrap_or_default();
            CatalogError(format!("{at}{}", err.message))
        })?;
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
            if cause.alert.is_some() && cause.providers.is_empty() {
                return fail("an alert lists the providers it can fire for".to_string());
            }
            if cause.explains_lb_5xx && cause.alert.is_none() {
                return fail("explains_lb_5xx needs an alert".to_string());
            }
            if let Some(unknown) = cause
                .related
                .iter()
                .find(|r| !catalog.causes.iter().any(|c| &c.id == *r))
            {
                return fail(format!("related cause {unknown} does not exist"));
            }
        }
        for op in &catalog.operational {
            let fail = |message: &str| Err(CatalogError(format!("operational {}: {message}", op.id)));
            if !seen.insert(op.id.as_str()) {
                return fail("id used twice");
            }
            if op.slo != op.alert.expr.trim().is_empty() {
                return fail("the SLO page has no expression, every other alert has one");
            }
        }
        Ok(catalog)
    }

    pub fn operational(&self, id: &str) -> Option<&Operational> {
        self.operational.iter().find(|o| o.id == id)
    }

    /// Ids of the causes that explain load-balancer 5xx while they fire, as a regex alternation.
    pub fn causes_explaining_lb_5xx(&self) -> String {
        self.causes
            .iter()
            .filter(|c| c.explains_lb_5xx)
            .map(|c| c.id.as_str())
            .collect::<Vec<_>>()
            .join("|")
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

    /// An on-call can act on every alert: commands per provider, the access-log signature and a
    /// stopgap, besides the four sections every runbook has.
    #[test]
    fn every_alerts_runbook_has_commands_a_log_signature_and_a_stopgap() {
        use crate::sources::registry::PROVIDERS;
        let catalog = Catalog::embedded();
        let runbooks = catalog
            .causes
            .iter()
            .filter(|c| c.alert.is_some())
            .filter_map(|c| c.runbook.as_ref().map(|r| (c.id.as_str(), r)));
        for (id, runbook) in runbooks {
            assert!(runbook.stopgap.is_some(), "{id}: no stopgap");
            assert!(runbook.access_log.is_some(), "{id}: no access-log signature");
            assert!(!runbook.commands.is_empty(), "{id}: no commands");
            for provider in runbook.commands.keys() {
                assert!(
                    PROVIDERS.iter().any(|p| p.name == provider),
                    "{id}: {provider} is not a provider"
                );
            }
            // Every cloud the alert can fire for has its commands.
            let cause = catalog.cause(id).expect("listed");
            for provider in PROVIDERS {
                if provider
                    .kinds
                    .iter()
                    .any(|k| cause.providers.iter().any(|id| id == k.id))
                {
                    assert!(
                        runbook.commands.contains_key(provider.name),
                        "{id}: no {} commands",
                        provider.name
                    );
                }
            }
        }
        for op in &catalog.operational {
            assert!(op.runbook.stopgap.is_some(), "{}: no stopgap", op.id);
        }
    }

    #[test]
    fn operational_ids_are_not_cause_ids_and_name_alerts_with_the_lb_prefix() {
        let catalog = Catalog::embedded();
        for op in &catalog.operational {
            assert!(catalog.cause(&op.id).is_none(), "{}", op.id);
            assert!(op.alert_name().starts_with("LB"), "{}", op.alert_name());
        }
        assert_eq!(
            catalog
                .operational("error_budget_burn")
                .map(Operational::alert_name)
                .as_deref(),
            Some("LBErrorBudgetBurn")
        );
        assert_eq!(
            catalog
                .operational("triage_source_down")
                .map(Operational::alert_name)
                .as_deref(),
            Some("LBTriageSourceDown")
        );
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
