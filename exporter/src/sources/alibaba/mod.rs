//! The Alibaba Cloud source: one [`AlibabaSource`] per configured job and region, reading SLB and
//! ALB metrics from CloudMonitor (`DescribeMetricList`) into the same families as AWS, so the same
//! rules fire. Instances are the ones the SLB and ALB APIs list (`inventory.rs`, every
//! `discovery_ttl`: names, addresses, tags; a deleted instance disappears), optionally narrowed to
//! `instance_ids`; CloudMonitor returns every instance of the account per call, and a datapoint of
//! an instance the inventory does not list is ignored. Counting is the engine's
//! (`sources/engine/`); this folder holds the reads, the table, the inventory, the cost model and
//! the registry row.

pub mod client;
pub mod cost;
pub mod datapoints;
pub mod inventory;
pub mod metrics;
pub mod plan;
pub mod provider;
pub mod signature;

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

pub use self::client::default_endpoint;
use self::client::{AlibabaError, CmsClient, Credentials, Query};
pub use self::cost::timing;
use self::cost::Fleet;
use self::datapoints::Datapoint;
use self::metrics::{Ports, Series, SERIES};
use super::api::RateLimiter;
use super::engine::counting::GAUGE_LOOKBACK_PERIODS;
use super::engine::period::Window;
use super::engine::telemetry::ApiCalls;
use super::engine::tiers::Tier;
use super::engine::{target_health, Cloud, Collector, Counting, Observation, Reads};
use crate::config::{AlibabaJob, AlibabaNamespace, Collection};
use crate::runtime::Clock;
use crate::store::{families, push_tag_labels, Labels, Sample};

/// Catch-up bound per cycle after an outage (1,000 points per page at 60 s is ~16 h per instance).
const MAX_PERIODS_PER_CYCLE: u32 = 60;

/// One series of one instance: the table row, and the listener for per-listener series.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesKey {
    instance: String,
    series: usize,
    port: Option<String>,
}

impl crate::sources::engine::SeriesKey for SeriesKey {
    fn lb(&self) -> &str {
        &self.instance
    }
}

/// What one call set returned: datapoints per (namespace, metric).
type Read = HashMap<(AlibabaNamespace, &'static str), Vec<Datapoint>>;

/// The periods a read asks for: from `start` through the period at `end`, and further back to
/// `settle_from` as far as each metric's pages hold anyway (`cost::free_reach`): re-reading
/// unsettled periods for late data never costs CloudMonitor a call.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: i64,
    end: i64,
    settle_from: Option<i64>,
}

impl Span {
    fn plain(start: i64, end: i64) -> Span {
        Span {
            start,
            end,
            settle_from: None,
        }
    }

    /// Where a read of `series` series at `period` starts.
    fn start_for(&self, series: u64, period: i64) -> i64 {
        let periods = ((self.end - self.start) / period.max(1)).max(0) as u64;
        let reach = cost::free_reach(series, periods) as i64;
        self.settle_from.map_or(self.start, |from| {
            from.max(self.start - reach * period).min(self.start)
        })
    }
}

