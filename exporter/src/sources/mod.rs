//! Sources pull load-balancer metrics from cloud APIs in the background, each on its own interval,
//! and publish whole snapshots to the store. One source runs per configured job and region, so a
//! failing one never holds up another.

pub mod alibaba;
pub mod aws;
pub mod period;
pub mod telemetry;
pub mod tiers;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::config::Config;
use crate::runtime::{system_clock, Discovered, Schedule};
use crate::store::Store;

/// The families a kind of load balancer's source fills: its metric table and what discovery
/// exports. The catalog's `providers:` field is checked against this (tests/rules.rs), so an alert
/// never claims to fire where nothing feeds it.
pub fn families_fed(kind: crate::catalog::LbKind) -> std::collections::BTreeSet<&'static str> {
    use crate::catalog::LbKind;
    use crate::config::{AlibabaNamespace, LoadBalancerType};
    let mut fed = std::collections::BTreeSet::new();
    let aws = |lb_type: LoadBalancerType, fed: &mut std::collections::BTreeSet<&'static str>| {
        fed.extend(aws::metrics::for_type(lb_type).1.iter().map(|m| m.family.name));
        fed.extend(aws::discovery::families(lb_type).iter().map(|f| f.name));
    };
    let alibaba = |namespace: AlibabaNamespace, fed: &mut std::collections::BTreeSet<&'static str>| {
        fed.extend(
            alibaba::metrics::SERIES
                .iter()
                .filter(|s| s.namespace == namespace)
                .map(|s| s.family.name),
        );
        fed.insert(crate::store::families::LB_INFO.name);
    };
    match kind {
        LbKind::AwsAlb => aws(LoadBalancerType::Application, &mut fed),
        LbKind::AwsNlb => aws(LoadBalancerType::Network, &mut fed),
        LbKind::AwsClb => aws(LoadBalancerType::Classic, &mut fed),
        LbKind::AlibabaSlb => alibaba(AlibabaNamespace::Slb, &mut fed),
        LbKind::AlibabaAlb => alibaba(AlibabaNamespace::Alb, &mut fed),
    }
    fed
}

/// Store keys of every source the config defines; the exporter is ready once each has reported.
pub fn source_keys(config: &Config) -> Vec<String> {
    let aws = config.aws.iter().flat_map(|job| {
        job.regions
            .iter()
            .map(|region| aws::source_key(&job.name, region))
    });
    let alibaba = config.alibaba.iter().flat_map(|job| {
        job.regions
            .iter()
            .map(|region| alibaba::source_key(&job.name, region))
    });
    aws.chain(alibaba).collect()
}

/// Starts the AWS source of one job and region; it stops when `shutdown` turns true.
pub fn spawn_aws(
    job: crate::config::AwsJob,
    region: String,
    shard: Option<crate::config::ShardAssignment>,
    store: Arc<Store>,
    discovered: Arc<Discovered>,
    shutdown: watch::Receiver<bool>,
    tasks: &mut JoinSet<()>,
) {
    tasks.spawn(async move {
        let sdk = aws::client::sdk_config(&job, &region).await;
        let source = aws::AwsSource::new(job, region, aws::Clients::new(&sdk), system_clock())
            .with_discovered(discovered)
            .with_shard(shard);
        run_source(source, store, shutdown).await;
    });
}

/// Starts the Alibaba sources of one job, one per region; they share the job's call-rate bound
/// (the limit is the account's).
pub fn spawn_alibaba(
    job: crate::config::AlibabaJob,
    store: Arc<Store>,
    shutdown: watch::Receiver<bool>,
    tasks: &mut JoinSet<()>,
) {
    let limiter = Arc::new(alibaba::client::RateLimiter::new(job.max_calls_per_second));
    for region in &job.regions {
        let source =
            alibaba::AlibabaSource::new(job.clone(), region.clone(), limiter.clone(), system_clock());
        tasks.spawn(run_source(source, store.clone(), shutdown.clone()));
    }
}

/// A cloud source: collects a whole snapshot per cycle, on its own interval.
pub trait Source: Send + 'static {
    fn key(&self) -> String;
    fn interval(&self) -> Duration;
    fn collect(&mut self) -> impl std::future::Future<Output = Vec<crate::store::Sample>> + Send;
}

impl Source for aws::AwsSource {
    fn key(&self) -> String {
        aws::AwsSource::key(self)
    }
    fn interval(&self) -> Duration {
        aws::AwsSource::interval(self)
    }
    fn collect(&mut self) -> impl std::future::Future<Output = Vec<crate::store::Sample>> + Send {
        aws::AwsSource::collect(self)
    }
}

impl Source for alibaba::AlibabaSource {
    fn key(&self) -> String {
        alibaba::AlibabaSource::key(self)
    }
    fn interval(&self) -> Duration {
        alibaba::AlibabaSource::interval(self)
    }
    fn collect(&mut self) -> impl std::future::Future<Output = Vec<crate::store::Sample>> + Send {
        alibaba::AlibabaSource::collect(self)
    }
}

/// Collects on the source's interval until shutdown.
pub async fn run_source(mut source: impl Source, store: Arc<Store>, shutdown: watch::Receiver<bool>) {
    let key = source.key();
    let mut schedule = Schedule::new(source.interval(), Duration::ZERO, shutdown);
    while schedule.tick().await {
        let Some(snapshot) = schedule.unless_stopped(source.collect()).await else {
            return;
        };
        store.publish(&key, snapshot);
    }
}
