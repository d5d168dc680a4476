//! The Tencent Cloud source: one [`TencentSource`] per configured job and region. Each cycle
//! refreshes the CLB inventory when it is older than `discovery_ttl` (instances, names, tags, VIPs
//! and backend health from the CLB API: a deleted instance disappears), reads the Cloud Monitor
//! metrics its tiers call for (`sources/tiers.rs`) for the complete periods each has not yet
//! counted, ten instances per call, and returns a full snapshot. A failed read changes nothing of
//! its tier: the last good values keep serving and the next cycle reads the missed periods.

pub mod client;
pub mod cost;
pub mod inventory;
pub mod metrics;
pub mod monitor;
pub mod provider;
pub mod signature;

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use self::client::{Credentials, TencentClient, TencentError};
use self::inventory::{Instance, Target};
use self::metrics::SERIES;
use self::monitor::{Points, INSTANCES_PER_CALL};
use super::api::RateLimiter;
use super::period::{Counters, Ledger, Window};
use super::telemetry::{ApiCalls, Health};
use super::tiers::{Book, Policy, Tier};
use super::Source;
use crate::config::{Collection, TencentJob, TencentNamespace};
use crate::runtime::{Clock, Discovered};
use crate::store::{families, push_tag_labels, Kind, Labels, Sample};

pub use self::provider::PROVIDER;

/// Levels take the newest datapoint within this many periods.
const GAUGE_LOOKBACK_PERIODS: i64 = 5;
/// Catch-up bound per cycle after an outage: an hour of minutes per call.
const MAX_PERIODS_PER_CYCLE: u32 = 60;

pub fn source_key(job: &str, region: &str) -> String {
    format!("tencent/{job}/{region}")
}

/// The tier timing of a job. Billed per request, not per datapoint: the slow tier reads the
/// job's own period.
pub fn policy(job: &TencentJob) -> Policy {
    Policy {
        collection: job.collection,
        period: job.period.as_duration(),
        delay: job.delay.as_duration(),
        slow_interval: job.slow_interval.as_duration(),
        slow_period: job.period.as_duration(),
    }
}

/// One series of one instance: the row of the metric table.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct SeriesKey {
    instance: String,
    series: usize,
}

/// The metrics one read asks for, and the window each (instance, tier) counts.
#[derive(Default)]
struct Read {
    /// (instance, metric) pairs, grouped into calls by namespace and metric.
    metrics: BTreeMap<String, BTreeSet<&'static str>>,
    windows: HashMap<(String, Tier), Window>,
}

/// The inventory as last read, and when.
struct Inventory {
    read_at: i64,
    /// By instance ID.
    instances: BTreeMap<String, Instance>,
    targets: BTreeMap<String, Vec<Target>>,
}

impl Inventory {
    fn namespace_of(&self, id: &str) -> Option<TencentNamespace> {
        self.instances.get(id).map(|i| i.namespace)
    }
}

pub struct TencentSource {
    job: TencentJob,
    region: String,
    client: Result<TencentClient, TencentError>,
    clock: Clock,
    calls: ApiCalls,
    inventory: Option<Inventory>,
    /// The sentinel's ledger, shared by every instance of the source.
    ledger: Ledger,
    books: HashMap<String, Book<SeriesKey>>,
    counters: Counters<SeriesKey>,
    /// Gauges with the period of their newest datapoint, exported while it is recent.
    gauges: BTreeMap<SeriesKey, (i64, f64)>,
    health: Health,
    discovered: Option<Arc<Discovered>>,
}

impl TencentSource {
    /// A source whose credentials or client could not be set up still runs: it reports itself
    /// down with the reason on every cycle, as any other failure.
    pub fn new(job: TencentJob, region: String, limiter: Arc<RateLimiter>, clock: Clock) -> Self {
        let credentials = Credentials::resolve(job.credentials_file.as_deref(), &job.credentials_profile);
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
        let ledger = Ledger::new(
            job.period.as_duration(),
            job.delay.as_duration(),
            MAX_PERIODS_PER_CYCLE,
        );
        TencentSource {
            job,
            region,
            client,
            clock,
            calls: ApiCalls::with_tiers(),
            inventory: None,
            ledger,
            books: HashMap::new(),
            counters: Counters::default(),
            gauges: BTreeMap::new(),
            health: Health::default(),
            discovered: None,
        }
    }

    /// Shares what the inventory learns (VIPs, listeners, real servers) and the alarms with the
    /// probes.
    pub fn with_discovered(mut self, discovered: Arc<Discovered>) -> Self {
        self.discovered = Some(discovered);
        self
    }

