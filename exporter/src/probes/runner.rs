//! Runs each probe in the background: quick checks every `interval`, and the keep-alive
//! measurement (which lasts as long as the LB idle timeout) in a loop of its own so it never holds
//! the quick checks back. Both publish into the probe's snapshot.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use super::findings::ProbeFindings;
use super::report::{KeepAliveCheck, Report};
use super::Probe;
use crate::config::stable_hash;
use crate::runtime::{Discovered, Schedule};
use crate::store::Store;

pub fn source_key(probe: &str) -> String {
    format!("probe/{probe}")
}

#[derive(Default)]
struct Latest {
    report: Option<Report>,
    keepalive: Vec<KeepAliveCheck>,
}

struct Shared {
    probe: Probe,
    latest: Mutex<Latest>,
    store: Arc<Store>,
    discovered: Arc<Discovered>,
    limiter: Arc<Semaphore>,
}

impl Shared {
    fn publish(&self, update: impl FnOnce(&mut Latest)) {
        let mut latest = self
            .latest
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        update(&mut latest);
        let samples = self
            .probe
            .samples(latest.report.as_ref(), &latest.keepalive, &self.discovered);
        let key = source_key(self.probe.name());
        self.store.publish(&key, samples);
        if let Some(report) = &latest.report {
            let findings = ProbeFindings {
                probe: self.probe.name().to_string(),
                lb: self.probe.config.lb.clone(),
                findings: super::findings::evaluate(report, &latest.keepalive),
            };
            self.store.attach(&key, Arc::new(findings));
        }
    }
}

/// Runs one probe until `shutdown`; `limiter` bounds the connections of every probe together.
pub fn spawn(
    probe: Probe,
    store: Arc<Store>,
    discovered: Arc<Discovered>,
    limiter: Arc<Semaphore>,
    shutdown: watch::Receiver<bool>,
    tasks: &mut JoinSet<()>,
) {
    let interval = probe.config.interval.as_duration();
    let shared = Arc::new(Shared {
        probe,
        latest: Mutex::default(),
        store,
        discovered,
        limiter,
    });
    let offset = start_offset(shared.probe.name(), interval);
    let quick = shared.clone();
    let mut schedule = Schedule::new(interval, offset, shutdown.clone());
    tasks.spawn(async move {
        while schedule.tick().await {
            let run = async {
                let report = quick.probe.run(&quick.limiter, &quick.discovered).await;
                quick.publish(|latest| latest.report = Some(report));
            };
            if schedule.unless_stopped(run).await.is_none() {
                return;
            }
        }
    });
    let mut schedule = Schedule::new(interval, offset, shutdown);
    tasks.spawn(async move {
        while schedule.tick().await {
            let run = async {
                let keepalive = shared
                    .probe
                    .run_keepalive(&shared.limiter, &shared.discovered)
                    .await;
                shared.publish(|latest| latest.keepalive = keepalive);
            };
            if schedule.unless_stopped(run).await.is_none() {
                return;
            }
        }
    });
}

/// A stable point within the interval for each probe (as Prometheus spreads its scrapes), so many
/// probes do not all fire at once and queue behind each other.
fn start_offset(name: &str, interval: Duration) -> Duration {
    let millis = u64::try_from(interval.as_millis()).unwrap_or(u64::MAX).max(1);
    Duration::from_millis(stable_hash(name) % millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_offsets_are_stable_spread_and_within_the_interval() {
        let interval = Duration::from_secs(30);
        assert_eq!(start_offset("shop", interval), start_offset("shop", interval));
        let offsets: std::collections::HashSet<Duration> = (0..50)
            .map(|i| start_offset(&format!("probe{i}"), interval))
            .collect();
        assert!(offsets.len() > 40, "offsets spread over the interval");
        assert!(offsets.iter().all(|o| *o < interval));
    }
}
