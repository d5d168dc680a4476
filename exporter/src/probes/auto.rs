//! Probes that follow the alarm: for a load balancer nobody wrote a `probes:` entry for, the
//! clouds' inventories already know what a person would type into one (front door, listeners,
//! health-check path, idle timeout, registered targets). While its alarm is awake (or always,
//! per `auto_probes.when`), this builds that probe from the facts and runs it with the same
//! checks, families and rules as a configured one; `probe="auto:<lb>"` marks it.
//!
//! Safe by construction: every address comes from a configured job's inventory
//! (`runtime::Discovered`), nothing in a request names a target, auto probes share the probes'
//! connection bound, and a quiet load balancer gets at most the reachability baseline: one TCP
//! connect to each sampled target not yet known to answer, every `baseline_interval`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use super::reach::{Reach, Reachability};
use super::{runner, Automatic, Probe};
use crate::config::{
    default_header_floor, default_header_sizes, stable_hash, AutoProbeWhen, AutoProbes, ProbeConfig,
    PromDuration, Scheme, DEFAULT_LB_IDLE_TIMEOUT,
};
use crate::runtime::{Discovered, LbFacts, Schedule, TaskGroup};
use crate::store::{families, Labels, Sample, Store};

/// The store key of the auto prober's own self-metrics.
pub const SNAPSHOT_KEY: &str = "probe/auto";
/// The `probe` label of a load balancer's automatic probe starts with this.
pub const PROBE_PREFIX: &str = "auto:";

pub fn probe_name(lb: &str) -> String {
    format!("{PROBE_PREFIX}{lb}")
}

/// Whether a store key belongs to the auto prober (kept across reloads while it runs).
pub fn owns_key(key: &str) -> bool {
    key == SNAPSHOT_KEY || key.starts_with(&runner::source_key(PROBE_PREFIX))
}

/// The load balancers to probe now, most recently alarmed first, at most `max_load_balancers`:
/// of `candidates` (`lb`, facts, when it last alarmed), those alarmed within `linger` or reporting
/// unhealthy targets now (`when: alarmed`), or all (`when: always`).
pub fn select(candidates: &[(String, LbFacts, Option<i64>)], auto: &AutoProbes, now: i64) -> Vec<String> {
    let linger = auto.linger.as_duration().as_secs() as i64;
    let mut chosen: Vec<(Option<i64>, &String)> = candidates
        .iter()
        .filter(|(_, facts, seen)| match auto.when {
            AutoProbeWhen::Never => false,
            AutoProbeWhen::Always => true,
            AutoProbeWhen::Alarmed => {
                seen.is_some_and(|seen| now - seen <= linger) || facts.has_unhealthy_targets()
            }
        })
        .map(|(lb, _, seen)| (*seen, lb))
        .collect();
    chosen.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    chosen.truncate(auto.max_load_balancers);
    chosen.into_iter().map(|(_, lb)| lb.clone()).collect()
}

/// At most `max` targets: the ones the load balancer reports unhealthy first, then a sample that
/// stays the same from one run to the next (so a target's series do not come and go).
pub fn sample_targets(facts: &LbFacts, max: usize) -> Vec<SocketAddr> {
    let mut targets: Vec<(bool, u64, SocketAddr)> = Vec::new();
    for target in facts.targets() {
        if !targets.iter().any(|(_, _, addr)| *addr == target.addr) {
            let healthy = target.healthy != Some(false);
            targets.push((healthy, stable_hash(&target.addr.to_string()), target.addr));
        }
    }
    targets.sort();
    targets.into_iter().take(max).map(|(_, _, addr)| addr).collect()
}