    /// What probes can use of each instance, and which instances alarmed.
    fn share_with_probes(&self, now: i64) {
        let (Some(shared), Some(inventory)) = (&self.discovered, &self.inventory) else {
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
        shared.replace(&self.key(), facts);
        crate::sources::tiers::share_alarms(shared, &self.books, now);
    }

    pub fn api_calls(&self) -> &ApiCalls {
        &self.calls
    }

    /// The instances of each namespace, with read-only inventory calls only (`lbtriage plan`).
    pub async fn survey(&self) -> Result<BTreeMap<TencentNamespace, u64>, TencentError> {
        let client = self.client.as_ref().map_err(Clone::clone)?;
        let instances = inventory::load_balancers(client, &self.calls, &self.job).await?;
        let mut counts: BTreeMap<_, u64> = self.job.namespaces.iter().map(|n| (*n, 0)).collect();
        for instance in instances {
            *counts.entry(instance.namespace).or_default() += 1;
        }
        Ok(counts)
    }

    fn instances(&self) -> impl Iterator<Item = &Instance> {
        self.inventory.iter().flat_map(|i| i.instances.values())
    }

    /// Instances and backend health when the inventory is older than `discovery_ttl`; the
    /// series of an instance that is gone go with it.
    async fn refresh_inventory(&mut self, now: i64) -> Result<(), TencentError> {
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
                tracing::warn!(source = %self.key(), error = %err, "real-server health unknown: keeping the last answer");
                let mut last = self.inventory.take().map(|i| i.targets).unwrap_or_default();
                last.retain(|id, _| instances.contains_key(id));
                last
            }
        };
        tracing::debug!(source = %self.key(), instances = instances.len(), "discovered");
        self.books.retain(|id, _| instances.contains_key(id));
        self.counters.retain(|key| instances.contains_key(&key.instance));
        self.gauges.retain(|key, _| instances.contains_key(&key.instance));
        self.inventory = Some(Inventory {
            read_at: now,
            instances,
            targets,
        });
        Ok(())
    }

    /// Backend health of the instances whose detail tier is awake, every cycle: "no healthy
    /// target" is as current in an outage as in `full` collection.
    async fn refresh_awake_health(&mut self, awake: &[String]) -> Result<(), TencentError> {
        if awake.is_empty() || self.job.collection == Collection::Full {
            return Ok(());
        }
        let client = self.client.as_ref().map_err(Clone::clone)?;
        match inventory::target_health(client, &self.calls, awake).await {
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
                tracing::warn!(source = %self.key(), error = %err, "real-server health not refreshed");
            }
        }
        Ok(())
    }

    /// One cycle: the sentinel metrics of every instance, then the detail metrics of instances it
    /// alarmed and the slow metrics where they are due; each tier commits on its own.
    async fn read_due(&mut self) -> Result<(), TencentError> {
        let now = (self.clock)();
        self.refresh_inventory(now).await?;
        let window = self.ledger.pending(now);
        let policy = policy(&self.job);
        for instance in self.instances().cloned().collect::<Vec<_>>() {
            self.books
                .entry(instance.id.clone())
                .or_insert_with(|| Book::new(policy, window.start));
            for (index, series) in SERIES.iter().enumerate() {
                if series.family.kind == Kind::Counter
                    && series.exported
                    && series.in_namespace(instance.namespace)
                {
                    self.counters.add(&key(&instance.id, index), 0.0);
                }
            }
        }

        // The sentinel; in `full` collection every tier in the same calls.
        let mut first = Read::default();
        for instance in self.instances() {
            first
                .windows
                .insert((instance.id.clone(), Tier::Sentinel), window);
            first.metrics.insert(
                instance.id.clone(),
                metrics::metrics_in(instance.namespace, Tier::Sentinel, self.job.collection),
            );
        }
        if self.job.collection == Collection::Full {
            let (rest, _) = self.plan_tiers(now);
            merge(&mut first, rest);
        }
        let points = self.read(&first).await?;
        self.apply(&first, &points, now);
        self.ledger.commit(window);

        let result = match self.job.collection {
            Collection::Full => Ok(()),
            Collection::Adaptive => {
                let (rest, awake) = self.plan_tiers(now);
                let read = match self.read(&rest).await {
                    Ok(points) => {
                        self.apply(&rest, &points, now);
                        Ok(())
                    }
                    Err(err) => Err(err),
                };
                read.and(self.refresh_awake_health(&awake).await)
            }
        };
        for book in self.books.values_mut() {
            book.release(now, &mut self.counters);
        }
        self.share_with_probes(now);
        result
    }

    /// The detail metrics of instances whose detail tier is awake and the slow metrics of those
    /// whose slow tier is due; and which instances are awake.
    fn plan_tiers(&mut self, now: i64) -> (Read, Vec<String>) {
        let collection = self.job.collection;
        let mut read = Read::default();
        let mut awake = Vec::new();
        let Some(inventory) = &self.inventory else {
            return (read, awake);
        };
        for (id, book) in &mut self.books {
            let Some(namespace) = inventory.namespace_of(id) else {
                continue;
            };
            let wanted = read.metrics.entry(id.clone()).or_default();
            if book.detail_awake() {
                read.windows
                    .insert((id.clone(), Tier::Detail), book.pending(Tier::Detail, now));
                wanted.extend(metrics::metrics_in(namespace, Tier::Detail, collection));
                awake.push(id.clone());
            }
            if book.slow_due(now) {
                read.windows
                    .insert((id.clone(), Tier::Slow), book.pending(Tier::Slow, now));
                wanted.extend(metrics::metrics_in(namespace, Tier::Slow, collection));
            }
        }
        read.metrics.retain(|_, metrics| !metrics.is_empty());
        awake.sort();
        (read, awake)
    }

    /// Reads every (instance, metric) of `read` over the union of its windows and the gauge
    /// lookback: one call per metric and namespace for each ten instances, booked under the
    /// metric's tier. Nothing is read while no window holds a new period (a cycle shorter than
    /// the period): no new datapoint can exist.
    async fn read(&self, read: &Read) -> Result<Points, TencentError> {
        let mut points = Points::new();
        if read.metrics.is_empty() || read.windows.values().all(Window::is_empty) {
            return Ok(points);
        }
        let client = self.client.as_ref().map_err(Clone::clone)?;
        let period = self.ledger.period();
        let end = self.ledger.complete_until((self.clock)());
        let start = read
            .windows
            .values()
            .map(|w| w.start)
            .chain([end - GAUGE_LOOKBACK_PERIODS * period])
            .min()
            .unwrap_or(end);
        // The API's range includes both ends: the last complete period starts one period before
        // `end`.
        let range = (start, end - period);
        let mut calls: BTreeMap<(TencentNamespace, &'static str), Vec<&Instance>> = BTreeMap::new();
        for instance in self.instances() {
            for metric in read.metrics.get(&instance.id).into_iter().flatten() {
                calls
                    .entry((instance.namespace, *metric))
                    .or_default()
                    .push(instance);
            }
        }
        for ((namespace, metric), instances) in calls {
            let tier = metric_tier(namespace, metric, self.job.collection);
            for chunk in instances.chunks(INSTANCES_PER_CALL) {
                let result =
                    monitor::get(client, &self.calls, metric, chunk, period, range, &mut points).await;
                self.calls.record_tier(tier, 1, chunk.len() as u64);
                result?;
            }
        }
        Ok(points)
    }

    /// Counts each series whose metrics this read holds inside its (instance, tier) window (slow
    /// counters are held for release), keeps the newest gauge datapoint, notes alarms, and
    /// commits the windows.
    fn apply(&mut self, read: &Read, points: &Points, now: i64) {
        let period = self.ledger.period();
        let lookback = self.ledger.complete_until(now) - (GAUGE_LOOKBACK_PERIODS + 1) * period;
        let Some(inventory) = &self.inventory else {
            return;
        };
        for (instance, wanted) in &read.metrics {
            let Some(namespace) = inventory.namespace_of(instance) else {
                continue;
            };
            for (index, series) in SERIES.iter().enumerate() {
                let complete = series.terms.iter().all(|(metric, _)| wanted.contains(metric));
                if !complete || !series.in_namespace(namespace) || !series.read_in(self.job.collection) {
                    continue;
                }
                let combined = combine(series.terms, instance, points);
                let key = key(instance, index);
                if series.family.kind != Kind::Counter {
                    if let Some((&timestamp, &value)) = combined.iter().next_back() {
                        let newer = self.gauges.get(&key).is_none_or(|(t, _)| *t <= timestamp);
                        if timestamp >= lookback && newer {
                            self.gauges
                                .insert(key, (timestamp, series.convert(value, period)));
                        }
                    }
                    continue;
                }
                let window = read.windows.get(&(instance.clone(), series.tier));
                let (Some(window), Some(book)) = (window, self.books.get_mut(instance)) else {
                    continue;
                };
                for (&timestamp, &value) in combined.iter().filter(|(t, _)| window.contains(**t)) {
                    let value = series.convert(value, period);
                    if series.alarm && value > 0.0 {
                        book.alarm(timestamp);
                    }
                    if !series.exported {
                        continue;
                    }
                    match series.tier {
                        Tier::Slow => book.hold(&key, timestamp, value),
                        _ => self.counters.add(&key, value),
                    }
                }
            }
        }
        for ((instance, tier), window) in &read.windows {
            if let (Some(book), false) = (self.books.get_mut(instance), *tier == Tier::Sentinel) {
                book.commit(*tier, *window, now);
            }
        }
    }

    fn lb_labels(&self, instance: &Instance) -> Labels {
        vec![
            ("provider".into(), "tencent".to_string()),
            ("region".into(), self.region.clone()),
            ("lb".into(), instance.id.clone()),
            ("lb_name".into(), instance.name.clone()),
            ("lb_type".into(), metrics::lb_type(instance.namespace).to_string()),
        ]
    }

    fn gauge_horizon(&self, tier: Tier) -> i64 {
        let lookback = GAUGE_LOOKBACK_PERIODS * self.ledger.period();
        policy(&self.job).gauge_horizon(tier, lookback)
    }

    fn render(&self) -> Vec<Sample> {
        let mut out = Vec::new();
        let data_end = self.ledger.watermark().unwrap_or(i64::MIN);
        for instance in self.instances() {
            let base = self.lb_labels(instance);
            self.render_info(instance, &base, &mut out);
            for (index, series) in SERIES.iter().enumerate() {
                if !series.exported || !series.in_namespace(instance.namespace) {
                    continue;
                }
                let mut labels = base.clone();
                labels.extend(
                    series
                        .labels
                        .iter()
                        .map(|(k, v)| (Cow::Borrowed(*k), (*v).to_string())),
                );
                let key = key(&instance.id, index);
                let value = if series.family.kind == Kind::Counter {
                    Some(self.counters.get(&key))
                } else {
                    let oldest = data_end.saturating_sub(self.gauge_horizon(series.tier));
                    self.gauges
                        .get(&key)
                        .filter(|(timestamp, _)| *timestamp >= oldest)
                        .map(|(_, value)| *value)
                };
                if let Some(value) = value {
                    out.push(Sample::new(series.family, labels, value));
                }
            }
        }
        let base: Labels = vec![
            ("provider".into(), "tencent".to_string()),
            ("source".into(), self.job.name.clone()),
            ("region".into(), self.region.clone()),
        ];
        self.health.samples(
            &base,
            &self.ledger,
            self.job.interval.as_duration(),
            &self.calls,
            &mut out,
        );
        out
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
                let mut labels = group.clone();
                labels.push(("target".into(), target.target.clone()));
                let state = if target.healthy { "healthy" } else { "unhealthy" };
                labels.push(("state".into(), state.to_string()));
                labels.push(("reason".into(), target.detail.clone()));
                out.push(Sample::new(&families::LB_TARGET_HEALTH, labels, 1.0));
            }
        }
    }
}

