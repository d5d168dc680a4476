//! The exporter's own `/` page: a triage view for whoever opens the exporter during an incident.
//! Plain HTML, no scripts. Everything shown comes from the store's latest snapshots (the same numbers
//! `/metrics` serves) and the probes' findings (the same logic as `lbtriage diagnose`); every value
//! is escaped, since label values come from cloud APIs and probed servers.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::html::{escape, label, runbook_path};
use crate::catalog::Catalog;
use crate::probes::findings::ProbeFindings;
use crate::store::{families, Sample, Store};

/// "42s ago", "3m ago"; "never" for a zero timestamp.
fn age(now: f64, timestamp: f64) -> String {
    if timestamp <= 0.0 {
        return "never".to_string();
    }
    let seconds = (now - timestamp).max(0.0);
    if seconds < 120.0 {
        format!("{seconds:.0}s")
    } else if seconds < 7200.0 {
        format!("{:.0}m", seconds / 60.0)
    } else {
        format!("{:.1}h", seconds / 3600.0)
    }
}

/// How often the page reloads itself (a meta refresh: the page has no scripts).
const REFRESH_SECONDS: u32 = 30;

pub fn render(
    store: &Store,
    history: &super::fleet::History,
    telemetry_path: &str,
    catalog: &Catalog,
    now: f64,
) -> String {
    let mut out = String::with_capacity(16 * 1024);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>lbtriage</title>\n\
         <meta http-equiv=\"refresh\" content=\"{refresh}\">\n\
         <style>body{{font-family:sans-serif;margin:1.5em;color:#222}}table{{border-collapse:collapse;margin-bottom:1.5em}}\
         th,td{{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}}th{{background:#f3f3f3}}\
         .bad{{color:#b00020;font-weight:bold}}.good{{color:#1b5e20}}ul.evidence{{margin:0;padding-left:1.2em}}</style>\n\
         </head><body>\n<h1>lbtriage {version}</h1>\n\
         <p>Names the cause of a load balancer's 5xx. <a href=\"{path}\">Metrics</a> · \
         <a href=\"/-/healthy\">Health</a> · <a href=\"/-/ready\">Readiness</a></p>\n",
        version = env!("CARGO_PKG_VERSION"),
        path = escape(telemetry_path),
        refresh = REFRESH_SECONDS,
    );
    super::fleet::section(&mut out, store, history, now);
    findings_section(&mut out, store, catalog);
    sources_section(&mut out, store, now);
    probes_section(&mut out, store);
    catalog_section(&mut out, catalog);
    out.push_str("</body></html>\n");
    out
}

fn findings_section(out: &mut String, store: &Store, catalog: &Catalog) {
    out.push_str(
        "<section id=\"findings\"><h2>Causes with probe evidence now</h2>\n\
         <p>From each probe's latest results, as <code>lbtriage diagnose</code> would judge them. Causes that \
         need the cloud's metrics are the alert rules' to name.</p>\n",
    );
    let probes = store.attachments::<ProbeFindings>();
    let rows: Vec<_> = probes
        .iter()
        .flat_map(|probe| probe.findings.iter().map(move |finding| (probe, finding)))
        .collect();
    if rows.is_empty() {
        let _ = writeln!(
            out,
            "<p class=\"none\">No probe shows evidence of any cause ({} probes reporting).</p></section>",
            probes.len()
        );
        return;
    }
    out.push_str("<table><tr><th>Load balancer</th><th>Probe</th><th>Cause</th><th>Evidence</th></tr>\n");
    for (probe, finding) in rows {
        let lb = probe.lb.as_deref().unwrap_or("");
        let title = catalog.cause(finding.cause).map_or("", |c| c.title.as_str());
        let _ = write!(
            out,
            "<tr class=\"finding\" data-lb=\"{lb}\" data-cause=\"{cause}\"><td>{lb}</td><td>{probe}</td>\
             <td><a href=\"{runbook}\">{cause}</a><br>{title}</td><td><ul class=\"evidence\">",
            lb = escape(lb),
            probe = escape(&probe.probe),
            cause = escape(finding.cause),
            runbook = runbook_path(finding.cause),
            title = escape(title),
        );
        for line in &finding.evidence {
            let _ = write!(out, "<li>{}</li>", escape(line));
        }
        out.push_str("</ul></td></tr>\n");
    }
    out.push_str("</table></section>\n");
}