/// The listener a client would use: HTTPS first (port 80 often only redirects), then HTTP, then
/// TCP and TLS ones (spoken to as HTTP), else port 80.
fn front_door_url(facts: &LbFacts) -> Option<String> {
    if facts.front_door.is_empty() {
        return None;
    }
    let rank = |protocol: &str| match protocol {
        "HTTPS" => 0,
        "HTTP" => 1,
        "TLS" | "TCP_SSL" => 2,
        _ => 3,
    };
    let listener = facts
        .listeners
        .iter()
        .filter(|l| l.http().is_some())
        .min_by_key(|l| (rank(&l.protocol), l.port));
    let (tls, port) = listener.map_or((false, 80), |l| (l.http() == Some(true), l.port));
    let host = if facts.front_door.parse::<std::net::Ipv6Addr>().is_ok() {
        format!("[{}]", facts.front_door)
    } else {
        facts.front_door.clone()
    };
    Some(format!("{}://{host}:{port}/", if tls { "https" } else { "http" }))
}

/// The probe a person would have written for this load balancer, and whether its front door can
/// be checked.
pub fn probe_config(lb: &str, facts: &LbFacts, auto: &AutoProbes) -> (ProbeConfig, bool) {
    let url = front_door_url(facts);
    let front_door = auto.front_door && url.is_some();
    let health_check = facts
        .groups
        .first()
        .map(|g| g.health_check.clone())
        .unwrap_or_default();
    let idle = facts.idle_timeout.unwrap_or(DEFAULT_LB_IDLE_TIMEOUT);
    let config = ProbeConfig {
        name: probe_name(lb),
        // RFC 2606 reserves `.invalid`: a load balancer with no known front door is never asked.
        url: url.unwrap_or_else(|| "http://front-door.invalid/".to_string()),
        lb: Some(lb.to_string()),
        backends: sample_targets(facts, auto.max_targets)
            .iter()
            .map(SocketAddr::to_string)
            .collect(),
        discover_backends: false,
        backend_scheme: if health_check.protocol == "HTTPS" {
            Scheme::Https
        } else {
            Scheme::Http
        },
        app_path: "/".to_string(),
        health_path: health_check
            .path
            .filter(|p| p.starts_with('/') && !p.contains(char::is_whitespace))
            .unwrap_or_else(|| "/".to_string()),
        host: (!front_door)
            .then(|| facts.name.clone())
            .filter(|n| !n.is_empty()),
        lb_idle_timeout: None,
        // An ALB waits for a response as long as its idle timeout.
        lb_response_timeout: PromDuration(idle),
        interval: auto.interval,
        timeout: auto.timeout,
        vantage: auto.vantage.clone(),
        tls_ca_file: auto.tls_ca_file.clone(),
        allow_link_local: auto.allow_link_local,
        header_sizes: default_header_sizes(),
        header_floor_bytes: default_header_floor(),
    };
    (config, front_door)
}

struct RunningProbe {
    config: ProbeConfig,
    group: TaskGroup,
}

/// What the auto prober shares between its selection loop and its baseline loop.
struct Shared {
    auto: AutoProbes,
    configured: HashSet<String>,
    store: Arc<Store>,
    discovered: Arc<Discovered>,
    limiter: Arc<Semaphore>,
    reach: Arc<Reachability>,
    /// Baseline connects by outcome (reached, unreachable).
    baseline: [AtomicU64; 2],
    /// When each load balancer last reported an unhealthy target (Unix seconds).
    unhealthy_seen: std::sync::Mutex<HashMap<String, i64>>,
}

