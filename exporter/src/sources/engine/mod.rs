//! The one collection engine. A cloud brings its inventory, its metric table and how to read a
//! set of windows from its API ([`Cloud`]); the engine runs the cycle, counts every period exactly
//! once across tiers, failures and restarts (`counting.rs`, `period.rs`, `tiers.rs`), keeps the
//! source's health and calls (`telemetry.rs`), and is the one [`Source`] implementation.
//!
//! A cycle, for every cloud:
//! 1. the cloud refreshes its inventory when it is due and drops what is gone;
//! 2. the sentinel's window is read for every load balancer (in `full` collection, with every
//!    tier in the same read), counted and committed;
//! 3. in `adaptive` collection, the detail tier of load balancers whose sentinel alarmed and the
//!    slow tier where it is due are read, counted and committed on their own: a failure there
//!    loses nothing the sentinel counted and is read again next cycle;
//! 4. slow counters due for release are added, the cloud does what follows its reads (backend
//!    health of alarmed load balancers, the facts the probes use), and alarms are shared with the
//!    probes.

pub mod counting;
pub mod period;
pub mod series;
pub mod telemetry;
pub mod tiers;

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

pub use self::counting::{Counting, Observation, Reads, SeriesKey};
use self::telemetry::{ApiCalls, Health};
use self::tiers::Timing;
use crate::config::Collection;
use crate::runtime::{Clock, Discovered, Schedule};
use crate::store::{families, Labels, Sample, Store};

