//! The compliance suite every registry row passes, run by iterating the registry (and the test
//! cloud's row, `tests/test_cloud/`): what makes a source trustworthy, checked the same way for
//! every cloud against its double.
//!
//! - **Exact counters per period**: each period of requests and backend 5xx is counted once, first
//!   visible `delay` + one interval after it ends, and the totals equal what the double published.
//!   These checks run in `full` collection, where every series is read every cycle: in `adaptive`
//!   the request count is a slow-tier series (`tests/adaptive.rs` and each cloud's own tests cover
//!   the tiers).
//! - **Late data is reconciled**: a part of a period published after it was counted adds itself
//!   once, until the period has settled; after that nothing is added.
//! - **Throttling and outages lose no period**: a few throttled calls are retried within the cycle;
//!   a cycle that fails changes nothing and shows `lbtriage_source_up` 0, and the next one counts
//!   the missed periods exactly once.
//! - **A deleted load balancer's series disappear** at the next inventory, and the others stay.
//! - **The plan equals what a run spends**, in the unit the provider bills (`billed` in each row of
//!   `lbtriage plan`): the sentinel's cost per quiet cycle and a `full` cycle's.
//! - **Credentials never appear in the output.**
//!
//! A cloud brings a [`Fixture`] (its double and how to seed it); `fixtures.rs` holds one per row.

mod fixtures;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use lbtriage::runtime::Clock;
use lbtriage::sources::row::Provider;
use lbtriage::sources::Source;
use lbtriage::store::{render, Format, Sample};
use serde_json::Value;

use crate::support::{base_time, parse_exposition, Series};

/// Every source is read at one-minute periods in the suite.
const PERIOD: i64 = 60;

/// A source the suite can drive cycle by cycle, whatever its cloud.
pub trait Collect: Send {
    fn collect_boxed(&mut self) -> Pin<Box<dyn Future<Output = Vec<Sample>> + Send + '_>>;
}

impl<S: Source> Collect for S {
    fn collect_boxed(&mut self) -> Pin<Box<dyn Future<Output = Vec<Sample>> + Send + '_>> {
        Box::pin(self.collect())
    }
}

/// What a cloud brings to the suite: its registry row, its double, and how to seed it.
#[allow(async_fn_in_trait)]
pub trait Fixture {
    fn row(&self) -> &'static Provider;
    /// The job's `delay` in seconds.
    fn delay(&self) -> i64;
    /// A source over the double's fleet on `clock`, in `full` or `adaptive` collection.
    async fn source(&self, full: bool, clock: Clock) -> Box<dyn Collect>;
    /// Creates load balancers, by the suite's names.
    async fn add(&mut self, lbs: &[&str]);
    async fn remove(&mut self, lb: &str);
    /// The `lb` label of a load balancer the suite named.
    fn lb_label(&self, lb: &str) -> String;
    /// Publishes parts of periods: (load balancer, period start, requests, backend 5xx), as the
    /// provider publishes them (rates per second where it does). A second part of a period adds
    /// to the first, as a provider's value grows when late data arrives.
    async fn publish(&mut self, periods: &[(&str, i64, f64, f64)]);
    /// The next `calls` metric-reading calls are throttled (0 ends it).
    fn throttle(&self, calls: u32);
    /// The job's row of `lbtriage plan`.
    async fn plan(&self) -> Value;
    /// Every secret the source was given.
    fn secrets(&self) -> Vec<String>;
}

/// A driven source and everything it exported.
struct Run {
    source: Box<dyn Collect>,
    clock: Arc<AtomicI64>,
    exported: String,
}

impl Run {
    async fn new<F: Fixture>(fixture: &F, full: bool) -> Run {
        let clock = Arc::new(AtomicI64::new(0));
        let reader = clock.clone();
        let source = fixture
            .source(full, Arc::new(move || reader.load(Ordering::SeqCst)))
            .await;
        Run {
            source,
            clock,
            exported: String::new(),
        }
    }

    async fn at(&mut self, now: i64) -> Vec<Series> {
        self.clock.store(now, Ordering::SeqCst);
        let samples = self.source.collect_boxed().await;
        let text = render(samples.iter(), Format::Prometheus);
        self.exported.push_str(&text);
        parse_exposition(&text)
    }
}

fn sample(series: &[Series], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    series
        .iter()
        .find(|s| s.name == name && labels.iter().all(|(k, v)| s.label(k) == Some(*v)))
        .map(|s| s.value)
}