/// The Alibaba Cloud part of a source: the job, the client, the inventory and what the probes use.
pub struct Alibaba {
    job: AlibabaJob,
    region: String,
    client: Result<CmsClient, String>,
    calls: ApiCalls,
    /// Every instance the inventory lists (and, until it has been read, the metrics name), with
    /// its namespace.
    instances: BTreeMap<String, AlibabaNamespace>,
    /// The SLB and ALB inventory as last read, and when: names, addresses and tags.
    inventory: Option<(i64, BTreeMap<String, inventory::Instance>)>,
    /// The backend servers of SLB instances that recently alarmed (`DescribeHealthStatus`).
    backends: BTreeMap<String, Vec<inventory::Backend>>,
    /// For the probes: the ALB instances' server groups, and the private addresses of their ECS
    /// members, as the last inventory read them.
    alb_groups: Vec<inventory::ServerGroup>,
    ecs_ips: HashMap<String, std::net::IpAddr>,
    /// When a namespace without a known instance was last looked at.
    probed: BTreeMap<AlibabaNamespace, i64>,
    /// Series (instances, or listeners for per-listener metrics) each metric's last read of the
    /// whole fleet returned: how far back a read can reach before it needs another page.
    series_seen: HashMap<(AlibabaNamespace, &'static str), u64>,
    /// Namespaces whose list call has never succeeded (refused, not offered in the region): their
    /// instances are the ones the metrics name, without names and tags.
    unlisted: BTreeSet<AlibabaNamespace>,
    /// Empty namespaces this cycle's sentinel read looked at: their slow metrics are read too.
    probing: BTreeSet<AlibabaNamespace>,
}

/// One Alibaba Cloud job and region, collected by the engine.
pub type AlibabaSource = Collector<Alibaba>;

impl Collector<Alibaba> {
    /// A source whose credentials or client could not be set up still runs: it reports itself
    /// down with the reason on every cycle, as any other failure.
    pub fn new(job: AlibabaJob, region: String, limiter: Arc<RateLimiter>, clock: Clock) -> Self {
        let credentials = client::credentials(job.credentials_file.as_deref(), &job.credentials_profile);
        Self::with_credentials(job, region, credentials, limiter, clock)
    }

    pub fn with_credentials(
        job: AlibabaJob,
        region: String,
        credentials: Result<Credentials, AlibabaError>,
        limiter: Arc<RateLimiter>,
        clock: Clock,
    ) -> Self {
        let client = credentials
            .and_then(|credentials| {
                CmsClient::new(job.endpoint_url.as_deref(), &region, credentials, limiter)
            })
            .map_err(|err| err.to_string());
        let timing = timing(&job);
        let alibaba = Alibaba {
            job,
            region,
            client,
            calls: ApiCalls::with_tiers(),
            instances: BTreeMap::new(),
            inventory: None,
            backends: BTreeMap::new(),
            alb_groups: Vec::new(),
            ecs_ips: HashMap::new(),
            probed: BTreeMap::new(),
            series_seen: HashMap::new(),
            unlisted: BTreeSet::new(),
            probing: BTreeSet::new(),
        };
        Collector::with_cloud(alibaba, timing, MAX_PERIODS_PER_CYCLE, clock)
    }

    /// The calls one refresh of the inventory makes (`lbtriage plan`): the instance listings, and
    /// with `probe_facts` the ALB server groups, their members and the ECS members' addresses.
    /// DescribeHealthStatus is left out: it is read only for instances whose 5xx alarmed.
    pub async fn inventory_calls(&self, probe_facts: bool) -> Result<BTreeMap<&'static str, u64>, String> {
        let alibaba = self.cloud();
        let client = alibaba.client.as_ref().map_err(Clone::clone)?;
        let calls = ApiCalls::default();
        let mut albs = Vec::new();
        for namespace in alibaba.job.namespaces.clone() {
            let listed = inventory::instances(client, &calls, &alibaba.job, &alibaba.region, namespace)
                .await
                .map_err(|err| err.to_string())?;
            if namespace == AlibabaNamespace::Alb {
                albs.extend(listed.into_iter().map(|i| i.id));
            }
        }
        if probe_facts && !albs.is_empty() {
            let groups = inventory::alb_server_groups(client, &calls, &albs)
                .await
                .map_err(|err| err.to_string())?;
            let ecs = inventory::ecs_members_without_address(&groups);
            if !ecs.is_empty() {
                inventory::ecs_private_ips(client, &calls, &alibaba.region, &ecs)
                    .await
                    .map_err(|err| err.to_string())?;
            }
        }
        Ok(calls.totals())
    }

