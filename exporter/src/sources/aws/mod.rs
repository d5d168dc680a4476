//! The AWS source: one [`AwsSource`] per configured job and region. Each cycle refreshes discovery
//! when it is older than `discovery_ttl`, reads the CloudWatch metrics its tiers call for
//! (`sources/tiers.rs`) for the complete periods each has not yet counted, and returns a full
//! snapshot. A failed read changes no value of its tier: the last good values keep serving with
//! `lbtriage_source_up` at 0, and the next cycle reads the missed periods.

pub mod client;
pub mod cloudwatch;
pub mod discovery;
pub mod ec2;
pub mod metrics;
pub mod provider;

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_cloudwatch::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_smithy_async::future::pagination_stream::PaginationStream;
use aws_smithy_runtime_api::client::result::SdkError;

use self::cloudwatch::{Query, SeriesKey};
use self::discovery::Inventory;
pub use self::provider::PROVIDER;
use super::period::{Counters, Ledger, Window};
use super::telemetry::{ApiCalls, Health, Outcome};
use super::tiers::{read_while_awake, Book, Policy, Tier, TierSizes};
use super::Source;
use crate::config::{AwsJob, Collection, ShardAssignment};
use crate::runtime::{Clock, Discovered};
use crate::store::{families, push_tag_labels, Kind, Labels, Sample};

/// Levels (host counts, response time) take the newest datapoint within this many periods.
const GAUGE_LOOKBACK_PERIODS: i64 = 5;
/// Catch-up bound per cycle after an outage: 201 periods × 500 queries fits one call's 100,800 points.
const MAX_PERIODS_PER_CYCLE: u32 = 200;

#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    #[error("{api} failed: {message}")]
    Api { api: &'static str, message: String },
    #[error("{api} returned an unexpected response: {detail}")]
    Unexpected { api: &'static str, detail: String },
}

impl AwsError {
    fn unexpected(api: &'static str, detail: impl Into<String>) -> Self {
        AwsError::Unexpected {
            api,
            detail: detail.into(),
        }
    }
}

/// Runs one API operation and records its outcome.
async fn call<T, E, R>(
    calls: &ApiCalls,
    api: &'static str,
    operation: impl Future<Output = Result<T, SdkError<E, R>>>,
) -> Result<T, AwsError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: Debug + Send + Sync + 'static,
{
    match operation.await {
        Ok(output) => {
            calls.record(api, Outcome::Success);
            Ok(output)
        }
        Err(err) => {
            calls.record(api, Outcome::from_error_code(err.code()));
            Err(AwsError::Api {
                api,
                message: DisplayErrorContext(&err).to_string(),
            })
        }
    }
}

/// Collects every page of a paginated operation, recording each page as one call.
async fn pages<T, E, R>(
    calls: &ApiCalls,
    api: &'static str,
    mut stream: PaginationStream<Result<T, SdkError<E, R>>>,
) -> Result<Vec<T>, AwsError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: Debug + Send + Sync + 'static,
{
    let mut out = Vec::new();
    while let Some(page) = stream.next().await {
        out.push(call(calls, api, async { page }).await?);
    }
    Ok(out)
}

/// The AWS clients of one job and region.
pub struct Clients {
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub elbv2: aws_sdk_elasticloadbalancingv2::Client,
    pub elb: aws_sdk_elasticloadbalancing::Client,
    pub tagging: aws_sdk_resourcegroupstagging::Client,
    /// `None` when no HTTPS client could be built (no trusted roots): instance targets then go
    /// without addresses, and nothing else.
    pub ec2: Option<ec2::Ec2>,
}

impl Clients {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Clients {
            cloudwatch: aws_sdk_cloudwatch::Client::new(config),
            elbv2: aws_sdk_elasticloadbalancingv2::Client::new(config),
            elb: aws_sdk_elasticloadbalancing::Client::new(config),
            tagging: aws_sdk_resourcegroupstagging::Client::new(config),
            ec2: ec2::Ec2::new(config)
                .inspect_err(
                    |err| tracing::warn!(error = %err, "no EC2 client: instance targets get no address"),
                )
                .ok(),
        }
    }
}

pub struct AwsSource {
    job: AwsJob,
    region: String,
    clients: Clients,
    clock: Clock,
    calls: ApiCalls,
    inventory: Option<(Instant, Inventory)>,
    /// The sentinel's ledger, shared by every load balancer of the source.
    ledger: Ledger,
    /// The detail and slow tiers of each load balancer, by its dimension.
    books: HashMap<String, Book<SeriesKey>>,
    counters: Counters<SeriesKey>,
    /// Gauges with the period of their newest datapoint, exported while it is recent.
    gauges: HashMap<SeriesKey, (i64, f64)>,
    health: Health,
    discovered: Option<Arc<Discovered>>,
    shard: Option<ShardAssignment>,
}