fn requests(series: &[Series], lb: &str) -> Option<f64> {
    sample(series, "lbtriage_lb_requests_total", &[("lb", lb)])
}

fn backend_5xx(series: &[Series], lb: &str) -> Option<f64> {
    sample(
        series,
        "lbtriage_lb_responses_total",
        &[("lb", lb), ("origin", "backend"), ("code", "5xx")],
    )
}

/// Every check, for one cloud.
pub async fn suite<F: Fixture>(mut fixture: F) {
    let row = fixture.row();
    let name = row.name;
    // The suite reads requests and responses: the kind each fixture creates feeds both.
    assert!(
        row.kinds.iter().any(|kind| {
            let fed = (row.families_fed)(*kind).unwrap_or_default();
            fed.contains("lbtriage_lb_requests") && fed.contains("lbtriage_lb_responses")
        }),
        "{name}: a kind that feeds requests and responses"
    );
    assert!(
        !row.credential_env.is_empty(),
        "{name}: names its credential variables"
    );

    fixture.add(&["c1", "c2"]).await;
    let (c1, c2) = (fixture.lb_label("c1"), fixture.lb_label("c2"));
    let delay = fixture.delay();
    let mut run = Run::new(&fixture, true).await;
    // The first cycle starts counting at the newest complete period, `start`.
    let first = base_time();
    let start = (first - delay).div_euclid(PERIOD) * PERIOD;
    // Six periods from `start`: requests in whole-second rates, backend 5xx in two of them.
    let published: Vec<(f64, f64)> = (0..6)
        .map(|k| {
            (
                60.0 * (k % 3 + 1) as f64,
                if k == 2 || k == 4 { 30.0 } else { 0.0 },
            )
        })
        .collect();
    let mut periods = Vec::new();
    for (k, (requests, errors)) in published.iter().enumerate() {
        let period = start + k as i64 * PERIOD;
        periods.push(("c1", period, *requests, *errors));
        periods.push(("c2", period, 2.0 * requests, 0.0));
    }
    fixture.publish(&periods).await;
    let seen = run.at(first).await;
    assert_eq!(
        sample(&seen, "lbtriage_source_up", &[]),
        Some(1.0),
        "{name}: first cycle"
    );
    assert_eq!(
        requests(&seen, &c1).unwrap_or(0.0),
        0.0,
        "{name}: nothing before the start"
    );

    // Period k is complete `delay` after it ends: the cycle then counts it, once.
    let mut expected = 0.0;
    for (k, (count, _)) in published.iter().enumerate() {
        let now = start + (k as i64 + 1) * PERIOD + delay;
        match k {
            2 => fixture.throttle(2),
            3 => fixture.throttle(1_000_000),
            _ => {}
        }
        let seen = run.at(now).await;
        expected += count;
        if k == 3 {
            // An outage: the cycle fails and changes nothing; the next counts what it missed.
            fixture.throttle(0);
            assert_eq!(
                sample(&seen, "lbtriage_source_up", &[]),
                Some(0.0),
                "{name}: outage"
            );
            assert_eq!(
                requests(&seen, &c1),
                Some(expected - count),
                "{name}: kept during the outage"
            );
            continue;
        }
        assert_eq!(
            sample(&seen, "lbtriage_source_up", &[]),
            Some(1.0),
            "{name}: period {k}"
        );
        assert_eq!(
            requests(&seen, &c1),
            Some(expected),
            "{name}: c1 after period {k}"
        );
        assert_eq!(
            requests(&seen, &c2),
            Some(2.0 * expected),
            "{name}: c2 after period {k}"
        );
    }
    // Three more cycles add nothing twice.
    let end = start + 6 * PERIOD + delay;
    let mut seen = Vec::new();
    for extra in 0..3 {
        seen = run.at(end + extra * PERIOD).await;
    }
    let errors: f64 = published.iter().map(|(_, e)| e).sum();
    assert_eq!(requests(&seen, &c1), Some(expected), "{name}: c1 once settled");
    assert_eq!(backend_5xx(&seen, &c1), Some(errors), "{name}: c1 backend 5xx");
    assert_eq!(backend_5xx(&seen, &c2), Some(0.0), "{name}: c2 backend 5xx");

    // Late data (every fixture's job has `settle: 5m`): a part of the newest period that arrives
    // after it was counted adds only itself, at the next cycle; once a period has settled, a
    // part of it is not added.
    fixture.publish(&[("c1", start + 5 * PERIOD, 60.0, 0.0)]).await;
    let seen = run.at(end + 3 * PERIOD).await;
    expected += 60.0;
    assert_eq!(requests(&seen, &c1), Some(expected), "{name}: a late part, once");
    fixture.publish(&[("c1", start, 60.0, 0.0)]).await;
    let seen = run.at(end + 4 * PERIOD).await;
    assert_eq!(
        requests(&seen, &c1),
        Some(expected),
        "{name}: nothing after settle"
    );
    let revisions = sample(&seen, "lbtriage_collection_value_revisions_total", &[]);
    assert_eq!(revisions, Some(0.0), "{name}: no value shrank");

    // A deleted load balancer's series go at the next inventory; the others stay.
    fixture.remove("c2").await;
    let mut now = end + 5 * PERIOD;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let seen = run.at(now).await;
        if requests(&seen, &c2).is_none() {
            assert!(
                !seen.iter().any(|s| s.label("lb") == Some(c2.as_str())),
                "{name}: every series of a deleted load balancer goes"
            );
            assert_eq!(requests(&seen, &c1), Some(expected), "{name}: c1 stays");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{name}: c2 never disappeared"
        );
        now += PERIOD;
        // AWS re-reads its inventory on the wall clock (`discovery_ttl: 1s`).
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }

    plan_equals_spend(&fixture, now + 10 * PERIOD).await;

    for secret in fixture.secrets() {
        assert!(!run.exported.contains(&secret), "{name}: a secret in the output");
    }
}

