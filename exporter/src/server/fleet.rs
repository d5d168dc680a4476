//! The fleet view of the `/` page: every load balancer lbtriage reads, worst first, with its share
//! of failed requests (5xx, or connections turned away at capacity, as the symptom page counts
//! them) and of its own 5xx over the last minutes, its registered and healthy targets, whether a
//! probe watches it, and the causes its probe evidence suggests. Everything comes from the
//! exporter's own snapshots: the shares from its counters, read at each page view and kept for a
//! few minutes (`History`), so no query language is needed when Grafana is down.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Write as _;
use std::sync::Mutex;

use super::html::{escape, label, runbook_path};
use crate::probes::findings::ProbeFindings;
use crate::store::{families, Sample, Store};

/// The window the shares cover, when readings that old exist; before, since the exporter started.
const WINDOW_SECONDS: f64 = 300.0;
/// Readings kept: one at most every `MIN_SPACING_SECONDS`, for twice the window.
const MIN_SPACING_SECONDS: f64 = 15.0;
const MAX_READINGS: usize = 41;

/// Each load balancer's counter totals: requests, its own 5xx, its targets' 5xx, the connections
/// it rejected or dropped at capacity.
type Totals = BTreeMap<String, [f64; 4]>;

/// Counter readings taken at page views, to turn totals into shares over the last minutes.
#[derive(Default)]
pub struct History {
    readings: Mutex<VecDeque<(f64, Totals)>>,
}

impl History {
    /// Records `totals` at `now` (at most one reading per spacing) and returns the reading to
    /// compare with: the newest one at least the window old, else the oldest; `None` at first.
    fn baseline(&self, now: f64, totals: &Totals) -> Option<(f64, Totals)> {
        let mut readings = self
            .readings
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let baseline = readings
            .iter()
            .rev()
            .find(|(at, _)| now - at >= WINDOW_SECONDS)
            .or_else(|| readings.front())
            .cloned();
        if readings
            .back()
            .is_none_or(|(at, _)| now - at >= MIN_SPACING_SECONDS)
        {
            readings.push_back((now, totals.clone()));
            while readings.len() > MAX_READINGS {
                readings.pop_front();
            }
        }
        baseline
    }
}

fn totals(store: &Store) -> Totals {
    let mut totals = Totals::new();
    for sample in store.samples_of(&families::LB_REQUESTS) {
        totals.entry(label(&sample, "lb").to_string()).or_default()[0] += sample.value;
    }
    for sample in store.samples_of(&families::LB_RESPONSES) {
        if !label(&sample, "code").starts_with('5') {
            continue;
        }
        let slot = match label(&sample, "origin") {
            "lb" => 1,
            "backend" => 2,
            _ => continue,
        };
        totals.entry(label(&sample, "lb").to_string()).or_default()[slot] += sample.value;
    }
    for sample in store.samples_of(&families::LB_REJECTED_CONNECTIONS) {
        totals.entry(label(&sample, "lb").to_string()).or_default()[3] += sample.value;
    }
    totals
}

struct Row<'a> {
    info: &'a Sample,
    /// Share of traffic that failed (any 5xx, or turned away), and that got the load balancer's own
    /// 5xx; `None` without traffic in the window. Traffic is requests plus what the request count
    /// leaves out (own 5xx, turned-away connections), and never less than the failures: in
    /// adaptive collection the request count is a slow-tier series minutes behind them.
    shares: Option<(f64, f64)>,
    registered: Option<f64>,
    healthy: Option<f64>,
    probed: &'static str,
    causes: BTreeSet<&'static str>,
}

/// Sums a gauge family per `lb`.
fn per_lb(store: &Store, family: &'static families::Family) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for sample in store.samples_of(family) {
        *out.entry(label(&sample, "lb").to_string()).or_default() += sample.value;
    }
    out
}

