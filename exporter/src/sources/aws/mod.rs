//! The AWS source: one [`AwsSource`] per configured job and region. Each cycle refreshes discovery
//! when it is older than `discovery_ttl`, reads every needed CloudWatch metric for the complete
//! periods not yet counted, and returns a full snapshot. A failed cycle changes no value: the last
//! good snapshot keeps serving with `lbtriage_source_up` at 0.

pub mod client;
pub mod cloudwatch;
pub mod discovery;
pub mod metrics;

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_cloudwatch::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_smithy_async::future::pagination_stream::PaginationStream;
use aws_smithy_runtime_api::client::result::SdkError;

use self::cloudwatch::SeriesKey;
use self::discovery::Inventory;
use super::period::{Counters, Ledger};
use super::telemetry::{ApiCalls, Health, Outcome};
use crate::config::{AwsJob, ShardAssignment};
use crate::runtime::{Clock, Discovered};
use crate::store::{families, sanitize_label_name, Kind, Labels, Sample};

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
}

impl Clients {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Clients {
            cloudwatch: aws_sdk_cloudwatch::Client::new(config),
            elbv2: aws_sdk_elasticloadbalancingv2::Client::new(config),
            elb: aws_sdk_elasticloadbalancing::Client::new(config),
            tagging: aws_sdk_resourcegroupstagging::Client::new(config),
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
    ledger: Ledger,
    counters: Counters<SeriesKey>,
    gauges: HashMap<SeriesKey, f64>,
    health: Health,
    discovered: Option<Arc<Discovered>>,
    shard: Option<ShardAssignment>,
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
            calls: ApiCalls::default(),
            inventory: None,
            ledger,
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

    /// The store key of this source.
    pub fn key(&self) -> String {
        source_key(&self.job.name, &self.region)
    }

    pub fn api_calls(&self) -> &ApiCalls {
        &self.calls
    }

    /// Runs one cycle and returns the snapshot to publish.
    pub async fn collect(&mut self) -> Vec<Sample> {
        let started = Instant::now();
        let result = self.cycle().await;
        let (key, now) = (self.key(), (self.clock)());
        self.health
            .record(&key, result, started.elapsed().as_secs_f64(), now);
        self.snapshot()
    }

    async fn cycle(&mut self) -> Result<(), AwsError> {
        let ttl = self.job.discovery_ttl.as_duration();
        let stale = self.inventory.as_ref().is_none_or(|(at, _)| at.elapsed() >= ttl);
        if stale {
            let inventory =
                discovery::discover(&self.job, &self.region, self.shard, &self.clients, &self.calls).await?;
            tracing::debug!(source = %self.key(), load_balancers = inventory.load_balancers.len(), "discovered");
            if let Some(shared) = &self.discovered {
                for lb in &inventory.load_balancers {
                    shared.update(&lb.dimension, lb.facts());
                }
            }
            self.inventory = Some((Instant::now(), inventory));
        }
        let Some((_, inventory)) = &self.inventory else {
            return Ok(());
        };
        let queries = cloudwatch::build_queries(inventory);

        let now = (self.clock)();
        let window = self.ledger.pending(now);
        let period = self.ledger.period();
        let read_start = window.start.min(window.end - GAUGE_LOOKBACK_PERIODS * period);
        let points = if queries.is_empty() {
            HashMap::new()
        } else {
            let period = i32::try_from(period).unwrap_or(i32::MAX);
            cloudwatch::read(
                &self.clients.cloudwatch,
                &self.calls,
                &queries,
                read_start,
                window.end,
                period,
            )
            .await?
        };

        // Everything answered: apply the cycle.
        let live: HashSet<&SeriesKey> = queries.iter().map(|q| &q.key).collect();
        self.counters.retain(|key| live.contains(key));
        let mut gauges = HashMap::new();
        for (index, query) in queries.iter().enumerate() {
            let series = points.get(&index).map(Vec::as_slice).unwrap_or_default();
            if query.metric.family.kind == Kind::Counter {
                self.counters.add(&query.key, 0.0);
                for (timestamp, value) in series {
                    if window.contains(*timestamp) {
                        self.counters.add(&query.key, *value);
                    }
                }
            } else if let Some((_, value)) = series.last() {
                gauges.insert(query.key.clone(), *value);
            }
        }
        self.gauges = gauges;
        self.ledger.commit(window);
        Ok(())
    }

    fn snapshot(&self) -> Vec<Sample> {
        let mut out = Vec::new();
        if let Some((_, inventory)) = &self.inventory {
            for lb in &inventory.load_balancers {
                let base = self.lb_labels(lb);
                let mut info = base.clone();
                info.push(("dns_name".into(), lb.dns_name.clone()));
                info.push(("scheme".into(), lb.scheme.clone()));
                let mut seen: BTreeSet<String> = info.iter().map(|(k, _)| k.to_string()).collect();
                for (key, value) in &lb.tags {
                    let name = format!("tag_{}", sanitize_label_name(key));
                    if seen.insert(name.clone()) {
                        info.push((Cow::Owned(name), value.clone()));
                    }
                }
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
                for query in cloudwatch::queries_for(lb) {
                    let value = if query.metric.family.kind == Kind::Counter {
                        Some(self.counters.get(&query.key))
                    } else {
                        self.gauges.get(&query.key).copied()
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

    pub fn interval(&self) -> Duration {
        self.job.interval.as_duration()
    }
}

pub fn source_key(job: &str, region: &str) -> String {
    format!("aws/{job}/{region}")
}