    /// Instances and listeners per configured namespace, from the last five periods of a
    /// request metric and a per-listener metric (read-only calls).
    pub async fn survey(&self, now: i64) -> Result<BTreeMap<AlibabaNamespace, Fleet>, String> {
        let (alibaba, counting) = (self.cloud(), self.counting());
        let period = counting.period();
        let end = counting.complete_until(now);
        let range = Span::plain(end - GAUGE_LOOKBACK_PERIODS * period, end);
        let mut fleets = BTreeMap::new();
        for namespace in alibaba.job.namespaces.clone() {
            let requests = SERIES
                .iter()
                .find(|s| s.cloud.namespace == namespace && std::ptr::eq(s.family, &families::LB_REQUESTS))
                .map(|s| s.terms[0].0);
            let listener = metrics::metrics(namespace)
                .into_iter()
                .find(|m| metrics::per_listener(namespace, m));
            let probe: BTreeSet<&'static str> = requests.into_iter().chain(listener).collect();
            let read = alibaba
                .fetch(
                    Tier::Sentinel,
                    namespace,
                    &probe,
                    alibaba.dimensions(namespace, None),
                    period,
                    range,
                )
                .await?;
            let mut instances = BTreeSet::new();
            let mut listeners = BTreeSet::new();
            for ((_, metric), points) in &read {
                for point in points {
                    if metrics::per_listener(namespace, metric) {
                        listeners.insert((point.instance.clone(), point.port.clone()));
                    } else {
                        instances.insert(point.instance.clone());
                    }
                }
            }
            let instances = instances.len() as u64;
            let listeners = if listeners.is_empty() {
                instances
            } else {
                listeners.len() as u64
            };
            fleets.insert(namespace, Fleet { instances, listeners });
        }
        Ok(fleets)
    }
}

impl Alibaba {
    /// The `Dimensions` filter: the given instances, else the configured `instance_ids`, else
    /// none (every instance in one call).
    fn dimensions(&self, namespace: AlibabaNamespace, only: Option<&[String]>) -> Option<String> {
        let ids = only.unwrap_or(&self.job.instance_ids);
        if ids.is_empty() {
            return None;
        }
        let dimension = metrics::instance_dimension(namespace);
        let list: Vec<serde_json::Value> = ids
            .iter()
            .map(|id| serde_json::json!({ dimension: id }))
            .collect();
        Some(serde_json::Value::Array(list).to_string())
    }

    /// Reads `metrics` of a namespace from `start` through the period at `end`, at `period`, one
    /// call (and its pages) per metric, and books the calls under `tier`. Any failure fails the
    /// whole read.
    async fn fetch(
        &self,
        tier: Tier,
        namespace: AlibabaNamespace,
        metrics: &BTreeSet<&'static str>,
        dimensions: Option<String>,
        period: i64,
        span: Span,
    ) -> Result<Read, String> {
        let client = self.client.as_ref().map_err(Clone::clone)?;
        // One range for every metric of the read, so the terms of a signed sum are always read
        // over the same periods; sized for the metric with the most series, and not reaching
        // back at all while one of them was never read.
        let series = metrics
            .iter()
            .map(|metric| self.series_seen.get(&(namespace, *metric)).copied())
            .collect::<Option<Vec<u64>>>()
            .and_then(|counts| counts.into_iter().max())
            .unwrap_or(0);
        let (start, end) = (span.start_for(series, period), span.end);
        let mut read = Read::new();
        for metric in metrics {
            let query = Query {
                namespace: namespace.as_str(),
                metric,
                period,
                // The API's range is `(StartTime, EndTime]`: one second earlier includes `start`.
                // It also holds the period still filling at `end` (not counted; it names the
                // instances on the first cycle).
                start: start - 1,
                end,
                dimensions: dimensions.clone(),
                instance_dimension: metrics::instance_dimension(namespace),
                statistic: metrics::statistic(namespace),
            };
            let before = self.calls.total(client::API);
            let result = client.describe_metric_list(&self.calls, &query).await;
            self.calls
                .record_tier(tier, self.calls.total(client::API) - before, 1);
            let mut points = result.map_err(|err| format!("{}/{metric}: {err}", namespace.as_str()))?;
            if !self.job.instance_ids.is_empty() {
                points.retain(|p| self.job.instance_ids.contains(&p.instance));
            }
            read.insert((namespace, *metric), points);
        }
        Ok(read)
    }

