//! `lbtriage plan`: discovers the fleet with read-only calls and prices its collection per job and
//! region, in `adaptive` and in `full` collection, from the same queries a cycle sends. Each
//! provider's row builds its rows (`sources/<cloud>/plan.rs`); this prints them.

use anyhow::Context as _;
use serde_json::{json, Value};

use super::diagnose::Output;
use std::fmt::Write as _;

use crate::config::Config;
use crate::sources::registry::PROVIDERS;

pub fn run(config_file: &std::path::Path, output: Output) -> i32 {
    let result = Config::load(config_file)
        .map_err(anyhow::Error::from)
        .and_then(|config| {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .context("starting the runtime")?;
            runtime.block_on(plan(&config))
        });
    match result {
        Ok(rows) => {
            match output {
                Output::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({ "jobs": rows })).unwrap_or_default()
                ),
                Output::Text => print!("{}", text(&rows)),
            }
            0
        }
        Err(err) => {
            eprintln!("plan: {err:#}");
            1
        }
    }
}

async fn plan(config: &Config) -> anyhow::Result<Vec<Value>> {
    config.shard_assignment()?;
    let mut rows = Vec::new();
    for provider in PROVIDERS {
        rows.extend((provider.plan)(config).await.map_err(anyhow::Error::msg)?);
    }
    Ok(rows)
}

fn text(rows: &[Value]) -> String {
    let mut out = String::new();
    for row in rows {
        // Alibaba and Tencent bill calls against a free quota; AWS bills metrics.
        let alibaba = row.get("calls_per_read").is_some();
        let _ = writeln!(
            out,
            "{} job {} in {}: {} load balancers {} (collection: {})",
            row["provider"].as_str().unwrap_or(""),
            row["job"],
            row["region"],
            row["load_balancers"],
            if alibaba {
                &row["by_namespace"]
            } else {
                &row["by_type"]
            },
            row["collection"].as_str().unwrap_or("")
        );
        if alibaba {
            let reads = &row["calls_per_read"];
            let _ = writeln!(
                out,
                "  calls per read: sentinel {} every cycle, slow {} every slow interval, {} more each cycle an instance errs; full {} every cycle",
                reads["sentinel"], reads["slow"], reads["awake"], reads["full"]
            );
        } else {
            let reads = &row["metrics_per_read"];
            let _ = writeln!(
                out,
                "  metrics per read: sentinel {} every cycle, detail {} while erroring, slow {} every slow interval; full {} every cycle",
                reads["sentinel"], reads["detail"], reads["slow"], reads["full"]
            );
        }
        for (name, key) in [
            ("adaptive, quiet", "adaptive_quiet"),
            ("adaptive, 5 % of time erroring", "adaptive_erroring_5pct"),
            ("full", "full"),
        ] {
            let mode = &row[key];
            let number = |field: &str| mode[field].as_f64().unwrap_or(0.0);
            let _ = write!(out, "  {name:<32}");
            if alibaba {
                let _ = write!(
                    out,
                    " {:>12} calls/month  {:>5.1} % of the free quota",
                    number("calls_per_month"),
                    number("share_of_free_quota") * 100.0
                );
            } else {
                let _ = write!(
                    out,
                    " {:>14} metrics/month  ${:>10.2}/month",
                    number("metrics_per_month"),
                    number("usd_per_month")
                );
                if let Some(calls) = mode["get_metric_data_calls_per_month"].as_f64() {
                    let _ = write!(out, "  {calls:>9} calls/month");
                }
            }
            out.push('\n');
        }
        if let Some(month) = row["inventory_calls_per_month"].as_f64() {
            let _ = writeln!(
                out,
                "  inventory calls (names, targets, listeners, addresses): {month} a month"
            );
        }
        let latency = &row["worst_latency_seconds"];
        let _ = writeln!(
            out,
            "  worst-case detection latency: sentinel {} s, detail {} s, slow {} s\n",
            latency["sentinel"], latency["detail"], latency["slow"]
        );
    }
    out
}
