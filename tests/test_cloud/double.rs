//! The test cloud's API, in process: load balancers, per-period points, a secret it checks, and
//! throttling on demand. Strict as the real doubles are: a wrong secret is refused, a throttled
//! call says so, and a deleted load balancer's points stay (as the providers keep metrics).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

#[derive(Default)]
struct State {
    lbs: BTreeSet<String>,
    points: BTreeMap<(String, &'static str), BTreeMap<i64, f64>>,
    throttle: u32,
}

pub struct Double {
    secret: String,
    state: Mutex<State>,
}

impl Double {
    pub fn new(secret: &str) -> Double {
        Double {
            secret: secret.to_string(),
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn add(&self, lb: &str) {
        self.state().lbs.insert(lb.to_string());
    }

    pub fn remove(&self, lb: &str) {
        self.state().lbs.remove(lb);
    }

    pub fn publish(&self, lb: &str, metric: &'static str, period_start: i64, value: f64) {
        *self
            .state()
            .points
            .entry((lb.to_string(), metric))
            .or_default()
            .entry(period_start)
            .or_default() += value;
    }

    /// The next `calls` calls are throttled.
    pub fn throttle(&self, calls: u32) {
        self.state().throttle = calls;
    }

    fn admit(&self, secret: &str) -> Result<std::sync::MutexGuard<'_, State>, String> {
        if secret != self.secret {
            return Err("InvalidSecret: the signature does not match".to_string());
        }
        let mut state = self.state();
        if state.throttle > 0 {
            state.throttle -= 1;
            return Err("Throttled: rate exceeded".to_string());
        }
        Ok(state)
    }

    pub fn list(&self, secret: &str) -> Result<Vec<String>, String> {
        Ok(self.admit(secret)?.lbs.iter().cloned().collect())
    }

    /// One metric of `lbs` for the periods starting in `[start, end)`, by load balancer.
    pub fn points(
        &self,
        secret: &str,
        metric: &'static str,
        lbs: &[String],
        start: i64,
        end: i64,
    ) -> Result<BTreeMap<String, Vec<(i64, f64)>>, String> {
        let state = self.admit(secret)?;
        Ok(lbs
            .iter()
            .map(|lb| {
                let points = state
                    .points
                    .get(&(lb.clone(), metric))
                    .map(|periods| periods.range(start..end).map(|(t, v)| (*t, *v)).collect())
                    .unwrap_or_default();
                (lb.clone(), points)
            })
            .collect())
    }
}