    /// Namespaces without a known instance are looked at only on the slow cadence (in `full`
    /// collection every cycle): an account with SLB alone does not pay ALB's sentinel calls.
    fn probing(&mut self, now: i64) -> BTreeSet<AlibabaNamespace> {
        let every = self.job.slow_interval.as_duration().as_secs() as i64;
        let full = self.job.collection == Collection::Full;
        let mut probing = BTreeSet::new();
        for namespace in self.job.namespaces.clone() {
            let empty = self.instances_of(namespace).is_empty();
            let due = full || self.probed.get(&namespace).is_none_or(|at| now - at >= every);
            if empty && due {
                self.probed.insert(namespace, now);
                probing.insert(namespace);
            }
        }
        probing
    }

    /// The ALB instances' server groups and the addresses of their ECS members, for the probes
    /// only: a refused or failing call keeps what the last one read (and shows in
    /// `lbtriage_inventory_call_failing`), and collection goes on.
    async fn refresh_alb_members(&mut self, albs: &[String]) {
        let Ok(client) = self.client.as_ref() else {
            return;
        };
        if albs.is_empty() {
            self.alb_groups.clear();
            return;
        }
        match inventory::alb_server_groups(client, &self.calls, albs).await {
            Ok(groups) => {
                self.calls
                    .optional_outcome(inventory::API_LIST_SERVER_GROUPS, false);
                self.calls
                    .optional_outcome(inventory::API_LIST_SERVER_GROUP_SERVERS, false);
                self.alb_groups = groups;
            }
            Err(err) => {
                let api = err.action().unwrap_or(inventory::API_LIST_SERVER_GROUPS);
                self.calls.optional_outcome(api, true);
                tracing::warn!(source = %self.source_key(), error = %err, "ALB server groups unknown: their members are not probed");
                return;
            }
        }
        let ecs = inventory::ecs_members_without_address(&self.alb_groups);
        if ecs.is_empty() {
            return;
        }
        match inventory::ecs_private_ips(client, &self.calls, &self.region, &ecs).await {
            Ok(found) => {
                self.calls
                    .optional_outcome(inventory::API_DESCRIBE_INSTANCES, false);
                self.ecs_ips = found;
            }
            Err(err) => {
                self.calls
                    .optional_outcome(inventory::API_DESCRIBE_INSTANCES, true);
                tracing::warn!(source = %self.source_key(), error = %err, "ECS members have no address for the probes");
            }
        }
    }

    /// The backend servers of SLB instances whose sentinel alarmed in the last few periods: which
    /// servers fail, while it matters, for one call per instance.
    async fn refresh_backends(&mut self, counting: &Counting<SeriesKey>, now: i64) -> Result<(), String> {
        let recent = counting.gauge_lookback(now);
        let alarmed: Vec<String> = self
            .instances_of(AlibabaNamespace::Slb)
            .into_iter()
            .filter(|id| counting.last_alarm(id).is_some_and(|at| at >= recent))
            .collect();
        self.backends.retain(|id, _| alarmed.contains(id));
        let client = self.client.as_ref().map_err(Clone::clone)?;
        for id in alarmed {
            let servers = inventory::health(client, &self.calls, &self.region, &id)
                .await
                .map_err(|err| err.to_string())?;
            self.backends.insert(id, servers);
        }
        Ok(())
    }

    /// What probes can use of each listed instance: its address, and for an SLB instance that
    /// alarmed the backend servers `DescribeHealthStatus` named.
    fn share_with_probes(&self, counting: &Counting<SeriesKey>) {
        let (Some(shared), Some((_, listed))) = (counting.discovered(), &self.inventory) else {
            return;
        };
        let facts = listed.values().map(|instance| {
            let backends = self
                .backends
                .get(&instance.id)
                .map(Vec::as_slice)
                .unwrap_or_default();
            (
                instance.id.clone(),
                inventory::facts(instance, backends, &self.alb_groups, &self.ecs_ips, &self.region),
            )
        });
        shared.replace(&self.source_key(), facts);
    }