/// The queries read in one call set, and the window each (load balancer, tier) counts.
#[derive(Default)]
struct Read {
    queries: Vec<Query>,
    windows: HashMap<(String, Tier), Window>,
}

impl AwsSource {
    pub fn new(job: AwsJob, region: String, clients: Clients, clock: Clock) -> Self {
        let ledger = Ledger::new(
            job.period.as_duration(),
            job.delay.as_duration(),
            MAX_PERIODS_PER_CYCLE,
        );
        AwsSource {
            job,
            region,
            clients,
            clock,
            calls: ApiCalls::with_tiers(),
            inventory: None,
            ledger,
            books: HashMap::new(),
            counters: Counters::default(),
            gauges: HashMap::new(),
            health: Health::default(),
            discovered: None,
            shard: None,
        }
    }

    /// Watches only the load balancers this shard owns.
    pub fn with_shard(mut self, shard: Option<ShardAssignment>) -> Self {
        self.shard = shard;
        self
    }

    /// Shares what discovery learns (idle timeouts, IP targets) with the probes.
    pub fn with_discovered(mut self, discovered: Arc<Discovered>) -> Self {
        self.discovered = Some(discovered);
        self
    }

    pub fn api_calls(&self) -> &ApiCalls {
        &self.calls
    }

    fn policy(&self) -> Policy {
        policy(&self.job)
    }

    async fn refresh_inventory(&mut self) -> Result<(), AwsError> {
        let ttl = self.job.discovery_ttl.as_duration();
        let stale = self.inventory.as_ref().is_none_or(|(at, _)| at.elapsed() >= ttl);
        if stale {
            let probe_facts = self.discovered.as_ref().is_some_and(|d| d.wanted());
            let inventory = discovery::discover(
                &self.job,
                &self.region,
                self.shard,
                &self.clients,
                &self.calls,
                probe_facts,
            )
            .await?;
            tracing::debug!(source = %self.key(), load_balancers = inventory.load_balancers.len(), "discovered");
            // What the inventory read anyway (idle timeout, IP targets) is shared whatever the
            // configuration: configured probes compare keep-alive with the discovered idle timeout.
            if let Some(shared) = &self.discovered {
                let instance_ips = if probe_facts {
                    discovery::instance_addresses(&inventory, &self.clients, &self.calls).await
                } else {
                    HashMap::new()
                };
                let facts = inventory
                    .load_balancers
                    .iter()
                    .map(|lb| (lb.dimension.clone(), lb.facts(&self.region, &instance_ips)));
                shared.replace(&self.key(), facts);
            }
            self.inventory = Some((Instant::now(), inventory));
        }
        Ok(())
    }

    /// One cycle: the sentinel of every load balancer, then the detail tier of those it alarmed
    /// and the slow tier where it is due. Each tier commits on its own, so a failed read is
    /// retried next cycle from its own watermark and nothing is counted twice.
    async fn read_due(&mut self) -> Result<(), AwsError> {
        self.refresh_inventory().await?;
        let Some((_, inventory)) = &self.inventory else {
            return Ok(());
        };
        let queries = cloudwatch::build_queries(inventory, self.job.collection);
        let now = (self.clock)();
        let window = self.ledger.pending(now);

        let live: HashSet<&SeriesKey> = queries.iter().map(|q| &q.key).collect();
        self.counters.retain(|key| live.contains(key));
        self.gauges.retain(|key, _| live.contains(key));
        let policy = self.policy();
        let live_lbs: HashSet<&str> = queries.iter().map(|q| q.key.lb.as_str()).collect();
        self.books.retain(|lb, _| live_lbs.contains(lb.as_str()));
        for query in &queries {
            self.books
                .entry(query.key.lb.clone())
                .or_insert_with(|| Book::new(policy, window.start));
            if query.metric.family.kind == Kind::Counter && query.metric.exported {
                self.counters.add(&query.key, 0.0);
            }
        }

        // The sentinel; in `full` collection every tier in the same calls.
        let mut first = Read {
            queries: queries
                .iter()
                .filter(|q| q.metric.tier == Tier::Sentinel)
                .cloned()
                .collect(),
            windows: self
                .books
                .keys()
                .map(|lb| ((lb.clone(), Tier::Sentinel), window))
                .collect(),
        };
        if self.job.collection == Collection::Full {
            let rest = self.plan_tiers(&queries, now);
            first.queries.extend(rest.queries);
            first.windows.extend(rest.windows);
        }
        let points = self.read(&first).await?;
        self.apply(&first, &points, now);
        self.ledger.commit(window);

        let result = match self.job.collection {
            Collection::Full => Ok(()),
            Collection::Adaptive => {
                let rest = self.plan_tiers(&queries, now);
                self.read(&rest)
                    .await
                    .map(|points| self.apply(&rest, &points, now))
            }
        };
        for book in self.books.values_mut() {
            book.release(now, &mut self.counters);
        }
        if let Some(shared) = &self.discovered {
            crate::sources::tiers::share_alarms(shared, &self.books, now);
        }
        result
    }

