//! `lbtriage plan`: discovers the fleet with read-only calls and prices its collection per job and
//! region, in `adaptive` and in `full` collection, from the same queries a cycle sends.

use std::time::Duration;

use anyhow::Context as _;
use serde_json::{json, Value};

use super::diagnose::Output;
use crate::config::{AwsJob, Config};
use crate::sources::aws::{self, discovery, Clients};
use crate::sources::telemetry::ApiCalls;
use crate::sources::tiers::{self, Tier, TierSizes, MONTH_SECONDS};

/// CloudWatch `GetMetricData`: $0.01 per 1,000 metrics requested (no free tier).
const USD_PER_METRIC: f64 = 0.01 / 1000.0;
/// The share of time the "erroring" estimate keeps each load balancer's detail tier awake.
const ERRORING_SHARE: f64 = 0.05;
/// Queries per `GetMetricData` call.
const QUERIES_PER_CALL: u64 = aws::cloudwatch::MAX_QUERIES_PER_CALL as u64;

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
    let shard = config.shard_assignment()?;
    let mut rows = Vec::new();
    for job in &config.aws {
        for region in &job.regions {
            let sdk = aws::client::sdk_config(job, region).await;
            let calls = ApiCalls::default();
            let inventory = discovery::discover(job, region, shard, &Clients::new(&sdk), &calls)
                .await
                .with_context(|| format!("discovering aws job {:?} in {region}", job.name))?;
            rows.push(aws_row(job, region, &inventory));
        }
    }
    for job in &config.alibaba {
        for region in &job.regions {
            rows.push(json!({
                "provider": "alibaba",
                "job": job.name,
                "region": region,
                "note": "collected in full every cycle (adaptive tiers are AWS-only so far): one \
                         DescribeMetricList call per metric name and page",
            }));
        }
    }
    Ok(rows)
}

fn aws_row(job: &AwsJob, region: &str, inventory: &discovery::Inventory) -> Value {
    let mut sizes = TierSizes::default();
    let mut by_type = std::collections::BTreeMap::new();
    for lb in &inventory.load_balancers {
        sizes += aws::tier_sizes(lb);
        *by_type.entry(lb.lb_type.label()).or_insert(0u64) += 1;
    }
    let policy = aws::policy(job);
    let interval = job.interval.as_duration();
    let (quiet, full) = tiers::metrics_per_month(sizes, &policy, interval, 0.0);
    let (erroring, _) = tiers::metrics_per_month(sizes, &policy, interval, ERRORING_SHARE);
    let per_month = |every: Duration| MONTH_SECONDS as f64 / every.as_secs_f64().max(1.0);
    let calls = |metrics: u64| metrics.div_ceil(QUERIES_PER_CALL) as f64;
    let quiet_calls = per_month(interval) * calls(sizes.sentinel)
        + per_month(job.slow_interval.as_duration()) * calls(sizes.slow);
    let mode = |metrics: f64, calls: Option<f64>| {
        json!({
            "metrics_per_month": metrics.round(),
            "usd_per_month": (metrics * USD_PER_METRIC * 100.0).round() / 100.0,
            "get_metric_data_calls_per_month": calls.map(f64::round),
        })
    };
    let latency = |tier| tiers::worst_latency(tier, &policy, interval).as_secs();
    json!({
        "provider": "aws",
        "job": job.name,
        "region": region,
        "collection": job.collection.as_str(),
        "load_balancers": inventory.load_balancers.len(),
        "by_type": by_type,
        "metrics_per_read": {
            "sentinel": sizes.sentinel,
            "detail": sizes.detail,
            "slow": sizes.slow,
            "slow_gauges": sizes.slow_gauges,
            "full": sizes.full,
        },
        "adaptive_quiet": mode(quiet, Some(quiet_calls)),
        "adaptive_erroring_5pct": mode(erroring, None),
        "full": mode(full, Some(per_month(interval) * calls(sizes.full))),
        "worst_latency_seconds": {
            "sentinel": latency(Tier::Sentinel),
            "detail": latency(Tier::Detail),
            "slow": latency(Tier::Slow),
        },
    })
}

fn text(rows: &[Value]) -> String {
    let mut out = String::new();
    for row in rows {
        let head = format!(
            "{} job {} in {}",
            row["provider"].as_str().unwrap_or(""),
            row["job"],
            row["region"]
        );
        if let Some(note) = row["note"].as_str() {
            out += &format!("{head}: {note}\n\n");
            continue;
        }
        out += &format!(
            "{head}: {} load balancers {} (collection: {})\n",
            row["load_balancers"],
            row["by_type"],
            row["collection"].as_str().unwrap_or("")
        );
        let reads = &row["metrics_per_read"];
        out += &format!(
            "  metrics per read: sentinel {} every cycle, detail {} while erroring, slow {} every slow interval; full {} every cycle\n",
            reads["sentinel"], reads["detail"], reads["slow"], reads["full"]
        );
        for (name, key) in [
            ("adaptive, quiet", "adaptive_quiet"),
            ("adaptive, 5 % of time erroring", "adaptive_erroring_5pct"),
            ("full", "full"),
        ] {
            let mode = &row[key];
            out += &format!(
                "  {name:<32} {:>14} metrics/month  ${:>10.2}/month",
                mode["metrics_per_month"].as_f64().unwrap_or(0.0),
                mode["usd_per_month"].as_f64().unwrap_or(0.0)
            );
            if let Some(calls) = mode["get_metric_data_calls_per_month"].as_f64() {
                out += &format!("  {calls:>9} calls/month");
            }
            out += "\n";
        }
        let latency = &row["worst_latency_seconds"];
        out += &format!(
            "  worst-case detection latency: sentinel {} s, detail {} s, slow {} s\n\n",
            latency["sentinel"], latency["detail"], latency["slow"]
        );
    }
    out
}
