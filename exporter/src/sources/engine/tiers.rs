//! Adaptive collection: which of a load balancer's metrics are read in a cycle, and how each
//! period is still counted exactly once when tiers are read at different times.
//!
//! - The **sentinel** tier is read every cycle. Some of its metrics are *alarms* (5xx counts): a
//!   period where one is above zero wakes the detail tier of that load balancer.
//! - The **detail** tier is read for a load balancer while its detail watermark has not passed the
//!   newest alarming period, from that watermark: the quiet periods before are back-filled, so the
//!   first erroring period is counted, and a failed read is retried from the same place.
//! - The **slow** tier is read every `slow_interval`. Its counters are released one period at a
//!   time, `slow_interval` after the period's data was complete, so `rate()` sees a steady series
//!   shifted by a constant lag instead of one step every `slow_interval`. Its gauges (host counts)
//!   are also read every cycle while the detail tier is awake, so they are current in an outage.
//!
//! In `full` collection every tier is read every cycle and nothing is held back.

use std::time::Duration;

use super::period::{Counters, Ledger, Window};
use crate::config::Collection;

/// How often a metric is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tier {
    Sentinel,
    Detail,
    Slow,
}

impl Tier {
    pub const ALL: [Tier; 3] = [Tier::Sentinel, Tier::Detail, Tier::Slow];

    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Sentinel => "sentinel",
            Tier::Detail => "detail",
            Tier::Slow => "slow",
        }
    }
}

/// The slow families also read every cycle while a load balancer's detail tier is awake: the host
/// counts, so "no healthy target" is as current in an outage as in `full` collection.
pub fn read_while_awake(family: &crate::store::families::Family) -> bool {
    use crate::store::families::{LB_HEALTHY_TARGETS, LB_UNHEALTHY_TARGETS};
    std::ptr::eq(family, &LB_HEALTHY_TARGETS) || std::ptr::eq(family, &LB_UNHEALTHY_TARGETS)
}

/// The timing every load balancer of a source shares.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub collection: Collection,
    pub period: Duration,
    pub delay: Duration,
    pub slow_interval: Duration,
    /// The period the slow tier is read at: the source's own, or a coarser one where a provider
    /// bills by the datapoint page (CloudMonitor), whose value is spread evenly over its periods.
    pub slow_period: Duration,
    /// How long after it was first counted a period is re-read, and a larger value adds the
    /// difference (late data); zero counts each period once, `delay` after it ends.
    pub settle: Duration,
}

impl Timing {
    /// How old a gauge's datapoint may be and still be exported: the lookback, plus the slow
    /// cadence for gauges read on it.
    pub fn gauge_horizon(&self, tier: Tier, lookback: i64) -> i64 {
        match (tier, self.collection) {
            (Tier::Slow, Collection::Adaptive) => {
                lookback + (self.slow_interval + self.slow_period).as_secs() as i64
            }
            _ => lookback,
        }
    }

    fn period_secs(&self) -> i64 {
        self.period.as_secs().max(1) as i64
    }

    fn slow_period_secs(&self) -> i64 {
        (self.slow_period.as_secs() as i64).max(self.period_secs())
    }

    /// How long slow-tier counters are held back so each cycle releases about one period: the
    /// slow interval in whole periods, plus what a coarse slow period adds (none when the slow
    /// tier is read at least once a period: then it never jumps more than `full` would).
    fn lag(&self) -> i64 {
        match self.collection {
            Collection::Full => 0,
            Collection::Adaptive => {
                let period = self.period_secs();
                self.slow_interval.as_secs() as i64 / period * period + self.slow_period_secs() - period
            }
        }
    }
}

/// CloudWatch keeps one-minute data for 15 days: the detail tier back-fills at most that far.
const BACKFILL_HORIZON: Duration = Duration::from_secs(15 * 86_400);

