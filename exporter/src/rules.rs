//! Renders what the cause catalog promises: the Prometheus rule file (with the user's overrides
//! from the config's `rules:` section, like a monitoring mixin's `_config`), one runbook per
//! alert, and `docs/causes.md`.
//!
//! The rule file has three layers. The symptom page (`LBErrorBudgetBurn`) fires per load balancer
//! when its 5xx burn the error budget of an SLO (multi-window, multi-burn-rate, as in the SRE
//! workbook) and names no cause. The cause alerts, one per catalog cause with `cause="<id>"`, say
//! why; only a cause that is an outage by itself pages. The self-monitoring alerts say when
//! lbtriage cannot see.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Deserialize;

use crate::catalog::{Alert, Catalog, Cause, Layer, Operational, Runbook, Severity};
use crate::config::PromDuration;

/// Prometheus' recommendation for rule groups: keep them small enough to evaluate together.
pub const MAX_RULES_PER_GROUP: usize = 20;

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

/// The labels a load balancer's alerts keep, so Alertmanager can route by provider, region or name.
pub const LB_LABELS: &str = "provider, region, lb, lb_name";

/// Burn-rate windows (SRE workbook, "multiwindow, multi-burn-rate alerts"): a long window that
/// proves the budget burns, a short one that proves it still does. Fast burns page; slow burns
/// open a ticket.
struct BurnWindow {
    long: &'static str,
    short: &'static str,
    factor: &'static str,
}

const PAGE_BURNS: [BurnWindow; 2] = [
    BurnWindow {
        long: "1h",
        short: "5m",
        factor: "14.4",
    },
    BurnWindow {
        long: "6h",
        short: "30m",
        factor: "6",
    },
];
const TICKET_BURNS: [BurnWindow; 2] = [
    BurnWindow {
        long: "1d",
        short: "2h",
        factor: "3",
    },
    BurnWindow {
        long: "3d",
        short: "6h",
        factor: "1",
    },
];
/// How long a slow burn lasts before it opens a ticket.
const SLOW_BURN_FOR: &str = "15m";
const WINDOWS: [&str; 7] = ["5m", "30m", "1h", "2h", "6h", "1d", "3d"];

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

/// Replaces `${name}` with its value: `selector` from the config, the rest from the params.
fn substitute(
    id: &str,
    text: &str,
    selector: &str,
    params: &BTreeMap<String, String>,
) -> Result<String, RulesError> {
    // Without a selector, `{a="b", ${selector}}` becomes `{a="b"}`, not `{a="b", }`.
    let text = if selector.is_empty() {
        text.replace(", ${selector}", "").replace(",${selector}", "")
    } else {
        text.to_string()
    };
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let name = &after[..end];
        let value = if name == "selector" {
            selector
        } else {
            params
                .get(name)
                .map(String::as_str)
                .ok_or_else(|| RulesError::UnknownParam {
                    cause: id.to_string(),
                    name: name.to_string(),
                })?
        };
        out.push_str(value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// A YAML double-quoted scalar: JSON's string escapes are valid YAML.
fn quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_string())
}

