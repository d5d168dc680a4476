//! One row of a cloud's metric table, the same type for every cloud: which family a signed sum of
//! the provider's metrics feeds, in which unit the provider publishes them, the tier it is read in
//! and whether it alarms. What only one cloud needs (a CloudWatch statistic and dimension scope,
//! a CloudMonitor namespace and listener rule, a Cloud Monitor namespace restriction) is the
//! row's `cloud` part.

use std::collections::BTreeMap;

use super::tiers::Tier;
use crate::config::Collection;
use crate::store::families::Family;
use crate::store::Kind;

/// The unit a provider publishes a metric in; [`PublishedUnit::to_base`] gives the family's base
/// unit for one period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishedUnit {
    /// Already the family's unit: a period's count, or seconds (CloudWatch's `Sum`s and times).
    Base,
    /// Count per second: × period gives the period's count.
    PerSecond,
    /// Bits per second: × period / 8 gives the period's bytes.
    BitsPerSecond,
    Milliseconds,
    /// 0–100: / 100 gives a ratio.
    Percent,
}

impl PublishedUnit {
    /// A period's value in the family's base unit.
    pub fn to_base(self, value: f64, period: i64) -> f64 {
        match self {
            PublishedUnit::Base => value,
            PublishedUnit::PerSecond => value * period as f64,
            PublishedUnit::BitsPerSecond => value * period as f64 / 8.0,
            PublishedUnit::Milliseconds => value / 1000.0,
            PublishedUnit::Percent => value / 100.0,
        }
    }

    /// How docs/metrics.md describes the conversion.
    pub fn conversion_text(self) -> &'static str {
        match self {
            PublishedUnit::Base => "as published",
            PublishedUnit::PerSecond => "per second × period",
            PublishedUnit::BitsPerSecond => "bit/s × period ÷ 8",
            PublishedUnit::Milliseconds => "ms ÷ 1000",
            PublishedUnit::Percent => "% ÷ 100",
        }
    }
}

#[derive(Debug)]
pub struct Series<X: 'static> {
    pub family: &'static Family,
    /// Fixed labels the row contributes (`origin`, `code`, `direction`), in output order.
    pub labels: &'static [(&'static str, &'static str)],
    /// (metric, sign): the series is Σ sign × metric per period.
    pub terms: &'static [(&'static str, f64)],
    pub unit: PublishedUnit,
    pub tier: Tier,
    /// A sentinel whose non-zero period wakes the load balancer's detail tier.
    pub alarm: bool,
    /// False for a series read only as an alarm in adaptive collection: finer series of the
    /// detail tier export its value.
    pub exported: bool,
    pub cloud: X,
}

impl<X: Copy> Series<X> {
    /// A detail-tier row; the builders below move it to another tier.
    pub const fn new(
        family: &'static Family,
        labels: &'static [(&'static str, &'static str)],
        terms: &'static [(&'static str, f64)],
        unit: PublishedUnit,
        cloud: X,
    ) -> Self {
        Series {
            family,
            labels,
            terms,
            unit,
            tier: Tier::Detail,
            alarm: false,
            exported: true,
            cloud,
        }
    }

    pub const fn sentinel(mut self) -> Self {
        self.tier = Tier::Sentinel;
        self
    }

    pub const fn alarm(mut self) -> Self {
        self.tier = Tier::Sentinel;
        self.alarm = true;
        self
    }

    pub const fn alarm_only(mut self) -> Self {
        self = self.alarm();
        self.exported = false;
        self
    }

    pub const fn slow(mut self) -> Self {
        self.tier = Tier::Slow;
        self
    }

    pub const fn with(mut self, cloud: X) -> Self {
        self.cloud = cloud;
        self
    }
}

impl<X> Series<X> {
    /// The first (for most rows the only) metric.
    pub fn metric(&self) -> &'static str {
        self.terms.first().map_or("", |(metric, _)| *metric)
    }

    pub fn is_counter(&self) -> bool {
        self.family.kind == Kind::Counter
    }

    /// Whether a cycle in this collection mode reads the row at all.
    pub fn read_in(&self, collection: Collection) -> bool {
        self.exported || collection == Collection::Adaptive
    }

    /// The family's value for one period from the combined metric value.
    pub fn convert(&self, value: f64, period: i64) -> f64 {
        self.unit.to_base(value, period)
    }
}

/// Σ sign × metric per period: `points(metric)` gives one metric's `(period start, value)`s. A
/// period where a term published nothing counts that term as zero (the providers publish no
/// datapoint for a code that was not returned).
pub fn signed_sum<'a, P>(terms: &[(&'static str, f64)], points: P) -> BTreeMap<i64, f64>
where
    P: Fn(&'static str) -> &'a [(i64, f64)],
{
    let mut out = BTreeMap::new();
    for (metric, sign) in terms {
        for (timestamp, value) in points(metric) {
            *out.entry(*timestamp).or_insert(0.0) += sign * value;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::families as f;

    #[test]
    fn published_units_become_base_units() {
        assert_eq!(PublishedUnit::PerSecond.to_base(2.5, 60), 150.0);
        assert_eq!(PublishedUnit::Base.to_base(7.0, 60), 7.0);
        assert_eq!(PublishedUnit::BitsPerSecond.to_base(800.0, 60), 6000.0);
        assert_eq!(PublishedUnit::Milliseconds.to_base(250.0, 60), 0.25);
        assert_eq!(PublishedUnit::Percent.to_base(100.0, 60), 1.0);
    }

    #[test]
    fn builders_set_tier_alarm_and_export() {
        const ROW: Series<()> = Series::new(&f::LB_RESPONSES, &[], &[("a", 1.0)], PublishedUnit::Base, ());
        assert_eq!(ROW.tier, Tier::Detail);
        let only = ROW.alarm_only();
        assert!(only.alarm && !only.exported && only.tier == Tier::Sentinel);
        assert!(!only.read_in(Collection::Full) && only.read_in(Collection::Adaptive));
        assert_eq!(ROW.slow().tier, Tier::Slow);
    }

    #[test]
    fn a_signed_sum_counts_a_missing_term_as_zero() {
        let a = [(60, 5.0), (120, 1.0)];
        let b = [(60, 2.0)];
        let sum = signed_sum(
            &[("a", 1.0), ("b", -1.0)],
            |m| if m == "a" { &a[..] } else { &b[..] },
        );
        assert_eq!(sum.get(&60), Some(&3.0));
        assert_eq!(sum.get(&120), Some(&1.0));
    }
}