impl Source for TencentSource {
    type Error = TencentError;

    fn key(&self) -> String {
        source_key(&self.job.name, &self.region)
    }

    fn interval(&self) -> Duration {
        self.job.interval.as_duration()
    }

    fn now(&self) -> i64 {
        (self.clock)()
    }

    fn health(&mut self) -> &mut Health {
        &mut self.health
    }

    fn cycle(&mut self) -> impl std::future::Future<Output = Result<(), TencentError>> + Send {
        self.read_due()
    }

    fn snapshot(&self) -> Vec<Sample> {
        self.render()
    }
}

fn key(instance: &str, series: usize) -> SeriesKey {
    SeriesKey {
        instance: instance.to_string(),
        series,
    }
}

fn merge(into: &mut Read, from: Read) {
    for (instance, metrics) in from.metrics {
        into.metrics.entry(instance).or_default().extend(metrics);
    }
    into.windows.extend(from.windows);
}

/// The tier a metric is booked under: the most frequent tier of the series reading it.
fn metric_tier(namespace: TencentNamespace, metric: &str, collection: Collection) -> Tier {
    Tier::ALL
        .into_iter()
        .find(|tier| metrics::metrics_in(namespace, *tier, collection).contains(metric))
        .unwrap_or(Tier::Detail)
}

/// Σ sign × metric per period of one instance. A period where a term published no datapoint
/// counts that term as zero: Cloud Monitor publishes nothing for a code that was not returned.
fn combine(terms: &[(&'static str, f64)], instance: &str, points: &Points) -> BTreeMap<i64, f64> {
    let mut out = BTreeMap::new();
    for (metric, sign) in terms {
        for (timestamp, value) in points.get(&(instance.to_string(), *metric)).into_iter().flatten() {
            *out.entry(*timestamp).or_insert(0.0) += sign * value;
        }
    }
    out
}