/// One load balancer's tiers: a ledger for detail and slow (the sentinel's is the source's), the
/// newest alarming period, and the slow counters' values waiting for release.
#[derive(Debug, Clone)]
pub struct Book<K> {
    timing: Timing,
    detail: Ledger,
    slow: Ledger,
    alarm: Option<i64>,
    last_slow_read: Option<i64>,
    held: Vec<(i64, K, f64)>,
}

impl<K: std::hash::Hash + Eq + Clone> Book<K> {
    /// A load balancer first seen when the sentinel counts from `start`: its detail tier counts
    /// from there too, so an alarm in that first window is covered. Its slow tier starts its lag
    /// earlier: its counters are released that far behind, so they run steady from the first
    /// cycle instead of standing still for `slow_interval` (the page's request count among them).
    pub fn new(timing: Timing, start: i64) -> Self {
        let backfill = (BACKFILL_HORIZON.as_secs() / timing.period.as_secs().max(1)) as u32;
        Book {
            timing,
            detail: Ledger::new(timing.period, timing.delay, backfill).starting_at(start),
            slow: Ledger::new(timing.slow_period.max(timing.period), timing.delay, backfill)
                .starting_at(align_up(start - timing.lag(), timing.slow_period_secs())),
            alarm: None,
            last_slow_read: None,
            held: Vec::new(),
        }
    }

    /// Where a tier started counting: a period before it was never counted by that tier, so a
    /// re-read of unsettled periods never reaches back past it.
    pub fn started_at(&self, tier: Tier) -> Option<i64> {
        match tier {
            Tier::Slow => self.slow.first(),
            _ => self.detail.first(),
        }
    }

    /// Records that the sentinel saw an alarm in the period starting at `period_start`.
    pub fn alarm(&mut self, period_start: i64) {
        self.alarm = self.alarm.max(Some(period_start));
    }

    /// The start of the newest period the sentinel alarmed in.
    pub fn last_alarm(&self) -> Option<i64> {
        self.alarm
    }

    /// Whether the detail tier is read this cycle: always in `full`, else while an alarming
    /// period is not yet covered.
    pub fn detail_awake(&self) -> bool {
        match self.timing.collection {
            Collection::Full => true,
            Collection::Adaptive => match (self.alarm, self.detail.watermark()) {
                (Some(alarm), Some(watermark)) => watermark <= alarm,
                _ => false,
            },
        }
    }

    /// Whether the whole slow tier is read this cycle.
    pub fn slow_due(&self, now: i64) -> bool {
        match self.timing.collection {
            Collection::Full => true,
            Collection::Adaptive => self
                .last_slow_read
                .is_none_or(|last| now - last >= self.timing.slow_interval.as_secs() as i64),
        }
    }

    /// The periods the detail (or slow) tier would count at `now`.
    pub fn pending(&mut self, tier: Tier, now: i64) -> Window {
        match tier {
            Tier::Slow => self.slow.pending(now),
            _ => self.detail.pending(now),
        }
    }

    /// Marks a tier's window counted; for the slow tier, also when it was read.
    pub fn commit(&mut self, tier: Tier, window: Window, now: i64) {
        match tier {
            Tier::Slow => {
                self.slow.commit(window);
                self.last_slow_read = Some(now);
            }
            _ => self.detail.commit(window),
        }
    }

    /// Keeps a slow counter's value of the slow period starting at `period_start` until its
    /// release, spread evenly over the source's periods within it.
    pub fn hold(&mut self, key: &K, period_start: i64, value: f64) {
        let period = self.timing.period_secs();
        let pieces = (self.timing.slow_period_secs() / period).max(1);
        for piece in 0..pieces {
            self.held
                .push((period_start + piece * period, key.clone(), value / pieces as f64));
        }
    }

    /// Adds to `counters` every held value whose period is due at `now`: `lag` after the period's
    /// data was complete, and never past what the slow tier has read.
    pub fn release(&mut self, now: i64, counters: &mut Counters<K>) {
        // The detail ledger runs on the source's own period and delay.
        let complete = self.detail.complete_until(now) - self.timing.lag();
        let until = self.slow.watermark().map_or(complete, |w| w.min(complete));
        self.held.retain(|(period, key, value)| {
            if *period < until {
                counters.add(key, *value);
                false
            } else {
                true
            }
        });
    }
}