    /// The detail queries of load balancers whose detail tier is awake, and the slow queries of
    /// those whose slow tier is due (only the host counts where it is not, but detail is awake).
    fn plan_tiers(&mut self, queries: &[Query], now: i64) -> Read {
        let mut read = Read::default();
        // (awake, slow due) per load balancer, decided once.
        let mut reading: HashMap<&str, (bool, bool)> = HashMap::new();
        for (lb, book) in &mut self.books {
            let (awake, slow_due) = (book.detail_awake(), book.slow_due(now));
            if awake {
                let window = book.pending(Tier::Detail, now);
                read.windows.insert((lb.clone(), Tier::Detail), window);
            }
            if slow_due {
                let window = book.pending(Tier::Slow, now);
                read.windows.insert((lb.clone(), Tier::Slow), window);
            }
            reading.insert(lb.as_str(), (awake, slow_due));
        }
        read.queries = queries
            .iter()
            .filter(|q| {
                let (awake, slow_due) = reading.get(q.key.lb.as_str()).copied().unwrap_or_default();
                match q.metric.tier {
                    Tier::Sentinel => false,
                    Tier::Detail => awake,
                    Tier::Slow => slow_due || (awake && read_while_awake(q.metric.family)),
                }
            })
            .cloned()
            .collect();
        read
    }

    /// Reads the queries over the union of their windows (and the gauge lookback).
    async fn read(&self, read: &Read) -> Result<cloudwatch::Datapoints, AwsError> {
        if read.queries.is_empty() {
            return Ok(HashMap::new());
        }
        let period = self.ledger.period();
        let end = self.ledger.complete_until((self.clock)());
        let start = read
            .windows
            .values()
            .map(|w| w.start)
            .chain([end - GAUGE_LOOKBACK_PERIODS * period])
            .min()
            .unwrap_or(end);
        let end = read.windows.values().map(|w| w.end).fold(end, i64::max);
        let period = i32::try_from(period).unwrap_or(i32::MAX);
        cloudwatch::read(
            &self.clients.cloudwatch,
            &self.calls,
            &read.queries,
            start,
            end,
            period,
        )
        .await
    }

    /// Counts each query's datapoints inside its (load balancer, tier) window (slow counters are
    /// held for release), keeps the newest gauge datapoint, notes alarms, and commits the windows.
    fn apply(&mut self, read: &Read, points: &cloudwatch::Datapoints, now: i64) {
        for (index, query) in read.queries.iter().enumerate() {
            let series = points.get(&index).map(Vec::as_slice).unwrap_or_default();
            let tier = query.metric.tier;
            if query.metric.family.kind != Kind::Counter {
                if let Some(&(timestamp, value)) = series.last() {
                    let newer = self.gauges.get(&query.key).is_none_or(|(t, _)| *t <= timestamp);
                    if newer {
                        self.gauges.insert(query.key.clone(), (timestamp, value));
                    }
                }
                continue;
            }
            let lb = &query.key.lb;
            let (Some(window), Some(book)) = (read.windows.get(&(lb.clone(), tier)), self.books.get_mut(lb))
            else {
                continue;
            };
            for &(timestamp, value) in series.iter().filter(|(t, _)| window.contains(*t)) {
                if query.metric.alarm && value > 0.0 {
                    book.alarm(timestamp);
                }
                if !query.metric.exported {
                    continue;
                }
                match tier {
                    Tier::Slow => book.hold(&query.key, timestamp, value),
                    _ => self.counters.add(&query.key, value),
                }
            }
        }
        for ((lb, tier), window) in &read.windows {
            if let (Some(book), false) = (self.books.get_mut(lb), *tier == Tier::Sentinel) {
                book.commit(*tier, *window, now);
            }
        }
    }

    fn gauge_horizon(&self, tier: Tier) -> i64 {
        let lookback = GAUGE_LOOKBACK_PERIODS * self.ledger.period();
        self.policy().gauge_horizon(tier, lookback)
    }

