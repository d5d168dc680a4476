//! The state every cloud's collection keeps, and the one place a datapoint becomes a value:
//! the sentinel's ledger, each load balancer's book (detail and slow tiers), the counters and the
//! newest gauges. A cloud hands [`Counting::apply`] what a read returned, as [`Observation`]s; it
//! never adds to a counter itself.
//!
//! **Count early, reconcile late.** A period is first counted `delay` after it ends; every read of
//! its tier re-reads it until it is `settle` old, and a larger value adds only the difference. What a
//! counter has added for a period is therefore never more than the provider's value for it, and
//! equals the provider's final value once the period has settled. A value that shrinks on re-read
//! is kept as counted (a counter never decreases) and counted in `lbtriage_collection_value_revisions_total`.
//!
//! Two rules hold for every cloud:
//! - **A period's value is never below zero.** A row that is a difference of two metrics (what a
//!   load balancer generated = all 5xx − the backends' 5xx) can go negative when the two were
//!   published at different moments; the period then counts zero, for counters and gauges alike.
//! - **A gauge is its newest datapoint**, kept until a newer one arrives, and exported while it is
//!   at most the gauge horizon older than what the sentinel has counted
//!   ([`Timing::gauge_horizon`]): a level the provider stopped publishing disappears instead of
//!   standing still.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Debug;
use std::hash::Hash;
use std::sync::Arc;

use super::period::{Counters, Ledger, Window};
use super::series::Series;
use super::tiers::{read_while_awake, share_alarms, Book, Tier, Timing};
use crate::config::Collection;
use crate::runtime::Discovered;
use crate::store::families::Family;

/// Levels take the newest datapoint within this many periods.
pub const GAUGE_LOOKBACK_PERIODS: i64 = 5;

/// The identity of one exported series of a cloud, stable across cycles.
pub trait SeriesKey: Clone + Eq + Hash + Ord + Debug + Send + Sync + 'static {
    /// The load balancer the series belongs to (its `lb` label).
    fn lb(&self) -> &str;
}

/// What one read of a cycle covers: the sentinel window (every load balancer, first read only),
/// and the detail and slow windows of the load balancers whose tiers are read.
#[derive(Debug, Clone, Default)]
pub struct Reads {
    pub sentinel: Option<Window>,
    pub windows: BTreeMap<(String, Tier), Window>,
    /// Load balancers whose detail tier is awake (their slow host counts are read too).
    pub awake: BTreeSet<String>,
    /// The start of the oldest period not yet settled: a read reaches back to it, and what a tier
    /// counted from there on is reconciled. `None` without `settle`.
    pub settle_from: Option<i64>,
    /// In `adaptive` collection, the sentinel's read also covers the period still completing, up
    /// to here: its alarms wake the detail tier a read earlier; it is not counted until complete.
    pub alarm_until: Option<i64>,
}

impl Reads {
    pub fn sentinel(window: Window) -> Self {
        Reads {
            sentinel: Some(window),
            ..Reads::default()
        }
    }

    /// The window a tier of a load balancer counts in this read.
    pub fn window(&self, lb: &str, tier: Tier) -> Option<Window> {
        match tier {
            Tier::Sentinel => self.sentinel,
            _ => self.windows.get(&(lb.to_string(), tier)).copied(),
        }
    }

    /// Whether this read asks for a row of a load balancer.
    pub fn reads(&self, lb: &str, tier: Tier, family: &Family) -> bool {
        match tier {
            Tier::Sentinel => self.sentinel.is_some(),
            Tier::Detail => self.windows.contains_key(&(lb.to_string(), Tier::Detail)),
            Tier::Slow => {
                self.windows.contains_key(&(lb.to_string(), Tier::Slow))
                    || (self.awake.contains(lb) && read_while_awake(family))
            }
        }
    }

    /// The earliest period a read of these tiers reaches back to: any of their windows, the
    /// unsettled periods, or `floor` if earlier (or none).
    pub fn start(&self, tiers: &[Tier], floor: i64) -> i64 {
        self.all_windows(tiers)
            .map(|w| w.start)
            .chain(self.settle_from)
            .fold(floor, i64::min)
    }

