//! Exactly-once counting of per-period provider data.
//!
//! Cloud monitoring APIs report counts per period (a minute's `Sum`), published late and only for
//! periods that saw traffic. lbtriage turns them into monotonic counters: each period is added once
//! it ended at least `delay` ago, windows of successive cycles are contiguous and disjoint, and a
//! cycle that fails commits nothing, so the next one reads the longer window instead of losing it.
//! A restart begins at zero from the current window (Prometheus treats it as a counter reset), so a
//! period counted before the restart is never added again.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::Duration;

/// Half-open range of complete periods `[start, end)`, in Unix seconds, aligned to the period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: i64,
    pub end: i64,
}

impl Window {
    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }

    pub fn contains(&self, timestamp: i64) -> bool {
        self.start <= timestamp && timestamp < self.end
    }
}

#[derive(Debug, Clone)]
pub struct Ledger {
    period: i64,
    delay: i64,
    max_periods: i64,
    watermark: Option<i64>,
    /// Where counting started: the first watermark.
    first: Option<i64>,
}

impl Ledger {
    /// `max_periods` bounds how far one cycle catches up after an outage (GetMetricData returns at
    /// most 100,800 points per call: 500 queries × 201 periods).
    pub fn new(period: Duration, delay: Duration, max_periods: u32) -> Self {
        Ledger {
            period: period.as_secs().max(1) as i64,
            delay: delay.as_secs() as i64,
            max_periods: i64::from(max_periods.max(1)),
            watermark: None,
            first: None,
        }
    }

    /// Starts counting at `watermark` instead of where the first call finds the data complete.
    pub fn starting_at(mut self, watermark: i64) -> Self {
        self.watermark = Some(watermark);
        self.first = Some(watermark);
        self
    }

    /// Where counting started: no period before it was ever counted.
    pub fn first(&self) -> Option<i64> {
        self.first
    }

    pub fn period(&self) -> i64 {
        self.period
    }

    /// The newest period boundary whose data is complete at `now`.
    pub fn complete_until(&self, now: i64) -> i64 {
        (now - self.delay).div_euclid(self.period) * self.period
    }

    /// Periods ready to be counted at `now`. The first call only sets the starting point.
    pub fn pending(&mut self, now: i64) -> Window {
        let complete = self.complete_until(now);
        let start = *self.watermark.get_or_insert(complete);
        self.first.get_or_insert(start);
        let end = complete.min(start + self.max_periods * self.period).max(start);
        Window { start, end }
    }

    /// Marks the window counted. Only call once its data has been added in full.
    pub fn commit(&mut self, window: Window) {
        if self.watermark == Some(window.start) {
            self.watermark = Some(window.end);
        }
    }

    /// How far behind `now` the watermark stands at most while cycles every `interval` succeed:
    /// the delay, one period still filling, and one interval until the next cycle.
    pub fn expected_age(&self, interval: Duration) -> f64 {
        (self.delay + self.period) as f64 + interval.as_secs_f64()
    }

    /// Where counting stands: counters include every period before this time.
    pub fn watermark(&self) -> Option<i64> {
        self.watermark
    }
}

/// Monotonic totals per series. Series appear at zero so the first increment is visible to `rate()`.
#[derive(Debug, Clone)]
pub struct Counters<K> {
    totals: HashMap<K, f64>,
}

impl<K> Default for Counters<K> {
    fn default() -> Self {
        Counters {
            totals: HashMap::new(),
        }
    }
}

impl<K: Hash + Eq + Clone> Counters<K> {
    /// Adds a period's value; negative or non-finite input is ignored so the counter never decreases.
    pub fn add(&mut self, key: &K, value: f64) {
        let total = self.totals.entry(key.clone()).or_insert(0.0);
        if value.is_finite() && value > 0.0 {
            *total += value;
        }
    }

    pub fn get(&self, key: &K) -> f64 {
        self.totals.get(key).copied().unwrap_or(0.0)
    }

