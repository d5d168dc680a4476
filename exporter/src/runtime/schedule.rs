use std::time::Duration;

use tokio::sync::watch;
use tokio::time::MissedTickBehavior;

/// Work on a fixed interval until shutdown: the first tick after `offset`, and a run that overruns
/// delays the next one rather than bunching them up.
pub struct Schedule {
    ticker: tokio::time::Interval,
    shutdown: watch::Receiver<bool>,
}

impl Schedule {
    pub fn new(interval: Duration, offset: Duration, shutdown: watch::Receiver<bool>) -> Self {
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + offset, interval);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Schedule { ticker, shutdown }
    }

    /// Waits for the next tick; false once shutdown was asked for.
    pub async fn tick(&mut self) -> bool {
        tokio::select! {
            _ = self.ticker.tick() => true,
            _ = self.shutdown.changed() => false,
        }
    }

    /// Runs `work` unless shutdown comes first.
    pub async fn unless_stopped<T>(&mut self, work: impl std::future::Future<Output = T>) -> Option<T> {
        tokio::select! {
            done = work => Some(done),
            _ = self.shutdown.changed() => None,
        }
    }
}
