//! The Alibaba Cloud source: one [`AlibabaSource`] per configured job and region, reading SLB and
//! ALB metrics from CloudMonitor (`DescribeMetricList`) into the same families as AWS, so the same
//! rules fire. Instances are the ones the SLB and ALB APIs list (`inventory.rs`, every
//! `discovery_ttl`: names, addresses, tags; a deleted instance disappears), optionally narrowed to
//! `instance_ids`; CloudMonitor returns every instance of the account per call, and a datapoint of
//! an instance the inventory does not list is ignored. Counting follows the AWS source: each
//! period once, after `delay`, in tiers (`sources/tiers.rs`); a failed read changes nothing of its
//! tier and the next cycle reads the missed periods.

pub mod client;
pub mod datapoints;
pub mod inventory;
pub mod metrics;
pub mod provider;
pub mod signature;

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use self::client::{AlibabaError, CmsClient, Credentials, Query};
use self::datapoints::Datapoint;
use self::metrics::{Ports, Series, SERIES};
pub use self::provider::PROVIDER;
use super::api::RateLimiter;
use super::period::{Counters, Ledger, Window};
use super::telemetry::{ApiCalls, Health};
use super::tiers::{Book, Policy, Tier};
use super::Source;
use crate::config::{AlibabaJob, AlibabaNamespace, Collection};
use crate::runtime::{Clock, Discovered};
use crate::store::{families, push_tag_labels, Kind, Labels, Sample};

/// Levels take the newest datapoint within this many periods.
const GAUGE_LOOKBACK_PERIODS: i64 = 5;
/// Catch-up bound per cycle after an outage (1,000 points per page at 60 s is ~16 h per instance).
const MAX_PERIODS_PER_CYCLE: u32 = 60;

pub fn source_key(job: &str, region: &str) -> String {
    format!("alibaba/{job}/{region}")
}

/// The tier timing of a job. CloudMonitor answers at most 1,000 datapoints per call, so a slow
/// read of 15 one-minute periods of 500 instances would take 8 calls per metric: the slow tier
/// reads 300 s periods instead (one of the documented 60/300/900), once `slow_interval` allows.
pub fn policy(job: &AlibabaJob) -> Policy {
    let period = job.period.as_duration();
    let coarse = Duration::from_secs(300);
    let slow_interval = job.slow_interval.as_duration();
    let slow_period = if slow_interval >= coarse && period <= coarse && job.collection == Collection::Adaptive
    {
        coarse
    } else {
        period
    };
    Policy {
        collection: job.collection,
        period,
        delay: job.delay.as_duration(),
        slow_interval,
        slow_period,
    }
}

pub fn default_endpoint(region: &str) -> String {
    format!("https://metrics.{region}.aliyuncs.com")
}

/// One series of one instance: the table row, and the listener for per-listener series.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct SeriesKey {
    instance: String,
    series: usize,
    port: Option<String>,
}