/// The Prometheus rule file: the SLO recording rules and the symptom page, one group of cause
/// alerts per layer (split past 20 rules), then lbtriage's own health.
pub fn render_rules(catalog: &Catalog, config: &RulesConfig) -> Result<String, RulesError> {
    config.validate(catalog)?;
    let params = params(catalog, config);
    let mut out = String::from(
        "# Generated by `lbtriage rules` from alerts/catalog.yml; do not edit. The symptom page\n\
         # (LBErrorBudgetBurn) says users are failing; every cause alert names one documented cause\n\
         # (label `cause`), carries its evidence and links its runbook.\n\
         groups:\n",
    );
    let recording = slo_recording_rules(config);
    for (index, chunk) in recording.chunks(MAX_RULES_PER_GROUP).enumerate() {
        let _ = writeln!(out, "  - name: lbtriage.slo{}\n    rules:", group_suffix(index));
        for (record, expr) in chunk {
            let _ = writeln!(out, "      - record: {record}\n        expr: |-");
            for line in expr.lines() {
                let _ = writeln!(out, "          {line}");
            }
        }
    }
    let symptoms: Vec<&Operational> = catalog.operational.iter().filter(|o| o.slo).collect();
    if !symptoms.is_empty() {
        out.push_str("  - name: lbtriage.symptoms\n    rules:\n");
        for op in symptoms {
            for (severity, burns, for_) in [
                (Severity::Critical, &PAGE_BURNS, op.alert.for_.as_str()),
                (Severity::Warning, &TICKET_BURNS, SLOW_BURN_FOR),
            ] {
                let spec = AlertSpec {
                    name: op.alert_name(),
                    id: &op.id,
                    expr: burn_expr(burns),
                    for_: for_override(config, &op.id).unwrap_or_else(|| for_.to_string()),
                    severity: severity.as_str().to_string(),
                    cause: None,
                    summary: op.summary(),
                    alert: &op.alert,
                };
                render_alert(&mut out, &spec, config, &params)?;
            }
        }
    }
    for layer in [Layer::FrontDoor, Layer::LbToTarget, Layer::Target] {
        let causes: Vec<&Cause> = catalog
            .causes
            .iter()
            .filter(|c| c.layer == layer && c.alert.is_some())
            .collect();
        for (index, chunk) in causes.chunks(MAX_RULES_PER_GROUP).enumerate() {
            let _ = writeln!(
                out,
                "  - name: lbtriage.{}{}\n    rules:",
                layer.as_str(),
                group_suffix(index)
            );
            for cause in chunk {
                let Some(alert) = &cause.alert else { continue };
                let for_ = for_override(config, &cause.id).unwrap_or_else(|| alert.for_.clone());
                let spec = AlertSpec {
                    name: cause.alert_name(),
                    id: &cause.id,
                    expr: alert.expr.trim().to_string(),
                    for_,
                    severity: severity_label(cause.severity, alert),
                    cause: Some(&cause.id),
                    summary: cause.summary(),
                    alert,
                };
                render_alert(&mut out, &spec, config, &params)?;
            }
        }
    }
    let own: Vec<&Operational> = catalog.operational.iter().filter(|o| !o.slo).collect();
    if !own.is_empty() {
        out.push_str("  - name: lbtriage.self\n    rules:\n");
        for op in own {
            let spec = AlertSpec {
                name: op.alert_name(),
                id: &op.id,
                expr: op.alert.expr.trim().to_string(),
                for_: for_override(config, &op.id).unwrap_or_else(|| op.alert.for_.clone()),
                severity: op.severity.as_str().to_string(),
                cause: None,
                summary: op.summary(),
                alert: &op.alert,
            };
            render_alert(&mut out, &spec, config, &params)?;
        }
    }
    Ok(out)
}

fn for_override(config: &RulesConfig, id: &str) -> Option<String> {
    config.for_overrides.get(id).map(|d| d.to_string())
}

fn group_suffix(index: usize) -> String {
    if index == 0 {
        String::new()
    } else {
        format!(".{}", index + 1)
    }
}

/// The catalog's tunables with the config's overrides, and the names the renderer defines:
/// `lb_labels`, `causes_explaining_lb_5xx`, `firing_causes` (a template listing the cause alerts
/// firing for the alert's load balancer, with their runbooks) and the unit helpers (`units.rs`).
fn params(catalog: &Catalog, config: &RulesConfig) -> BTreeMap<String, String> {
    let mut params = catalog.params.clone();
    params.extend(config.params.clone());
    params.insert("lb_labels".to_string(), LB_LABELS.to_string());
    params.extend(crate::units::params().map(|(name, template)| (name.to_string(), template)));
    params.insert(
        "causes_explaining_lb_5xx".to_string(),
        catalog.causes_explaining_lb_5xx(),
    );
    params.insert(
        "firing_causes".to_string(),
        format!(
            "{{{{ range query (printf \"ALERTS{{alertstate='firing', cause!='', lb='%s'}}\" $labels.lb) | sortByLabel \"cause\" }}}}\
             {{{{ .Labels.cause }}}} ({}{{{{ .Labels.cause }}}}.md); {{{{ else }}}}none yet; {{{{ end }}}}",
            config.runbook_base_url
        ),
    );
    params
}

/// `severity`, templated on the value where a critical alert has a warning range.
fn severity_label(severity: Severity, alert: &Alert) -> String {
    match (severity, alert.warning_above) {
        (Severity::Critical, Some(limit)) => {
            format!("{{{{ if gt $value {limit:?} }}}}warning{{{{ else }}}}critical{{{{ end }}}}")
        }
        _ => severity.as_str().to_string(),
    }
}