    fn render(&self) -> Vec<Sample> {
        let mut out = Vec::new();
        let data_end = self.ledger.watermark().unwrap_or(i64::MIN);
        if let Some((_, inventory)) = &self.inventory {
            for lb in &inventory.load_balancers {
                let base = self.lb_labels(lb);
                let mut info = base.clone();
                info.push(("dns_name".into(), lb.dns_name.clone()));
                info.push(("scheme".into(), lb.scheme.clone()));
                push_tag_labels(&mut info, &lb.tags);
                out.push(Sample::new(&families::LB_INFO, info, 1.0));
                if let Some(seconds) = lb.idle_timeout_seconds {
                    out.push(Sample::new(&families::LB_IDLE_TIMEOUT, base.clone(), seconds));
                }
                for group in &lb.target_groups {
                    let mut group_labels = base.clone();
                    if !group.dimension.is_empty() {
                        group_labels.push(("target_group".into(), group.dimension.clone()));
                    }
                    out.push(Sample::new(
                        &families::LB_REGISTERED_TARGETS,
                        group_labels.clone(),
                        group.targets.len() as f64,
                    ));
                    for target in &group.targets {
                        let mut labels = group_labels.clone();
                        labels.push(("target".into(), target.target.clone()));
                        labels.push(("state".into(), target.state.clone()));
                        labels.push(("reason".into(), target.reason.clone()));
                        out.push(Sample::new(&families::LB_TARGET_HEALTH, labels, 1.0));
                    }
                }
                for query in cloudwatch::queries_for(lb, self.job.collection) {
                    if !query.metric.exported {
                        continue;
                    }
                    let value = if query.metric.family.kind == Kind::Counter {
                        Some(self.counters.get(&query.key))
                    } else {
                        let horizon = self.gauge_horizon(query.metric.tier);
                        self.gauges
                            .get(&query.key)
                            .filter(|(timestamp, _)| *timestamp >= data_end.saturating_sub(horizon))
                            .map(|(_, value)| *value)
                    };
                    let Some(value) = value else { continue };
                    let mut labels = base.clone();
                    if let Some(group) = &query.key.target_group {
                        labels.push(("target_group".into(), group.clone()));
                    }
                    for (name, value) in query.metric.labels {
                        labels.push((Cow::Borrowed(*name), (*value).to_string()));
                    }
                    out.push(Sample::new(query.metric.family, labels, value));
                }
            }
        }
        self.self_metrics(&mut out);
        out
    }

    fn lb_labels(&self, lb: &discovery::LoadBalancer) -> Labels {
        vec![
            ("provider".into(), "aws".to_string()),
            ("region".into(), self.region.clone()),
            ("lb".into(), lb.dimension.clone()),
            ("lb_name".into(), lb.name.clone()),
            ("lb_type".into(), lb.lb_type.label().to_string()),
        ]
    }

    fn self_metrics(&self, out: &mut Vec<Sample>) {
        let base: Labels = vec![
            ("provider".into(), "aws".to_string()),
            ("source".into(), self.job.name.clone()),
            ("region".into(), self.region.clone()),
        ];
        out.push(Sample::new(
            &families::CLOUDWATCH_METRICS_REQUESTED,
            base.clone(),
            self.calls.metrics_requested() as f64,
        ));
        self.health
            .samples(&base, &self.ledger, self.interval(), &self.calls, out);
    }
}

impl Source for AwsSource {
    type Error = AwsError;

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

    fn cycle(&mut self) -> impl Future<Output = Result<(), AwsError>> + Send {
        self.read_due()
    }

    fn snapshot(&self) -> Vec<Sample> {
        self.render()
    }
}

/// The tier timing of a job.
pub fn policy(job: &AwsJob) -> Policy {
    Policy {
        collection: job.collection,
        period: job.period.as_duration(),
        delay: job.delay.as_duration(),
        slow_interval: job.slow_interval.as_duration(),
        // Billed per metric, not per datapoint: the slow tier reads the job's own period.
        slow_period: job.period.as_duration(),
    }
}

/// What one load balancer's reads request per tier, from the same queries a cycle sends.
pub fn tier_sizes(lb: &discovery::LoadBalancer) -> TierSizes {
    let mut sizes = TierSizes {
        full: cloudwatch::queries_for(lb, Collection::Full).len() as u64,
        ..TierSizes::default()
    };
    for query in cloudwatch::queries_for(lb, Collection::Adaptive) {
        match query.metric.tier {
            Tier::Sentinel => sizes.sentinel += 1,
            Tier::Detail => sizes.detail += 1,
            Tier::Slow => {
                sizes.slow += 1;
                if read_while_awake(query.metric.family) {
                    sizes.slow_gauges += 1;
                }
            }
        }
    }
    sizes
}

pub fn source_key(job: &str, region: &str) -> String {
    format!("aws/{job}/{region}")
}
