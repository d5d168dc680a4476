//! lbtriage: a Prometheus exporter that reads cloud load balancers' own metrics, normalises them
//! into provider-neutral families, and (with its rule pack) names the documented cause of their 5xx.

pub mod address;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod dashboards;
pub mod docs;
pub mod fuzzing;
pub mod mixin;
pub mod probes;
pub mod rules;
pub mod runtime;
pub mod server;
pub mod sources;
pub mod store;
pub mod units;
pub mod yaml;
