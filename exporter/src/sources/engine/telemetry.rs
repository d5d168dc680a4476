//! Self-metrics every source keeps about its own health and API use.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use super::period::Ledger;
use super::tiers::Tier;

use crate::store::{families, Labels, Sample};

/// Whether a source's cycles work: `lbtriage_source_up`, the last success, the duration and the
/// data age, the same for every provider.
#[derive(Debug, Default)]
pub struct Health {
    up: bool,
    last_success: f64,
    last_duration: f64,
}

impl Health {
    /// Records a finished cycle. A failed one is logged; the source's last good values keep serving.
    pub fn record<E: std::fmt::Display>(&mut self, source: &str, result: Result<(), E>, took: f64, now: i64) {
        match result {
            Ok(()) => {
                self.up = true;
                self.last_success = now as f64;
            }
            Err(err) => {
                self.up = false;
                tracing::warn!(source, error = %err, "collection failed; serving the last good values");
            }
        }
        self.last_duration = took;
    }

    pub fn up(&self) -> bool {
        self.up
    }

    /// The source's self-metrics: health, data end (when counting has started) and API calls.
    pub fn samples(
        &self,
        base: &Labels,
        ledger: &Ledger,
        interval: Duration,
        calls: &ApiCalls,
        out: &mut Vec<Sample>,
    ) {
        let gauge = |family, value| Sample::new(family, base.clone(), value);
        out.push(gauge(&families::SOURCE_UP, if self.up { 1.0 } else { 0.0 }));
        out.push(gauge(&families::COLLECTION_DURATION, self.last_duration));
        out.push(gauge(&families::COLLECTION_LAST_SUCCESS, self.last_success));
        if let Some(end) = ledger.watermark() {
            out.push(gauge(&families::DATA_PERIOD_END, end as f64));
        }
        out.push(gauge(&families::EXPECTED_DATA_AGE, ledger.expected_age(interval)));
        calls.samples(base, out);
    }
}

/// Outcome of one cloud API operation (after the SDK's own retries).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    Success,
    Throttled,
    Error,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Throttled => "throttled",
            Outcome::Error => "error",
        }
    }

    /// Classifies a provider error code; the providers spell throttling several ways.
    pub fn from_error_code(code: Option<&str>) -> Outcome {
        match code {
            Some(code)
                if code.contains("Throttl")
                    || code.contains("TooManyRequests")
                    || code == "RequestLimitExceeded" =>
            {
                Outcome::Throttled
            }
            _ => Outcome::Error,
        }
    }
}