    /// The latest end of a tier's windows (for the sentinel, of the period still completing), or
    /// `floor` if later (or none).
    pub fn end(&self, tiers: &[Tier], floor: i64) -> i64 {
        let alarms = self.alarm_until.filter(|_| tiers.contains(&Tier::Sentinel));
        self.all_windows(tiers)
            .map(|w| w.end)
            .chain(alarms)
            .fold(floor, i64::max)
    }

    /// Whether no window holds a period to count.
    pub fn nothing_new(&self) -> bool {
        self.all_windows(&Tier::ALL).all(|w| w.is_empty())
    }

    fn all_windows<'a>(&'a self, tiers: &'a [Tier]) -> impl Iterator<Item = &'a Window> + 'a {
        let sentinel = self.sentinel.iter().filter(|_| tiers.contains(&Tier::Sentinel));
        let rest = self
            .windows
            .iter()
            .filter(|((_, tier), _)| tiers.contains(tier))
            .map(|(_, w)| w);
        sentinel.chain(rest)
    }

    /// Adds another read's windows (in `full` collection the first read holds every tier).
    pub fn merge(&mut self, other: Reads) {
        self.sentinel = self.sentinel.or(other.sentinel);
        self.windows.extend(other.windows);
        self.awake.extend(other.awake);
        self.settle_from = self.settle_from.or(other.settle_from);
        self.alarm_until = self.alarm_until.or(other.alarm_until);
    }
}

/// What a read returned for one series: a row's values per period, in the provider's unit.
#[derive(Debug, Clone)]
pub struct Observation<K> {
    pub key: K,
    pub tier: Tier,
    pub counter: bool,
    pub alarm: bool,
    pub exported: bool,
    pub unit: super::series::PublishedUnit,
    /// The period the values were read at (the slow tier may read a coarser one).
    pub period: i64,
    /// (period start, value), oldest first.
    pub points: Vec<(i64, f64)>,
}

impl<K> Observation<K> {
    pub fn of<X>(series: &Series<X>, key: K, period: i64, points: Vec<(i64, f64)>) -> Self {
        Observation {
            key,
            tier: series.tier,
            counter: series.is_counter(),
            alarm: series.alarm,
            exported: series.exported,
            unit: series.unit,
            period,
            points,
        }
    }
}

/// The counting state of one source.
pub struct Counting<K> {
    timing: Timing,
    ledger: Ledger,
    /// Where the sentinel's current window starts: a load balancer first seen now counts from here.
    sentinel_start: i64,
    books: HashMap<String, Book<K>>,
    counters: Counters<K>,
    gauges: BTreeMap<K, (i64, f64)>,
    /// What each counter added for each period not yet settled (only with `settle`).
    counted: HashMap<(K, i64), f64>,
    /// Re-reads that found a smaller value than the one counted (kept, never subtracted).
    revisions: u64,
    /// The start of the newest period a counter added a value for.
    newest_counted: Option<i64>,
    /// Where unsettled periods start this cycle (`None` without `settle`).
    settle_from: Option<i64>,
    discovered: Option<Arc<Discovered>>,
}

impl<K: SeriesKey> Counting<K> {
    /// `max_periods` bounds how far one cycle catches up after an outage (the provider's limit
    /// on datapoints per call decides it).
    pub fn new(timing: Timing, max_periods: u32) -> Self {
        // A read reaches back over the unsettled periods too: the catch-up bound leaves room.
        let settle_periods = timing.settle.as_secs() / timing.period.as_secs().max(1);
        let max_periods = max_periods.saturating_sub(settle_periods as u32).max(1);
        Counting {
            timing,
            ledger: Ledger::new(timing.period, timing.delay, max_periods),
            sentinel_start: 0,
            books: HashMap::new(),
            counters: Counters::default(),
            gauges: BTreeMap::new(),
            counted: HashMap::new(),
            revisions: 0,
            newest_counted: None,
            settle_from: None,
            discovered: None,
        }
    }

    pub fn timing(&self) -> &Timing {
        &self.timing
    }

    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    pub fn period(&self) -> i64 {
        self.ledger.period()
    }

    /// What the probes share with the sources, where the exporter runs probes.
    pub fn discovered(&self) -> Option<&Arc<Discovered>> {
        self.discovered.as_ref()
    }

    pub fn set_discovered(&mut self, discovered: Arc<Discovered>) {
        self.discovered = Some(discovered);
    }

    /// The newest period boundary whose data is complete at `now`.
    pub fn complete_until(&self, now: i64) -> i64 {
        self.ledger.complete_until(now)
    }

