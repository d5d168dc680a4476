use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::RwLock;
use std::time::Duration;

/// What cloud inventories learned about each load balancer that probes can use, keyed by `lb`,
/// and when each last alarmed. Every provider fills the same [`LbFacts`], so the probes never ask
/// which cloud a load balancer is in.
#[derive(Debug, Default)]
pub struct Discovered {
    entries: RwLock<HashMap<String, Entry>>,
    /// Set when no probe uses the facts (`auto_probes: {when: never}` and no probe discovers
    /// backends): sources then skip the calls only probes need.
    unused: AtomicBool,
}

#[derive(Debug, Clone, Default)]
struct Entry {
    /// The store key of the source whose inventory lists the load balancer.
    source: String,
    facts: LbFacts,
    /// The newest alarming period's start, and when (Unix seconds) the source first saw it.
    alarm: Option<(i64, i64)>,
}

/// A load balancer as a person would describe it to a probe: where its front door is, which
/// listeners it has, how long it keeps idle connections, and where its targets are.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LbFacts {
    /// The `provider` label (`aws`, `alibaba`, `tencent`).
    pub provider: String,
    pub region: String,
    /// The load balancer's name as its owner gave it.
    pub name: String,
    /// The DNS name (AWS) or VIP (Alibaba, Tencent) clients connect to; empty when unknown.
    pub front_door: String,
    /// `internet-facing` or `internal`, in the provider's own words.
    pub scheme: String,
    pub listeners: Vec<Listener>,
    pub idle_timeout: Option<Duration>,
    pub groups: Vec<TargetGroupFacts>,
    /// Registered targets lbtriage cannot address directly, with the reason.
    pub skipped: Vec<SkippedTarget>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub port: u16,
    /// Upper case, as the providers write it: HTTP, HTTPS, TCP, TLS, UDP, QUIC...
    pub protocol: String,
}

impl Listener {
    /// Whether clients speak HTTP through it, and over TLS.
    pub fn http(&self) -> Option<bool> {
        match self.protocol.as_str() {
            "HTTP" | "TCP" => Some(false),
            "HTTPS" | "TLS" | "TCP_SSL" => Some(true),
            _ => None,
        }
    }
}

