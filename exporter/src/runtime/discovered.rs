use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::RwLock;
use std::time::Duration;

/// What cloud discovery learned about each load balancer that probes can use, keyed by `lb`.
#[derive(Debug, Default)]
pub struct Discovered {
    facts: RwLock<HashMap<String, LbFacts>>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct LbFacts {
    pub idle_timeout: Option<Duration>,
    /// Registered targets given by IP address (instance targets would need EC2 lookups).
    pub ip_targets: Vec<SocketAddr>,
}

impl Discovered {
    pub fn update(&self, lb: &str, facts: LbFacts) {
        let mut map = self
            .facts
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        map.insert(lb.to_string(), facts);
    }

    fn get(&self, lb: &str) -> Option<LbFacts> {
        let map = self.facts.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        map.get(lb).cloned()
    }

    pub fn idle_timeout(&self, lb: &str) -> Option<Duration> {
        self.get(lb).and_then(|facts| facts.idle_timeout)
    }

    pub fn ip_targets(&self, lb: &str) -> Vec<SocketAddr> {
        self.get(lb).map(|facts| facts.ip_targets).unwrap_or_default()
    }
}