    /// The sentinel metrics of every namespace with instances, and of the empty ones due a look.
    /// At least the newest period: the first cycle counts nothing but learns the instances.
    async fn read_sentinel(
        &mut self,
        reads: &Reads,
        window: Window,
        period: i64,
        now: i64,
    ) -> Result<Read, String> {
        self.probing = self.probing(now);
        let mut sentinel = Read::new();
        for namespace in self.job.namespaces.clone() {
            if self.instances_of(namespace).is_empty() && !self.probing.contains(&namespace) {
                continue;
            }
            let metrics = metrics::metrics_in(namespace, Tier::Sentinel);
            let dimensions = self.dimensions(namespace, None);
            let span = Span {
                start: window.start.min(window.end - period),
                end: window.end,
                settle_from: reads.settle_from,
            };
            sentinel.extend(
                self.fetch(Tier::Sentinel, namespace, &metrics, dimensions, period, span)
                    .await?,
            );
        }
        self.learn_instances(&sentinel);
        self.note_series(&sentinel);
        Ok(sentinel)
    }

    /// Detail metrics for the instances whose detail tier is awake (only those instances, in
    /// the `Dimensions` filter), and slow metrics where an instance is due or the namespace is
    /// probed; where none is due, the host counts of awake instances. Each read comes back with
    /// the period it was read at.
    async fn read_awake_and_due(
        &mut self,
        namespace: AlibabaNamespace,
        reads: &Reads,
        counting: &Counting<SeriesKey>,
        now: i64,
    ) -> Result<Vec<(Read, i64)>, String> {
        let timing = counting.timing();
        let (period, slow_period) = (counting.period(), timing.slow_period.as_secs() as i64);
        let end = counting.complete_until(now);
        let lookback = counting.gauge_lookback(now);
        let instances = self.instances_of(namespace);
        let awake: Vec<String> = instances
            .iter()
            .filter(|id| reads.awake.contains(*id))
            .cloned()
            .collect();
        // From the oldest window; back over the unsettled periods as far as is free (whole slow
        // periods for the slow tier).
        let span = |tier: Tier, floor: i64, align: i64, end: i64| Span {
            start: instances
                .iter()
                .filter_map(|id| reads.window(id, tier))
                .map(|w| w.start)
                .fold(floor, i64::min),
            end,
            settle_from: reads.settle_from.map(|from| from.div_euclid(align) * align),
        };
        let slow_due = instances.iter().any(|id| reads.window(id, Tier::Slow).is_some());
        let mut out = Vec::new();
        if !awake.is_empty() {
            let only = (timing.collection == Collection::Adaptive).then_some(awake.as_slice());
            let dimensions = self.dimensions(namespace, only);
            let metrics = metrics::metrics_in(namespace, Tier::Detail);
            let span = span(Tier::Detail, lookback, period, end);
            let read = self
                .fetch(Tier::Detail, namespace, &metrics, dimensions, period, span)
                .await?;
            if only.is_none() {
                self.note_series(&read);
            }
            out.push((read, period));
        }
        if slow_due || self.probing.contains(&namespace) {
            let dimensions = self.dimensions(namespace, None);
            let metrics = metrics::metrics_in(namespace, Tier::Slow);
            // Whole slow periods only: the newest complete one, or older where a book lags.
            let end = end.div_euclid(slow_period) * slow_period;
            let span = span(Tier::Slow, end - slow_period, slow_period, end);
            let read = self
                .fetch(Tier::Slow, namespace, &metrics, dimensions, slow_period, span)
                .await?;
            self.note_series(&read);
            out.push((read, slow_period));
        } else if !awake.is_empty() {
            let dimensions = self.dimensions(namespace, Some(&awake));
            let host_counts = metrics::metrics_in(namespace, Tier::Slow)
                .into_iter()
                .filter(|m| metrics::read_while_awake(namespace, m))
                .collect();
            let read = self
                .fetch(
                    Tier::Slow,
                    namespace,
                    &host_counts,
                    dimensions,
                    period,
                    Span::plain(lookback, end),
                )
                .await?;
            out.push((read, period));
        }
        for (read, _) in &out {
            self.learn_instances(read);
        }
        Ok(out)
    }

    /// How many series each metric of a read of the whole fleet returned.
    fn note_series(&mut self, read: &Read) {
        for (key, points) in read {
            let series: BTreeSet<(&str, &Option<String>)> =
                points.iter().map(|p| (p.instance.as_str(), &p.port)).collect();
            self.series_seen.insert(*key, series.len() as u64);
        }
    }

