//! The test cloud's registry row. It has no section in the config (that is one struct field per
//! provider in the crate), so it runs no source group from a config and plans nothing from one;
//! the compliance suite builds its sources and its plan from the double directly.

use std::collections::BTreeSet;

use lbtriage::config::Config;
use lbtriage::sources::pricing::PlanFuture;
use lbtriage::sources::row::{LbKind, Provider, SourceGroup};
use lbtriage::store::families::Family;

const KIND: LbKind = LbKind {
    id: "testcloud_lb",
    title: "Test cloud LB",
};

fn source_groups(_: &Config) -> Vec<SourceGroup> {
    Vec::new()
}

fn families_fed(kind: LbKind) -> Option<BTreeSet<&'static str>> {
    (kind == KIND).then(super::families)
}

fn mapping(family: &Family) -> Vec<String> {
    super::SERIES
        .iter()
        .filter(|s| std::ptr::eq(s.family, family))
        .map(|s| format!("`{}`", s.metric()))
        .collect()
}

fn actions() -> Vec<String> {
    vec![
        "testcloud:ListLoadBalancers".to_string(),
        format!("testcloud:{}", super::API),
    ]
}

fn fuzz(_: &[u8]) {}

fn plan(_: &Config) -> PlanFuture<'_> {
    Box::pin(async { Ok(Vec::new()) })
}

pub static ROW: Provider = Provider {
    name: "testcloud",
    title: "Test cloud",
    kinds: &[KIND],
    source_groups,
    families_fed,
    mapping,
    policy_file: "",
    actions,
    notes: &[],
    labels: "`lb` is the load balancer's name; `lb_type` is `test`.",
    fuzz,
    plan,
    credential_env: &["TESTCLOUD_SECRET"],
};
