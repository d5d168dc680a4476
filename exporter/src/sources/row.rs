//! What a provider's registry row is made of: the [`Provider`] type its `provider.rs` fills, the
//! kinds of load balancer it reads, and the [`SourceGroup`]s a config runs for it. The table of
//! rows, and what iterates it, is `registry.rs`.

use std::collections::BTreeSet;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinSet;

use super::api::RateLimiter;
use super::engine::{run_source, source_key, Source};
use super::pricing::PlanFuture;
use crate::config::{CloudJob, Config};
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
    pub source_groups: fn(&Config) -> Vec<SourceGroup>,
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
    /// What its `lb`, `lb_type` and `target_group` labels hold (docs/metrics.md, "Labels").
    pub labels: &'static str,
    /// The fuzz entry point of its own answer parser: `fuzz/fuzz_targets/answers_<name>.rs` calls
    /// it, and the suite replays `fuzz/corpus/answers_<name>/` through it.
    pub fuzz: fn(&[u8]),
    /// Its `lbtriage plan` rows: the fleet surveyed with read-only calls, and what reading it costs.
    pub plan: for<'a> fn(&'a Config) -> PlanFuture<'a>,
    /// Environment variables that carry the provider's credentials (never to be printed).
    pub credential_env: &'static [&'static str],
}

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
}

/// What a source group needs from the running exporter to start.
pub struct Context {
    pub store: Arc<Store>,
    pub discovered: Arc<Discovered>,
    pub shutdown: watch::Receiver<bool>,
}

type Spawn = dyn Fn(Context, &mut JoinSet<()>) + Send + Sync;

/// What runs for one part of a provider's config: one source, or several that share a bound
/// (Alibaba's regions share a job's call rate). A reload keeps a running group whose key and
/// settings are unchanged.
#[derive(Clone)]
pub struct SourceGroup {
    pub key: String,
    /// The unit's settings, compared across reloads (their `Debug` form: every field counts).
    pub settings: String,
    /// Store keys of the group's sources; the exporter is ready once each has reported.
    pub source_keys: Vec<String>,
    spawn: Arc<Spawn>,
}

impl SourceGroup {
    pub fn new(
        key: String,
        settings: &impl std::fmt::Debug,
        source_keys: Vec<String>,
        spawn: impl Fn(Context, &mut JoinSet<()>) + Send + Sync + 'static,
    ) -> Self {
        SourceGroup {
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

impl PartialEq for SourceGroup {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key && self.settings == other.settings
    }
}

impl std::fmt::Debug for SourceGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceGroup")
            .field("key", &self.key)
            .field("settings", &self.settings)
            .finish()
    }
}

/// One group for a key-pair job (Alibaba, Tencent), whose regions share its call-rate bound (the
/// limit is the account's): a source per region, `source(job, region, limiter)` building each,
/// keyed `<provider>/<job>` with sources `<provider>/<job>/<region>`.
pub fn shared_rate_group<J, S>(
    provider: &'static str,
    job: &J,
    source: fn(J, String, Arc<RateLimiter>, Arc<Discovered>) -> S,
) -> SourceGroup
where
    J: CloudJob + std::fmt::Debug + Clone + Send + Sync + 'static,
    S: Source,
{
    let core = job.core();
    let regions = core.regions.to_vec();
    let calls_per_second = job.key_pair().map_or(1, |pair| pair.max_calls_per_second);
    let source_keys = regions
        .iter()
        .map(|region| source_key(provider, core.name, region))
        .collect();
    let spawned = job.clone();
    SourceGroup::new(
        format!("{provider}/{}", core.name),
        job,
        source_keys,
        move |context, tasks| {
            let limiter = Arc::new(RateLimiter::new(calls_per_second));
            for region in &regions {
                let source = source(
                    spawned.clone(),
                    region.clone(),
                    limiter.clone(),
                    context.discovered.clone(),
                );
                tasks.spawn(run_source(
                    source,
                    context.store.clone(),
                    context.shutdown.clone(),
                ));
            }
        },
    )
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

/// ` → `labels`` after a mapping line, or nothing.
pub fn label_suffix(labels: &[(&str, &str)]) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let labels = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{v}\""))
        .collect::<Vec<_>>()
        .join(", ");
    format!(" → `{labels}`")
}