    /// Every instance a read named that the inventory lists (or that a namespace never listed
    /// holds). A deleted instance's metrics can outlive it.
    fn learn_instances(&mut self, read: &Read) {
        for ((namespace, _), points) in read {
            for point in points {
                let listed = self.unlisted.contains(namespace)
                    || self
                        .inventory
                        .as_ref()
                        .is_none_or(|(_, listed)| listed.contains_key(&point.instance));
                if listed {
                    self.instances.entry(point.instance.clone()).or_insert(*namespace);
                }
            }
        }
    }

    /// The series of every row whose metrics a read holds, per known instance (and listener
    /// where the row keeps them apart), in the provider's unit at the read's period.
    fn observations(&self, read: &Read, period: i64, out: &mut Vec<Observation<SeriesKey>>) {
        for (index, series) in SERIES.iter().enumerate() {
            let complete = series
                .terms
                .iter()
                .all(|(metric, _)| read.contains_key(&(series.cloud.namespace, *metric)));
            if !complete || !self.job.namespaces.contains(&series.cloud.namespace) {
                continue;
            }
            let mut per_series: BTreeMap<SeriesKey, Vec<(i64, f64)>> = BTreeMap::new();
            for ((instance, timestamp, port), value) in combine(series, read) {
                if self.instances.contains_key(&instance) {
                    per_series
                        .entry(key(&instance, index, port))
                        .or_default()
                        .push((timestamp, value));
                }
            }
            out.extend(
                per_series
                    .into_iter()
                    .map(|(key, points)| Observation::of(series, key, period, points)),
            );
        }
    }

    fn instances_of(&self, namespace: AlibabaNamespace) -> Vec<String> {
        self.instances
            .iter()
            .filter(|(_, ns)| **ns == namespace)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// `lbtriage_lb_info` with the address and tags the inventory gives, and the health of each
    /// backend server of an SLB instance that recently alarmed.
    fn render_info(&self, instance: &str, base: &Labels, out: &mut Vec<Sample>) {
        let mut info = base.clone();
        let listed = self
            .inventory
            .as_ref()
            .and_then(|(_, listed)| listed.get(instance));
        if let Some(listed) = listed {
            info.push(("address".into(), listed.address.clone()));
            push_tag_labels(&mut info, &listed.tags);
        }
        out.push(Sample::new(&families::LB_INFO, info, 1.0));
        for server in self.backends.get(instance).into_iter().flatten() {
            let mut group = base.clone();
            group.push((
                "target_group".into(),
                format!("listener:{}", server.listener_port),
            ));
            let state = if server.status == "normal" {
                "healthy"
            } else {
                "unhealthy"
            };
            out.push(target_health(&group, &server.target, state, &server.status));
        }
    }

    fn instance_labels(&self, instance: &str, namespace: AlibabaNamespace) -> Labels {
        let name = self
            .inventory
            .as_ref()
            .and_then(|(_, listed)| listed.get(instance))
            .map_or(instance, |listed| listed.name.as_str());
        Cloud::lb_labels(self, instance, name, metrics::lb_type(namespace))
    }
}

impl Cloud for Alibaba {
    type Key = SeriesKey;
    type Error = String;

    fn provider(&self) -> &'static str {
        "alibaba"
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