    /// Where a read starts so that gauges find their newest datapoint.
    pub fn gauge_lookback(&self, now: i64) -> i64 {
        self.complete_until(now) - GAUGE_LOOKBACK_PERIODS * self.period()
    }

    /// The sentinel's read of this cycle: its window of new periods, and the unsettled periods
    /// it re-reads. Periods that settled are forgotten.
    pub fn begin(&mut self, now: i64) -> Reads {
        let window = self.ledger.pending(now);
        self.sentinel_start = window.start;
        self.settle_from = (!self.timing.settle.is_zero()).then(|| {
            let settle = self.timing.settle.as_secs() as i64;
            let oldest = (window.end - settle).div_euclid(self.period()) * self.period();
            oldest.max(self.ledger.first().unwrap_or(window.start))
        });
        let settled_before = self.settle_from.unwrap_or(i64::MAX);
        self.counted.retain(|(_, period), _| *period >= settled_before);
        let alarm_until =
            (self.timing.collection == Collection::Adaptive).then(|| window.end + self.period());
        Reads {
            settle_from: self.settle_from,
            alarm_until,
            ..Reads::sentinel(window)
        }
    }

    /// Load balancers known now get their tiers, counting from the sentinel's window.
    pub fn watch<'a>(&mut self, lbs: impl IntoIterator<Item = &'a str>) {
        for lb in lbs {
            if !self.books.contains_key(lb) {
                self.books
                    .insert(lb.to_string(), Book::new(self.timing, self.sentinel_start));
            }
        }
    }

    /// Drops the series (and, with every series of it, the tiers) of what is gone.
    pub fn retain(&mut self, keep: impl Fn(&K) -> bool) {
        self.counters.retain(&keep);
        self.gauges.retain(|key, _| keep(key));
    }

    /// Drops the load balancers that are gone: their tiers and every series.
    pub fn retain_lbs(&mut self, keep: impl Fn(&str) -> bool) {
        self.books.retain(|lb, _| keep(lb));
        self.retain(|key| keep(key.lb()));
    }

    /// The detail windows of load balancers whose detail tier is awake, and the slow windows of
    /// those whose slow tier is due.
    pub fn plan(&mut self, now: i64) -> Reads {
        let mut reads = Reads {
            settle_from: self.settle_from,
            ..Reads::default()
        };
        for (lb, book) in &mut self.books {
            if book.detail_awake() {
                reads
                    .windows
                    .insert((lb.clone(), Tier::Detail), book.pending(Tier::Detail, now));
                reads.awake.insert(lb.clone());
            }
            if book.slow_due(now) {
                reads
                    .windows
                    .insert((lb.clone(), Tier::Slow), book.pending(Tier::Slow, now));
            }
        }
        reads
    }

    /// Counts what a read returned, each period inside its (load balancer, tier) window once
    /// (slow counters are held for release), keeps the newest gauge datapoint, notes alarms, and
    /// commits the read's windows. Call only with everything the read returned.
    pub fn apply(&mut self, reads: &Reads, observations: Vec<Observation<K>>, now: i64) {
        for observation in observations {
            let values = observation.points.iter().map(|&(timestamp, value)| {
                (
                    timestamp,
                    observation.unit.to_base(value.max(0.0), observation.period),
                )
            });
            if !observation.counter {
                if let Some((timestamp, value)) = values.max_by_key(|(timestamp, _)| *timestamp) {
                    let newer = self
                        .gauges
                        .get(&observation.key)
                        .is_none_or(|(stored, _)| *stored <= timestamp);
                    if newer {
                        self.gauges.insert(observation.key, (timestamp, value));
                    }
                }
                continue;
            }
            let lb = observation.key.lb();
            let Some(window) = reads.window(lb, observation.tier) else {
                continue;
            };
            let (timing, start) = (self.timing, self.sentinel_start);
            let book = self
                .books
                .entry(lb.to_string())
                .or_insert_with(|| Book::new(timing, start));
            // Periods this tier counted before and that have not settled are read again.
            let tier_start = match observation.tier {
                Tier::Sentinel => self.ledger.first(),
                tier => book.started_at(tier),
            };
            let reconciled = |t: i64| {
                t < window.start
                    && reads.settle_from.is_some_and(|from| t >= from)
                    && tier_start.is_some_and(|first| t >= first)
            };
            // The period still completing: its alarm wakes the detail tier now; it counts later.
            let completing = |t: i64| {
                observation.alarm && t >= window.end && reads.alarm_until.is_some_and(|until| t < until)
            };
            let values: Vec<(i64, f64)> = values.collect();
            for &(timestamp, value) in values.iter().filter(|(t, _)| completing(*t)) {
                if value > 0.0 {
                    book.alarm(timestamp);
                }
            }
            for (timestamp, value) in values
                .into_iter()
                .filter(|(t, _)| window.contains(*t) || reconciled(*t))
            {
                if observation.alarm && value > 0.0 {
                    book.alarm(timestamp);
                }
                if !observation.exported {
                    continue;
                }
                // Only what the provider's value adds to what was counted for the period.
                let key = (observation.key.clone(), timestamp);
                let counted = self.counted.get(&key).copied().unwrap_or(0.0);
                if value < counted {
                    self.revisions += 1;
                    continue;
                }
                if value == counted {
                    continue;
                }
                if reads.settle_from.is_some() {
                    self.counted.insert(key, value);
                }
                self.newest_counted = self.newest_counted.max(Some(timestamp));
                match observation.tier {
                    Tier::Slow => book.hold(&observation.key, timestamp, value - counted),
                    _ => self.counters.add(&observation.key, value - counted),
                }
            }
        }
        for ((lb, tier), window) in &reads.windows {
            if let Some(book) = self.books.get_mut(lb) {
                book.commit(*tier, *window, now);
            }
        }
        if let Some(window) = reads.sentinel {
            self.ledger.commit(window);
        }
    }

    /// Adds the slow counters that are due.
    pub fn release(&mut self, now: i64) {
        for book in self.books.values_mut() {
            book.release(now, &mut self.counters);
        }
    }

    /// Tells the probes which load balancers alarmed (after the cloud shared its inventory: an
    /// alarm of a load balancer the probes do not know yet is not kept).
    pub fn share_alarms(&self, now: i64) {
        if let Some(shared) = &self.discovered {
            share_alarms(shared, &self.books, now);
        }
    }

    /// The start of the newest period a load balancer's sentinel alarmed in.
    pub fn last_alarm(&self, lb: &str) -> Option<i64> {
        self.books.get(lb).and_then(Book::last_alarm)
    }

    /// Re-reads that found a smaller value than the one counted.
    pub fn revisions(&self) -> u64 {
        self.revisions
    }

    /// The start of the newest period a counter added a value for.
    pub fn newest_counted(&self) -> Option<i64> {
        self.newest_counted
    }

    /// The start of the oldest period whose value may still change what the counters hold: the
    /// oldest unsettled period, or without `settle` the next period to count.
    pub fn oldest_unsettled(&self) -> Option<i64> {
        self.settle_from.or(self.ledger.watermark())
    }

    pub fn counter(&self, key: &K) -> f64 {
        self.counters.get(key)
    }

    /// A row's value to export: the counter, or the gauge while it is fresh.
    pub fn value<X>(&self, series: &Series<X>, key: &K) -> Option<f64> {
        if series.is_counter() {
            return Some(self.counter(key));
        }
        let (timestamp, value) = self.gauges.get(key)?;
        self.fresh(series.tier, *timestamp).then_some(*value)
    }

    /// Every fresh gauge of a tier from `from` on, in key order (a row kept apart per listener
    /// has one key per listener: the caller stops where the row ends).
    pub fn gauges_from<'a>(&'a self, tier: Tier, from: &K) -> impl Iterator<Item = (&'a K, f64)> + 'a {
        self.gauges
            .range(from.clone()..)
            .filter(move |(_, (timestamp, _))| self.fresh(tier, *timestamp))
            .map(|(key, (_, value))| (key, *value))
    }

    fn fresh(&self, tier: Tier, timestamp: i64) -> bool {
        let data_end = self.ledger.watermark().unwrap_or(i64::MIN);
        let horizon = self
            .timing
            .gauge_horizon(tier, GAUGE_LOOKBACK_PERIODS * self.period());
        timestamp >= data_end.saturating_sub(horizon)
    }

    pub fn collection(&self) -> Collection {
        self.timing.collection
    }
}

