//! The one integration-test binary; each module is one area (keeps link time low).

mod alertmanager;
mod alibaba_source;
mod aws_source;
mod bench;
mod dashboards;
mod deploy;
mod diagnose;
mod e2e;
mod exporter;
mod faults;
mod fuzz_corpus;
mod generated;
mod hostile;
mod page;
mod probes;
mod rules;
mod support;
mod web_config;
