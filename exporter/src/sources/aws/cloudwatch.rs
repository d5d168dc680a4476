//! Building the cycle's metric queries and reading them with as few `GetMetricData` calls as
//! possible: each metric of each load balancer once, at most 500 queries per call.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat, ScanBy};
use futures_util::{stream, StreamExt, TryStreamExt};

use super::api::{call, AwsError};
use super::discovery::{Inventory, LoadBalancer};
use super::metrics::{self, CloudWatchMetric, Scope, Statistic};
use crate::config::Collection;
use crate::sources::engine::telemetry::ApiCalls;
use crate::sources::engine::tiers::Tier;

/// The GetMetricData limit on queries per call.
pub const MAX_QUERIES_PER_CALL: usize = 500;
/// GetMetricData calls of one cycle in flight at once.
const CALL_CONCURRENCY: usize = 4;
/// Guards against a response that never stops paginating.
const MAX_PAGES_PER_CALL: usize = 1000;

/// Identity of one exported series, stable across cycles.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesKey {
    pub lb: String,
    pub target_group: Option<String>,
    pub metric: &'static str,
    /// One metric can be read twice, for two statistics (TargetResponseTime: Average and Maximum).
    pub statistic: Statistic,
}

impl crate::sources::engine::SeriesKey for SeriesKey {
    fn lb(&self) -> &str {
        &self.lb
    }
}

#[derive(Debug, Clone)]
pub struct Query {
    pub key: SeriesKey,
    pub metric: &'static CloudWatchMetric,
    pub namespace: &'static str,
}

/// One query per (load balancer or target group, metric) that a cycle in this mode may read.
pub fn build_queries(inventory: &Inventory, collection: Collection) -> Vec<Query> {
    inventory
        .load_balancers
        .iter()
        .flat_map(|lb| queries_for(lb, collection))
        .collect()
}

/// The queries of one load balancer, in table order.
pub fn queries_for(lb: &LoadBalancer, collection: Collection) -> Vec<Query> {
    let (namespace, table) = metrics::for_type(lb.lb_type);
    let mut queries = Vec::new();
    for metric in table.iter().filter(|m| m.read_in(collection)) {
        let groups: Vec<Option<&str>> = match metric.cloud.scope {
            Scope::LoadBalancer => vec![None],
            Scope::TargetGroup => lb
                .target_groups
                .iter()
                .filter(|g| !g.dimension.is_empty())
                .map(|g| Some(g.dimension.as_str()))
                .collect(),
        };
        for group in groups {
            queries.push(Query {
                key: SeriesKey {
                    lb: lb.dimension.clone(),
                    target_group: group.map(str::to_string),
                    metric: metric.metric(),
                    statistic: metric.cloud.statistic,
                },
                metric,
                namespace,
            });
        }
    }
    queries
}

fn to_sdk_query(index: usize, query: &Query, period: i32) -> MetricDataQuery {
    // Classic load balancers are named by `LoadBalancerName`, the others by `LoadBalancer`.
    let lb_dimension = if query.namespace == "AWS/ELB" {
        "LoadBalancerName"
    } else {
        "LoadBalancer"
    };
    let mut dimensions = vec![Dimension::builder()
        .name(lb_dimension)
        .value(&query.key.lb)
        .build()];
    if let Some(group) = &query.key.target_group {
        dimensions.push(Dimension::builder().name("TargetGroup").value(group).build());
    }
    MetricDataQuery::builder()
        .id(format!("q{index}"))
        .metric_stat(
            MetricStat::builder()
                .metric(
                    Metric::builder()
                        .namespace(query.namespace)
                        .metric_name(query.metric.metric())
                        .set_dimensions(Some(dimensions))
                        .build(),
                )
                .period(period)
                .stat(query.metric.cloud.statistic.as_str())
                .build(),
        )
        .return_data(true)
        .build()
}

/// Datapoints per query index, `(period start in Unix seconds, value)`, oldest first.
pub type Datapoints = HashMap<usize, Vec<(i64, f64)>>;

/// Reads `[start, end)` for every query. Any failed call fails the whole read: counters are only
/// advanced when every query of the cycle was answered.
pub async fn read(
    client: &aws_sdk_cloudwatch::Client,
    calls: &ApiCalls,
    queries: &[Query],
    start: i64,
    end: i64,
    period: i32,
) -> Result<Datapoints, AwsError> {
    let batches = queries
        .chunks(MAX_QUERIES_PER_CALL)
        .enumerate()
        .map(|(batch, chunk)| {
            let offset = batch * MAX_QUERIES_PER_CALL;
            let sdk_queries = chunk
                .iter()
                .enumerate()
                .map(|(i, query)| to_sdk_query(offset + i, query, period))
                .collect::<Vec<_>>();
            let mut tiers = BTreeMap::new();
            for query in chunk {
                *tiers.entry(query.metric.tier).or_insert(0u64) += 1;
            }
            read_batch(client, calls, tiers, sdk_queries, start, end)
        })
        .collect::<Vec<_>>();
    let results = stream::iter(batches)
        .buffer_unordered(CALL_CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await?;
    let mut all = Datapoints::new();
    for batch in results {
        for (index, mut points) in batch {
            all.entry(index).or_default().append(&mut points);
        }
    }
    for points in all.values_mut() {
        points.sort_by_key(|(ts, _)| *ts);
    }
    Ok(all)
}

async fn read_batch(
    client: &aws_sdk_cloudwatch::Client,
    calls: &ApiCalls,
    tiers: BTreeMap<Tier, u64>,
    queries: Vec<MetricDataQuery>,
    start: i64,
    end: i64,
) -> Result<Datapoints, AwsError> {
    const API: &str = "GetMetricData";
    let count = queries.len();
    let mut points = Datapoints::new();
    let mut next_token: Option<String> = None;
    for _ in 0..MAX_PAGES_PER_CALL {
        let output = call(
            calls,
            API,
            client
                .get_metric_data()
                .set_metric_data_queries(Some(queries.clone()))
                .start_time(DateTime::from_secs(start))
                .end_time(DateTime::from_secs(end))
                .scan_by(ScanBy::TimestampAscending)
                .set_next_token(next_token.take())
                .send(),
        )
        .await?;
        calls.add_metrics_requested(count as u64);
        // A call serving several tiers (`full` collection) counts as a call of each.
        for (tier, metrics) in &tiers {
            calls.record_tier(*tier, 1, *metrics);
        }
        for result in output.metric_data_results() {
            let index = result
                .id()
                .and_then(|id| id.strip_prefix('q'))
                .and_then(|n| n.parse::<usize>().ok())
                .ok_or_else(|| AwsError::unexpected(API, format!("unknown query id {:?}", result.id())))?;
            let timestamps = result.timestamps();
            let values = result.values();
            if timestamps.len() != values.len() {
                return Err(AwsError::unexpected(
                    API,
                    format!(
                        "query {index}: {} timestamps for {} values",
                        timestamps.len(),
                        values.len()
                    ),
                ));
            }
            let entry = points.entry(index).or_default();
            entry.extend(timestamps.iter().map(|ts| ts.secs()).zip(values.iter().copied()));
        }
        match output.next_token() {
            Some(token) if !token.is_empty() => next_token = Some(token.to_string()),
            _ => return Ok(points),
        }
    }
    Err(AwsError::unexpected(API, "pagination did not end"))
}