#[cfg(test)]
mod tests {
    use super::super::series::PublishedUnit;
    use super::*;
    use std::time::Duration;

    const P: i64 = 60;

    impl SeriesKey for (String, u8) {
        fn lb(&self) -> &str {
            &self.0
        }
    }

    fn counting(collection: Collection) -> Counting<(String, u8)> {
        Counting::new(crate::sources::engine::tiers::test_timing(collection), 60)
    }

    fn observation(tier: Tier, counter: bool, points: Vec<(i64, f64)>) -> Observation<(String, u8)> {
        Observation {
            key: ("lb-1".to_string(), 0),
            tier,
            counter,
            alarm: tier == Tier::Sentinel,
            exported: true,
            unit: PublishedUnit::Base,
            period: P,
            points,
        }
    }

    #[test]
    fn a_negative_period_counts_zero_for_counters_and_gauges() {
        let mut counting = counting(Collection::Full);
        counting.begin(100 * P);
        counting.watch(["lb-1"]);
        let reads = counting.begin(104 * P);
        let points = vec![(98 * P, 5.0), (99 * P, -3.0), (100 * P, 2.0)];
        counting.apply(&reads, vec![observation(Tier::Sentinel, true, points)], 104 * P);
        assert_eq!(counting.counter(&("lb-1".to_string(), 0)), 7.0);
        assert_eq!(counting.last_alarm("lb-1"), Some(100 * P));

        let mut gauge = observation(Tier::Detail, false, vec![(101 * P, -1.0)]);
        gauge.key.1 = 1;
        counting.apply(&Reads::default(), vec![gauge], 104 * P);
        assert_eq!(
            counting.gauges.get(&("lb-1".to_string(), 1)),
            Some(&(101 * P, 0.0))
        );
    }

