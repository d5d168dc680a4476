//! The Alibaba Cloud source: one [`AlibabaSource`] per configured job and region, reading SLB and
//! ALB metrics from CloudMonitor (`DescribeMetricList`) into the same families as AWS, so the same
//! rules fire. Instances are the ones the metrics name (CloudMonitor returns every instance of the
//! account per call), optionally narrowed to `instance_ids`. Counting follows the AWS source: each
//! period once, after `delay`; a failed cycle changes nothing and the next one reads the missed
//! periods.

pub mod client;
pub mod datapoints;
pub mod metrics;
pub mod signature;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use self::client::{AlibabaError, CmsClient, Credentials, Query, RateLimiter};
use self::datapoints::Datapoint;
use self::metrics::{Ports, Series, SERIES};
use super::period::{Counters, Ledger};
use super::telemetry::{ApiCalls, Health};
use crate::config::{AlibabaJob, AlibabaNamespace};
use crate::runtime::Clock;
use crate::store::{families, Kind, Labels, Sample};

/// Levels take the newest datapoint within this many periods.
const GAUGE_LOOKBACK_PERIODS: i64 = 5;
/// Catch-up bound per cycle after an outage (1,000 points per page at 60 s is ~16 h per instance).
const MAX_PERIODS_PER_CYCLE: u32 = 60;

pub fn source_key(job: &str, region: &str) -> String {
    format!("alibaba/{job}/{region}")
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

pub struct AlibabaSource {
    job: AlibabaJob,
    region: String,
    client: Result<CmsClient, String>,
    clock: Clock,
    calls: ApiCalls,
    ledger: Ledger,
    counters: Counters<SeriesKey>,
    gauges: BTreeMap<SeriesKey, f64>,
    /// Every instance the metrics named, with its namespace (for `lbtriage_lb_info`).
    instances: BTreeMap<String, AlibabaNamespace>,
    health: Health,
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
        let endpoint = job
            .endpoint_url
            .clone()
            .unwrap_or_else(|| default_endpoint(&region));
        let client = credentials
            .and_then(|credentials| CmsClient::new(endpoint, credentials, limiter))
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
            calls: ApiCalls::default(),
            ledger,
            counters: Counters::default(),
            gauges: BTreeMap::new(),
            instances: BTreeMap::new(),
            health: Health::default(),
        }
    }

    pub fn key(&self) -> String {
        source_key(&self.job.name, &self.region)
    }

    pub fn interval(&self) -> Duration {
        self.job.interval.as_duration()
    }

    pub fn api_calls(&self) -> &ApiCalls {
        &self.calls
    }

    pub async fn collect(&mut self) -> Vec<Sample> {
        let started = Instant::now();
        let result = self.cycle().await;
        let (key, now) = (self.key(), (self.clock)());
        self.health
            .record(&key, result, started.elapsed().as_secs_f64(), now);
        self.snapshot()
    }

    fn dimensions(&self, namespace: AlibabaNamespace) -> Option<String> {
        if self.job.instance_ids.is_empty() {
            return None;
        }
        let dimension = metrics::instance_dimension(namespace);
        let list: Vec<serde_json::Value> = self
            .job
            .instance_ids
            .iter()
            .map(|id| serde_json::json!({ dimension: id }))
            .collect();
        Some(serde_json::Value::Array(list).to_string())
    }

    async fn cycle(&mut self) -> Result<(), String> {
        let client = self.client.as_ref().map_err(Clone::clone)?;
        let now = (self.clock)();
        let window = self.ledger.pending(now);
        let period = self.ledger.period();
        let read_start = window.start.min(window.end - GAUGE_LOOKBACK_PERIODS * period);
        // Read everything first; only a cycle that read every metric changes any value.
        let mut read: HashMap<(AlibabaNamespace, &'static str), Vec<Datapoint>> = HashMap::new();
        for namespace in self.job.namespaces.clone() {
            let dimensions = self.dimensions(namespace);
            for metric in metrics::metrics(namespace) {
                let query = Query {
                    namespace: namespace.as_str(),
                    metric,
                    period,
                    // The API's range excludes its start: one second earlier includes `read_start`.
                    start: read_start - 1,
                    end: window.end,
                    dimensions: dimensions.clone(),
                    instance_dimension: metrics::instance_dimension(namespace),
                    statistic: metrics::statistic(namespace),
                };
                let mut points = client
                    .describe_metric_list(&self.calls, &query)
                    .await
                    .map_err(|err| format!("{}/{metric}: {err}", namespace.as_str()))?;
                if !self.job.instance_ids.is_empty() {
                    points.retain(|p| self.job.instance_ids.contains(&p.instance));
                }
                read.insert((namespace, metric), points);
            }
        }

        for ((namespace, _), points) in &read {
            for point in points {
                self.instances.entry(point.instance.clone()).or_insert(*namespace);
            }
        }
        let mut gauges = BTreeMap::new();
        for (index, series) in SERIES.iter().enumerate() {
            if !self.job.namespaces.contains(&series.namespace) {
                continue;
            }
            let combined = combine(series, &read);
            if series.family.kind == Kind::Counter {
                for instance in self.instances_of(series.namespace) {
                    self.counters.add(&key(&instance, index, None), 0.0);
                }
                for ((instance, timestamp, _), value) in &combined {
                    if window.contains(*timestamp) {
                        self.counters
                            .add(&key(instance, index, None), series.convert(*value, period));
                    }
                }
            } else {
                // The newest period of each series within the lookback.
                let newest = window.end - GAUGE_LOOKBACK_PERIODS * period;
                let mut latest: BTreeMap<SeriesKey, (i64, f64)> = BTreeMap::new();
                for ((instance, timestamp, port), value) in &combined {
                    if *timestamp < newest || *timestamp >= window.end {
                        continue;
                    }
                    let entry = latest
                        .entry(key(instance, index, port.clone()))
                        .or_insert((*timestamp, *value));
                    if *timestamp >= entry.0 {
                        *entry = (*timestamp, *value);
                    }
                }
                for (key, (_, value)) in latest {
                    gauges.insert(key, series.convert(value, period));
                }
            }
        }
        self.gauges = gauges;
        self.ledger.commit(window);
        Ok(())
    }

    fn instances_of(&self, namespace: AlibabaNamespace) -> Vec<String> {
        self.instances
            .iter()
            .filter(|(_, ns)| **ns == namespace)
            .map(|(id, _)| id.clone())
            .collect()
    }

    fn lb_labels(&self, instance: &str, namespace: AlibabaNamespace) -> Labels {
        vec![
            ("provider".into(), "alibaba".to_string()),
            ("region".into(), self.region.clone()),
            ("lb".into(), instance.to_string()),
            ("lb_name".into(), instance.to_string()),
            ("lb_type".into(), metrics::lb_type(namespace).to_string()),
        ]
    }

    fn snapshot(&self) -> Vec<Sample> {
        let mut out = Vec::new();
        for (instance, namespace) in &self.instances {
            let base = self.lb_labels(instance, *namespace);
            out.push(Sample::new(&families::LB_INFO, base.clone(), 1.0));
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
                for (key, value) in self.gauges.range(key(instance, index, None)..) {
                    if key.instance != *instance || key.series != index {
                        break;
                    }
                    out.push(Sample::new(series.family, labels(key.port.as_ref()), *value));
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