/// Runs the auto prober until `shutdown`: a selection loop every `interval` and a baseline loop
/// every `baseline_interval`. `configured` are the `lb`s that `probes:` entries name.
pub fn spawn(
    auto: AutoProbes,
    configured: HashSet<String>,
    store: Arc<Store>,
    discovered: Arc<Discovered>,
    limiter: Arc<Semaphore>,
    shutdown: watch::Receiver<bool>,
    tasks: &mut JoinSet<()>,
) {
    if auto.when == AutoProbeWhen::Never {
        return;
    }
    let shared = Arc::new(Shared {
        auto,
        configured,
        store,
        discovered,
        limiter,
        reach: Arc::new(Reachability::default()),
        baseline: Default::default(),
        unhealthy_seen: Default::default(),
    });
    // The baseline looks every `interval` for targets it has not tried (a new inventory, a new
    // target) and ones that did not answer a `baseline_interval` ago.
    let baseline = shared.clone();
    let mut schedule = Schedule::new(
        shared.auto.interval.as_duration(),
        Duration::ZERO,
        shutdown.clone(),
    );
    tasks.spawn(async move {
        while schedule.tick().await {
            if schedule.unless_stopped(baseline.baseline()).await.is_none() {
                return;
            }
        }
    });
    let mut schedule = Schedule::new(shared.auto.interval.as_duration(), Duration::ZERO, shutdown);
    tasks.spawn(async move {
        let mut running: HashMap<String, RunningProbe> = HashMap::new();
        while schedule.tick().await {
            shared.follow(&mut running).await;
        }
        for (lb, probe) in running.drain() {
            probe.group.stop().await;
            shared.store.remove(&runner::source_key(&probe_name(&lb)));
        }
        shared.store.remove(SNAPSHOT_KEY);
    });
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl Shared {
    /// Load balancers the auto prober may touch: discovered, and not named by a `probes:` entry.
    fn candidates(&self) -> Vec<(String, LbFacts, Option<i64>)> {
        let mut all = self.discovered.all();
        all.retain(|(lb, _, _)| !self.configured.contains(lb));
        all
    }

    /// One TCP connect to each sampled target of every quiet load balancer that was not tried
    /// in the last `baseline_interval`: the load balancers being probed are left to the probes.
    async fn baseline(&self) {
        let every = self.auto.baseline_interval.as_duration();
        let candidates = self.candidates();
        let probed = self.selected(&candidates);
        let mut addrs: Vec<SocketAddr> = Vec::new();
        for (lb, facts, _) in &candidates {
            if probed.contains(lb) {
                continue;
            }
            for addr in sample_targets(facts, self.auto.max_targets) {
                if self.reach.due(addr, every) && !addrs.contains(&addr) {
                    addrs.push(addr);
                }
            }
        }
        let timeout = self.auto.timeout.as_duration();
        let connects = addrs.into_iter().map(|addr| async move {
            let _permit = self.limiter.acquire().await;
            let reached = self.reach.baseline(addr, timeout).await == Reach::Reached;
            self.baseline[usize::from(!reached)].fetch_add(1, Ordering::Relaxed);
        });
        join_all(connects).await;
        self.publish(&probed);
    }

    /// The load balancers to probe now: an unhealthy target counts as an alarm, so probing goes on
    /// for `linger` after the last one recovers.
    fn selected(&self, candidates: &[(String, LbFacts, Option<i64>)]) -> Vec<String> {
        let now = now();
        let mut unhealthy = self
            .unhealthy_seen
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        unhealthy.retain(|lb, _| candidates.iter().any(|(candidate, _, _)| candidate == lb));
        let merged: Vec<(String, LbFacts, Option<i64>)> = candidates
            .iter()
            .map(|(lb, facts, alarm)| {
                if facts.has_unhealthy_targets() {
                    unhealthy.insert(lb.clone(), now);
                }
                (
                    lb.clone(),
                    facts.clone(),
                    (*alarm).max(unhealthy.get(lb).copied()),
                )
            })
            .collect();
        select(&merged, &self.auto, now)
    }

    /// Starts the probes of the load balancers selected now, restarts those whose facts changed
    /// and stops the rest, dropping their series.
    async fn follow(&self, running: &mut HashMap<String, RunningProbe>) {
        let candidates = self.candidates();
        let selected = self.selected(&candidates);
        let facts: HashMap<&String, &LbFacts> = candidates.iter().map(|(lb, f, _)| (lb, f)).collect();
        let mut wanted: BTreeMap<String, (ProbeConfig, bool)> = BTreeMap::new();
        for lb in &selected {
            if let Some(facts) = facts.get(lb) {
                wanted.insert(lb.clone(), probe_config(lb, facts, &self.auto));
            }
        }
        let stale: Vec<String> = running
            .iter()
            .filter(|(lb, probe)| wanted.get(*lb).is_none_or(|(config, _)| *config != probe.config))
            .map(|(lb, _)| lb.clone())
            .collect();
        for lb in stale {
            if let Some(probe) = running.remove(&lb) {
                probe.group.stop().await;
            }
            if !wanted.contains_key(&lb) {
                self.store.remove(&runner::source_key(&probe_name(&lb)));
                tracing::info!(lb = %lb, "automatic probe stopped");
            }
        }
        for (lb, (config, front_door)) in wanted {
            if running.contains_key(&lb) {
                continue;
            }
            let automatic = Automatic {
                reach: self.reach.clone(),
                front_door,
            };
            match Probe::automatic(config.clone(), automatic) {
                Ok(probe) => {
                    let (mut group, shutdown_rx) = TaskGroup::new();
                    runner::spawn(
                        probe,
                        self.store.clone(),
                        self.discovered.clone(),
                        self.limiter.clone(),
                        shutdown_rx,
                        &mut group.tasks,
                    );
                    tracing::info!(lb = %lb, targets = config.backends.len(), front_door, "automatic probe started");
                    running.insert(lb, RunningProbe { config, group });
                }
                Err(err) => tracing::warn!(lb = %lb, error = %err, "cannot build the automatic probe"),
            }
        }
        self.publish(&selected);
    }

    /// The auto prober's self-metrics: which load balancers it probes, what it can reach of
    /// each one's targets, and which it cannot probe from here.
    fn publish(&self, selected: &[String]) {
        let vantage = self.auto.vantage.clone();
        let labels = |lb: &str, facts: &LbFacts| -> Labels {
            vec![
                ("provider".into(), facts.provider.clone()),
                ("region".into(), facts.region.clone()),
                ("lb".into(), lb.to_string()),
                ("vantage".into(), vantage.clone()),
            ]
        };
        let mut out = Vec::new();
        for (lb, facts, _) in self.candidates() {
            let base = labels(&lb, &facts);
            if selected.contains(&lb) {
                out.push(Sample::new(&families::AUTO_PROBE_ACTIVE, base.clone(), 1.0));
            }
            let sample = sample_targets(&facts, self.auto.max_targets);
            let mut by_state: BTreeMap<&str, usize> = BTreeMap::new();
            for addr in &sample {
                *by_state.entry(self.reach.state(*addr).as_str()).or_default() += 1;
            }
            for skipped in &facts.skipped {
                *by_state.entry(skipped.reason.as_str()).or_default() += 1;
            }
            for (state, count) in &by_state {
                let mut labels = base.clone();
                labels.push(("state".into(), (*state).to_string()));
                out.push(Sample::new(&families::AUTO_PROBE_TARGETS, labels, *count as f64));
            }
            let blind = if sample.is_empty() && !facts.skipped.is_empty() {
                Some("no_target_address")
            } else if !sample.is_empty()
                && sample
                    .iter()
                    .all(|addr| self.reach.state(*addr) == Reach::Unreachable)
            {
                Some("no_reachable_target")
            } else {
                None
            };
            if let Some(reason) = blind {
                let mut labels = base;
                labels.push(("reason".into(), reason.to_string()));
                out.push(Sample::new(&families::AUTO_PROBE_BLIND, labels, 1.0));
            }
        }
        for (index, outcome) in ["reached", "unreachable"].iter().enumerate() {
            out.push(Sample::new(
                &families::AUTO_PROBE_BASELINE_CONNECTS,
                vec![
                    ("vantage".into(), vantage.clone()),
                    ("outcome".into(), (*outcome).to_string()),
                ],
                self.baseline[index].load(Ordering::Relaxed) as f64,
            ));
        }
        self.store.publish(SNAPSHOT_KEY, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::{HealthCheck, Listener, TargetFacts, TargetGroupFacts};

    fn facts(targets: &[(&str, Option<bool>)]) -> LbFacts {
        LbFacts {
            provider: "aws".to_string(),
            region: "us-east-1".to_string(),
            name: "shop".to_string(),
            front_door: "shop-1.elb.amazonaws.com".to_string(),
            scheme: "internet-facing".to_string(),
            listeners: vec![
                Listener {
                    port: 80,
                    protocol: "HTTP".to_string(),
                },
                Listener {
                    port: 443,
                    protocol: "HTTPS".to_string(),
                },
            ],
            idle_timeout: Some(Duration::from_secs(30)),
            groups: vec![TargetGroupFacts {
                name: "targetgroup/web/1".to_string(),
                health_check: HealthCheck {
                    protocol: "HTTP".to_string(),
                    port: None,
                    path: Some("/healthz".to_string()),
                },
                targets: targets
                    .iter()
                    .map(|(addr, healthy)| TargetFacts {
                        addr: addr.parse().expect("addr"),
                        healthy: *healthy,
                    })
                    .collect(),
            }],
            skipped: Vec::new(),
        }
    }

    #[test]
    fn unhealthy_targets_come_first_then_a_stable_sample() {
        let many: Vec<(String, Option<bool>)> = (0..20)
            .map(|i| {
                (
                    format!("10.0.0.{i}:80"),
                    (i == 13).then_some(false).or(Some(true)),
                )
            })
            .collect();
        let refs: Vec<(&str, Option<bool>)> = many.iter().map(|(a, h)| (a.as_str(), *h)).collect();
        let sample = sample_targets(&facts(&refs), 8);
        assert_eq!(sample.len(), 8);
        assert_eq!(sample[0].to_string(), "10.0.0.13:80");
        assert_eq!(sample, sample_targets(&facts(&refs), 8), "stable");
    }

    #[test]
    fn the_probe_a_person_would_write() {
        let auto = AutoProbes::default();
        let (config, front_door) = probe_config("app/shop/1", &facts(&[("10.0.0.1:8080", None)]), &auto);
        assert!(front_door);
        assert_eq!(config.name, "auto:app/shop/1");
        assert_eq!(config.url, "https://shop-1.elb.amazonaws.com:443/");
        assert_eq!(config.health_path, "/healthz");
        assert_eq!(config.backends, ["10.0.0.1:8080"]);
        assert_eq!(config.lb_response_timeout.as_duration(), Duration::from_secs(30));
        let mut unknown = facts(&[]);
        unknown.front_door.clear();
        let (config, front_door) = probe_config("lb-1", &unknown, &auto);
        assert!(!front_door);
        assert_eq!(config.host.as_deref(), Some("shop"));
        let mut vip = facts(&[]);
        vip.front_door = "203.0.113.7".to_string();
        vip.listeners.clear();
        assert_eq!(probe_config("lb-2", &vip, &auto).0.url, "http://203.0.113.7:80/");
    }

    #[test]
    fn alarmed_load_balancers_are_probed_for_linger_newest_first() {
        let auto = AutoProbes {
            max_load_balancers: 2,
            ..AutoProbes::default()
        };
        let quiet = facts(&[("10.0.0.1:80", Some(true))]);
        let unhealthy = facts(&[("10.0.0.2:80", Some(false))]);
        let all = vec![
            ("a".to_string(), quiet.clone(), Some(1000)),
            ("b".to_string(), quiet.clone(), Some(1500)),
            ("c".to_string(), unhealthy, None),
            ("d".to_string(), quiet.clone(), None),
            ("e".to_string(), quiet.clone(), Some(1590)),
        ];
        assert_eq!(
            select(&all, &auto, 1600),
            ["e", "b"],
            "newest alarm first, bounded"
        );
        let without_e: Vec<_> = all.iter().filter(|(lb, _, _)| lb != "e").cloned().collect();
        assert_eq!(select(&without_e, &auto, 1600), ["b", "a"]);
        assert_eq!(
            select(&all, &auto, 2300),
            ["c"],
            "past linger only the unhealthy one"
        );
        let never = AutoProbes {
            when: AutoProbeWhen::Never,
            ..auto.clone()
        };
        assert!(select(&all, &never, 1600).is_empty());
        let always = AutoProbes {
            when: AutoProbeWhen::Always,
            max_load_balancers: 10,
            ..auto
        };
        assert_eq!(select(&all, &always, 9999).len(), 5);
    }
}