    /// The SLB and ALB instances when the inventory is older than `discovery_ttl`. An instance
    /// that is gone loses its series; one the inventory lists is known before its metrics. A
    /// namespace whose list call fails keeps its last listing (or, with none, the instances its
    /// metrics name): collection goes on, and `lbtriage_inventory_call_failing` shows the call.
    async fn refresh(&mut self, counting: &mut Counting<SeriesKey>, now: i64) -> Result<(), String> {
        let ttl = self.job.discovery_ttl.as_duration().as_secs() as i64;
        if self.inventory.as_ref().is_some_and(|(at, _)| now - at < ttl) {
            return Ok(());
        }
        let client = self.client.as_ref().map_err(Clone::clone)?;
        let mut listed = self
            .inventory
            .take()
            .map(|(_, listed)| listed)
            .unwrap_or_default();
        for namespace in self.job.namespaces.clone() {
            let api = inventory::list_api(namespace);
            match inventory::instances(client, &self.calls, &self.job, &self.region, namespace).await {
                Ok(found) => {
                    self.calls.optional_outcome(api, false);
                    self.unlisted.remove(&namespace);
                    listed.retain(|_, instance| instance.namespace != namespace);
                    listed.extend(found.into_iter().map(|i| (i.id.clone(), i)));
                }
                Err(err) => {
                    self.calls.optional_outcome(api, true);
                    tracing::warn!(source = %self.source_key(), api, error = %err, "inventory unavailable: collecting the instances the metrics name");
                    if !listed.values().any(|instance| instance.namespace == namespace) {
                        self.unlisted.insert(namespace);
                    }
                }
            }
        }
        // Kept: what the inventory lists, and what the metrics named in a namespace never listed.
        let kept: BTreeSet<String> = self
            .instances
            .iter()
            .filter(|(id, ns)| listed.contains_key(*id) || self.unlisted.contains(*ns))
            .map(|(id, _)| id.clone())
            .collect();
        counting.retain_lbs(|id| kept.contains(id));
        self.backends.retain(|id, _| kept.contains(id));
        self.instances.retain(|id, _| kept.contains(id));
        for (id, instance) in &listed {
            self.instances.insert(id.clone(), instance.namespace);
        }
        let albs: Vec<String> = listed
            .values()
            .filter(|i| i.namespace == AlibabaNamespace::Alb)
            .map(|i| i.id.clone())
            .collect();
        self.inventory = Some((now, listed));
        if counting.discovered().is_some_and(|d| d.wanted()) {
            self.refresh_alb_members(&albs).await;
        }
        Ok(())
    }

    fn load_balancers(&self) -> Vec<String> {
        self.instances.keys().cloned().collect()
    }

    /// The sentinel of every namespace (in `full` collection with the rest in the same read),
    /// or the detail and slow reads the windows ask for, namespace by namespace.
    async fn read(
        &mut self,
        reads: &Reads,
        counting: &Counting<SeriesKey>,
        now: i64,
    ) -> Result<Vec<Observation<SeriesKey>>, String> {
        let period = counting.period();
        let mut observations = Vec::new();
        if let Some(window) = reads.sentinel {
            let sentinel = self.read_sentinel(reads, window, period, now).await?;
            self.observations(&sentinel, period, &mut observations);
        }
        if reads.sentinel.is_none() || self.job.collection == Collection::Full {
            for namespace in self.job.namespaces.clone() {
                for (read, period) in self.read_awake_and_due(namespace, reads, counting, now).await? {
                    self.observations(&read, period, &mut observations);
                }
            }
        }
        Ok(observations)
    }

    async fn after_reads(
        &mut self,
        counting: &Counting<SeriesKey>,
        _awake: &BTreeSet<String>,
        now: i64,
    ) -> Result<(), String> {
        let result = self.refresh_backends(counting, now).await;
        self.share_with_probes(counting);
        result
    }

