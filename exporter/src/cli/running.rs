//! What runs for a configuration: the source groups each provider's registry row defines (AWS: a job and
//! region; Alibaba: a job, whose regions share its call-rate bound) and one per probe. A reload
//! stops only the workers whose settings changed or went away and starts only new ones, so a source
//! whose job did not change keeps its ledgers, counters and discovery cache: no period is lost or
//! counted twice.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::config::{AutoProbes, Config, ProbeConfig};
use crate::probes::Probe;
use crate::runtime::{Discovered, TaskGroup};
use crate::sources::registry;
use crate::sources::row::{Context, SourceGroup};
use crate::store::Store;

/// A worker's settings: equal settings keep the running worker.
#[derive(Debug, Clone, PartialEq)]
enum Settings {
    Source(SourceGroup),
    Probe(Box<ProbeConfig>),
    /// The auto prober, with the `lb`s that configured probes name (those take precedence).
    Auto(Box<AutoProbes>, BTreeSet<String>),
}

struct Worker {
    settings: Settings,
    group: TaskGroup,
}

impl Worker {
    async fn stop(self) {
        self.group.stop().await;
    }
}

/// Every worker of a configuration, by a key that names it across reloads.
fn workers(config: &Config) -> BTreeMap<String, Settings> {
    let mut workers: BTreeMap<String, Settings> = registry::source_groups(config)
        .into_iter()
        .map(|group| (group.key.clone(), Settings::Source(group)))
        .collect();
    for probe in config.sharded_probes() {
        workers.insert(
            crate::probes::runner::source_key(&probe.name),
            Settings::Probe(Box::new(probe.clone())),
        );
    }
    if config.auto_probes.when != crate::config::AutoProbeWhen::Never {
        let configured = config.probes.iter().filter_map(|p| p.lb.clone()).collect();
        workers.insert(
            crate::probes::auto::SNAPSHOT_KEY.to_string(),
            Settings::Auto(Box::new(config.auto_probes.clone()), configured),
        );
    }
    workers
}

pub struct Running {
    workers: BTreeMap<String, Worker>,
    store: Arc<Store>,
    discovered: Arc<Discovered>,
    /// One connection bound for every probe, across reloads.
    probe_limiter: Arc<Semaphore>,
    /// Whether the sources read what only probes need whatever the configuration says
    /// (`diagnose --lb`).
    facts_wanted: bool,
}

impl Running {
    pub fn new(store: Arc<Store>, discovered: Arc<Discovered>) -> Self {
        Running {
            workers: BTreeMap::new(),
            store,
            discovered,
            probe_limiter: crate::probes::limiter(),
            facts_wanted: false,
        }
    }

    /// Sources that read the probe facts (listeners, target addresses) under any configuration.
    pub fn wanting_facts(mut self) -> Self {
        self.facts_wanted = true;
        self
    }

    /// Makes the running workers those of `config`. Probes are built before anything stops, so a
    /// probe that cannot start (a bad CA file) leaves everything as it was.
    pub async fn apply(&mut self, config: &Config) -> anyhow::Result<()> {
        self.discovered.set_wanted(
            self.facts_wanted
                || config.auto_probes.when != crate::config::AutoProbeWhen::Never
                || config.probes.iter().any(|p| p.discover_backends),
        );
        let wanted = workers(config);
        let mut starting = Vec::new();
        for (key, settings) in &wanted {
            if self
                .workers
                .get(key)
                .is_some_and(|worker| worker.settings == *settings)
            {
                continue;
            }
            let probe = match settings {
                Settings::Probe(probe) => Some(Probe::new((**probe).clone())?),
                _ => None,
            };
            starting.push((key.clone(), settings.clone(), probe));
        }
        let stale: Vec<String> = self
            .workers
            .iter()
            .filter(|(key, worker)| wanted.get(*key) != Some(&worker.settings))
            .map(|(key, _)| key.clone())
            .collect();
        for key in &stale {
            if let Some(worker) = self.workers.remove(key) {
                // A stopped source's inventory is no longer a configured job's: no probe may use it.
                if let Settings::Source(source) = &worker.settings {
                    for source_key in &source.source_keys {
                        self.discovered.forget_source(source_key);
                    }
                }
                worker.stop().await;
            }
        }
        let started = starting.len();
        for (key, settings, probe) in starting {
            let worker = self.start(settings, probe);
            self.workers.insert(key, worker);
        }
        tracing::debug!(
            started,
            stopped = stale.len(),
            running = self.workers.len(),
            "workers applied"
        );
        Ok(())
    }

    fn start(&self, settings: Settings, probe: Option<Probe>) -> Worker {
        let (mut group, shutdown_rx) = TaskGroup::new();
        let tasks = &mut group.tasks;
        let (store, discovered) = (self.store.clone(), self.discovered.clone());
        match &settings {
            Settings::Source(group) => group.spawn(
                Context {
                    store,
                    discovered,
                    shutdown: shutdown_rx,
                },
                tasks,
            ),
            Settings::Auto(auto, configured) => crate::probes::auto::spawn(
                (**auto).clone(),
                configured.iter().cloned().collect(),
                store,
                discovered,
                self.probe_limiter.clone(),
                shutdown_rx,
                tasks,
            ),
            Settings::Probe(_) => {
                if let Some(probe) = probe {
                    crate::probes::runner::spawn(
                        probe,
                        store,
                        discovered,
                        self.probe_limiter.clone(),
                        shutdown_rx,
                        tasks,
                    );
                }
            }
        }
        Worker { settings, group }
    }

    /// Stops every worker and waits for them.
    pub async fn stop(self) {
        for (_, worker) in self.workers {
            worker.stop().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_auto_prober_runs_unless_never_and_leaves_configured_load_balancers_to_their_probes() {
        let config = Config::parse(
            "probes:\n  - name: shop\n    url: http://127.0.0.1:9/\n    lb: app/shop/1\n  - name: other\n    url: http://127.0.0.1:9/\n",
        )
        .expect("valid");
        let all = workers(&config);
        match all.get(crate::probes::auto::SNAPSHOT_KEY) {
            Some(Settings::Auto(auto, configured)) => {
                assert_eq!(auto.when, crate::config::AutoProbeWhen::Alarmed, "on by default");
                assert_eq!(configured.iter().collect::<Vec<_>>(), ["app/shop/1"]);
            }
            _ => panic!("an auto prober worker"),
        }
        let never = Config::parse("auto_probes: {when: never}\n").expect("valid");
        assert!(!workers(&never).contains_key(crate::probes::auto::SNAPSHOT_KEY));
    }
}
