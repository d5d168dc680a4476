//! The rule file and dashboards as a monitoring mixin (`mixin/`), the way kube-prometheus and the
//! monitoring-mixins ecosystem import alerting packs: `mixin.libsonnet` with `prometheusRules`
//! (the SLO recording rules), `prometheusAlerts`, `grafanaDashboards` and a `_config` of the
//! selector, SLO objective, minimum traffic, runbook base URL and dashboard UID prefix.
//!
//! One source of truth: the mixin holds what `lbtriage rules` and `lbtriage dashboards` render from
//! the catalog, with a placeholder wherever `_config` decides, and `mixin.libsonnet` fills them in.
//! The suite evaluates it and compares the result with those commands for the same settings.

use serde_json::{json, Map, Value};
use yaml_rust2::{Yaml, YamlLoader};

use crate::catalog::Catalog;
use crate::config::{RulesConfig, RulesError};
use crate::rules::render_rules;

/// Placeholders for what `_config` decides.
const SELECTOR: &str = "@@selector@@";
const MIN_REQUEST_RATE: &str = "@@minRequestRate@@";
const RUNBOOK_BASE_URL: &str = "@@runbookBaseUrl@@";
const UID_PREFIX: &str = "@@dashboardUidPrefix@@";
/// The objective is a number the rules check (between 0 and 1); it is rendered as this one, which
/// no other rule holds, and replaced.
const OBJECTIVE: f64 = 0.123456789;