/// Per window: all 5xx the load balancer answered (its own and passed through), the traffic it
/// answered, and their ratio; then each load balancer's objective. Traffic is requests plus the
/// 5xx the load balancer generated itself, because AWS counts a request only once a target was
/// chosen: an empty target group's 503s are not in `RequestCount` at all.
fn slo_recording_rules(config: &RulesConfig) -> Vec<(String, String)> {
    // Braces even when empty (`metric{}`), as the catalog's `{${selector}}` renders: one convention,
    // which the mixin's placeholders rely on.
    let sel = |extra: &str| match (extra.is_empty(), config.selector.is_empty()) {
        (true, true) => "{}".to_string(),
        (true, false) => format!("{{{}}}", config.selector),
        (false, true) => format!("{{{extra}}}"),
        (false, false) => format!("{{{extra}, {}}}", config.selector),
    };
    let mut rules = Vec::new();
    for window in WINDOWS {
        let errors = format!("lbtriage:lb_errors:rate{window}");
        let traffic = format!("lbtriage:lb_traffic:rate{window}");
        rules.push((
            errors.clone(),
            format!(
                "sum by ({LB_LABELS}) (rate(lbtriage_lb_responses_total{}[{window}]))",
                sel("code=~\"5.*\"")
            ),
        ));
        rules.push((
            traffic.clone(),
            format!(
                "(\n    sum by ({LB_LABELS}) (rate(lbtriage_lb_requests_total{}[{window}]))\n  or\n\
                 \x20   0 * {errors}\n)\n  +\n\
                 (\n    sum by ({LB_LABELS}) (rate(lbtriage_lb_responses_total{}[{window}]))\n  or\n\
                 \x20   0 * {errors}\n)",
                sel(""),
                sel("origin=\"lb\", code=~\"5.*\"")
            ),
        ));
        rules.push((
            format!("lbtriage:lb_error_ratio:rate{window}"),
            format!("{errors}\n  /\n{traffic}"),
        ));
    }
    let info = |matchers: &str| format!("group by ({LB_LABELS}) (lbtriage_lb_info{})", sel(matchers));
    // Each override sets the objective of the load balancers its selector matches that no earlier
    // one took; the default then covers every other load balancer with traffic, with or without an
    // info series.
    let scopes = config
        .slo
        .overrides
        .iter()
        .map(|o| (o.objective, info(&o.selector)))
        .chain(std::iter::once((
            config.slo.objective,
            format!("group by ({LB_LABELS}) (lbtriage:lb_traffic:rate5m)"),
        )));
    let mut taken: Vec<String> = Vec::new();
    for (objective, population) in scopes {
        let mut expr = format!("{objective} + 0 * {population}");
        if !taken.is_empty() {
            let _ = write!(
                expr,
                "\n  unless on (provider, region, lb)\n({})",
                taken.join(" or ")
            );
        }
        taken.push(population);
        rules.push(("lbtriage:lb_slo_objective:ratio".to_string(), expr));
    }
    rules
}

/// Fires when, for any pair of windows, both burn the budget `factor` times faster than the
/// objective allows, with at least `min_request_rate` of traffic over the short window (a rate
/// over a window longer than the data behind it reads low; the ratio does not). The
/// comparisons match on every label (ratio and objective carry the same four), so the alert keeps
/// them all; an `on (...)` there would drop `lb_name`.
fn burn_expr(burns: &[BurnWindow]) -> String {
    let budget = "(1 - lbtriage:lb_slo_objective:ratio)";
    let pairs: Vec<String> = burns
        .iter()
        .map(|b| {
            format!(
                "  (\n      lbtriage:lb_error_ratio:rate{long} > ({factor} * {budget})\n    \
                 and on (provider, region, lb)\n      \
                 lbtriage:lb_error_ratio:rate{short} > ({factor} * {budget})\n    \
                 and on (provider, region, lb)\n      \
                 lbtriage:lb_traffic:rate{short} > ${{min_request_rate}}\n  )",
                long = b.long,
                short = b.short,
                factor = b.factor,
            )
        })
        .collect();
    format!("(\n{}\n)", pairs.join("\n    or\n"))
}

/// One alert rule as rendered, cause or not.
struct AlertSpec<'a> {
    name: String,
    id: &'a str,
    expr: String,
    for_: String,
    severity: String,
    cause: Option<&'a str>,
    summary: String,
    alert: &'a Alert,
}

