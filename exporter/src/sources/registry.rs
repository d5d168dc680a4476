//! The providers lbtriage reads, one row each. A cloud is its folder under `sources/`, its section
//! of the config and its row here: what runs for a config (source groups and their store keys),
//! which families each kind of its load balancers fills, where each family comes from (the
//! provider's column in docs/metrics.md), the least-privilege policy it ships and the environment
//! variables that carry its credentials all come from the row (`row.rs` says what a row holds).

use std::collections::BTreeSet;

use super::row::{LbKind, Provider, SourceGroup};
use super::{alibaba, aws, tencent};
use crate::config::Config;

/// Every provider; adding a cloud adds a row.
pub static PROVIDERS: [&Provider; 3] = [
    &aws::provider::PROVIDER,
    &alibaba::provider::PROVIDER,
    &tencent::provider::PROVIDER,
];

/// Every kind of load balancer, in registry order.
pub fn kinds() -> Vec<LbKind> {
    PROVIDERS
        .iter()
        .flat_map(|provider| provider.kinds.iter().copied())
        .collect()
}

/// The kind with this id (`aws_alb`, ...).
pub fn kind(id: &str) -> Option<LbKind> {
    kinds().into_iter().find(|kind| kind.id == id)
}

/// Every provider's source groups of a config.
pub fn source_groups(config: &Config) -> Vec<SourceGroup> {
    PROVIDERS
        .iter()
        .flat_map(|provider| (provider.source_groups)(config))
        .collect()
}

/// Store keys of every source the config defines.
pub fn source_keys(config: &Config) -> Vec<String> {
    source_groups(config)
        .into_iter()
        .flat_map(|group| group.source_keys)
        .collect()
}

/// The families a kind of load balancer's source fills.
pub fn families_fed(kind: LbKind) -> BTreeSet<&'static str> {
    PROVIDERS
        .iter()
        .find_map(|provider| (provider.families_fed)(kind))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    /// The catalog names kinds by id; each is a kind some row declares.
    #[test]
    fn every_kind_the_catalog_names_is_registered() {
        for cause in &crate::catalog::Catalog::embedded().causes {
            for id in &cause.providers {
                assert!(super::kind(id).is_some(), "{}: unknown kind {id:?}", cause.id);
            }
        }
    }
}
