//! The Tencent Cloud source: one [`TencentSource`] per configured job and region. Each cycle
//! refreshes the CLB inventory when it is older than `discovery_ttl` (instances, names, tags, VIPs
//! and backend health from the CLB API: a deleted instance disappears), reads the Cloud Monitor
//! metrics its tiers call for (`sources/engine/tiers.rs`) for the complete periods each has not yet
//! counted, ten instances per call, and returns a full snapshot. A failed read changes nothing of
//! its tier: the last good values keep serving and the next cycle reads the missed periods.

pub mod client;
pub mod cost;
pub mod inventory;
pub mod metrics;
pub mod monitor;
pub mod plan;
pub mod provider;
pub mod signature;

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use self::client::{Credentials, TencentClient, TencentError};
use self::inventory::{Instance, Target};
use self::metrics::{Series, SERIES};
use self::monitor::{Points, INSTANCES_PER_CALL};
use super::api::RateLimiter;
use super::engine::series::signed_sum;
use super::engine::telemetry::ApiCalls;
use super::engine::tiers::{Tier, Timing};
use super::engine::{target_health, Cloud, Collector, Counting, Observation, Reads};
use crate::config::{Collection, TencentJob, TencentNamespace};
use crate::runtime::Clock;
use crate::store::{families, push_tag_labels, Labels, Sample};

/// Catch-up bound per cycle after an outage: an hour of minutes per call.
const MAX_PERIODS_PER_CYCLE: u32 = 60;

/// The tier timing of a job. Billed per request, not per datapoint: the slow tier reads the
/// job's own period.
pub fn timing(job: &TencentJob) -> Timing {
    Timing {
        collection: job.collection,
        period: job.period.as_duration(),
        delay: job.delay.as_duration(),
        slow_interval: job.slow_interval.as_duration(),
        slow_period: job.period.as_duration(),
        settle: job.settle.as_duration(),
    }
}

/// One series of one instance: the row of the metric table.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesKey {
    instance: String,
    series: usize,
}

impl crate::sources::engine::SeriesKey for SeriesKey {
    fn lb(&self) -> &str {
        &self.instance
    }
}

fn key(instance: &str, series: usize) -> SeriesKey {
    SeriesKey {
        instance: instance.to_string(),
        series,
    }
}

/// The inventory as last read, and when.
struct Inventory {
    read_at: i64,
    /// By instance ID.
    instances: BTreeMap<String, Instance>,
    targets: BTreeMap<String, Vec<Target>>,
}

/// The Tencent Cloud part of a source: the job, the client and the CLB inventory.
pub struct Tencent {
    job: TencentJob,
    region: String,
    client: Result<TencentClient, TencentError>,
    calls: ApiCalls,
    inventory: Option<Inventory>,
}

/// One Tencent Cloud job and region, collected by the engine.
pub type TencentSource = Collector<Tencent>;

impl Collector<Tencent> {
    /// A source whose credentials or client could not be set up still runs: it reports itself
    /// down with the reason on every cycle, as any other failure.
    pub fn new(job: TencentJob, region: String, limiter: Arc<RateLimiter>, clock: Clock) -> Self {
        let credentials = client::credentials(job.credentials_file.as_deref(), &job.credentials_profile);
        Self::with_credentials(job, region, credentials, limiter, clock)
    }

    pub fn with_credentials(
        job: TencentJob,
        region: String,
        credentials: Result<Credentials, TencentError>,
        limiter: Arc<RateLimiter>,
        clock: Clock,
    ) -> Self {
        let client = credentials.and_then(|credentials| {
            TencentClient::new(job.endpoint_url.clone(), region.clone(), credentials, limiter)
        });
        let timing = timing(&job);
        let tencent = Tencent {
            job,
            region,
            client,
            calls: ApiCalls::with_tiers(),
            inventory: None,
        };
        Collector::with_cloud(tencent, timing, MAX_PERIODS_PER_CYCLE, clock)
    }

    /// The instances of each namespace, with read-only inventory calls only (`lbtriage plan`).
    pub async fn survey(&self) -> Result<BTreeMap<TencentNamespace, u64>, TencentError> {
        let tencent = self.cloud();
        let client = tencent.client.as_ref().map_err(Clone::clone)?;
        let instances = inventory::load_balancers(client, &tencent.calls, &tencent.job).await?;
        let mut counts: BTreeMap<_, u64> = tencent.job.namespaces.iter().map(|n| (*n, 0)).collect();
        for instance in instances {
            *counts.entry(instance.namespace).or_default() += 1;
        }
        Ok(counts)
    }
}

impl Tencent {
    fn instances(&self) -> impl Iterator<Item = &Instance> {
        self.inventory.iter().flat_map(|i| i.instances.values())
    }

