//! `lbtriage plan`: discovers the fleet with read-only calls and prices its collection per job and
//! region, in `adaptive` and in `full` collection, from the same queries a cycle sends.

use std::time::Duration;

use anyhow::Context as _;
use serde_json::{json, Value};

use super::diagnose::Output;
use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::config::{AlibabaJob, AlibabaNamespace, AwsJob, Config, TencentJob, TencentNamespace};
use crate::runtime::system_clock;
use crate::sources::alibaba::cost::{self as alibaba_cost, CallsPerRead, Fleet};
use crate::sources::alibaba::{self, AlibabaSource};
use crate::sources::api::RateLimiter;
use crate::sources::aws::{self, discovery, Clients};
use crate::sources::engine::telemetry::ApiCalls;
use crate::sources::engine::tiers::{self, Tier, TierSizes, Timing, MONTH_SECONDS};
use crate::sources::tencent::{self, cost, TencentSource};

/// CloudWatch `GetMetricData`: $0.01 per 1,000 metrics requested (no free tier).
const USD_PER_METRIC: f64 = 0.01 / 1000.0;
/// The share of time the "erroring" estimate keeps each load balancer's detail tier awake.
const ERRORING_SHARE: f64 = 0.05;
/// CloudMonitor's free query calls a month, per account.
const ALIBABA_FREE_CALLS: f64 = 1_000_000.0;
/// Tencent Cloud Monitor's free `GetMonitorData` requests a month (cloud-metrics reference).
const TENCENT_FREE_CALLS: f64 = 1_000_000.0;
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
            let clients = Clients::new(&sdk);
            let probe_facts = config.auto_probes.when != crate::config::AutoProbeWhen::Never;
            let inventory = discovery::discover(job, region, shard, &clients, &calls, probe_facts)
                .await
                .with_context(|| format!("discovering aws job {:?} in {region}", job.name))?;
            // What a refresh of the inventory costs in calls, the probes' listeners and instance
            // addresses included when automatic probes run.
            if probe_facts {
                discovery::instance_addresses(&inventory, &clients, &calls).await;
            }
            rows.push(aws_row(job, region, &inventory, &calls.totals()));
        }
    }
    for job in &config.alibaba {
        let limiter = std::sync::Arc::new(RateLimiter::new(job.max_calls_per_second));
        for region in &job.regions {
            let source = AlibabaSource::new(job.clone(), region.clone(), limiter.clone(), system_clock());
            let fleets = source
                .survey(system_clock()())
                .await
                .map_err(|err| anyhow::anyhow!("surveying alibaba job {:?} in {region}: {err}", job.name))?;
            let probe_facts = config.auto_probes.when != crate::config::AutoProbeWhen::Never;
            let inventory_calls = source
                .inventory_calls(probe_facts)
                .await
                .map_err(|err| anyhow::anyhow!("listing alibaba job {:?} in {region}: {err}", job.name))?;
            rows.push(alibaba_row(job, region, &fleets, &inventory_calls));
        }
    }
    for job in &config.tencent {
        let limiter = std::sync::Arc::new(RateLimiter::new(job.max_calls_per_second));
        for region in &job.regions {
            let source = TencentSource::new(job.clone(), region.clone(), limiter.clone(), system_clock());
            let instances = source
                .survey()
                .await
                .with_context(|| format!("surveying tencent job {:?} in {region}", job.name))?;
            rows.push(tencent_row(job, region, &instances));
        }
    }
    Ok(rows)
}

/// Cloud Monitor bills requests past a free quota: requests a month per tier and mode, and the
/// inventory's CLB calls beside them.
fn tencent_row(job: &TencentJob, region: &str, instances: &BTreeMap<TencentNamespace, u64>) -> Value {
    let interval = job.interval.as_duration();
    let timing = tencent::timing(job);
    let per_month = |every: Duration| MONTH_SECONDS as f64 / every.as_secs_f64().max(1.0);
    let (cycles, slow_reads) = (per_month(interval), per_month(timing.slow_interval));
    let calls = cost::calls_per_read(job, instances);
    let count: u64 = instances.values().sum();
    let quiet = calls.sentinel * cycles + calls.slow * slow_reads;
    let mode = |requests: f64| {
        json!({
            "calls_per_month": requests.round(),
            "share_of_free_quota": (requests / TENCENT_FREE_CALLS * 1000.0).round() / 1000.0,
        })
    };
    let by_namespace: BTreeMap<&str, Value> = instances
        .iter()
        .map(|(namespace, count)| (namespace.as_str(), json!({ "instances": count })))
        .collect();
    json!({
        "provider": "tencent",
        "job": job.name,
        "region": region,
        "collection": job.collection.as_str(),
        "load_balancers": count,
        "by_namespace": by_namespace,
        "calls_per_read": {
            "sentinel": calls.sentinel,
            "slow": calls.slow,
            "awake": calls.awake,
            "full": calls.full,
        },
        "adaptive_quiet": mode(quiet),
        // Each instance erring 5 % of the time, one at a time (its detail calls are its own).
        "adaptive_erroring_5pct": mode(quiet + ERRORING_SHARE * cycles * calls.awake * count as f64),
        "full": mode(calls.full * cycles),
        "inventory_calls_per_month": (calls.inventory * per_month(job.discovery_ttl.as_duration())).round(),
        "worst_latency_seconds": latencies(&timing, interval),
    })
}