/// `lbtriage plan` prices the sentinel of a quiet cycle and a `full` cycle in the unit the
/// provider bills; runs spend exactly that (the first cycle of a source only learns, and some
/// clouds read on it, so the cycles after it are compared).
async fn plan_equals_spend<F: Fixture>(fixture: &F, from: i64) {
    let name = fixture.row().name;
    let plan = fixture.plan().await;
    let billed = &plan["billed"];
    let family = match billed["per"].as_str() {
        Some("metric") => "lbtriage_collection_metrics_requested_total",
        Some("call") => "lbtriage_collection_calls_total",
        other => panic!("{name}: plan row bills per {other:?}: {plan}"),
    };
    let per_read = |field: &str| {
        billed[field]
            .as_f64()
            .unwrap_or_else(|| panic!("{name}: {field} in {plan}"))
    };
    let spent = |series: &[Series], tiers: &[&str]| -> f64 {
        tiers
            .iter()
            .map(|tier| sample(series, family, &[("tier", tier)]).unwrap_or(0.0))
            .sum()
    };

    let mut adaptive = Run::new(fixture, false).await;
    let after_first = spent(&adaptive.at(from).await, &["sentinel"]);
    let mut seen = Vec::new();
    for cycle in 1..=4 {
        seen = adaptive.at(from + cycle * PERIOD).await;
    }
    assert_eq!(
        spent(&seen, &["sentinel"]) - after_first,
        4.0 * per_read("sentinel_per_read"),
        "{name}: four quiet cycles' sentinel"
    );

    let mut full = Run::new(fixture, true).await;
    let all = ["sentinel", "detail", "slow"];
    let after_first = spent(&full.at(from).await, &all);
    let seen = full.at(from + PERIOD).await;
    assert_eq!(
        spent(&seen, &all) - after_first,
        per_read("full_per_read"),
        "{name}: one full cycle"
    );
    for secret in fixture.secrets() {
        assert!(!adaptive.exported.contains(&secret) && !full.exported.contains(&secret));
    }
}

/// Every row of the registry, and the test cloud's, passes the whole suite.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_registry_row_passes_the_compliance_suite() {
    let rows = lbtriage::sources::registry::PROVIDERS
        .iter()
        .copied()
        .chain([&crate::test_cloud::provider::ROW]);
    for row in rows {
        match row.name {
            "aws" => suite(fixtures::Aws::start()).await,
            "alibaba" => suite(fixtures::Alibaba::start()).await,
            "tencent" => suite(fixtures::Tencent::start()).await,
            "testcloud" => suite(fixtures::TestCloud::start()).await,
            other => {
                panic!("the registry row {other} has no compliance fixture (tests/compliance/fixtures.rs)")
            }
        }
    }
}
