//! The providers lbtriage reads, one row each. A cloud is its folder under `sources/`, its section
//! of the config and its row here: what runs for a config (units and their sources' store keys),
//! which families each kind of its load balancers fills, where each family comes from (the
//! provider's column in docs/metrics.md), the least-privilege policy it ships and the environment
//! variables that carry its credentials all come from the row.

use std::collections::BTreeSet;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinSet;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{alibaba, aws, tencent};
use crate::config::Config;
use crate::runtime::Discovered;
use crate::store::families::Family;
use crate::store::Store;

/// One cloud.
pub struct Provider {
    /// The config section and the value of the `provider` label.
    pub name: &'static str,
    /// The provider's column heading in docs/metrics.md.
    pub title: &'static str,
    /// The kinds of load balancer it reads, as the catalog's `providers:` names them.
    pub kinds: &'static [LbKind],
    /// What a config runs for this provider.
    pub units: fn(&Config) -> Vec<Unit>,
    /// The families a kind of load balancer's source fills, or `None` for another provider's
    /// kind. The catalog's `providers:` field is checked against this (tests/rules.rs), so an
    /// alert never claims to fire where nothing feeds it.
    pub families_fed: fn(LbKind) -> Option<BTreeSet<&'static str>>,
    /// Where a family comes from, one line per metric (docs/metrics.md).
    pub mapping: fn(&Family) -> Vec<String>,
    /// The least-privilege policy under `deploy/iam/`, and every API action the code calls, as
    /// the policy names them.
    pub policy_file: &'static str,
    pub actions: fn() -> Vec<String>,
    /// What docs/metrics.md says about the provider's mapping beyond its column, one note each.
    pub notes: &'static [&'static str],
    /// Environment variables that carry the provider's credentials (never to be printed).
    pub credential_env: &'static [&'static str],
}

/// Every provider; adding a cloud adds a row.
pub static PROVIDERS: [&Provider; 3] = [&aws::PROVIDER, &alibaba::PROVIDER, &tencent::PROVIDER];

/// A kind of load balancer (`aws_alb`, `alibaba_slb`, ...): a column of the coverage table in
/// docs/causes.md and a value of a cause's `providers:` in the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LbKind {
    pub id: &'static str,
    pub title: &'static str,
}

impl LbKind {
    pub fn as_str(self) -> &'static str {
        self.id
    }

    pub fn title(self) -> &'static str {
        self.title
    }

    /// Every kind, in registry order.
    pub fn all() -> Vec<LbKind> {
        PROVIDERS
            .iter()
            .flat_map(|provider| provider.kinds.iter().copied())
            .collect()
    }

    pub fn find(id: &str) -> Option<LbKind> {
        Self::all().into_iter().find(|kind| kind.id == id)
    }
}

impl<'de> Deserialize<'de> for LbKind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let id = String::deserialize(deserializer)?;
        LbKind::find(&id).ok_or_else(|| {
            let known: Vec<&str> = LbKind::all().iter().map(|kind| kind.id).collect();
            serde::de::Error::custom(format!(
                "unknown kind of load balancer {id:?} (known: {})",
                known.join(", ")
            ))
        })
    }
}

impl Serialize for LbKind {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.id)
    }
}

/// What a unit needs from the running exporter to start.
pub struct Context {
    pub store: Arc<Store>,
    pub discovered: Arc<Discovered>,
    pub shutdown: watch::Receiver<bool>,
}

type Spawn = dyn Fn(Context, &mut JoinSet<()>) + Send + Sync;

/// What runs for one part of a provider's config: one source, or several that share a bound
/// (Alibaba's regions share a job's call rate). A reload keeps a running unit whose key and
/// settings are unchanged.
#[derive(Clone)]
pub struct Unit {
    pub key: String,
    /// The unit's settings, compared across reloads (their `Debug` form: every field counts).
    pub settings: String,
    /// Store keys of the unit's sources; the exporter is ready once each has reported.
    pub source_keys: Vec<String>,
    spawn: Arc<Spawn>,
}

impl Unit {
    pub fn new(
        key: String,
        settings: &impl std::fmt::Debug,
        source_keys: Vec<String>,
        spawn: impl Fn(Context, &mut JoinSet<()>) + Send + Sync + 'static,
    ) -> Self {
        Unit {
            key,
            settings: format!("{settings:?}"),
            source_keys,
            spawn: Arc::new(spawn),
        }
    }

    pub fn spawn(&self, context: Context, tasks: &mut JoinSet<()>) {
        (self.spawn)(context, tasks)
    }
}

impl PartialEq for Unit {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key && self.settings == other.settings
    }
}

impl std::fmt::Debug for Unit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Unit")
            .field("key", &self.key)
            .field("settings", &self.settings)
            .finish()
    }
}

/// One unit for a job whose regions share its call-rate bound (the limit is the account's): a
/// source per region, `source(job, region, limiter)` building each.
pub fn shared_rate_unit<J, S>(
    key: String,
    job: &J,
    source_keys: Vec<String>,
    regions: Vec<String>,
    calls_per_second: u32,
    source: fn(J, String, Arc<crate::sources::api::RateLimiter>, Arc<Discovered>) -> S,
) -> Unit
where
    J: std::fmt::Debug + Clone + Send + Sync + 'static,
    S: super::Source,
{
    let spawned = job.clone();
    Unit::new(key, job, source_keys, move |context, tasks| {
        let limiter = Arc::new(crate::sources::api::RateLimiter::new(calls_per_second));
        for region in &regions {
            let source = source(
                spawned.clone(),
                region.clone(),
                limiter.clone(),
                context.discovered.clone(),
            );
            tasks.spawn(super::run_source(
                source,
                context.store.clone(),
                context.shutdown.clone(),
            ));
        }
    })
}

/// `` `a` − `b` + `c` ``: a signed sum of metrics, as docs/metrics.md writes it.
pub fn terms_text(terms: &[(&str, f64)]) -> String {
    terms
        .iter()
        .enumerate()
        .map(|(i, (metric, sign))| match (i, *sign < 0.0) {
            (0, _) => format!("`{metric}`"),
            (_, true) => format!(" − `{metric}`"),
            (_, false) => format!(" + `{metric}`"),
        })
        .collect()
}

/// Every provider's units of a config.
pub fn units(config: &Config) -> Vec<Unit> {
    PROVIDERS
        .iter()
        .flat_map(|provider| (provider.units)(config))
        .collect()
}

/// Store keys of every source the config defines.
pub fn source_keys(config: &Config) -> Vec<String> {
    units(config)
        .into_iter()
        .flat_map(|unit| unit.source_keys)
        .collect()
}

/// The families a kind of load balancer's source fills.
pub fn families_fed(kind: LbKind) -> BTreeSet<&'static str> {
    PROVIDERS
        .iter()
        .find_map(|provider| (provider.families_fed)(kind))
        .unwrap_or_default()
}