/// Counts of API operations by api and outcome, for `lbtriage_api_calls_total`. Shared by the
/// concurrent calls of one cycle.
#[derive(Debug, Default)]
pub struct ApiCalls {
    counts: Mutex<BTreeMap<(&'static str, Outcome), u64>>,
    /// What CloudWatch bills: metric queries sent, summed over calls.
    metrics_requested: AtomicU64,
    /// Metric-reading calls and metrics requested by collection tier.
    tiers: Mutex<BTreeMap<Tier, (u64, u64)>>,
    /// Inventory APIs collection can do without, and whether the newest call of each failed.
    optional: Mutex<BTreeMap<&'static str, bool>>,
}

impl ApiCalls {
    fn counts(&self) -> std::sync::MutexGuard<'_, BTreeMap<(&'static str, Outcome), u64>> {
        self.counts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn record(&self, api: &'static str, outcome: Outcome) {
        *self.counts().entry((api, outcome)).or_insert(0) += 1;
    }

    /// The outcome of an inventory call collection goes on without (listeners, instance
    /// addresses, names): a refusal loses only what it provides, and shows in
    /// `lbtriage_inventory_call_failing` until the call succeeds again.
    pub fn optional_outcome(&self, api: &'static str, failed: bool) {
        let mut optional = self.optional.lock().unwrap_or_else(|p| p.into_inner());
        optional.insert(api, failed);
    }

    /// Whether the newest call of an optional inventory API failed.
    pub fn optional_failing(&self, api: &str) -> bool {
        let optional = self.optional.lock().unwrap_or_else(|p| p.into_inner());
        optional.get(api).copied().unwrap_or(false)
    }

    pub fn add_metrics_requested(&self, count: u64) {
        self.metrics_requested.fetch_add(count, Ordering::Relaxed);
    }

    /// Counts for a source with collection tiers: each tier's series shows from the start, at zero.
    pub fn with_tiers() -> Self {
        let calls = ApiCalls::default();
        for tier in Tier::ALL {
            calls.record_tier(tier, 0, 0);
        }
        calls
    }

    /// One metric-reading call of `tier` that asked for `metrics` metrics.
    pub fn record_tier(&self, tier: Tier, calls: u64, metrics: u64) {
        let mut tiers = self.tiers.lock().unwrap_or_else(|p| p.into_inner());
        let entry = tiers.entry(tier).or_insert((0, 0));
        entry.0 += calls;
        entry.1 += metrics;
    }

    /// (calls, metrics requested) of a tier so far.
    pub fn tier_usage(&self, tier: Tier) -> (u64, u64) {
        let tiers = self.tiers.lock().unwrap_or_else(|p| p.into_inner());
        tiers.get(&tier).copied().unwrap_or((0, 0))
    }

    pub fn metrics_requested(&self) -> u64 {
        self.metrics_requested.load(Ordering::Relaxed)
    }

    /// Calls per API, whatever their outcome.
    pub fn totals(&self) -> BTreeMap<&'static str, u64> {
        let mut totals = BTreeMap::new();
        for ((api, _), count) in self.counts().iter() {
            *totals.entry(*api).or_insert(0) += count;
        }
        totals
    }

    /// Calls of `api`, whatever their outcome.
    pub fn total(&self, api: &str) -> u64 {
        self.counts()
            .iter()
            .filter(|((a, _), _)| *a == api)
            .map(|(_, n)| *n)
            .sum()
    }

    pub fn count(&self, api: &str, outcome: Outcome) -> u64 {
        self.counts()
            .iter()
            .filter(|((a, o), _)| *a == api && *o == outcome)
            .map(|(_, n)| *n)
            .sum()
    }

    pub fn samples(&self, base: &Labels, out: &mut Vec<Sample>) {
        for ((api, outcome), count) in self.counts().iter() {
            let mut labels = base.clone();
            labels.push((Cow::Borrowed("api"), (*api).to_string()));
            labels.push((Cow::Borrowed("outcome"), outcome.as_str().to_string()));
            out.push(Sample::new(&families::API_CALLS, labels, *count as f64));
        }
        let optional = self.optional.lock().unwrap_or_else(|p| p.into_inner());
        for (api, failed) in optional.iter() {
            let mut labels = base.clone();
            labels.push((Cow::Borrowed("api"), (*api).to_string()));
            out.push(Sample::new(
                &families::INVENTORY_CALL_FAILING,
                labels,
                f64::from(u8::from(*failed)),
            ));
        }
        let tiers = self.tiers.lock().unwrap_or_else(|p| p.into_inner());
        for (tier, (calls, metrics)) in tiers.iter() {
            let mut labels = base.clone();
            labels.push((Cow::Borrowed("tier"), tier.as_str().to_string()));
            out.push(Sample::new(
                &families::COLLECTION_CALLS,
                labels.clone(),
                *calls as f64,
            ));
            out.push(Sample::new(
                &families::COLLECTION_METRICS_REQUESTED,
                labels,
                *metrics as f64,
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_codes_are_recognised() {
        for code in [
            "Throttling",
            "ThrottlingException",
            "Throttling.User",
            "TooManyRequestsException",
            "RequestLimitExceeded",
        ] {
            assert_eq!(Outcome::from_error_code(Some(code)), Outcome::Throttled, "{code}");
        }
        assert_eq!(Outcome::from_error_code(Some("AccessDenied")), Outcome::Error);
        assert_eq!(Outcome::from_error_code(None), Outcome::Error);
    }
}