    #[test]
    fn a_gauge_keeps_its_newest_datapoint_and_expires_past_the_horizon() {
        let mut counting = counting(Collection::Full);
        counting.begin(100 * P);
        let reads = counting.begin(103 * P);
        let newest = observation(Tier::Detail, false, vec![(99 * P, 4.0), (100 * P, 2.0)]);
        let older = observation(Tier::Detail, false, vec![(98 * P, 9.0)]);
        counting.apply(&reads, vec![newest, older], 103 * P);
        let key = ("lb-1".to_string(), 0);
        let row: Series<()> = Series::new(
            &crate::store::families::LB_TARGET_RESPONSE_TIME,
            &[],
            &[("m", 1.0)],
            PublishedUnit::Base,
            (),
        );
        assert_eq!(counting.value(&row, &key), Some(2.0));
        // Counted up to 101 P. Still exported while the sentinel has counted up to 105 P (five
        // periods on), gone once it has counted one more.
        for minute in 104..=107 {
            let reads = counting.begin(minute * P);
            counting.apply(&reads, vec![], minute * P);
        }
        assert_eq!(counting.value(&row, &key), Some(2.0));
        let reads = counting.begin(108 * P);
        counting.apply(&reads, vec![], 108 * P);
        assert_eq!(counting.value(&row, &key), None);
    }

    #[test]
    fn a_deleted_load_balancer_loses_its_tiers_and_series() {
        let mut counting = counting(Collection::Adaptive);
        counting.begin(100 * P);
        counting.watch(["lb-1", "lb-2"]);
        let reads = counting.begin(103 * P);
        counting.apply(
            &reads,
            vec![observation(Tier::Sentinel, true, vec![(100 * P, 1.0)])],
            103 * P,
        );
        counting.retain_lbs(|lb| lb != "lb-1");
        assert_eq!(counting.counter(&("lb-1".to_string(), 0)), 0.0);
        assert_eq!(counting.last_alarm("lb-1"), None);
        assert!(counting.books.contains_key("lb-2"));
    }

    fn settling(collection: Collection) -> Counting<(String, u8)> {
        let mut counting = counting(collection);
        counting.timing.settle = Duration::from_secs(5 * 60);
        counting
    }

    /// One cycle at `minute` whose sentinel read returns what the provider holds now.
    fn cycle(counting: &mut Counting<(String, u8)>, minute: i64, provider: &[(i64, f64)]) {
        let reads = counting.begin(minute * P);
        counting.watch(["lb-1"]);
        let from = reads.start(&[Tier::Sentinel], i64::MAX);
        let points = provider.iter().copied().filter(|(t, _)| *t >= from).collect();
        counting.apply(
            &reads,
            vec![observation(Tier::Sentinel, true, points)],
            minute * P,
        );
    }