/// What one call set returned: datapoints per (namespace, metric).
type Read = HashMap<(AlibabaNamespace, &'static str), Vec<Datapoint>>;

pub struct AlibabaSource {
    job: AlibabaJob,
    region: String,
    client: Result<CmsClient, String>,
    clock: Clock,
    calls: ApiCalls,
    /// The sentinel's ledger, shared by every instance of the source.
    ledger: Ledger,
    /// The detail and slow tiers of each instance.
    books: HashMap<String, Book<SeriesKey>>,
    counters: Counters<SeriesKey>,
    /// Gauges with the period of their newest datapoint, exported while it is recent.
    gauges: BTreeMap<SeriesKey, (i64, f64)>,
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
    /// Namespaces whose list call has never succeeded (refused, not offered in the region): their
    /// instances are the ones the metrics name, without names and tags.
    unlisted: BTreeSet<AlibabaNamespace>,
    health: Health,
    discovered: Option<Arc<Discovered>>,
}

impl AlibabaSource {
    /// A source whose credentials or client could not be set up still runs: it reports itself
    /// down with the reason on every cycle, as any other failure.
    pub fn new(job: AlibabaJob, region: String, limiter: Arc<RateLimiter>, clock: Clock) -> Self {
        let credentials = Credentials::resolve(job.credentials_file.as_deref(), &job.credentials_profile);
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
        let ledger = Ledger::new(
            job.period.as_duration(),
            job.delay.as_duration(),
            MAX_PERIODS_PER_CYCLE,
        );
        AlibabaSource {
            job,
            region,
            client,
            clock,
            calls: ApiCalls::with_tiers(),
            ledger,
            books: HashMap::new(),
            counters: Counters::default(),
            gauges: BTreeMap::new(),
            instances: BTreeMap::new(),
            inventory: None,
            backends: BTreeMap::new(),
            alb_groups: Vec::new(),
            ecs_ips: HashMap::new(),
            probed: BTreeMap::new(),
            unlisted: BTreeSet::new(),
            health: Health::default(),
            discovered: None,
        }
    }

    /// Shares what the inventory learns (addresses, backend servers) and the alarms with the probes.
    pub fn with_discovered(mut self, discovered: Arc<Discovered>) -> Self {
        self.discovered = Some(discovered);
        self
    }

    pub fn api_calls(&self) -> &ApiCalls {
        &self.calls
    }

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

    fn policy(&self) -> Policy {
        policy(&self.job)
    }

    /// Reads `metrics` of a namespace from `start` through the period at `end`, at `period`, one
    /// call (and its pages) per metric, and books the calls under `tier`. Any failure fails the
    /// whole read.
    async fn read(
        &self,
        tier: Tier,
        namespace: AlibabaNamespace,
        metrics: &BTreeSet<&'static str>,
        dimensions: Option<String>,
        period: i64,
        (start, end): (i64, i64),
    ) -> Result<Read, String> {
        let client = self.client.as_ref().map_err(Clone::clone)?;
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

    /// The SLB and ALB instances when the inventory is older than `discovery_ttl`. An instance
    /// that is gone loses its series; one the inventory lists is known before its metrics. A
    /// namespace whose list call fails keeps its last listing (or, with none, the instances its
    /// metrics name): collection goes on, and `lbtriage_inventory_call_failing` shows the call.
    async fn refresh_inventory(&mut self, now: i64) -> Result<(), String> {
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
                    tracing::warn!(source = %self.key(), api, error = %err, "inventory unavailable: collecting the instances the metrics name");
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
        self.books.retain(|id, _| kept.contains(id));
        self.backends.retain(|id, _| kept.contains(id));
        self.counters.retain(|key| kept.contains(&key.instance));
        self.gauges.retain(|key, _| kept.contains(&key.instance));
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
        if self.discovered.as_ref().is_some_and(|d| d.wanted()) {
            self.refresh_alb_members(&albs).await;
        }
        Ok(())
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
                tracing::warn!(source = %self.key(), error = %err, "ALB server groups unknown: their members are not probed");
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
                tracing::warn!(source = %self.key(), error = %err, "ECS members have no address for the probes");
            }
        }
    }

    /// The backend servers of SLB instances whose sentinel alarmed in the last few periods: which
    /// servers fail, while it matters, for one call per instance.
    async fn refresh_backends(&mut self, now: i64) -> Result<(), String> {
        let recent = self.ledger.complete_until(now) - GAUGE_LOOKBACK_PERIODS * self.ledger.period();
        let alarmed: Vec<String> = self
            .instances_of(AlibabaNamespace::Slb)
            .into_iter()
            .filter(|id| {
                self.books
                    .get(id)
                    .and_then(Book::last_alarm)
                    .is_some_and(|at| at >= recent)
            })
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

    /// One cycle: the sentinel metrics of every instance, then the detail metrics of instances it
    /// alarmed and the slow metrics where they are due; each tier commits on its own.
    async fn read_due(&mut self) -> Result<(), String> {
        let now = (self.clock)();
        self.refresh_inventory(now).await?;
        let window = self.ledger.pending(now);
        let probing = self.probing(now);
        let mut sentinel = Read::new();
        for namespace in self.job.namespaces.clone() {
            if self.instances_of(namespace).is_empty() && !probing.contains(&namespace) {
                continue;
            }
            let metrics = metrics::metrics_in(namespace, Tier::Sentinel);
            let dimensions = self.dimensions(namespace, None);
            // At least the newest period: the first cycle counts nothing but learns the instances.
            let period = self.ledger.period();
            let range = (window.start.min(window.end - period), window.end);
            sentinel.extend(
                self.read(Tier::Sentinel, namespace, &metrics, dimensions, period, range)
                    .await?,
            );
        }
        self.learn_instances(&sentinel, window.start);
        let windows = self
            .instances
            .keys()
            .map(|id| ((id.clone(), Tier::Sentinel), window))
            .collect();
        self.apply(&sentinel, &windows, self.ledger.period(), now);
        self.ledger.commit(window);

        let mut result = Ok(());
        for namespace in self.job.namespaces.clone() {
            result = result.and(
                self.read_awake_and_due(namespace, probing.contains(&namespace), now, window.start)
                    .await,
            );
        }
        for book in self.books.values_mut() {
            book.release(now, &mut self.counters);
        }
        let result = result.and(self.refresh_backends(now).await);
        self.share_with_probes(now);
        result
    }

    /// What probes can use of each listed instance (its address, and for an SLB instance that
    /// alarmed the backend servers `DescribeHealthStatus` named), and which instances alarmed.
    fn share_with_probes(&self, now: i64) {
        let (Some(shared), Some((_, listed))) = (&self.discovered, &self.inventory) else {
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
        shared.replace(&self.key(), facts);
        crate::sources::tiers::share_alarms(shared, &self.books, now);
    }

    /// Detail metrics for the instances whose detail tier is awake (only those instances, in
    /// the `Dimensions` filter), and slow metrics where an instance is due or the namespace is
    /// probed; where none is due, the host counts of awake instances.
    async fn read_awake_and_due(
        &mut self,
        namespace: AlibabaNamespace,
        probing: bool,
        now: i64,
        first: i64,
    ) -> Result<(), String> {
        let policy = self.policy();
        let (period, slow_period) = (self.ledger.period(), policy.slow_period.as_secs() as i64);
        let end = self.ledger.complete_until(now);
        let lookback = end - GAUGE_LOOKBACK_PERIODS * period;
        let mut windows: HashMap<(String, Tier), Window> = HashMap::new();
        let mut awake = Vec::new();
        let mut due = probing;
        for id in self.instances_of(namespace) {
            let Some(book) = self.books.get_mut(&id) else {
                continue;
            };
            if book.detail_awake() {
                windows.insert((id.clone(), Tier::Detail), book.pending(Tier::Detail, now));
                awake.push(id.clone());
            }
            if book.slow_due(now) {
                windows.insert((id.clone(), Tier::Slow), book.pending(Tier::Slow, now));
                due = true;
            }
        }
        let of = |tier: Tier| -> HashMap<(String, Tier), Window> {
            windows
                .iter()
                .filter(|((_, t), _)| *t == tier)
                .map(|(k, w)| (k.clone(), *w))
                .collect()
        };
        let (detail_windows, slow_windows) = (of(Tier::Detail), of(Tier::Slow));
        let start = |windows: &HashMap<(String, Tier), Window>, floor: i64| {
            windows.values().map(|w| w.start).fold(floor, i64::min)
        };
        if !awake.is_empty() {
            let only = (policy.collection == Collection::Adaptive).then_some(awake.as_slice());
            let dimensions = self.dimensions(namespace, only);
            let metrics = metrics::metrics_in(namespace, Tier::Detail);
            let range = (start(&detail_windows, lookback), end);
            let read = self
                .read(Tier::Detail, namespace, &metrics, dimensions, period, range)
                .await?;
            self.learn_instances(&read, first);
            self.apply(&read, &detail_windows, period, now);
        }
        if due {
            let dimensions = self.dimensions(namespace, None);
            let metrics = metrics::metrics_in(namespace, Tier::Slow);
            // Whole slow periods only: the newest complete one, or older where a book lags.
            let end = self.ledger.complete_until(now).div_euclid(slow_period) * slow_period;
            let range = (start(&slow_windows, end - slow_period), end);
            let read = self
                .read(Tier::Slow, namespace, &metrics, dimensions, slow_period, range)
                .await?;
            self.learn_instances(&read, first);
            self.apply(&read, &slow_windows, slow_period, now);
        } else if !awake.is_empty() {
            let dimensions = self.dimensions(namespace, Some(&awake));
            let host_counts = metrics::metrics_in(namespace, Tier::Slow)
                .into_iter()
                .filter(|m| metrics::read_while_awake(namespace, m))
                .collect();
            let read = self
                .read(
                    Tier::Slow,
                    namespace,
                    &host_counts,
                    dimensions,
                    period,
                    (lookback, end),
                )
                .await?;
            self.apply(&read, &HashMap::new(), period, now);
        }
        Ok(())
    }

    /// Every instance a read named that the inventory lists; a new one's tiers count from the
    /// sentinel's window start. (A deleted instance's metrics can outlive it.)
    fn learn_instances(&mut self, read: &Read, first: i64) {
        let policy = self.policy();
        for ((namespace, _), points) in read {
            for point in points {
                let listed = self.unlisted.contains(namespace)
                    || self
                        .inventory
                        .as_ref()
                        .is_none_or(|(_, listed)| listed.contains_key(&point.instance));
                if !listed {
                    continue;
                }
                self.instances.entry(point.instance.clone()).or_insert(*namespace);
                self.books
                    .entry(point.instance.clone())
                    .or_insert_with(|| Book::new(policy, first));
            }
        }
    }

    /// Counts each series whose metrics this read holds, inside its (instance, tier) window (slow
    /// counters are held for release), keeps the newest gauge datapoint, notes alarms, and commits
    /// the windows.
    fn apply(&mut self, read: &Read, windows: &HashMap<(String, Tier), Window>, period: i64, now: i64) {
        let lookback =
            self.ledger.complete_until(now) - GAUGE_LOOKBACK_PERIODS * self.ledger.period() - period;
        for (index, series) in SERIES.iter().enumerate() {
            let complete = series
                .terms
                .iter()
                .all(|(metric, _)| read.contains_key(&(series.namespace, *metric)));
            if !complete || !self.job.namespaces.contains(&series.namespace) {
                continue;
            }
            let combined = combine(series, read);
            if series.family.kind != Kind::Counter {
                for ((instance, timestamp, port), value) in &combined {
                    if *timestamp < lookback {
                        continue;
                    }
                    let key = key(instance, index, port.clone());
                    if self.gauges.get(&key).is_none_or(|(t, _)| t <= timestamp) {
                        self.gauges
                            .insert(key, (*timestamp, series.convert(*value, period)));
                    }
                }
                continue;
            }
            for ((instance, timestamp, _), value) in &combined {
                let window = windows.get(&(instance.clone(), series.tier));
                let (Some(window), Some(book)) = (window, self.books.get_mut(instance)) else {
                    continue;
                };
                if !window.contains(*timestamp) {
                    continue;
                }
                let value = series.convert(*value, period);
                if series.alarm && value > 0.0 {
                    book.alarm(*timestamp);
                }
                match series.tier {
                    Tier::Slow => book.hold(&key(instance, index, None), *timestamp, value),
                    _ => self.counters.add(&key(instance, index, None), value),
                }
            }
        }
        for ((instance, tier), window) in windows {
            if let (Some(book), false) = (self.books.get_mut(instance), *tier == Tier::Sentinel) {
                book.commit(*tier, *window, now);
            }
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
            let mut labels = base.clone();
            labels.push((
                "target_group".into(),
                format!("listener:{}", server.listener_port),
            ));
            labels.push(("target".into(), server.target.clone()));
            let state = if server.status == "normal" {
                "healthy"
            } else {
                "unhealthy"
            };
            labels.push(("state".into(), state.to_string()));
            labels.push(("reason".into(), server.status.clone()));
            out.push(Sample::new(&families::LB_TARGET_HEALTH, labels, 1.0));
        }
    }

    fn lb_labels(&self, instance: &str, namespace: AlibabaNamespace) -> Labels {
        let name = self
            .inventory
            .as_ref()
            .and_then(|(_, listed)| listed.get(instance))
            .map_or(instance, |listed| listed.name.as_str());
        vec![
            ("provider".into(), "alibaba".to_string()),
            ("region".into(), self.region.clone()),
            ("lb".into(), instance.to_string()),
            ("lb_name".into(), name.to_string()),
            ("lb_type".into(), metrics::lb_type(namespace).to_string()),
        ]
    }

    fn gauge_horizon(&self, tier: Tier) -> i64 {
        let lookback = GAUGE_LOOKBACK_PERIODS * self.ledger.period();
        self.policy().gauge_horizon(tier, lookback)
    }

    fn render(&self) -> Vec<Sample> {
        let mut out = Vec::new();
        let data_end = self.ledger.watermark().unwrap_or(i64::MIN);
        for (instance, namespace) in &self.instances {
            let base = self.lb_labels(instance, *namespace);
            self.render_info(instance, &base, &mut out);
            for (index, series) in SERIES
                .iter()
                .enumerate()
                .filter(|(_, s)| s.namespace == *namespace)
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
                if series.family.kind == Kind::Counter {
                    let value = self.counters.get(&key(instance, index, None));
                    out.push(Sample::new(series.family, labels(None), value));
                    continue;
                }
                let oldest = data_end.saturating_sub(self.gauge_horizon(series.tier));
                for (key, (timestamp, value)) in self.gauges.range(key(instance, index, None)..) {
                    if key.instance != *instance || key.series != index {
                        break;
                    }
                    if *timestamp >= oldest {
                        out.push(Sample::new(series.family, labels(key.port.as_ref()), *value));
                    }
                }
            }
        }
        let base: Labels = vec![
            ("provider".into(), "alibaba".to_string()),
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
}

impl Source for AlibabaSource {
    type Error = String;

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

    fn cycle(&mut self) -> impl std::future::Future<Output = Result<(), String>> + Send {
        self.read_due()
    }

    fn snapshot(&self) -> Vec<Sample> {
        self.render()
    }
}

/// What one namespace of a region holds, as `lbtriage plan` finds it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Fleet {
    pub instances: u64,
    /// (instance, listener) pairs: per-listener metrics return one datapoint per listener.
    pub listeners: u64,
}

/// `DescribeMetricList` calls per read of each tier for one namespace, pages included.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CallsPerRead {
    /// Every cycle (0 for a namespace without instances: it is probed on the slow cadence).
    pub sentinel: f64,
    /// Every `slow_interval` (for an empty namespace: its sentinel and slow metrics, once).
    pub slow: f64,
    /// Every cycle in which an instance of the namespace errs: detail and host counts.
    pub awake: f64,
    /// Every cycle in `full` collection.
    pub full: f64,
}

/// The documented page size of `DescribeMetricList`.
const POINTS_PER_PAGE: u64 = 1000;

/// The calls a job's reads take for a namespace holding `fleet`: one per metric and page.
pub fn calls_per_read(job: &AlibabaJob, namespace: AlibabaNamespace, fleet: Fleet) -> CallsPerRead {
    let policy = policy(job);
    let period = policy.period.as_secs().max(1);
    let per_cycle = job.interval.as_duration().as_secs().div_ceil(period).max(1);
    let per_slow_read = (policy.slow_interval.as_secs() / policy.slow_period.as_secs().max(1)).max(1);
    let pages = |tier: Tier, periods: u64| -> f64 {
        metrics::metrics_in(namespace, tier)
            .iter()
            .map(|metric| {
                let series = if metrics::per_listener(namespace, metric) {
                    fleet.listeners
                } else {
                    fleet.instances
                };
                // `(start, end]` holds the period at `end` too.
                (series * (periods + 1)).div_ceil(POINTS_PER_PAGE).max(1) as f64
            })
            .sum()
    };
    let names = |tier: Tier| metrics::metrics_in(namespace, tier).len() as f64;
    let host_counts = metrics::metrics_in(namespace, Tier::Slow)
        .iter()
        .filter(|m| metrics::read_while_awake(namespace, m))
        .count() as f64;
    // In `full`, the detail tier's gauges are read over the gauge lookback every cycle.
    let full = pages(Tier::Sentinel, per_cycle)
        + pages(Tier::Detail, GAUGE_LOOKBACK_PERIODS as u64)
        + pages(Tier::Slow, per_cycle);
    if fleet.instances == 0 {
        return CallsPerRead {
            sentinel: 0.0,
            slow: names(Tier::Sentinel) + names(Tier::Slow),
            awake: 0.0,
            full,
        };
    }
    CallsPerRead {
        sentinel: pages(Tier::Sentinel, per_cycle),
        slow: pages(Tier::Slow, per_slow_read),
        awake: names(Tier::Detail) + host_counts,
        full,
    }
}

impl AlibabaSource {
    /// Instances and listeners per configured namespace, from the last five periods of a
    /// request metric and a per-listener metric (read-only calls).
    /// The calls one refresh of the inventory makes (`lbtriage plan`): the instance listings, and
    /// with `probe_facts` the ALB server groups, their members and the ECS members' addresses.
    /// DescribeHealthStatus is left out: it is read only for instances whose 5xx alarmed.
    pub async fn inventory_calls(&self, probe_facts: bool) -> Result<BTreeMap<&'static str, u64>, String> {
        let client = self.client.as_ref().map_err(Clone::clone)?;
        let calls = ApiCalls::default();
        let mut albs = Vec::new();
        for namespace in self.job.namespaces.clone() {
            let listed = inventory::instances(client, &calls, &self.job, &self.region, namespace)
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
                inventory::ecs_private_ips(client, &calls, &self.region, &ecs)
                    .await
                    .map_err(|err| err.to_string())?;
            }
        }
        Ok(calls.totals())
    }

    pub async fn survey(&self, now: i64) -> Result<BTreeMap<AlibabaNamespace, Fleet>, String> {
        let period = self.ledger.period();
        let end = self.ledger.complete_until(now);
        let range = (end - GAUGE_LOOKBACK_PERIODS * period, end);
        let mut fleets = BTreeMap::new();
        for namespace in self.job.namespaces.clone() {
            let requests = SERIES
                .iter()
                .find(|s| s.namespace == namespace && std::ptr::eq(s.family, &families::LB_REQUESTS))
                .map(|s| s.terms[0].0);
            let listener = metrics::metrics(namespace)
                .into_iter()
                .find(|m| metrics::per_listener(namespace, m));
            let probe: BTreeSet<&'static str> = requests.into_iter().chain(listener).collect();
            let read = self
                .read(
                    Tier::Sentinel,
                    namespace,
                    &probe,
                    self.dimensions(namespace, None),
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

fn key(instance: &str, series: usize, port: Option<String>) -> SeriesKey {
    SeriesKey {
        instance: instance.to_string(),
        series,
        port,
    }
}

/// A series' value per (instance, period, listener): Σ sign × metric, listeners combined as the
/// series says (kept apart for `Ports::Each`). A sum never goes below zero.
fn combine(
    series: &Series,
    read: &HashMap<(AlibabaNamespace, &'static str), Vec<Datapoint>>,
) -> BTreeMap<(String, i64, Option<String>), f64> {
    let mut out: BTreeMap<(String, i64, Option<String>), f64> = BTreeMap::new();
    for (metric, sign) in series.terms {
        let Some(points) = read.get(&(series.namespace, *metric)) else {
            continue;
        };
        // Listeners of one term first: summed or maxed.
        let mut term: BTreeMap<(String, i64, Option<String>), f64> = BTreeMap::new();
        for point in points {
            let port = match series.ports {
                Ports::Each => point.port.clone(),
                Ports::Sum | Ports::Max => None,
            };
            let entry = term.entry((point.instance.clone(), point.timestamp, port));
            match series.ports {
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
    for value in out.values_mut() {
        *value = value.max(0.0);
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
    fn slb_lb_generated_5xx_is_status_minus_upstream_and_never_negative() {
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
        assert_eq!(combined.get(&("lb-1".to_string(), 120, None)), Some(&0.0));
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