fn render_alert(
    out: &mut String,
    spec: &AlertSpec,
    config: &RulesConfig,
    params: &BTreeMap<String, String>,
) -> Result<(), RulesError> {
    let expr = substitute(spec.id, &spec.expr, &config.selector, params)?;
    let _ = writeln!(out, "      - alert: {}\n        expr: |-", spec.name);
    for line in expr.lines() {
        let _ = writeln!(out, "          {line}");
    }
    let _ = writeln!(
        out,
        "        for: {}\n        labels:\n          severity: {}",
        spec.for_,
        quoted_if_template(&spec.severity)
    );
    if let Some(cause) = spec.cause {
        let _ = writeln!(out, "          cause: {cause}");
    }
    out.push_str("        annotations:\n");
    let description = substitute(
        spec.id,
        &format!(
            "{} First look: {}",
            spec.alert.description.trim().replace('\n', " "),
            spec.alert.first_look.trim()
        ),
        &config.selector,
        params,
    )?;
    let dashboard = format!(
        "{}d/{}-detail/load-balancer-triage-detail?var-lb={{{{ $labels.lb }}}}",
        config.dashboard_base_url, config.dashboard_uid_prefix
    );
    for (name, value) in [
        ("summary", spec.summary.clone()),
        ("description", description),
        (
            "runbook_url",
            format!("{}{}.md", config.runbook_base_url, spec.id),
        ),
        ("dashboard_url", dashboard),
    ] {
        let _ = writeln!(out, "          {name}: {}", quoted(&value));
    }
    Ok(())
}

fn quoted_if_template(value: &str) -> String {
    if value.contains("{{") {
        quoted(value)
    } else {
        value.to_string()
    }
}

/// The same rules as a Prometheus Operator `PrometheusRule` (deploy/kubernetes/prometheusrule.yaml).
pub fn render_prometheus_rule(catalog: &Catalog, config: &RulesConfig) -> Result<String, RulesError> {
    let rules = render_rules(catalog, config)?;
    let mut out = String::from(
        "# Generated by `make generate` from alerts/catalog.yml (the rules of alerts/lbtriage.rules.yml);\n\
         # do not edit.\n\
         apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\nmetadata:\n  name: lbtriage\n\
         \x20 namespace: monitoring\n  labels: {app.kubernetes.io/name: lbtriage}\nspec:\n",
    );
    for line in rules.lines().filter(|line| !line.starts_with('#')) {
        let _ = writeln!(out, "  {line}");
    }
    Ok(out)
}

/// `alerts/runbooks/<id>.md` for a cause with its runbook written.
pub fn render_runbook(catalog: &Catalog, cause: &Cause) -> Option<String> {
    let runbook = cause.runbook.as_ref()?;
    let alert = match (&cause.alert, &cause.no_alert) {
        (Some(_), _) => format!("alert `{}`", cause.alert_name()),
        (None, Some(reason)) => format!("no alert yet ({reason})"),
        (None, None) => "no alert: reached from other runbooks' decision steps".to_string(),
    };
    let sources: Vec<&str> = cause
        .sources
        .iter()
        .filter_map(|s| catalog.guides.get(s).map(String::as_str))
        .collect();
    let mut out = runbook_head(&cause.id, &cause.title);
    let _ = writeln!(
        out,
        "Severity **{}**, {alert}. Sources: {}.\n",
        cause.severity.as_str(),
        sources.join("; ")
    );
    if !cause.providers.is_empty() {
        let kinds: Vec<&str> = cause.providers.iter().map(|k| k.title()).collect();
        let _ = writeln!(out, "Can fire for: {}.\n", kinds.join(", "));
    }
    runbook_sections(&mut out, runbook);
    if !cause.evidence.is_empty() {
        out.push_str("## Evidence that names this cause\n\n");
        for line in &cause.evidence {
            let _ = writeln!(out, "- {line}");
        }
        out.push('\n');
    }
    if !cause.related.is_empty() {
        out.push_str("## Related causes\n\n");
        for id in &cause.related {
            let title = catalog.cause(id).map(|c| c.title.as_str()).unwrap_or_default();
            let _ = writeln!(out, "- [{id}]({id}.md): {title}");
        }
        out.push('\n');
    }
    Some(out.trim_end().to_string() + "\n")
}