    #[test]
    fn a_late_part_adds_only_the_difference_until_the_period_settles() {
        let mut counting = settling(Collection::Adaptive);
        let key = ("lb-1".to_string(), 0);
        cycle(&mut counting, 100, &[]);
        // Period 98 first shows 4, then 7 (a late part), then 7 again: counted 4, then +3.
        cycle(&mut counting, 101, &[(98 * P, 4.0)]);
        assert_eq!(counting.counter(&key), 4.0);
        cycle(&mut counting, 102, &[(98 * P, 7.0), (99 * P, 1.0)]);
        assert_eq!(counting.counter(&key), 8.0);
        cycle(&mut counting, 103, &[(98 * P, 7.0), (99 * P, 1.0)]);
        assert_eq!(
            counting.counter(&key),
            8.0,
            "a re-read of the same value adds nothing"
        );
        // Settled five minutes after it was counted: a part arriving then is not added.
        for minute in 104..=108 {
            cycle(&mut counting, minute, &[(98 * P, 7.0), (99 * P, 1.0)]);
        }
        cycle(&mut counting, 109, &[(98 * P, 20.0), (99 * P, 1.0)]);
        assert_eq!(counting.counter(&key), 8.0, "period 98 settled");
        assert_eq!(counting.newest_counted(), Some(99 * P));
        assert_eq!(counting.oldest_unsettled(), Some(102 * P));
    }

    #[test]
    fn a_value_that_shrinks_is_kept_and_counted_as_a_revision() {
        let mut counting = settling(Collection::Adaptive);
        let key = ("lb-1".to_string(), 0);
        cycle(&mut counting, 100, &[]);
        cycle(&mut counting, 101, &[(98 * P, 9.0)]);
        cycle(&mut counting, 102, &[(98 * P, 6.0)]);
        assert_eq!(counting.counter(&key), 9.0, "never subtracted");
        assert_eq!(counting.revisions(), 1);
        cycle(&mut counting, 103, &[(98 * P, 10.0)]);
        assert_eq!(
            counting.counter(&key),
            10.0,
            "the provider's value, once it passes the count"
        );
    }

    #[test]
    fn history_before_the_start_is_never_reconciled() {
        let mut counting = settling(Collection::Adaptive);
        let key = ("lb-1".to_string(), 0);
        // Started at 100 P: the first window begins at 98 P, so 96 and 97 are history.
        cycle(&mut counting, 100, &[(96 * P, 5.0), (97 * P, 5.0)]);
        cycle(&mut counting, 101, &[(96 * P, 5.0), (97 * P, 5.0), (98 * P, 2.0)]);
        assert_eq!(counting.counter(&key), 2.0);
    }

    #[test]
    fn without_settle_each_period_is_counted_once_and_nothing_is_remembered() {
        let mut counting = counting(Collection::Adaptive);
        let key = ("lb-1".to_string(), 0);
        cycle(&mut counting, 100, &[]);
        cycle(&mut counting, 101, &[(98 * P, 4.0)]);
        cycle(&mut counting, 102, &[(98 * P, 7.0), (99 * P, 1.0)]);
        assert_eq!(
            counting.counter(&key),
            5.0,
            "the late part of 98 is not read again"
        );
        assert!(counting.counted.is_empty());
    }

    #[test]
    fn an_alarm_in_the_period_still_completing_wakes_the_detail_tier_without_counting_it() {
        let mut counting = counting(Collection::Adaptive);
        let key = ("lb-1".to_string(), 0);
        counting.begin(100 * P);
        counting.watch(["lb-1"]);
        // At 101 P the complete periods end at 99 P; period 99 is still completing.
        let reads = counting.begin(101 * P);
        assert_eq!(reads.end(&[Tier::Sentinel], 0), 100 * P);
        let points = vec![(98 * P, 0.0), (99 * P, 3.0)];
        counting.apply(&reads, vec![observation(Tier::Sentinel, true, points)], 101 * P);
        assert_eq!(counting.last_alarm("lb-1"), Some(99 * P));
        assert_eq!(counting.counter(&key), 0.0, "not counted before it is complete");
        assert!(counting.plan(101 * P).awake.contains("lb-1"));
    }
}