    /// What probes can use of each instance.
    fn share_with_probes(&self, counting: &Counting<SeriesKey>) {
        let (Some(shared), Some(inventory)) = (counting.discovered(), &self.inventory) else {
            return;
        };
        let facts = inventory.instances.values().map(|instance| {
            let targets = inventory
                .targets
                .get(&instance.id)
                .map(Vec::as_slice)
                .unwrap_or_default();
            (
                instance.id.clone(),
                inventory::facts(instance, targets, &self.region),
            )
        });
        shared.replace(&self.source_key(), facts);
    }

    /// The rows of an instance a read asks for.
    fn rows<'a>(
        &'a self,
        reads: &'a Reads,
        instance: &'a Instance,
    ) -> impl Iterator<Item = (usize, &'static Series)> + 'a {
        let collection = self.job.collection;
        SERIES.iter().enumerate().filter(move |(_, series)| {
            series.in_namespace(instance.namespace)
                && series.read_in(collection)
                && reads.reads(&instance.id, series.tier, series.family)
        })
    }

    /// `lbtriage_lb_info` with the VIP and tags, and per listener the backend counts and each
    /// real server's health (`target_group="listener:<port>"`, as for Alibaba SLB).
    fn render_info(&self, instance: &Instance, base: &Labels, out: &mut Vec<Sample>) {
        let mut info = base.clone();
        info.push(("vip".into(), instance.vip.clone()));
        push_tag_labels(&mut info, &instance.tags);
        out.push(Sample::new(&families::LB_INFO, info, 1.0));
        let targets = self
            .inventory
            .as_ref()
            .and_then(|i| i.targets.get(&instance.id))
            .map_or(&[][..], Vec::as_slice);
        let mut listeners: BTreeMap<u16, Vec<&Target>> = BTreeMap::new();
        for target in targets {
            listeners.entry(target.listener_port).or_default().push(target);
        }
        for (port, targets) in listeners {
            let mut group = base.clone();
            group.push(("target_group".into(), format!("listener:{port}")));
            let healthy = targets.iter().filter(|t| t.healthy).count();
            out.push(Sample::new(
                &families::LB_REGISTERED_TARGETS,
                group.clone(),
                targets.len() as f64,
            ));
            out.push(Sample::new(
                &families::LB_HEALTHY_TARGETS,
                group.clone(),
                healthy as f64,
            ));
            out.push(Sample::new(
                &families::LB_UNHEALTHY_TARGETS,
                group.clone(),
                (targets.len() - healthy) as f64,
            ));
            for target in targets {
                let state = if target.healthy { "healthy" } else { "unhealthy" };
                out.push(target_health(&group, &target.target, state, &target.detail));
            }
        }
    }
}

impl Cloud for Tencent {
    type Key = SeriesKey;
    type Error = TencentError;