/// CloudMonitor is billed in calls against a free quota: calls a month per tier and mode.
/// CloudMonitor bills calls past a free quota; the SLB, ALB and ECS inventory calls (one refresh
/// every `discovery_ttl`) are other products' and not billed.
fn alibaba_row(
    job: &AlibabaJob,
    region: &str,
    fleets: &BTreeMap<AlibabaNamespace, Fleet>,
    inventory_calls: &BTreeMap<&'static str, u64>,
) -> Value {
    let interval = job.interval.as_duration();
    let timing = alibaba::timing(job);
    let cycles = MONTH_SECONDS as f64 / interval.as_secs_f64().max(1.0);
    let slow_reads = MONTH_SECONDS as f64 / timing.slow_interval.as_secs_f64().max(1.0);
    let mut per_read = CallsPerRead::default();
    let mut found = BTreeMap::new();
    for (namespace, fleet) in fleets {
        let calls = alibaba_cost::calls_per_read(job, *namespace, *fleet);
        per_read.sentinel += calls.sentinel;
        per_read.slow += calls.slow;
        per_read.awake += calls.awake;
        per_read.full += calls.full;
        found.insert(
            namespace.as_str(),
            json!({"instances": fleet.instances, "listeners": fleet.listeners}),
        );
    }
    let quiet = per_read.sentinel * cycles + per_read.slow * slow_reads;
    let mode = |calls: f64| {
        json!({
            "calls_per_month": calls.round(),
            "share_of_free_quota": (calls / ALIBABA_FREE_CALLS * 1000.0).round() / 1000.0,
        })
    };
    json!({
        "provider": "alibaba",
        "job": job.name,
        "region": region,
        "collection": job.collection.as_str(),
        "load_balancers": fleets.values().map(|f| f.instances).sum::<u64>(),
        "by_namespace": found,
        "calls_per_read": {
            "sentinel": per_read.sentinel,
            "slow": per_read.slow,
            "awake": per_read.awake,
            "full": per_read.full,
        },
        "adaptive_quiet": mode(quiet),
        "adaptive_erroring_5pct": mode(quiet + ERRORING_SHARE * cycles * per_read.awake),
        "full": mode(per_read.full * cycles),
        "inventory_calls_per_refresh": inventory_calls,
        "inventory_calls_per_month": (inventory_calls.values().sum::<u64>() as f64 * MONTH_SECONDS as f64
            / job.discovery_ttl.as_duration().as_secs_f64().max(1.0))
        .round(),
        "worst_latency_seconds": latencies(&timing, interval),
    })
}

fn latencies(timing: &Timing, interval: Duration) -> Value {
    let latency = |tier| tiers::worst_latency(tier, timing, interval).as_secs();
    json!({
        "sentinel": latency(Tier::Sentinel),
        "detail": latency(Tier::Detail),
        "slow": latency(Tier::Slow),
    })
}

/// CloudWatch bills metrics requested; the ELB, tagging and EC2 inventory calls (one refresh every
/// `discovery_ttl`) are not billed but count against those APIs' rate limits.
fn aws_row(
    job: &AwsJob,
    region: &str,
    inventory: &discovery::Inventory,
    inventory_calls: &BTreeMap<&'static str, u64>,
) -> Value {
    let mut sizes = TierSizes::default();
    let mut by_type = std::collections::BTreeMap::new();
    for lb in &inventory.load_balancers {
        sizes += aws::tier_sizes(lb);
        *by_type.entry(lb.lb_type.label()).or_insert(0u64) += 1;
    }
    let timing = aws::timing(job);
    let interval = job.interval.as_duration();
    let (quiet, full) = tiers::metrics_per_month(sizes, &timing, interval, 0.0);
    let (erroring, _) = tiers::metrics_per_month(sizes, &timing, interval, ERRORING_SHARE);
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
        "inventory_calls_per_refresh": inventory_calls,
        "inventory_calls_per_month": (inventory_calls.values().sum::<u64>() as f64
            * per_month(job.discovery_ttl.as_duration()))
        .round(),
        "worst_latency_seconds": latencies(&timing, interval),
    })
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
