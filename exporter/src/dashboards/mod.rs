//! Grafana dashboards rendered from the cause catalog: `lbtriage dashboards` writes them, and the
//! committed copies in `grafana/dashboards/` are checked for freshness.
//!
//! Panels are declared with their queries (`panels.rs`); which causes a panel evidences is not
//! written by hand but derived (`grafana.rs`, the JSON writer): a panel evidences every cause whose
//! alert expression reads one of the families the panel shows. Its description names those causes
//! and links their runbooks, so a new cause in the catalog shows up on the dashboards without
//! touching the panels.

mod grafana;
mod panels;

use crate::catalog::Catalog;
use crate::config::RulesConfig;

use self::grafana::{alerts_annotation, dashboard, lb_variable, probe_variable};
pub use self::grafana::{families_in, DETAIL_UID, OVERVIEW_UID, PROBES_UID, SCHEMA_VERSION, TAG};
use self::panels::{detail_panels, overview_panels, probes_panels};

/// The detail dashboard's URL for one load balancer, keeping the time range and data source.
/// The detail dashboard of a row's load balancer.
fn detail_link(config: &RulesConfig) -> String {
    format!(
        "/d/{}-detail/load-balancer-triage-detail?var-lb=${{__data.fields.lb}}&var-datasource=${{datasource}}&${{__url_time_range}}",
        config.dashboard_uid_prefix
    )
}

/// The three dashboards as (file name, JSON text).
pub fn render_all(catalog: &Catalog, config: &RulesConfig) -> Vec<(String, String)> {
    let runbook = format!("{}${{__data.fields.cause}}.md", config.runbook_base_url);
    let detail = detail_link(config);
    let uid = |kind: &str| format!("{}-{kind}", config.dashboard_uid_prefix);
    [
        dashboard(
            catalog,
            config,
            uid("overview"),
            "Load balancer triage — overview",
            "Every load balancer's traffic and 5xx by origin, and the causes firing now.",
            &[],
            overview_panels(&runbook, &detail),
            &[],
        ),
        dashboard(
            catalog,
            config,
            uid("detail"),
            "Load balancer triage — detail",
            "One load balancer: the evidence behind each cause lbtriage can name.",
            &[lb_variable()],
            detail_panels(&runbook),
            &[alerts_annotation()],
        ),
        dashboard(
            catalog,
            config,
            uid("probes"),
            "Load balancer triage — probes",
            "Active probes through each load balancer and directly against its backends.",
            &[probe_variable()],
            probes_panels(&detail),
            &[],
        ),
    ]
    .into_iter()
    .map(|(uid, value)| {
        let text = serde_json::to_string_pretty(&value).unwrap_or_default();
        (format!("{uid}.json"), text + "\n")
    })
    .collect()
}
