//! Sources pull load-balancer metrics from cloud APIs in the background, each on its own interval,
//! and publish whole snapshots to the store. One source runs per configured job and region, so a
//! failing one never holds up another. Which providers exist, and what each runs for a config, is
//! the registry (`registry.rs`); the collection loop every source shares is [`run_source`].

pub mod alibaba;
pub mod api;
pub mod aws;
pub mod period;
pub mod registry;
pub mod telemetry;
pub mod tencent;
pub mod tiers;

pub use registry::{families_fed, source_keys};

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use self::telemetry::Health;
use crate::runtime::Schedule;
use crate::store::{Sample, Store};

/// A cloud source: collects a whole snapshot per cycle, on its own interval. A provider
/// implements the cycle and the snapshot; timing the cycle and recording its outcome is shared.
pub trait Source: Send + 'static {
    type Error: std::fmt::Display + Send;

    /// The store key of this source.
    fn key(&self) -> String;
    fn interval(&self) -> Duration;
    /// Unix seconds on the source's clock.
    fn now(&self) -> i64;
    fn health(&mut self) -> &mut Health;
    /// Reads what is due and updates the source's state; a failure changes no value it had.
    fn cycle(&mut self) -> impl Future<Output = Result<(), Self::Error>> + Send;
    /// Every sample the source exports now, its own health included.
    fn snapshot(&self) -> Vec<Sample>;

    /// Runs one cycle and returns the snapshot to publish.
    fn collect(&mut self) -> impl Future<Output = Vec<Sample>> + Send {
        async move {
            let started = Instant::now();
            let result = self.cycle().await;
            let (key, now) = (self.key(), self.now());
            self.health()
                .record(&key, result, started.elapsed().as_secs_f64(), now);
            self.snapshot()
        }
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
