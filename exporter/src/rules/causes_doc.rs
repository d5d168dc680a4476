//! `docs/causes.md`: every cause with its signals, alert and runbook, and where each alert can fire.

use std::fmt::Write as _;

use crate::catalog::Catalog;

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
    let kinds = crate::sources::registry::kinds();
    for kind in &kinds {
        let _ = write!(out, " {} |", kind.title());
    }
    out.push_str("\n|---|");
    out.push_str(&"---|".repeat(kinds.len()));
    out.push('\n');
    for cause in catalog.causes.iter().filter(|c| c.alert.is_some()) {
        let _ = write!(out, "| `{}` |", cause.id);
        for kind in &kinds {
            let mark = if cause.providers.iter().any(|id| id == kind.id) {
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