#[derive(Debug, thiserror::Error)]
pub enum MixinError {
    #[error(transparent)]
    Rules(#[from] RulesError),
    #[error("the rendered rule file is not YAML: {0}")]
    Yaml(String),
}

/// The mixin's files as (path under `mixin/`, text).
pub fn render(catalog: &Catalog) -> Result<Vec<(String, String)>, MixinError> {
    let defaults = RulesConfig::default();
    let mut placeholders = RulesConfig {
        selector: SELECTOR.to_string(),
        runbook_base_url: RUNBOOK_BASE_URL.to_string(),
        dashboard_uid_prefix: UID_PREFIX.to_string(),
        ..RulesConfig::default()
    };
    placeholders.slo.objective = OBJECTIVE;
    placeholders
        .params
        .insert("min_request_rate".to_string(), MIN_REQUEST_RATE.to_string());

    let document = yaml_to_json(&render_rules(catalog, &placeholders)?)?;
    let (mut recording, mut alerting) = (Vec::new(), Vec::new());
    for group in document["groups"].as_array().into_iter().flatten() {
        let records = group["rules"]
            .as_array()
            .is_some_and(|rules| rules.iter().all(|rule| rule.get("record").is_some()));
        if records {
            recording.push(group.clone());
        } else {
            alerting.push(group.clone());
        }
    }
    let pretty = |value: &Value| serde_json::to_string_pretty(value).unwrap_or_default() + "\n";
    let mut files = vec![(
        "rules.json".to_string(),
        pretty(&json!({"recording": recording, "alerting": alerting})),
    )];
    let mut dashboards = Vec::new();
    for (name, text) in crate::dashboards::render_all(catalog, &placeholders) {
        // `@@dashboardUidPrefix@@-detail.json` → `detail`.
        let kind = name
            .trim_start_matches(UID_PREFIX)
            .trim_start_matches('-')
            .trim_end_matches(".json")
            .to_string();
        files.push((format!("dashboards/{kind}.json"), text));
        dashboards.push(kind);
    }
    let min_request_rate = catalog
        .params
        .get("min_request_rate")
        .cloned()
        .unwrap_or_else(|| "0.5".to_string());
    files.push((
        "mixin.libsonnet".to_string(),
        libsonnet(&defaults, &min_request_rate, &dashboards),
    ));
    files.push((
        "jsonnetfile.json".to_string(),
        pretty(&json!({"version": 1, "dependencies": [], "legacyImports": true})),
    ));
    Ok(files)
}

/// A YAML document (the rule file) as JSON, to compare or embed it.
pub fn yaml_to_json(text: &str) -> Result<Value, MixinError> {
    Ok(YamlLoader::load_from_str(text)
        .map_err(|err| MixinError::Yaml(err.to_string()))?
        .into_iter()
        .next()
        .map(to_json)
        .unwrap_or(Value::Null))
}

fn to_json(yaml: Yaml) -> Value {
    match yaml {
        Yaml::Hash(hash) => {
            let mut map = Map::new();
            for (key, value) in hash {
                let key = match key {
                    Yaml::String(text) => text,
                    other => format!("{other:?}"),
                };
                map.insert(key, to_json(value));
            }
            Value::Object(map)
        }
        Yaml::Array(items) => Value::Array(items.into_iter().map(to_json).collect()),
        Yaml::String(text) => Value::String(text),
        Yaml::Integer(number) => json!(number),
        Yaml::Real(text) => text.parse::<f64>().map_or(Value::String(text), |n| json!(n)),
        Yaml::Boolean(flag) => Value::Bool(flag),
        _ => Value::Null,
    }
}

/// A jsonnet string literal.
fn quote(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_default()
}

fn libsonnet(defaults: &RulesConfig, min_request_rate: &str, dashboards: &[String]) -> String {
    let imports: Vec<String> = dashboards
        .iter()
        .map(|kind| format!("  {kind}: import 'dashboards/{kind}.json',"))
        .collect();
    format!(
        r#"// Generated by `make generate` from alerts/catalog.yml; do not edit. The same rules and
// dashboards as `lbtriage rules` and `lbtriage dashboards`, with `_config` for what they take
// from a configuration's `rules:` section.
local rules = import 'rules.json';
local dashboards = {{
{imports}
}};

{{
  _config+:: {{
    // Added inside every selector, e.g. 'job="lbtriage"' (rules.selector).
    selector: {selector},
    // The availability objective the symptom page burns against (rules.slo.objective).
    sloObjective: {objective},
    // Requests per second below which ratio alerts stay silent (rules.params.min_request_rate).
    minRequestRate: {min_request_rate},
    // Where the runbooks are published; runbook_url is this plus <cause>.md (rules.runbook_base_url).
    runbookBaseUrl: {runbook},
    // The dashboards' UIDs are <prefix>-overview, -detail and -probes (rules.dashboard_uid_prefix).
    dashboardUidPrefix: {prefix},
  }},

  local config = self._config,
  local fill(text) =
    local selector = config.selector;
    local withSelector(separator) = if selector == '' then '' else separator + selector;
    std.strReplace(
      std.strReplace(
        std.strReplace(
          std.strReplace(
            std.strReplace(
              std.strReplace(
                std.strReplace(text, ', {placeholder_selector}', withSelector(', ')),
                ',{placeholder_selector}', withSelector(',')
              ),
              '{placeholder_selector}', selector
            ),
            '{placeholder_objective}', std.toString(config.sloObjective)
          ),
          '{placeholder_rate}', std.toString(config.minRequestRate)
        ),
        '{placeholder_runbook}', config.runbookBaseUrl
      ),
      '{placeholder_prefix}', config.dashboardUidPrefix
    ),
  local render(value) =
    if std.isString(value) then fill(value)
    else if std.isArray(value) then std.map(render, value)
    else if std.isObject(value) then {{ [field]: render(value[field]) for field in std.objectFields(value) }}
    else value,

  prometheusRules+:: {{ groups+: render(rules.recording) }},
  prometheusAlerts+:: {{ groups+: render(rules.alerting) }},
  grafanaDashboards+:: {{
    [config.dashboardUidPrefix + '-' + kind + '.json']: render(dashboards[kind])
    for kind in std.objectFields(dashboards)
  }},
}}
"#,
        imports = imports.join("\n"),
        selector = quote(&defaults.selector),
        objective = defaults.slo.objective,
        runbook = quote(&defaults.runbook_base_url),
        prefix = quote(&defaults.dashboard_uid_prefix),
        placeholder_selector = SELECTOR,
        placeholder_objective = OBJECTIVE,
        placeholder_rate = MIN_REQUEST_RATE,
        placeholder_runbook = RUNBOOK_BASE_URL,
        placeholder_prefix = UID_PREFIX,
    )
}