fn align_up(timestamp: i64, period: i64) -> i64 {
    timestamp.div_euclid(period) * period
        + if timestamp.rem_euclid(period) == 0 {
            0
        } else {
            period
        }
}

/// Tells the probes which load balancers alarmed (auto probes follow the alarm): each book's
/// newest alarming period, keyed by `lb`.
pub fn share_alarms<K: std::hash::Hash + Eq + Clone>(
    discovered: &crate::runtime::Discovered,
    books: &std::collections::HashMap<String, Book<K>>,
    now: i64,
) {
    for (lb, book) in books {
        if let Some(period_start) = book.last_alarm() {
            discovered.alarm(lb, period_start, now);
        }
    }
}

/// Metrics one load balancer's reads request, per tier (what `lbtriage plan` prices).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TierSizes {
    /// Every cycle in `adaptive` collection (alarm-only metrics included).
    pub sentinel: u64,
    /// Every cycle while the detail tier is awake.
    pub detail: u64,
    /// Every `slow_interval`.
    pub slow: u64,
    /// The slow tier's host counts, also read every cycle while the detail tier is awake.
    pub slow_gauges: u64,
    /// Every cycle in `full` collection.
    pub full: u64,
}

impl std::ops::AddAssign for TierSizes {
    fn add_assign(&mut self, other: TierSizes) {
        self.sentinel += other.sentinel;
        self.detail += other.detail;
        self.slow += other.slow;
        self.slow_gauges += other.slow_gauges;
        self.full += other.full;
    }
}

/// Seconds in the month the plan prices (30 days).
pub const MONTH_SECONDS: u64 = 30 * 86_400;

/// Metrics requested per month by a fleet of `sizes`, in each mode; `erroring` is the share of
/// time the detail tier is awake (0 for a quiet fleet).
pub fn metrics_per_month(sizes: TierSizes, timing: &Timing, interval: Duration, erroring: f64) -> (f64, f64) {
    let cycles = MONTH_SECONDS as f64 / interval.as_secs_f64().max(1.0);
    let slow_reads = MONTH_SECONDS as f64 / timing.slow_interval.as_secs_f64().max(1.0);
    let adaptive = cycles * sizes.sentinel as f64
        + slow_reads * sizes.slow as f64
        + erroring * cycles * (sizes.detail + sizes.slow_gauges) as f64;
    let full = cycles * sizes.full as f64;
    (adaptive, full)
}

/// The longest a tier's data waits after its period ended before a cycle exports it: the delay,
/// the period, one interval, and for slow counters the slow interval they are held back.
pub fn worst_latency(tier: Tier, timing: &Timing, interval: Duration) -> Duration {
    let base = timing.delay + timing.period + interval;
    match tier {
        Tier::Slow => base + Duration::from_secs(timing.lag() as u64),
        _ => base,
    }
}

