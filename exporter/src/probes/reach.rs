//! Which inventory targets this vantage can reach at all. A direct probe that times out because
//! the exporter has no route to a target (another VPC, a security group that admits only the
//! load balancer) says nothing about the target, so it must not become `target_connect_timeout`.
//! A target counts as reached once a TCP connect from here was answered, accepted or refused (a
//! refusal is an answer from the host); one that was tried and never answered is unreachable
//! from this vantage until it answers. The baseline (`probes/auto.rs`) tries a sample of every
//! load balancer's targets while it is quiet, so an outage finds them already known.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{tcp, Failure, Reason};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// A connect from here was answered at least once.
    Reached,
    /// Tried, never answered.
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
    /// Whether each address tried was ever answered, and when it was last tried.
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

    /// Whether the baseline should try `addr` now: never tried, or not answering and last tried
    /// `every` ago. A target that answered once is known for good.
    pub fn due(&self, addr: SocketAddr, every: Duration) -> bool {
        match self.known().get(&addr) {
            None => true,
            Some((reached, tried)) => !reached && tried.elapsed() >= every,
        }
    }

    /// Notes the outcome of a TCP connect to `addr`.
    pub fn record(&self, addr: SocketAddr, result: &Result<Duration, Failure>) {
        let answered = match result {
            Ok(_) => true,
            Err(failure) => matches!(failure.reason, Reason::Refused | Reason::Reset),
        };
        let mut known = self.known();
        if known.len() >= MAX_REMEMBERED && !known.contains_key(&addr) {
            known.clear();
        }
        let entry = known.entry(addr).or_insert((false, Instant::now()));
        entry.0 |= answered;
        entry.1 = Instant::now();
    }

    /// One TCP connect to `addr`, remembered.
    pub async fn try_connect(&self, addr: SocketAddr, timeout: Duration) -> Reach {
        let result = tcp::connect(addr, timeout).await.map(|(_, took)| took);
        self.record(addr, &result);
        self.state(addr)
    }

    /// Whether a probe may take `addr` as evidence: reached before, or answering a first connect now.
    pub async fn reachable(&self, addr: SocketAddr, timeout: Duration) -> bool {
        match self.state(addr) {
            Reach::Reached => true,
            Reach::Unreachable => false,
            Reach::Untested => self.try_connect(addr, timeout).await == Reach::Reached,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_of_any_kind_makes_a_target_reached_for_good() {
        let reach = Reachability::default();
        let addr: SocketAddr = "127.0.0.1:9".parse().expect("addr");
        assert_eq!(reach.state(addr), Reach::Untested);
        assert!(reach.due(addr, Duration::from_secs(900)));
        reach.record(addr, &Err(Failure::new(Reason::Timeout, "no answer")));
        assert_eq!(reach.state(addr), Reach::Unreachable);
        assert!(
            !reach.due(addr, Duration::from_secs(900)),
            "tried again only a baseline later"
        );
        assert!(reach.due(addr, Duration::ZERO));
        reach.record(addr, &Err(Failure::new(Reason::Refused, "refused")));
        assert_eq!(reach.state(addr), Reach::Reached);
        reach.record(addr, &Err(Failure::new(Reason::Timeout, "overloaded now")));
        assert_eq!(
            reach.state(addr),
            Reach::Reached,
            "a timeout after an answer is evidence"
        );
    }
}
