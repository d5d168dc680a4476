//! Reference documents rendered from the code that defines them, so they cannot drift:
//! `docs/metrics.md` comes from the family declarations and each provider's mapping (its registry row).

use std::fmt::Write as _;

use crate::sources::registry::PROVIDERS;
use crate::store::{families, Family, Kind};

/// The exposed sample name: counters carry `_total`.
pub fn sample_name(family: &Family) -> String {
    match family.kind {
        Kind::Counter => format!("{}_total", family.name),
        _ => family.name.to_string(),
    }
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Counter => "counter",
        Kind::Gauge => "gauge",
        Kind::Info => "info (gauge 1)",
    }
}

pub fn metrics_markdown() -> String {
    let mut out = String::new();
    out.push_str(
        "# Metrics\n\n\
         <!-- Generated from exporter/src/store/families.rs and exporter/src/sources/*/metrics.rs by\n\
         `make generate`; a test fails when this file is stale. Do not edit by hand. -->\n\n\
         One family per concept, whatever the cloud, so one alert rule serves every provider.\n\n\
         **Labels.** Every series about a load balancer carries `provider`, `region`, `lb`, `lb_name` and\n\
         `lb_type`; series about a target group or listener add `target_group`. Self-metrics carry\n\
         `provider`, `source` (the config job name) and `region`. Per provider:\n\n",
    );
    for provider in PROVIDERS {
        let _ = writeln!(out, "- {}: {}", provider.title, provider.labels);
    }
    out.push_str(
        "\n**Counters.** Provider counts (CloudWatch `Sum` per period) become monotonic counters: each\n\
         period is first added when it ended at least `delay` ago, and re-read by its tier until it was\n\
         counted `settle` ago (10 minutes by default; Alibaba Cloud re-reads only as far as its pages\n\
         hold anyway, docs/design.md):\n\
         a later, larger value adds only the difference, so a counter holds each period's value as the\n\
         provider reports it once the period has settled; a smaller value is kept as counted and shows\n\
         in `lbtriage_collection_value_revisions_total`. A period without a datapoint adds nothing; a\n\
         failed cycle adds nothing and the next one reads the missed periods. A restart starts from zero\n\
         at the current period (a counter reset for Prometheus), so nothing is counted twice. Samples\n\
         carry no timestamps. **Gauges** are the newest datapoint of the last five periods, and absent\n\
         (not zero) when there is none.\n\n\
         **Tiers (`collection: adaptive`).** Each source names its tier: `sentinel` is read\n\
         every cycle; `detail` is read for a load balancer once an `alarm` metric shows a non-zero\n\
         period, back-filled from where it was last counted; `slow` is read every `slow_interval`, and its\n\
         counters are released `slow_interval` late, one period at a time. ALB\n\
         `HTTPCode_ELB_5XX_Count` is read as an alarm only, and its per-code counts are exported.\n\
         CloudMonitor reads its slow tier at 300 s periods (each spread evenly over its minutes).\n\
         `collection: full` reads every tier every cycle (docs/design.md).\n\n\
         **Probes.** Probe series carry `probe` (the config name), `lb` (when configured), `target`\n\
         (`ip:port`), `path` (`lb`: through the load balancer, one series per address its name resolves\n\
         to; `backend`: straight to a backend) and `vantage`. HTTP series add `request` (`app` or\n\
         `health`); failures carry `reason`: `refused`, `reset`, `timeout`, `dns`, `tls`,\n\
         `invalid_response` (bad status line or headers, no Content-Length nor chunked, body shorter\n\
         than Content-Length), `status` (400 or above) or `forbidden` (a link-local address).\n\n",
    );
    let mut section = |title: &str, list: &[&Family]| {
        let _ = writeln!(out, "## {title}\n");
        out.push_str("| family | type | meaning |");
        for provider in PROVIDERS {
            let _ = write!(out, " {} source |", provider.title);
        }
        out.push_str(&format!("\n|---|---|---|{}\n", "---|".repeat(PROVIDERS.len())));
        let cell = |sources: Vec<String>| {
            if sources.is_empty() {
                "—".to_string()
            } else {
                sources.join("<br>")
            }
        };
        for family in list {
            let _ = write!(
                out,
                "| `{}` | {} | {} |",
                sample_name(family),
                kind_name(family.kind),
                family.help.replace('|', "\\|"),
            );
            for provider in PROVIDERS {
                let _ = write!(out, " {} |", cell((provider.mapping)(family)));
            }
            out.push('\n');
        }
        out.push('\n');
    };
    let with_prefix = |prefix: &str| -> Vec<&Family> {
        families::ALL
            .iter()
            .copied()
            .filter(|f| f.name.starts_with(prefix))
            .collect()
    };
    let own: Vec<&Family> = families::ALL
        .iter()
        .copied()
        .filter(|f| !f.name.starts_with("lbtriage_lb_") && !f.name.starts_with("lbtriage_probe_"))
        .collect();
    section("Load balancers", &with_prefix("lbtriage_lb_"));
    section("Probes", &with_prefix("lbtriage_probe_"));
    section("lbtriage itself", &own);
    out.push_str("## Notes\n\n");
    for provider in PROVIDERS {
        for note in provider.notes {
            let _ = writeln!(
                out,
                "- {}: {}",
                provider.title,
                note.split_whitespace().collect::<Vec<_>>().join(" ")
            );
        }
    }
    out
}
