//! Sources pull load-balancer metrics from cloud APIs in the background, each on its own interval,
//! and publish whole snapshots to the store. One source runs per configured job and region, so a
//! failing one never holds up another.
//!
//! - `engine/`: the collection engine every cloud shares (the cycle, exactly-once counting in
//!   tiers, health and API-call self-metrics), and the one [`Source`] implementation.
//! - `aws/`, `alibaba/`, `tencent/`: one folder per cloud, holding its reads, its metric table, its
//!   inventory and its registry row.
//! - `registry.rs`: which providers exist, and what each runs for a config.
//! - `api.rs`: what every cloud's HTTP client shares (bounded reads, retries, rate limits).

pub mod alibaba;
pub mod api;
pub mod aws;
pub mod engine;
pub mod key_pair;
pub mod pricing;
pub mod registry;
pub mod row;
pub mod tencent;

pub use engine::{run_source, Source};
pub use registry::{families_fed, source_keys};