pub fn section(out: &mut String, store: &Store, history: &History, now: f64) {
    out.push_str("<section id=\"fleet\"><h2>Load balancers</h2>\n");
    let infos = store.samples_of(&families::LB_INFO);
    if infos.is_empty() {
        out.push_str("<p class=\"none\">No load balancer discovered yet.</p></section>\n");
        return;
    }
    let current = totals(store);
    let baseline = history.baseline(now, &current);
    let window = match &baseline {
        Some((at, _)) if now - at >= 1.0 => format!("the last {:.0} minutes", ((now - at) / 60.0).max(1.0)),
        _ => "since lbtriage started".to_string(),
    };
    let registered = per_lb(store, &families::LB_REGISTERED_TARGETS);
    let healthy = per_lb(store, &families::LB_HEALTHY_TARGETS);
    let automatic: BTreeSet<String> = store
        .samples_of(&families::AUTO_PROBE_ACTIVE)
        .iter()
        .map(|s| label(s, "lb").to_string())
        .collect();
    let findings = store.attachments::<ProbeFindings>();
    let mut configured: BTreeSet<&str> = BTreeSet::new();
    let mut causes: BTreeMap<&str, BTreeSet<&'static str>> = BTreeMap::new();
    for probe in &findings {
        let Some(lb) = probe.lb.as_deref() else { continue };
        if !probe.probe.starts_with(crate::probes::auto::PROBE_PREFIX) {
            configured.insert(lb);
        }
        causes
            .entry(lb)
            .or_default()
            .extend(probe.findings.iter().map(|f| f.cause));
    }
    let mut rows: Vec<Row> = infos
        .iter()
        .map(|info| {
            let lb = label(info, "lb");
            let now_totals = current.get(lb).copied().unwrap_or_default();
            let then = baseline
                .as_ref()
                .and_then(|(_, old)| old.get(lb).copied())
                .unwrap_or_default();
            let [requests, own, backend, rejected] = [0, 1, 2, 3].map(|i| (now_totals[i] - then[i]).max(0.0));
            let failed = own + backend + rejected;
            let traffic = (requests + own + rejected).max(failed);
            Row {
                info,
                shares: (traffic > 0.0).then(|| (failed / traffic, own / traffic)),
                registered: registered.get(lb).copied(),
                healthy: healthy.get(lb).copied(),
                probed: if configured.contains(lb) {
                    "configured"
                } else if automatic.contains(lb) {
                    "automatic"
                } else {
                    "no"
                },
                causes: causes.get(lb).cloned().unwrap_or_default(),
            }
        })
        .collect();
    // Worst first: the most failures, then the most own 5xx, then those with probe evidence.
    rows.sort_by(|a, b| {
        let key = |r: &Row| r.shares.unwrap_or((0.0, 0.0));
        key(b)
            .0
            .total_cmp(&key(a).0)
            .then(key(b).1.total_cmp(&key(a).1))
            .then(b.causes.len().cmp(&a.causes.len()))
            .then_with(|| label(a.info, "lb_name").cmp(label(b.info, "lb_name")))
    });
    let _ = writeln!(
        out,
        "<p>{count} load balancers, worst first; shares over {window}.</p>\n\
         <table><tr><th>Load balancer</th><th>Cloud</th><th>Failed</th><th>Own 5xx</th>\
         <th>Targets healthy / registered</th><th>Probed</th><th>Causes with probe evidence</th></tr>",
        count = rows.len(),
        window = window,
    );
    let percent = |share: Option<f64>| share.map_or("—".to_string(), |s| format!("{:.1}%", s * 100.0));
    for row in &rows {
        let lb = label(row.info, "lb");
        let name = label(row.info, "lb_name");
        let causes: Vec<String> = row
            .causes
            .iter()
            .map(|cause| format!("<a href=\"{}\">{}</a>", runbook_path(cause), escape(cause)))
            .collect();
        let targets = match (row.healthy, row.registered) {
            (Some(healthy), Some(registered)) => format!("{healthy:.0} / {registered:.0}"),
            (None, Some(registered)) => format!("? / {registered:.0}"),
            (Some(healthy), None) => format!("{healthy:.0} / ?"),
            (None, None) => "—".to_string(),
        };
        let bad = row.shares.is_some_and(|(all, _)| all > 0.0);
        let _ = writeln!(
            out,
            "<tr class=\"lb\" data-lb=\"{lb}\"><td>{name}<br><small>{lb}</small></td><td>{provider} {region} {lb_type}</td>\
             <td class=\"{class}\">{all}</td><td>{own}</td><td>{targets}</td><td>{probed}</td><td>{causes}</td></tr>",
            lb = escape(lb),
            name = escape(if name.is_empty() { lb } else { name }),
            provider = escape(label(row.info, "provider")),
            region = escape(label(row.info, "region")),
            lb_type = escape(label(row.info, "lb_type")),
            class = if bad { "bad" } else { "good" },
            all = percent(row.shares.map(|(all, _)| all)),
            own = percent(row.shares.map(|(_, own)| own)),
            targets = targets,
            probed = row.probed,
            causes = causes.join(" "),
        );
    }
    out.push_str("</table></section>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_cover_the_window_once_readings_are_old_enough() {
        let history = History::default();
        let at = |requests: f64| Totals::from([("lb".to_string(), [requests, 0.0, 0.0, 0.0])]);
        assert!(
            history.baseline(1000.0, &at(10.0)).is_none(),
            "nothing to compare with at first"
        );
        assert_eq!(history.baseline(1005.0, &at(11.0)).map(|(t, _)| t), Some(1000.0));
        assert_eq!(history.baseline(1020.0, &at(12.0)).map(|(t, _)| t), Some(1000.0));
        // Readings at 1000 and 1020 (1005 was too close); at 1400 the newest five-minute-old one.
        assert_eq!(history.baseline(1400.0, &at(20.0)).map(|(t, _)| t), Some(1020.0));
    }
}