/// `alerts/runbooks/<id>.md` for the symptom page or a self-monitoring alert.
pub fn render_operational_runbook(op: &Operational) -> String {
    let mut out = runbook_head(&op.id, &op.title);
    let severity = if op.slo {
        "**critical** (fast burn) and **warning** (slow burn)".to_string()
    } else {
        format!("**{}**", op.severity.as_str())
    };
    let _ = writeln!(
        out,
        "Severity {severity}, alert `{}`, no `cause` label.\n",
        op.alert_name()
    );
    runbook_sections(&mut out, &op.runbook);
    out.trim_end().to_string() + "\n"
}

fn runbook_head(id: &str, title: &str) -> String {
    format!(
        "<!-- Generated from alerts/catalog.yml by `make generate`; edit the catalog, not this file. -->\n\
         # {id}: {title}\n\n"
    )
}

/// Meaning, Impact, Diagnosis (with the commands per provider and the access-log signature),
/// Mitigation (the stopgap first).
fn runbook_sections(out: &mut String, runbook: &Runbook) {
    let _ = writeln!(out, "## Meaning\n\n{}\n", runbook.meaning.trim());
    let _ = writeln!(out, "## Impact\n\n{}\n", runbook.impact.trim());
    let _ = writeln!(out, "## Diagnosis\n\n{}\n", runbook.diagnosis.trim());
    for (provider, commands) in &runbook.commands {
        let title = crate::sources::registry::PROVIDERS
            .iter()
            .find(|p| p.name == provider)
            .map_or(provider.as_str(), |p| p.title);
        let _ = writeln!(out, "### {title}\n\n```sh\n{}\n```\n", commands.trim());
    }
    if let Some(signature) = &runbook.access_log {
        let _ = writeln!(out, "### In the access log\n\n{}\n", signature.trim());
    }
    out.push_str("## Mitigation\n\n");
    if let Some(stopgap) = &runbook.stopgap {
        let _ = writeln!(out, "**Stopgap:** {}\n", stopgap.trim());
    }
    let _ = writeln!(out, "{}\n", runbook.mitigation.trim());
}

