//! The one integration-test binary; each module is one area (keeps link time low).

mod adaptive;
mod alertmanager;
mod alibaba_source;
mod auto_probes;
mod aws_source;
mod bench;
// Named so that libtest, which starts tests in name order, starts the longest test (about 2.5
// minutes of sequential faults) early, beside the others rather than after them.
mod chaos;
mod compliance;
mod dashboards;
mod deploy;
mod diagnose;
mod dist;
mod e2e;
mod exporter;
mod fuzz_corpus;
mod generated;
mod hostile;
mod image;
mod layers;
mod mixin;
mod page;
mod probes;
mod rules;
mod support;
mod tencent_source;
mod test_cloud;
mod web_config;
