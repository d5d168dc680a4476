//! Which inventory targets this vantage can reach at all. A direct probe that times out because
//! the exporter has no route to a target (another VPC, a security group that admits only the
//! load balancer) says nothing about the target, so it must not become `target_connect_timeout`.
//!
//! The baseline (`probes/auto.rs`) makes one TCP connect to a sample of every quiet load
//! balancer's targets every `baseline_interval`; its outcome is the target's state: reached when
//! the connect was answered, accepted or refused (a refusal is an answer from the host),
//! unreachable when it was not. While a load balancer is probed, an answer upgrades its target to
//! reached and a timeout changes nothing: a target that answered while quiet and times out during
//! an outage is evidence, one that never answered is not.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::failure::{Failure, Reason};
use super::tcp;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// The last baseline connect (or any connect since) was answered.
    Reached,
    /// The last baseline connect was not answered, nor any connect since.
    Unreachable,
    /// Never tried.
    Untested,
}

impl Reach {
    pub fn as_str(self) -> &'static str {
        match self {
            Reach::Reached => "reachable",
            Reach::Unreachable => "unreachable_from_vantage",
            Reach::Untested => "untested",
        }
    }
}

#[derive(Debug, Default)]
pub struct Reachability {
    /// Whether each address tried answered, and when the baseline last tried it.
    known: Mutex<HashMap<SocketAddr, (bool, Instant)>>,
}

/// Addresses remembered at most; past it the table starts over (a fleet's targets churn).
const MAX_REMEMBERED: usize = 100_000;

impl Reachability {
    fn known(&self) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, (bool, Instant)>> {
        self.known.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn state(&self, addr: SocketAddr) -> Reach {
        match self.known().get(&addr) {
            Some((true, _)) => Reach::Reached,
            Some((false, _)) => Reach::Unreachable,
            None => Reach::Untested,
        }
    }

    /// Whether the baseline should try `addr` now: never tried, or last tried `every` ago.
    pub fn due(&self, addr: SocketAddr, every: Duration) -> bool {
        self.known()
            .get(&addr)
            .is_none_or(|(_, tried)| tried.elapsed() >= every)
    }

    /// Notes the outcome of a probe's TCP connect to `addr`: an answer makes it reached, a
    /// timeout changes nothing (a target first seen now counts as tried and unreachable).
    pub fn record(&self, addr: SocketAddr, result: &Result<Duration, Failure>) {
        self.note(addr, answered(result), false);
    }

    /// One baseline connect to `addr`: its outcome is the target's state from now on.
    pub async fn baseline(&self, addr: SocketAddr, timeout: Duration) -> Reach {
        let result = tcp::connect(addr, timeout).await.map(|(_, took)| took);
        self.note(addr, answered(&result), true);
        self.state(addr)
    }

    fn note(&self, addr: SocketAddr, answered: bool, baseline: bool) {
        let mut known = self.known();
        if known.len() >= MAX_REMEMBERED && !known.contains_key(&addr) {
            known.clear();
        }
        let entry = known.entry(addr).or_insert((false, Instant::now()));
        if baseline {
            *entry = (answered, Instant::now());
        } else {
            entry.0 |= answered;
        }
    }

    /// Whether a probe may take `addr` as evidence: reached before, or answering a first connect now.
    pub async fn reachable(&self, addr: SocketAddr, timeout: Duration) -> bool {
        match self.state(addr) {
            Reach::Reached => true,
            Reach::Unreachable => false,
            Reach::Untested => self.baseline(addr, timeout).await == Reach::Reached,
        }
    }
}

fn answered(result: &Result<Duration, Failure>) -> bool {
    match result {
        Ok(_) => true,
        Err(failure) => matches!(failure.reason, Reason::Refused | Reason::Reset),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_quiet_baseline_decides_and_an_outage_only_adds_answers() {
        let reach = Reachability::default();
        let addr: SocketAddr = "127.0.0.1:9".parse().expect("addr");
        assert_eq!(reach.state(addr), Reach::Untested);
        assert!(reach.due(addr, Duration::from_secs(900)));
        reach.note(addr, false, true);
        assert_eq!(reach.state(addr), Reach::Unreachable);
        assert!(
            !reach.due(addr, Duration::from_secs(900)),
            "tried again a baseline later"
        );
        assert!(reach.due(addr, Duration::ZERO));
        reach.record(addr, &Err(Failure::new(Reason::Refused, "refused")));
        assert_eq!(reach.state(addr), Reach::Reached, "a refusal is an answer");
        reach.record(addr, &Err(Failure::new(Reason::Timeout, "overloaded now")));
        assert_eq!(
            reach.state(addr),
            Reach::Reached,
            "a timeout in an outage is evidence"
        );
        reach.note(addr, false, true);
        assert_eq!(
            reach.state(addr),
            Reach::Unreachable,
            "a quiet baseline that gets no answer decides"
        );
        let fresh: SocketAddr = "127.0.0.1:10".parse().expect("addr");
        reach.record(fresh, &Err(Failure::new(Reason::Timeout, "no answer")));
        assert_eq!(reach.state(fresh), Reach::Unreachable);
    }
}