fn sources_section(out: &mut String, store: &Store, now: f64) {
    out.push_str("<section id=\"sources\"><h2>Cloud sources</h2>\n");
    let up = store.samples_of(&families::SOURCE_UP);
    if up.is_empty() {
        out.push_str("<p class=\"none\">No cloud source is configured.</p></section>\n");
        return;
    }
    // Per source (provider, job, region): the value of each family, and API calls by outcome.
    let key = |s: &Sample| {
        (
            label(s, "provider").to_string(),
            label(s, "source").to_string(),
            label(s, "region").to_string(),
        )
    };
    let find = |family: &'static families::Family| -> BTreeMap<_, f64> {
        store
            .samples_of(family)
            .iter()
            .map(|s| (key(s), s.value))
            .collect()
    };
    let last_success = find(&families::COLLECTION_LAST_SUCCESS);
    let data_end = find(&families::DATA_PERIOD_END);
    let mut calls: BTreeMap<_, BTreeMap<String, f64>> = BTreeMap::new();
    for sample in store.samples_of(&families::API_CALLS) {
        *calls
            .entry(key(&sample))
            .or_default()
            .entry(label(&sample, "outcome").to_string())
            .or_default() += sample.value;
    }
    out.push_str(
        "<table><tr><th>Source</th><th>State</th><th>Last success</th><th>Data age</th><th>API calls</th></tr>\n",
    );
    for sample in &up {
        let k = key(sample);
        let ok = sample.value >= 1.0;
        let calls = calls
            .get(&k)
            .map(|by| {
                by.iter()
                    .map(|(outcome, n)| format!("{n:.0} {outcome}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "<tr class=\"source\" data-up=\"{up}\"><td>{provider}/{source}/{region}</td><td class=\"{class}\">{state}</td>\
             <td>{last}</td><td>{data}</td><td>{calls}</td></tr>",
            up = u8::from(ok),
            provider = escape(&k.0),
            source = escape(&k.1),
            region = escape(&k.2),
            class = if ok { "good" } else { "bad" },
            state = if ok { "up" } else { "down" },
            last = age(now, last_success.get(&k).copied().unwrap_or(0.0)),
            data = data_end.get(&k).map_or("no data yet".to_string(), |end| age(now, *end)),
            calls = escape(&calls),
        );
    }
    out.push_str("</table></section>\n");
}

fn probes_section(out: &mut String, store: &Store) {
    out.push_str("<section id=\"probes\"><h2>Probes</h2>\n");
    let results = store.samples_of(&families::PROBE_HTTP_SUCCESS);
    if results.is_empty() {
        out.push_str("<p class=\"none\">No probe results yet.</p></section>\n");
        return;
    }
    // The status code of the same probe, path, target and request as a success sample.
    let check = |s: &Sample| ["probe", "path", "target", "request"].map(|n| label(s, n).to_string());
    let status: BTreeMap<[String; 4], f64> = store
        .samples_of(&families::PROBE_HTTP_STATUS_CODE)
        .iter()
        .map(|s| (check(s), s.value))
        .collect();
    out.push_str(
        "<table><tr><th>Probe</th><th>Load balancer</th><th>Path</th><th>Target</th><th>Request</th>\
         <th>Result</th><th>Status</th></tr>\n",
    );
    for sample in &results {
        let reason = label(sample, "reason");
        let ok = sample.value >= 1.0;
        let code = status.get(&check(sample)).copied().unwrap_or(0.0);
        let _ = writeln!(
            out,
            "<tr class=\"probe-result\" data-path=\"{path}\" data-reason=\"{reason}\"><td>{probe}</td><td>{lb}</td>\
             <td>{path}</td><td>{target}</td><td>{request}</td><td class=\"{class}\">{result}</td><td>{code}</td></tr>",
            probe = escape(label(sample, "probe")),
            lb = escape(label(sample, "lb")),
            path = escape(label(sample, "path")),
            target = escape(label(sample, "target")),
            request = escape(label(sample, "request")),
            reason = escape(reason),
            class = if ok { "good" } else { "bad" },
            result = if ok { "ok".into() } else { escape(reason) },
            code = if code > 0.0 { format!("{code:.0}") } else { "—".to_string() },
        );
    }
    out.push_str("</table></section>\n");
}

fn catalog_section(out: &mut String, catalog: &Catalog) {
    out.push_str(
        "<section id=\"catalog\"><h2>Cause catalog</h2>\n\
         <table><tr><th>Cause</th><th>Title</th><th>Layer</th><th>Severity</th><th>Alert</th></tr>\n",
    );
    for cause in &catalog.causes {
        let _ =
            writeln!(
            out,
            "<tr class=\"cause\" id=\"cause-{id}\"><td><a href=\"{runbook}\">{id}</a></td><td>{title}</td>\
             <td>{layer}</td><td>{severity}</td><td>{alert}</td></tr>",
            id = escape(&cause.id),
            runbook = runbook_path(&cause.id),
            title = escape(&cause.title),
            layer = cause.layer.as_str(),
            severity = cause.severity.as_str(),
            alert = cause.alert.as_ref().map_or("—".to_string(), |_| cause.alert_name()),
        );
    }
    out.push_str("</table></section>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probes::findings::Finding;

    #[test]
    fn values_from_the_network_are_escaped() {
        let store = Store::new(Vec::<String>::new());
        store.attach(
            "probe/x",
            std::sync::Arc::new(ProbeFindings {
                probe: "x".to_string(),
                lb: Some("<script>alert(1)</script>".to_string()),
                findings: vec![Finding {
                    cause: "lb_listener_missing",
                    evidence: vec!["a \"quoted\" & <b>bold</b> line".to_string()],
                }],
            }),
        );
        let page = render(
            &store,
            &crate::server::fleet::History::default(),
            "/metrics",
            Catalog::embedded(),
            0.0,
        );
        assert!(!page.contains("<script>"), "{page}");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(page.contains("a &quot;quoted&quot; &amp; &lt;b&gt;bold&lt;/b&gt; line"));
        assert!(page.contains("href=\"/runbooks/lb_listener_missing.md\""));
    }

    #[test]
    fn ages_read_like_a_person_would_say_them() {
        assert_eq!(age(1000.0, 0.0), "never");
        assert_eq!(age(1000.0, 958.0), "42s");
        assert_eq!(age(1000.0, 700.0), "5m");
        assert_eq!(age(10_000.0, 1_000.0), "2.5h");
    }
}