/// What a cloud supplies to the engine.
pub trait Cloud: Send + Sync + 'static {
    type Key: SeriesKey;
    type Error: std::fmt::Display + Send;

    /// The provider's name (its registry row's, and the `provider` label).
    fn provider(&self) -> &'static str;
    /// The config job's name (the `source` label of the self-metrics).
    fn job_name(&self) -> &str;
    fn region(&self) -> &str;
    fn interval(&self) -> Duration;
    fn calls(&self) -> &ApiCalls;

    /// The store key of the source.
    fn source_key(&self) -> String {
        source_key(self.provider(), self.job_name(), self.region())
    }

    /// The `provider`, `source` and `region` labels of the self-metrics.
    fn self_labels(&self) -> Labels {
        vec![
            ("provider".into(), self.provider().to_string()),
            ("source".into(), self.job_name().to_string()),
            ("region".into(), self.region().to_string()),
        ]
    }

    /// The labels every series about one of the cloud's load balancers starts with.
    fn lb_labels(&self, lb: &str, name: &str, lb_type: &str) -> Labels {
        vec![
            ("provider".into(), self.provider().to_string()),
            ("region".into(), self.region().to_string()),
            ("lb".into(), lb.to_string()),
            ("lb_name".into(), name.to_string()),
            ("lb_type".into(), lb_type.to_string()),
        ]
    }

    /// Refreshes the inventory when it is due; drops from `counting` what is gone.
    fn refresh(
        &mut self,
        counting: &mut Counting<Self::Key>,
        now: i64,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Every load balancer known now.
    fn load_balancers(&self) -> Vec<String>;

    /// Reads what `reads` asks for: every series of the sentinel when its window is set, and the
    /// detail and slow series of the load balancers it holds windows (or, awake, host counts)
    /// for. Any failure fails the whole read: nothing of it is counted.
    fn read(
        &mut self,
        reads: &Reads,
        counting: &Counting<Self::Key>,
        now: i64,
    ) -> impl Future<Output = Result<Vec<Observation<Self::Key>>, Self::Error>> + Send;

    /// What follows the reads (backend health of alarmed or awake load balancers, the facts the
    /// probes use); `awake` are the load balancers whose detail tier was read.
    fn after_reads(
        &mut self,
        counting: &Counting<Self::Key>,
        awake: &BTreeSet<String>,
        now: i64,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send {
        let _ = (counting, awake, now);
        async { Ok(()) }
    }

    /// Every sample of the cloud's load balancers (not the self-metrics).
    fn render(&self, counting: &Counting<Self::Key>, out: &mut Vec<Sample>);
}

/// `<provider>/<job>/<region>`: the store key of one job's source in one region.
pub fn source_key(provider: &str, job: &str, region: &str) -> String {
    format!("{provider}/{job}/{region}")
}

/// One `lbtriage_lb_target_health` sample: a target of the group `group` labels, its `state`
/// (`healthy`, `unhealthy` or the provider's own word) and the provider's `reason`, labelled the
/// same way by every cloud.
pub fn target_health(group: &Labels, target: &str, state: &str, reason: &str) -> Sample {
    let mut labels = group.clone();
    labels.push(("target".into(), target.to_string()));
    labels.push(("state".into(), state.to_string()));
    labels.push(("reason".into(), reason.to_string()));
    Sample::new(&families::LB_TARGET_HEALTH, labels, 1.0)
}

/// A cloud source: one cloud's job and region with its counting state and health.
pub struct Collector<C: Cloud> {
    cloud: C,
    counting: Counting<C::Key>,
    health: Health,
    clock: Clock,
}

impl<C: Cloud> Collector<C> {
    pub fn with_cloud(cloud: C, timing: Timing, max_periods_per_cycle: u32, clock: Clock) -> Self {
        Collector {
            cloud,
            counting: Counting::new(timing, max_periods_per_cycle),
            health: Health::default(),
            clock,
        }
    }

    /// Shares what the inventory learns, and the alarms, with the probes.
    pub fn with_discovered(mut self, discovered: Arc<Discovered>) -> Self {
        self.counting.set_discovered(discovered);
        self
    }

    pub fn cloud(&self) -> &C {
        &self.cloud
    }

    pub fn cloud_mut(&mut self) -> &mut C {
        &mut self.cloud
    }

    pub fn counting(&self) -> &Counting<C::Key> {
        &self.counting
    }

    pub fn api_calls(&self) -> &ApiCalls {
        self.cloud.calls()
    }

    async fn read_due(&mut self) -> Result<(), C::Error> {
        let now = (self.clock)();
        self.cloud.refresh(&mut self.counting, now).await?;
        let mut first = self.counting.begin(now);
        let lbs = self.cloud.load_balancers();
        self.counting.watch(lbs.iter().map(String::as_str));

        let collection = self.counting.collection();
        if collection == Collection::Full {
            first.merge(self.counting.plan(now));
        }
        let observations = self.cloud.read(&first, &self.counting, now).await?;
        self.counting.apply(&first, observations, now);
        // A read may have named load balancers the inventory cannot list (CloudMonitor).
        let lbs = self.cloud.load_balancers();
        self.counting.watch(lbs.iter().map(String::as_str));

        let (result, awake) = match collection {
            Collection::Full => (Ok(()), first.awake),
            Collection::Adaptive => {
                let rest = self.counting.plan(now);
                let result = match self.cloud.read(&rest, &self.counting, now).await {
                    Ok(observations) => {
                        self.counting.apply(&rest, observations, now);
                        Ok(())
                    }
                    Err(err) => Err(err),
                };
                (result, rest.awake)
            }
        };
        self.counting.release(now);
        let after = self.cloud.after_reads(&self.counting, &awake, now).await;
        self.counting.share_alarms(now);
        result.and(after)
    }

    fn render(&self) -> Vec<Sample> {
        let mut out = Vec::new();
        self.cloud.render(&self.counting, &mut out);
        let base = self.cloud.self_labels();
        self.health.samples(
            &base,
            self.counting.ledger(),
            self.cloud.interval(),
            self.cloud.calls(),
            &mut out,
        );
        let gauge = |family, value: Option<i64>| value.map(|v| Sample::new(family, base.clone(), v as f64));
        out.extend(gauge(&families::NEWEST_COUNTED, self.counting.newest_counted()));
        out.extend(gauge(
            &families::OLDEST_UNSETTLED,
            self.counting.oldest_unsettled(),
        ));
        out.push(Sample::new(
            &families::VALUE_REVISIONS,
            base,
            self.counting.revisions() as f64,
        ));
        out
    }
}

/// A cloud source: collects a whole snapshot per cycle, on its own interval.
pub trait Source: Send + 'static {
    /// The store key of this source.
    fn key(&self) -> String;
    fn interval(&self) -> Duration;
    /// Runs one cycle and returns the snapshot to publish: every sample the source exports now,
    /// its own health included. A failure changes no value the source had.
    fn collect(&mut self) -> impl Future<Output = Vec<Sample>> + Send;
}

impl<C: Cloud> Source for Collector<C> {
    fn key(&self) -> String {
        self.cloud.source_key()
    }

    fn interval(&self) -> Duration {
        self.cloud.interval()
    }

    async fn collect(&mut self) -> Vec<Sample> {
        let started = Instant::now();
        let result = self.read_due().await;
        let (key, now) = (self.key(), (self.clock)());
        self.health
            .record(&key, result, started.elapsed().as_secs_f64(), now);
        self.render()
    }
}

/// Collects on the source's interval until shutdown.
pub async fn run_source(mut source: impl Source, store: Arc<Store>, shutdown: watch::Receiver<bool>) {
    let key = source.key();
    let mut schedule = Schedule::new(source.interval(), Duration::ZERO, shutdown);
    while schedule.tick().await {
        let Some(snapshot) = schedule.unless_stopped(source.collect()).await else {
            return;
        };
        store.publish(&key, snapshot);
    }
}