    /// Drops series no longer discovered (a deleted load balancer).
    pub fn retain(&mut self, keep: impl Fn(&K) -> bool) {
        self.totals.retain(|key, _| keep(key));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: i64 = 60;

    fn ledger() -> Ledger {
        Ledger::new(Duration::from_secs(60), Duration::from_secs(120), 200)
    }

    /// Datapoints as the provider holds them: (period start, value).
    fn count(counters: &mut Counters<&'static str>, window: Window, points: &[(i64, f64)]) {
        counters.add(&"x", 0.0);
        for (ts, value) in points {
            if window.contains(*ts) {
                counters.add(&"x", *value);
            }
        }
    }

    #[test]
    fn first_cycle_starts_at_zero_and_counts_nothing_old() {
        let mut ledger = ledger();
        let window = ledger.pending(10_000 * P + 30);
        assert!(window.is_empty());
        assert_eq!(window.start, 9_998 * P);
        assert_eq!(ledger.watermark(), Some(9_998 * P));
    }

    #[test]
    fn each_period_counted_exactly_once_across_cycles() {
        let points: Vec<(i64, f64)> = (0..20).map(|i| ((9_990 + i) * P, 1.0 + i as f64)).collect();
        let mut ledger = ledger();
        let mut counters = Counters::default();
        let start = 10_000 * P;
        ledger.pending(start);
        // Cycles every 25 s for ten minutes: windows overlap nowhere and leave no gap.
        let mut now = start;
        while now <= start + 600 {
            let window = ledger.pending(now);
            count(&mut counters, window, &points);
            ledger.commit(window);
            now += 25;
        }
        // Counted: periods from 9,998 (first watermark) up to complete_until(start + 600) = 10,008.
        let expected: f64 = points
            .iter()
            .filter(|(ts, _)| (9_998 * P..10_008 * P).contains(ts))
            .map(|(_, v)| v)
            .sum();
        assert_eq!(counters.get(&"x"), expected);
    }

    #[test]
    fn quiet_periods_add_nothing() {
        let mut ledger = ledger();
        let mut counters = Counters::default();
        ledger.pending(10_000 * P);
        let window = ledger.pending(10_005 * P);
        count(&mut counters, window, &[(9_999 * P, 3.0)]); // 9,998..10,003 has only one point
        ledger.commit(window);
        assert_eq!(counters.get(&"x"), 3.0);
    }

    #[test]
    fn failed_cycle_is_read_again_not_lost() {
        let points = [(9_998 * P, 5.0), (9_999 * P, 7.0), (10_000 * P, 11.0)];
        let mut ledger = ledger();
        let mut counters = Counters::default();
        ledger.pending(10_000 * P);
        let failed = ledger.pending(10_001 * P); // API error: nothing added, nothing committed
        assert_eq!(
            failed,
            Window {
                start: 9_998 * P,
                end: 9_999 * P
            }
        );
        let retry = ledger.pending(10_003 * P);
        assert_eq!(
            retry,
            Window {
                start: 9_998 * P,
                end: 10_001 * P
            }
        );
        count(&mut counters, retry, &points);
        ledger.commit(retry);
        assert_eq!(counters.get(&"x"), 23.0);
        // A stale commit of the failed window is ignored: nothing is counted twice.
        ledger.commit(failed);
        assert_eq!(ledger.watermark(), Some(10_001 * P));
    }

    #[test]
    fn late_data_within_delay_is_counted_later_than_delay_is_not() {
        let mut ledger = ledger();
        let mut counters = Counters::default();
        ledger.pending(10_000 * P);
        // The point for period 9,998 arrives 90 s after the period ended: within the 120 s delay.
        let window = ledger.pending(9_999 * P + 90);
        assert!(window.is_empty(), "period 9,998 is not complete yet");
        let window = ledger.pending(10_001 * P);
        count(&mut counters, window, &[(9_998 * P, 4.0)]);
        ledger.commit(window);
        assert_eq!(counters.get(&"x"), 4.0);
        // A point for an already counted period is not added (documented: raise `delay` instead).
        let window = ledger.pending(10_002 * P);
        count(&mut counters, window, &[(9_998 * P, 4.0), (9_999 * P, 1.0)]);
        ledger.commit(window);
        assert_eq!(counters.get(&"x"), 5.0);
    }

    #[test]
    fn restart_starts_over_without_recounting() {
        let points = [(9_997 * P, 2.0), (9_998 * P, 3.0), (9_999 * P, 4.0)];
        let mut restarted = ledger();
        let mut counters = Counters::default();
        let first = restarted.pending(10_001 * P);
        count(&mut counters, first, &points);
        assert_eq!(
            counters.get(&"x"),
            0.0,
            "history before the restart is not counted again"
        );
        let next = restarted.pending(10_002 * P);
        count(&mut counters, next, &points);
        assert_eq!(counters.get(&"x"), 4.0);
    }

    #[test]
    fn catch_up_is_bounded_per_cycle() {
        let mut ledger = Ledger::new(Duration::from_secs(60), Duration::from_secs(0), 10);
        ledger.pending(0);
        let window = ledger.pending(100 * P);
        assert_eq!(
            window,
            Window {
                start: 0,
                end: 10 * P
            }
        );
        ledger.commit(window);
        assert_eq!(ledger.pending(100 * P).start, 10 * P);
    }

    #[test]
    fn clock_going_back_reads_nothing() {
        let mut ledger = ledger();
        ledger.pending(10_000 * P);
        assert!(ledger.pending(9_000 * P).is_empty());
    }

    #[test]
    fn counters_never_decrease() {
        let mut counters = Counters::default();
        counters.add(&"x", 5.0);
        counters.add(&"x", -3.0);
        counters.add(&"x", f64::NAN);
        assert_eq!(counters.get(&"x"), 5.0);
        counters.retain(|_| false);
        assert_eq!(counters.get(&"x"), 0.0);
    }
}