/// `docs/causes.md`: every cause with its signals, alert and runbook; where each alert can fire;
/// the documented metric semantics each relies on.
pub fn render_causes_doc(catalog: &Catalog) -> String {
    let mut out = String::from(
        "# Causes\n\n<!-- Generated from alerts/catalog.yml by `make generate`; do not edit. -->\n\n\
         Every cause alert lbtriage ships names one of these causes in its `cause` label. The ids are a\n\
         public contract: route and silence on them. The symptom page, `LBErrorBudgetBurn`, carries no\n\
         `cause`: it says users are failing and lists the cause alerts firing for the same load balancer.\n\n\
         | cause | layer | severity | evidence | alert | runbook |\n|---|---|---|---|---|---|\n",
    );
    for cause in &catalog.causes {
        let alert = match (&cause.alert, &cause.no_alert) {
            (Some(_), _) => format!("`{}`", cause.alert_name()),
            (None, Some(reason)) => format!("none yet: {reason}"),
            (None, None) => "none (runbook only)".to_string(),
        };
        let runbook = if cause.runbook.is_some() {
            format!("[runbook](../{})", cause.runbook())
        } else {
            "—".to_string()
        };
        let evidence = if cause.evidence.is_empty() {
            "—".to_string()
        } else {
            cause.evidence.join("; ")
        };
        let severity = match cause.alert.as_ref().and_then(|a| a.warning_above) {
            Some(_) => format!("{} (warning while still valid)", cause.severity.as_str()),
            None => cause.severity.as_str().to_string(),
        };
        let _ = writeln!(
            out,
            "| `{}` — {} | {} | {severity} | {} | {alert} | {runbook} |",
            cause.id,
            cause.title,
            cause.layer.as_str(),
            evidence.replace('|', "\\|")
        );
    }

    out.push_str(
        "\n## Where each alert can fire\n\n\
         A cause alert fires for a kind of load balancer only where lbtriage reads the families its rule\n\
         needs (a test checks the rules against the sources' metric tables). Probe-only causes fire\n\
         wherever a probe is configured.\n\n| cause |",
    );
    let kinds = crate::catalog::LbKind::all();
    for kind in &kinds {
        let _ = write!(out, " {} |", kind.title());
    }
    out.push_str("\n|---|");
    out.push_str(&"---|".repeat(kinds.len()));
    out.push('\n');
    for cause in catalog.causes.iter().filter(|c| c.alert.is_some()) {
        let _ = write!(out, "| `{}` |", cause.id);
        for kind in &kinds {
            let mark = if cause.providers.contains(kind) {
                "✓"
            } else {
                "—"
            };
            let _ = write!(out, " {mark} |");
        }
        out.push('\n');
    }

    out.push_str(
        "\n## Alerts that name no cause\n\n\
         | alert | severity | what it says | runbook |\n|---|---|---|---|\n",
    );
    for op in &catalog.operational {
        let severity = if op.slo {
            "critical (fast burn), warning (slow burn)"
        } else {
            op.severity.as_str()
        };
        let _ = writeln!(
            out,
            "| `{}` | {severity} | {} | [runbook](../{}) |",
            op.alert_name(),
            op.title,
            op.runbook_path()
        );
    }

    out.push_str(
        "\n## The documented behaviour each alert relies on\n\n\
         What the providers document about the metrics and APIs behind each rule, with the source. The\n\
         test scenarios (promtool and end to end) are built to behave the same way.\n",
    );
    for cause in catalog.causes.iter().filter(|c| !c.semantics.is_empty()) {
        let _ = writeln!(out, "\n### `{}`\n", cause.id);
        for semantic in &cause.semantics {
            let source = catalog
                .guides
                .get(&semantic.source)
                .cloned()
                .unwrap_or_else(|| semantic.source.clone());
            let _ = writeln!(out, "- {} — {source}", semantic.fact.trim());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog(expr: &str) -> Catalog {
        let yaml = format!(
            "guides: {{g: G}}\nparams: {{min_rate: '0.1'}}\ncauses:\n  - id: lb_demo_cause\n    title: A demo\n    layer: target\n    severity: warning\n    sources: [g]\n    alert:\n      expr: '{expr}'\n      for: 5m\n      description: 'On {{{{ $labels.lb }}}}.'\n      first_look: 'the demo.'\n    providers: [aws_alb]\n    runbook: {{meaning: m, impact: i, diagnosis: d, mitigation: m}}\n"
        );
        Catalog::parse(&yaml).expect("test catalog")
    }

    #[test]
    fn renders_alerts_with_overrides() {
        let catalog = catalog("rate(x{a=\"b\",${selector}}[5m]) > ${min_rate}");
        let plain = render_rules(&catalog, &RulesConfig::default()).expect("renders");
        assert!(plain.contains("      - alert: LBDemoCause\n        expr: |-\n          rate(x{a=\"b\"}[5m]) > 0.1\n        for: 5m\n"), "{plain}");
        assert!(plain.contains("          cause: lb_demo_cause\n"));
        assert!(plain.contains("          summary: \"A demo.\"\n"));
        assert!(plain.contains("          runbook_url: \"alerts/runbooks/lb_demo_cause.md\"\n"));
        let config = RulesConfig {
            selector: "job=\"lbtriage\"".to_string(),
            params: [("min_rate".to_string(), "2".to_string())].into(),
            for_overrides: [(
                "lb_demo_cause".to_string(),
                PromDuration::parse("30s").expect("valid"),
            )]
            .into(),
            runbook_base_url: "https://wiki/".to_string(),
            dashboard_base_url: "https://grafana/".to_string(),
            dashboard_uid_prefix: "lbtriage".to_string(),
            slo: SloConfig::default(),
        };
        let tuned = render_rules(&catalog, &config).expect("renders");
        assert!(
            tuned.contains("rate(x{a=\"b\",job=\"lbtriage\"}[5m]) > 2\n        for: 30s\n"),
            "{tuned}"
        );
        assert!(tuned.contains("runbook_url: \"https://wiki/lb_demo_cause.md\""));
        assert!(tuned.contains("dashboard_url: \"https://grafana/d/lbtriage-detail/load-balancer-triage-detail?var-lb={{ $labels.lb }}\""));
    }

    #[test]
    fn unknown_names_are_errors() {
        let catalog = catalog("x > ${nope}");
        assert!(matches!(
            render_rules(&catalog, &RulesConfig::default()),
            Err(RulesError::UnknownParam { .. })
        ));
        let catalog = catalog_ok();
        let config = RulesConfig {
            params: [("nope".to_string(), "1".to_string())].into(),
            ..RulesConfig::default()
        };
        assert_eq!(
            render_rules(&catalog, &config),
            Err(RulesError::UnknownOverride("nope".to_string()))
        );
    }

    fn catalog_ok() -> Catalog {
        catalog("x > ${min_rate}")
    }
}
