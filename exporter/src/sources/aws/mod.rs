//! The AWS source: one [`AwsSource`] per configured job and region. Each cycle refreshes discovery
//! when it is older than `discovery_ttl`, reads the CloudWatch metrics its tiers call for
//! (`sources/engine/tiers.rs`) for the complete periods each has not yet counted, and returns a full
//! snapshot. A failed read changes no value of its tier: the last good values keep serving with
//! `lbtriage_source_up` at 0, and the next cycle reads the missed periods.

pub mod api;
pub mod client;
pub mod cloudwatch;
pub mod discovery;
pub mod ec2;
pub mod metrics;
pub mod plan;
pub mod provider;

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

pub use self::api::AwsError;
pub use self::client::Clients;
use self::cloudwatch::{Query, SeriesKey};
use self::discovery::Inventory;
use super::engine::telemetry::ApiCalls;
use super::engine::tiers::{read_while_awake, Tier, TierSizes, Timing};
use super::engine::{target_health, Cloud, Collector, Counting, Observation, Reads};
use crate::config::{AwsJob, Collection, ShardAssignment};
use crate::runtime::Clock;
use crate::store::{families, push_tag_labels, Labels, Sample};

/// Catch-up bound per cycle after an outage: 201 periods × 500 queries fits one call's 100,800 points.
const MAX_PERIODS_PER_CYCLE: u32 = 200;

/// The AWS part of a source: the job, the clients and the inventory.
pub struct Aws {
    job: AwsJob,
    region: String,
    clients: Clients,
    calls: ApiCalls,
    inventory: Option<(Instant, Inventory)>,
    /// Every query the inventory calls for in this collection mode, built when it is read.
    queries: Vec<Query>,
    shard: Option<ShardAssignment>,
}

/// One AWS job and region, collected by the engine.
pub type AwsSource = Collector<Aws>;

impl Collector<Aws> {
    pub fn new(job: AwsJob, region: String, clients: Clients, clock: Clock) -> Self {
        let timing = timing(&job);
        let aws = Aws {
            job,
            region,
            clients,
            calls: ApiCalls::with_tiers(),
            inventory: None,
            queries: Vec::new(),
            shard: None,
        };
        Collector::with_cloud(aws, timing, MAX_PERIODS_PER_CYCLE, clock)
    }

    /// Watches only the load balancers this shard owns.
    pub fn with_shard(mut self, shard: Option<ShardAssignment>) -> Self {
        self.cloud_mut().shard = shard;
        self
    }
}

impl Aws {
    fn render_inventory(lb: &discovery::LoadBalancer, base: &Labels, out: &mut Vec<Sample>) {
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
                out.push(target_health(
                    &group_labels,
                    &target.target,
                    &target.state,
                    &target.reason,
                ));
            }
        }
    }
}

impl Cloud for Aws {
    type Key = SeriesKey;
    type Error = AwsError;

    fn provider(&self) -> &'static str {
        "aws"
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

    /// Discovery when it is older than `discovery_ttl`, and the queries it calls for; a query no
    /// longer built (a deleted load balancer or target group) loses its series.
    async fn refresh(&mut self, counting: &mut Counting<SeriesKey>, _now: i64) -> Result<(), AwsError> {
        let ttl = self.job.discovery_ttl.as_duration();
        let stale = self.inventory.as_ref().is_none_or(|(at, _)| at.elapsed() >= ttl);
        if stale {
            let shared = counting.discovered().cloned();
            let probe_facts = shared.as_ref().is_some_and(|d| d.wanted());
            let inventory = discovery::discover(
                &self.job,
                &self.region,
                self.shard,
                &self.clients,
                &self.calls,
                probe_facts,
            )
            .await?;
            tracing::debug!(source = %self.source_key(), load_balancers = inventory.load_balancers.len(), "discovered");
            // What the inventory read anyway (idle timeout, IP targets) is shared whatever the
            // configuration: configured probes compare keep-alive with the discovered idle timeout.
            if let Some(shared) = shared {
                let instance_ips = if probe_facts {
                    discovery::instance_addresses(&inventory, &self.clients, &self.calls).await
                } else {
                    HashMap::new()
                };
                let facts = inventory
                    .load_balancers
                    .iter()
                    .map(|lb| (lb.dimension.clone(), lb.facts(&self.region, &instance_ips)));
                shared.replace(&self.source_key(), facts);
            }
            self.queries = cloudwatch::build_queries(&inventory, self.job.collection);
            self.inventory = Some((Instant::now(), inventory));
            let live: HashSet<&SeriesKey> = self.queries.iter().map(|q| &q.key).collect();
            let live_lbs: HashSet<&str> = self.queries.iter().map(|q| q.key.lb.as_str()).collect();
            counting.retain_lbs(|lb| live_lbs.contains(lb));
            counting.retain(|key| live.contains(key));
        }
        Ok(())
    }

    fn load_balancers(&self) -> Vec<String> {
        self.inventory
            .iter()
            .flat_map(|(_, inventory)| inventory.load_balancers.iter().map(|lb| lb.dimension.clone()))
            .collect()
    }

    /// The queries `reads` asks for, in as few `GetMetricData` calls as their union window
    /// (and the gauge lookback) allows: billed per metric, whatever the datapoints.
    async fn read(
        &mut self,
        reads: &Reads,
        counting: &Counting<SeriesKey>,
        now: i64,
    ) -> Result<Vec<Observation<SeriesKey>>, AwsError> {
        let queries: Vec<Query> = self
            .queries
            .iter()
            .filter(|q| reads.reads(&q.key.lb, q.metric.tier, q.metric.family))
            .cloned()
            .collect();
        if queries.is_empty() {
            return Ok(Vec::new());
        }
        let period = counting.period();
        let end = counting.complete_until(now);
        let start = reads.start(&Tier::ALL, counting.gauge_lookback(now));
        let end = reads.end(&Tier::ALL, end);
        let mut points = cloudwatch::read(
            &self.clients.cloudwatch,
            &self.calls,
            &queries,
            start,
            end,
            i32::try_from(period).unwrap_or(i32::MAX),
        )
        .await?;
        Ok(queries
            .into_iter()
            .enumerate()
            .map(|(index, query)| {
                let series = points.remove(&index).unwrap_or_default();
                Observation::of(query.metric, query.key, period, series)
            })
            .collect())
    }

    fn render(&self, counting: &Counting<SeriesKey>, out: &mut Vec<Sample>) {
        let Some((_, inventory)) = &self.inventory else {
            return;
        };
        for lb in &inventory.load_balancers {
            let base = self.lb_labels(&lb.dimension, &lb.name, lb.lb_type.label());
            Self::render_inventory(lb, &base, out);
            for query in cloudwatch::queries_for(lb, self.job.collection) {
                if !query.metric.exported {
                    continue;
                }
                let Some(value) = counting.value(query.metric, &query.key) else {
                    continue;
                };
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
        out.push(Sample::new(
            &families::CLOUDWATCH_METRICS_REQUESTED,
            self.self_labels(),
            self.calls.metrics_requested() as f64,
        ));
    }
}

/// The tier timing of a job.
pub fn timing(job: &AwsJob) -> Timing {
    Timing {
        collection: job.collection,
        period: job.period.as_duration(),
        delay: job.delay.as_duration(),
        slow_interval: job.slow_interval.as_duration(),
        // Billed per metric, not per datapoint: the slow tier reads the job's own period.
        slow_period: job.period.as_duration(),
        settle: job.settle.as_duration(),
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
    super::engine::source_key("aws", job, region)
}