    fn provider(&self) -> &'static str {
        "tencent"
    }

    fn job_name(&self) -> &str {
        &self.job.name
    }

    fn region(&self) -> &str {
        &self.region
    }

    fn interval(&self) -> Duration {
        self.job.interval.as_duration()
    }

    fn calls(&self) -> &ApiCalls {
        &self.calls
    }

    /// Instances and backend health when the inventory is older than `discovery_ttl`; the
    /// series of an instance that is gone go with it.
    async fn refresh(&mut self, counting: &mut Counting<SeriesKey>, now: i64) -> Result<(), TencentError> {
        let ttl = self.job.discovery_ttl.as_duration().as_secs() as i64;
        if self.inventory.as_ref().is_some_and(|i| now - i.read_at < ttl) {
            return Ok(());
        }
        let client = self.client.as_ref().map_err(Clone::clone)?;
        let instances: BTreeMap<String, Instance> = inventory::load_balancers(client, &self.calls, &self.job)
            .await?
            .into_iter()
            .map(|i| (i.id.clone(), i))
            .collect();
        let ids: Vec<String> = instances.keys().cloned().collect();
        // Real-server health is not what the metrics need: a failing call keeps the last answer.
        let targets = match inventory::target_health(client, &self.calls, &ids).await {
            Ok(targets) => {
                self.calls
                    .optional_outcome(inventory::API_DESCRIBE_TARGET_HEALTH, false);
                targets
            }
            Err(err) => {
                self.calls
                    .optional_outcome(inventory::API_DESCRIBE_TARGET_HEALTH, true);
                tracing::warn!(source = %self.source_key(), error = %err, "real-server health unknown: keeping the last answer");
                let mut last = self.inventory.take().map(|i| i.targets).unwrap_or_default();
                last.retain(|id, _| instances.contains_key(id));
                last
            }
        };
        tracing::debug!(source = %self.source_key(), instances = instances.len(), "discovered");
        counting.retain_lbs(|id| instances.contains_key(id));
        self.inventory = Some(Inventory {
            read_at: now,
            instances,
            targets,
        });
        Ok(())
    }

    fn load_balancers(&self) -> Vec<String> {
        self.instances().map(|i| i.id.clone()).collect()
    }

    /// Every (instance, metric) of the rows `reads` asks for, over the union of its windows and
    /// the gauge lookback: one call per metric and namespace for each ten instances, booked under
    /// the metric's tier. Nothing is read while no window holds a new period (a cycle shorter
    /// than the period): no new datapoint can exist.
    async fn read(
        &mut self,
        reads: &Reads,
        counting: &Counting<SeriesKey>,
        now: i64,
    ) -> Result<Vec<Observation<SeriesKey>>, TencentError> {
        let mut wanted: BTreeMap<(TencentNamespace, &'static str), Vec<&Instance>> = BTreeMap::new();
        for instance in self.instances() {
            let metrics: BTreeSet<&'static str> = self
                .rows(reads, instance)
                .flat_map(|(_, series)| series.terms.iter().map(|(metric, _)| *metric))
                .collect();
            for metric in metrics {
                wanted
                    .entry((instance.namespace, metric))
                    .or_default()
                    .push(instance);
            }
        }
        if wanted.is_empty() || reads.nothing_new() {
            return Ok(Vec::new());
        }
        let client = self.client.as_ref().map_err(Clone::clone)?;
        let period = counting.period();
        let start = reads.start(&Tier::ALL, counting.gauge_lookback(now));
        // The API's range includes both ends: the last period read (the one still completing, for
        // the sentinel's alarm) starts one period before the end.
        let range = (
            start,
            reads.end(&Tier::ALL, counting.complete_until(now)) - period,
        );
        let mut points = Points::new();
        for ((namespace, metric), instances) in wanted {
            let tier = metric_tier(namespace, metric, self.job.collection);
            for chunk in instances.chunks(INSTANCES_PER_CALL) {
                let result =
                    monitor::get(client, &self.calls, metric, chunk, period, range, &mut points).await;
                self.calls.record_tier(tier, 1, chunk.len() as u64);
                result?;
            }
        }
        let mut observations = Vec::new();
        for instance in self.instances() {
            for (index, series) in self.rows(reads, instance) {
                let combined = signed_sum(series.terms, |metric| {
                    points
                        .get(&(instance.id.clone(), metric))
                        .map_or(&[][..], Vec::as_slice)
                });
                let points = combined.into_iter().collect();
                observations.push(Observation::of(series, key(&instance.id, index), period, points));
            }
        }
        Ok(observations)
    }

    /// Backend health of the instances whose detail tier is awake, every cycle: "no healthy
    /// target" is as current in an outage as in `full` collection.
    async fn after_reads(
        &mut self,
        counting: &Counting<SeriesKey>,
        awake: &BTreeSet<String>,
        _now: i64,
    ) -> Result<(), TencentError> {
        if !awake.is_empty() && self.job.collection == Collection::Adaptive {
            let client = self.client.as_ref().map_err(Clone::clone)?;
            let awake: Vec<String> = awake.iter().cloned().collect();
            match inventory::target_health(client, &self.calls, &awake).await {
                Ok(health) => {
                    self.calls
                        .optional_outcome(inventory::API_DESCRIBE_TARGET_HEALTH, false);
                    if let Some(inventory) = &mut self.inventory {
                        inventory.targets.extend(health);
                    }
                }
                Err(err) => {
                    self.calls
                        .optional_outcome(inventory::API_DESCRIBE_TARGET_HEALTH, true);
                    tracing::warn!(source = %self.source_key(), error = %err, "real-server health not refreshed");
                }
            }
        }
        self.share_with_probes(counting);
        Ok(())
    }

    fn render(&self, counting: &Counting<SeriesKey>, out: &mut Vec<Sample>) {
        for instance in self.instances() {
            let base = self.lb_labels(&instance.id, &instance.name, metrics::lb_type(instance.namespace));
            self.render_info(instance, &base, out);
            for (index, series) in SERIES.iter().enumerate() {
                if !series.exported || !series.in_namespace(instance.namespace) {
                    continue;
                }
                let Some(value) = counting.value(series, &key(&instance.id, index)) else {
                    continue;
                };
                let mut labels = base.clone();
                labels.extend(
                    series
                        .labels
                        .iter()
                        .map(|(k, v)| (Cow::Borrowed(*k), (*v).to_string())),
                );
                out.push(Sample::new(series.family, labels, value));
            }
        }
    }
}

/// The tier a metric is booked under: the most frequent tier of the series reading it.
fn metric_tier(namespace: TencentNamespace, metric: &str, collection: Collection) -> Tier {
    Tier::ALL
        .into_iter()
        .find(|tier| metrics::metrics_in(namespace, *tier, collection).contains(metric))
        .unwrap_or(Tier::Detail)
}