/// The engine's tests' timing: one-minute periods counted two minutes late, a five-minute slow
/// tier, nothing re-read.
#[cfg(test)]
pub(crate) fn test_timing(collection: Collection) -> Timing {
    Timing {
        collection,
        period: Duration::from_secs(60),
        delay: Duration::from_secs(120),
        slow_interval: Duration::from_secs(300),
        slow_period: Duration::from_secs(60),
        settle: Duration::ZERO,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: i64 = 60;

    #[test]
    fn detail_sleeps_until_an_alarm_and_back_fills_from_its_watermark() {
        let mut book: Book<&str> = Book::new(test_timing(Collection::Adaptive), 100 * P);
        assert!(!book.detail_awake());
        // Quiet for an hour, then the sentinel sees errors in period 160.
        book.alarm(160 * P);
        assert!(book.detail_awake());
        let window = book.pending(Tier::Detail, 163 * P);
        assert_eq!((window.start, window.end), (100 * P, 161 * P));
        book.commit(Tier::Detail, window, 163 * P);
        assert!(!book.detail_awake(), "the alarming period is covered");
    }

    #[test]
    fn a_failed_detail_read_stays_awake() {
        let mut book: Book<&str> = Book::new(test_timing(Collection::Adaptive), 100 * P);
        book.alarm(101 * P);
        let failed = book.pending(Tier::Detail, 104 * P);
        assert!(book.detail_awake(), "nothing committed: read again next cycle");
        let retry = book.pending(Tier::Detail, 105 * P);
        assert_eq!(retry.start, failed.start);
    }

    #[test]
    fn slow_counters_are_released_one_period_at_a_time_after_the_lag() {
        let mut book = Book::new(test_timing(Collection::Adaptive), 100 * P);
        let mut counters = Counters::default();
        assert!(book.slow_due(100 * P));
        // The slow tier starts its lag (five periods) before the sentinel's 100 P: at 108 P its
        // read covers periods 95..106, one count each.
        let window = book.pending(Tier::Slow, 108 * P);
        assert_eq!((window.start, window.end), (95 * P, 106 * P));
        for period in window.start / P..window.end / P {
            book.hold(&"x", period * P, 1.0);
        }
        book.commit(Tier::Slow, window, 108 * P);
        assert!(!book.slow_due(112 * P));
        assert!(book.slow_due(113 * P));
        // Complete until 106 P; with a five-period lag, periods before 101 P are released: the
        // counter runs from the first cycle, as if lbtriage had been running all along.
        book.release(108 * P, &mut counters);
        assert_eq!(counters.get(&"x"), 6.0);
        book.release(109 * P, &mut counters);
        assert_eq!(counters.get(&"x"), 7.0);
        // Never past what was read, and each period once.
        book.release(200 * P, &mut counters);
        book.release(200 * P, &mut counters);
        assert_eq!(counters.get(&"x"), 11.0);
    }

    /// CloudMonitor: the slow tier read at 300 s periods; each one's count is spread over its
    /// five minutes and released with the extra lag of the coarse period.
    #[test]
    fn a_coarse_slow_period_is_spread_over_its_periods() {
        let timing = Timing {
            slow_interval: Duration::from_secs(600),
            slow_period: Duration::from_secs(300),
            ..test_timing(Collection::Adaptive)
        };
        // First seen at 101 P: the slow tier counts from the 5-minute boundary after its lag (14
        // periods) before that, 90 P.
        let mut book = Book::new(timing, 101 * P);
        let mut counters = Counters::default();
        let window = book.pending(Tier::Slow, 117 * P);
        assert_eq!((window.start, window.end), (90 * P, 115 * P));
        book.hold(&"x", 105 * P, 50.0);
        book.hold(&"x", 110 * P, 100.0);
        book.commit(Tier::Slow, window, 117 * P);
        // Lag 10 + 5 − 1 = 14 periods: at 117 P complete until 115 P, release before 101 P.
        book.release(117 * P, &mut counters);
        assert_eq!(counters.get(&"x"), 0.0);
        book.release(121 * P, &mut counters); // before 105 P: nothing, 106 P: one piece
        book.release(122 * P, &mut counters);
        assert_eq!(counters.get(&"x"), 10.0);
        book.release(200 * P, &mut counters);
        assert_eq!(counters.get(&"x"), 150.0);
    }

    #[test]
    fn full_collection_reads_everything_and_holds_nothing_back() {
        let mut book = Book::new(test_timing(Collection::Full), 100 * P);
        let mut counters = Counters::default();
        assert!(book.detail_awake());
        let window = book.pending(Tier::Slow, 103 * P);
        book.hold(&"x", 100 * P, 4.0);
        book.commit(Tier::Slow, window, 103 * P);
        assert!(book.slow_due(103 * P));
        book.release(103 * P, &mut counters);
        assert_eq!(counters.get(&"x"), 4.0);
    }
}
