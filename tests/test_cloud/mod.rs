//! A minimal cloud, to prove the collection engine's seam: everything a cloud must bring is here
//! (its double, its metric table, its reads, its inventory and its registry row), and it passes
//! the same compliance suite as AWS, Alibaba Cloud and Tencent Cloud (`tests/compliance/`).

pub mod double;
pub mod provider;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use lbtriage::runtime::Clock;
use lbtriage::sources::engine::series::{PublishedUnit, Series};
use lbtriage::sources::engine::telemetry::{ApiCalls, Outcome};
use lbtriage::sources::engine::tiers::{Tier, Timing};
use lbtriage::sources::engine::{Cloud, Collector, Counting, Observation, Reads};
use lbtriage::store::{families as f, Sample};

use self::double::Double;

/// The one metric-reading API of the test cloud.
pub const API: &str = "GetPoints";

/// Requests every cycle; backend 5xx every cycle, as the alarm; connection errors only while it
/// alarms (the detail tier, back-filled from its watermark).
pub static SERIES: [Series<()>; 3] = [
    Series::new(
        &f::LB_REQUESTS,
        &[],
        &[("Requests", 1.0)],
        PublishedUnit::Base,
        (),
    )
    .sentinel(),
    Series::new(
        &f::LB_RESPONSES,
        &[("origin", "backend"), ("code", "5xx")],
        &[("Backend5xx", 1.0)],
        PublishedUnit::Base,
        (),
    )
    .alarm(),
    Series::new(
        &f::LB_TARGET_CONNECTION_ERRORS,
        &[],
        &[("ConnectionErrors", 1.0)],
        PublishedUnit::Base,
        (),
    ),
];

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    lb: String,
    row: usize,
}

impl lbtriage::sources::engine::SeriesKey for Key {
    fn lb(&self) -> &str {
        &self.lb
    }
}

pub struct TestCloud {
    double: Arc<Double>,
    secret: String,
    calls: ApiCalls,
    lbs: Vec<String>,
    collection: lbtriage::config::Collection,
}

/// A source of the test cloud: 60 s periods, counted `delay` seconds after they end and re-read
/// for `settle` seconds more, tiers as configured.
pub fn source(
    double: Arc<Double>,
    secret: &str,
    collection: lbtriage::config::Collection,
    delay: u64,
    settle: u64,
    clock: Clock,
) -> Collector<TestCloud> {
    let timing = Timing {
        collection,
        period: Duration::from_secs(60),
        delay: Duration::from_secs(delay),
        slow_interval: Duration::from_secs(900),
        slow_period: Duration::from_secs(60),
        settle: Duration::from_secs(settle),
    };
    let cloud = TestCloud {
        double,
        secret: secret.to_string(),
        calls: ApiCalls::with_tiers(),
        lbs: Vec::new(),
        collection,
    };
    Collector::with_cloud(cloud, timing, 60, clock)
}

impl TestCloud {
    /// A call with three attempts, as a provider's client retries throttling.
    fn call<T>(
        &self,
        api: &'static str,
        mut attempt: impl FnMut() -> Result<T, String>,
    ) -> Result<T, String> {
        let mut last = String::new();
        for _ in 0..3 {
            match attempt() {
                Ok(value) => {
                    self.calls.record(api, Outcome::Success);
                    return Ok(value);
                }
                Err(err) => {
                    self.calls.record(api, Outcome::Throttled);
                    last = err;
                }
            }
        }
        Err(format!("{api} failed: {last}"))
    }
}

impl Cloud for TestCloud {
    type Key = Key;
    type Error = String;

    fn provider(&self) -> &'static str {
        provider::ROW.name
    }

    fn job_name(&self) -> &str {
        "test"
    }

    fn region(&self) -> &str {
        "test-region-1"
    }

    fn interval(&self) -> Duration {
        Duration::from_secs(60)
    }

    fn calls(&self) -> &ApiCalls {
        &self.calls
    }

    async fn refresh(&mut self, counting: &mut Counting<Key>, _now: i64) -> Result<(), String> {
        let lbs = self.call("ListLoadBalancers", || self.double.list(&self.secret))?;
        counting.retain_lbs(|lb| lbs.iter().any(|known| known == lb));
        self.lbs = lbs;
        Ok(())
    }

    fn load_balancers(&self) -> Vec<String> {
        self.lbs.clone()
    }

    async fn read(
        &mut self,
        reads: &Reads,
        counting: &Counting<Key>,
        now: i64,
    ) -> Result<Vec<Observation<Key>>, String> {
        if reads.nothing_new() {
            return Ok(Vec::new());
        }
        let (start, end) = (
            reads.start(&Tier::ALL, counting.gauge_lookback(now)),
            reads.end(&Tier::ALL, counting.complete_until(now)),
        );
        let mut observations = Vec::new();
        for (row, series) in SERIES.iter().enumerate() {
            if !series.read_in(self.collection) {
                continue;
            }
            let lbs: Vec<String> = self
                .lbs
                .iter()
                .filter(|lb| reads.reads(lb, series.tier, series.family))
                .cloned()
                .collect();
            if lbs.is_empty() {
                continue;
            }
            let metric = series.metric();
            let points = self.call(API, || self.double.points(&self.secret, metric, &lbs, start, end));
            self.calls.record_tier(series.tier, 1, lbs.len() as u64);
            let points = points?;
            for lb in lbs {
                let key = Key { lb: lb.clone(), row };
                let series_points = points.get(&lb).cloned().unwrap_or_default();
                observations.push(Observation::of(series, key, counting.period(), series_points));
            }
        }
        Ok(observations)
    }

    fn render(&self, counting: &Counting<Key>, out: &mut Vec<Sample>) {
        for lb in &self.lbs {
            let base = self.lb_labels(lb, lb, "test");
            out.push(Sample::new(&f::LB_INFO, base.clone(), 1.0));
            for (row, series) in SERIES.iter().enumerate() {
                let key = Key { lb: lb.clone(), row };
                if let Some(value) = counting.value(series, &key) {
                    let mut labels = base.clone();
                    labels.extend(series.labels.iter().map(|(k, v)| ((*k).into(), (*v).to_string())));
                    out.push(Sample::new(series.family, labels, value));
                }
            }
        }
    }
}

/// What a run of the test cloud's reads costs: one call per metric a tier reads.
pub fn calls_per_read() -> (f64, f64) {
    let in_tier = |tier: Tier| SERIES.iter().filter(|s| s.tier == tier).count() as f64;
    let full = SERIES.iter().filter(|s| s.exported).count() as f64;
    (in_tier(Tier::Sentinel), full)
}

/// The families the test cloud feeds (its row's `families_fed`).
pub fn families() -> BTreeSet<&'static str> {
    SERIES.iter().map(|s| s.family.name).collect()
}
