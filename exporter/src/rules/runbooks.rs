//! One runbook per alert (Meaning, Impact, Diagnosis with the commands per provider, Mitigation),
//! rendered from the catalog.

use std::fmt::Write as _;

use crate::catalog::{Catalog, Cause, Operational, Runbook};

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
        let kinds: Vec<&str> = cause
            .providers
            .iter()
            .map(|id| crate::sources::registry::kind(id).map_or(id.as_str(), |k| k.title()))
            .collect();
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