    fn render(&self, counting: &Counting<SeriesKey>, out: &mut Vec<Sample>) {
        for (instance, namespace) in &self.instances {
            let base = self.instance_labels(instance, *namespace);
            self.render_info(instance, &base, out);
            for (index, series) in SERIES
                .iter()
                .enumerate()
                .filter(|(_, s)| s.cloud.namespace == *namespace)
            {
                let labels = |port: Option<&String>| {
                    let mut labels = base.clone();
                    if let Some(port) = port {
                        labels.push(("target_group".into(), format!("listener:{port}")));
                    }
                    labels.extend(
                        series
                            .labels
                            .iter()
                            .map(|(k, v)| (Cow::Borrowed(*k), (*v).to_string())),
                    );
                    labels
                };
                let row = key(instance, index, None);
                if series.cloud.ports != Ports::Each {
                    if let Some(value) = counting.value(series, &row) {
                        out.push(Sample::new(series.family, labels(None), value));
                    }
                    continue;
                }
                for (key, value) in counting
                    .gauges_from(series.tier, &row)
                    .take_while(|(key, _)| key.instance == *instance && key.series == index)
                {
                    out.push(Sample::new(series.family, labels(key.port.as_ref()), value));
                }
            }
        }
    }
}

fn key(instance: &str, series: usize, port: Option<String>) -> SeriesKey {
    SeriesKey {
        instance: instance.to_string(),
        series,
        port,
    }
}

/// A series' value per (instance, period, listener): Σ sign × metric, listeners combined as the
/// series says (kept apart for `Ports::Each`). A negative sum is the engine's to handle.
fn combine(
    series: &Series,
    read: &HashMap<(AlibabaNamespace, &'static str), Vec<Datapoint>>,
) -> BTreeMap<(String, i64, Option<String>), f64> {
    let mut out: BTreeMap<(String, i64, Option<String>), f64> = BTreeMap::new();
    for (metric, sign) in series.terms {
        let Some(points) = read.get(&(series.cloud.namespace, *metric)) else {
            continue;
        };
        // Listeners of one term first: summed or maxed.
        let mut term: BTreeMap<(String, i64, Option<String>), f64> = BTreeMap::new();
        for point in points {
            let port = match series.cloud.ports {
                Ports::Each => point.port.clone(),
                Ports::Sum | Ports::Max => None,
            };
            let entry = term.entry((point.instance.clone(), point.timestamp, port));
            match series.cloud.ports {
                Ports::Max => {
                    let value = entry.or_insert(f64::MIN);
                    *value = value.max(point.value);
                }
                Ports::Sum | Ports::Each => *entry.or_insert(0.0) += point.value,
            }
        }
        for (key, value) in term {
            *out.entry(key).or_insert(0.0) += sign * value;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(instance: &str, timestamp: i64, port: Option<&str>, value: f64) -> Datapoint {
        Datapoint {
            timestamp,
            instance: instance.to_string(),
            port: port.map(str::to_string),
            value,
        }
    }

    #[test]
    /// The difference can go below zero when the two metrics were published apart; the engine
    /// counts such a period as zero (`engine::counting`'s tests).
    fn slb_lb_generated_5xx_is_status_minus_upstream() {
        let series = SERIES
            .iter()
            .find(|s| s.terms.len() == 2)
            .expect("the difference series");
        let mut read = HashMap::new();
        read.insert(
            (AlibabaNamespace::Slb, "InstanceStatusCode5xx"),
            vec![point("lb-1", 60, None, 5.0), point("lb-1", 120, None, 1.0)],
        );
        read.insert(
            (AlibabaNamespace::Slb, "InstanceUpstreamCode5xx"),
            vec![point("lb-1", 60, None, 2.0), point("lb-1", 120, None, 3.0)],
        );
        let combined = combine(series, &read);
        assert_eq!(combined.get(&("lb-1".to_string(), 60, None)), Some(&3.0));
        assert_eq!(combined.get(&("lb-1".to_string(), 120, None)), Some(&-2.0));
    }

    #[test]
    fn listeners_are_summed_maxed_or_kept_apart() {
        let find = |metric: &str| SERIES.iter().find(|s| s.terms[0].0 == metric).expect("declared");
        let mut read = HashMap::new();
        let per_port = vec![
            point("lb-1", 60, Some("80"), 2.0),
            point("lb-1", 60, Some("443"), 3.0),
        ];
        read.insert((AlibabaNamespace::Slb, "DropPacketRX"), per_port.clone());
        read.insert((AlibabaNamespace::Slb, "UpstreamRt"), per_port.clone());
        read.insert((AlibabaNamespace::Slb, "UnhealthyServerCount"), per_port);
        let at = |port: Option<&str>| ("lb-1".to_string(), 60, port.map(str::to_string));
        assert_eq!(combine(find("DropPacketRX"), &read).get(&at(None)), Some(&5.0));
        assert_eq!(combine(find("UpstreamRt"), &read).get(&at(None)), Some(&3.0));
        let each = combine(find("UnhealthyServerCount"), &read);
        assert_eq!(each.get(&at(Some("80"))), Some(&2.0));
        assert_eq!(each.get(&at(Some("443"))), Some(&3.0));
    }
}