/// A target group (AWS), server group (Alibaba) or listener's real servers (Tencent).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TargetGroupFacts {
    pub name: String,
    pub health_check: HealthCheck,
    pub targets: Vec<TargetFacts>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HealthCheck {
    /// HTTP, HTTPS, TCP...; empty when the provider did not say.
    pub protocol: String,
    /// The port health checks use; `None`: the target's own port.
    pub port: Option<u16>,
    /// The HTTP path; `None` for a TCP check.
    pub path: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetFacts {
    pub addr: SocketAddr,
    /// The load balancer's own view of it, where the inventory says.
    pub healthy: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedTarget {
    /// The target as the provider names it (instance ID, function ARN, IP:port).
    pub target: String,
    /// Why it has no address to probe: `lambda`, `load_balancer`, `instance_not_found`,
    /// `instance_lookup_failed`...
    pub reason: String,
}

impl LbFacts {
    pub fn targets(&self) -> impl Iterator<Item = &TargetFacts> {
        self.groups.iter().flat_map(|group| group.targets.iter())
    }

    /// Adds a listener, once per port.
    pub fn add_listener(&mut self, port: u16, protocol: &str) {
        if !self.listeners.iter().any(|l| l.port == port) {
            self.listeners.push(Listener {
                port,
                protocol: protocol.to_ascii_uppercase(),
            });
        }
    }

    /// Adds a target to the group named `group`, which is created with `health_check` the first
    /// time it is named.
    pub fn add_target(&mut self, group: &str, health_check: &HealthCheck, target: TargetFacts) {
        match self.groups.iter_mut().find(|g| g.name == group) {
            Some(existing) => existing.targets.push(target),
            None => self.groups.push(TargetGroupFacts {
                name: group.to_string(),
                health_check: health_check.clone(),
                targets: vec![target],
            }),
        }
    }

    /// Records a registered target with no address to probe, and why.
    pub fn skip(&mut self, target: &str, reason: &str) {
        self.skipped.push(SkippedTarget {
            target: target.to_string(),
            reason: reason.to_string(),
        });
    }

    /// Whether the load balancer reports a registered target as unhealthy.
    pub fn has_unhealthy_targets(&self) -> bool {
        self.targets().any(|target| target.healthy == Some(false))
    }
}

impl Discovered {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Entry>> {
        self.entries
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Entry>> {
        self.entries
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether any probe uses the facts: the calls only probes need (listeners, target addresses)
    /// are made only then.
    pub fn wanted(&self) -> bool {
        !self.unused.load(Ordering::Relaxed)
    }

    pub fn set_wanted(&self, wanted: bool) {
        self.unused.store(!wanted, Ordering::Relaxed);
    }

    /// Sets one load balancer's facts, keeping its alarm.
    pub fn update(&self, source: &str, lb: &str, facts: LbFacts) {
        let mut map = self.write();
        let entry = map.entry(lb.to_string()).or_default();
        entry.source = source.to_string();
        entry.facts = facts;
    }

    /// Replaces everything `source` listed with its new inventory: a load balancer it no longer
    /// lists is forgotten, with its alarm.
    pub fn replace(&self, source: &str, inventory: impl IntoIterator<Item = (String, LbFacts)>) {
        let fresh: HashMap<String, LbFacts> = inventory.into_iter().collect();
        let mut map = self.write();
        map.retain(|lb, entry| entry.source != source || fresh.contains_key(lb));
        for (lb, facts) in fresh {
            let entry = map.entry(lb).or_default();
            entry.source = source.to_string();
            entry.facts = facts;
        }
    }

    /// Forgets every load balancer of a source that stopped.
    pub fn forget_source(&self, source: &str) {
        self.write().retain(|_, entry| entry.source != source);
    }

    /// Records that `lb`'s newest alarming period starts at `period_start`; `now` is remembered
    /// only when the period is newer than the one known, so it says when the alarm last grew.
    pub fn alarm(&self, lb: &str, period_start: i64, now: i64) {
        let mut map = self.write();
        if let Some(entry) = map.get_mut(lb) {
            if entry.alarm.is_none_or(|(known, _)| period_start > known) {
                entry.alarm = Some((period_start, now));
            }
        }
    }

    /// When (Unix seconds) `lb` last showed a new alarming period.
    pub fn last_alarm_seen(&self, lb: &str) -> Option<i64> {
        self.read()
            .get(lb)
            .and_then(|entry| entry.alarm)
            .map(|(_, seen)| seen)
    }

    pub fn facts(&self, lb: &str) -> Option<LbFacts> {
        self.read().get(lb).map(|entry| entry.facts.clone())
    }

    /// Every known load balancer with its facts and when it last alarmed, ordered by `lb`.
    pub fn all(&self) -> Vec<(String, LbFacts, Option<i64>)> {
        let mut all: Vec<_> = self
            .read()
            .iter()
            .map(|(lb, entry)| (lb.clone(), entry.facts.clone(), entry.alarm.map(|(_, seen)| seen)))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    pub fn idle_timeout(&self, lb: &str) -> Option<Duration> {
        self.read().get(lb).and_then(|entry| entry.facts.idle_timeout)
    }

    /// Every registered target with an address, once each.
    pub fn ip_targets(&self, lb: &str) -> Vec<SocketAddr> {
        let map = self.read();
        let mut out: Vec<SocketAddr> = Vec::new();
        for target in map.get(lb).into_iter().flat_map(|entry| entry.facts.targets()) {
            if !out.contains(&target.addr) {
                out.push(target.addr);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(name: &str) -> LbFacts {
        LbFacts {
            name: name.to_string(),
            ..LbFacts::default()
        }
    }

    #[test]
    fn a_new_inventory_replaces_only_its_own_source_and_keeps_alarms() {
        let discovered = Discovered::default();
        discovered.replace(
            "a",
            [
                ("lb1".to_string(), facts("one")),
                ("lb2".to_string(), facts("two")),
            ],
        );
        discovered.replace("b", [("lb3".to_string(), facts("three"))]);
        discovered.alarm("lb1", 600, 1000);
        discovered.alarm("lb1", 540, 1100);
        assert_eq!(
            discovered.last_alarm_seen("lb1"),
            Some(1000),
            "an older period is no news"
        );
        discovered.alarm("lb1", 660, 1200);
        assert_eq!(discovered.last_alarm_seen("lb1"), Some(1200));
        discovered.replace("a", [("lb1".to_string(), facts("one again"))]);
        let lbs: Vec<String> = discovered.all().into_iter().map(|(lb, _, _)| lb).collect();
        assert_eq!(lbs, ["lb1", "lb3"]);
        assert_eq!(discovered.last_alarm_seen("lb1"), Some(1200));
        discovered.alarm("unknown", 600, 1000);
        assert!(discovered.facts("unknown").is_none());
        discovered.forget_source("b");
        assert!(discovered.facts("lb3").is_none());
    }
}
