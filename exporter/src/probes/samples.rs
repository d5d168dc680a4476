//! A probe's results as samples: one family per check, every series labelled with the probe, its
//! load balancer, the address, the path (through the load balancer or straight to a backend) and
//! the vantage point.

use std::borrow::Cow;
use std::net::IpAddr;

use super::failure::Failure;
use super::keepalive::KeepAlive;
use super::report::{KeepAliveCheck, Report};
use super::target::{RequestKind, Via};
use super::Probe;
use crate::runtime::Discovered;
use crate::store::{families, Labels, Sample};

impl Probe {
    fn labels(&self, via: Via, target: &str) -> Labels {
        let mut labels: Labels = vec![("probe".into(), self.config.name.clone())];
        if let Some(lb) = &self.config.lb {
            labels.push(("lb".into(), lb.clone()));
        }
        labels.push(("target".into(), target.to_string()));
        labels.push(("path".into(), via.as_str().to_string()));
        labels.push(("vantage".into(), self.config.vantage.clone()));
        labels
    }

    /// The samples of a report and the latest keep-alive measurements.
    pub fn samples(
        &self,
        report: Option<&Report>,
        keepalive: &[KeepAliveCheck],
        discovered: &Discovered,
    ) -> Vec<Sample> {
        let mut out = Vec::new();
        let with = |mut labels: Labels, extra: &[(&'static str, String)]| {
            labels.extend(extra.iter().map(|(k, v)| (Cow::Borrowed(*k), v.clone())));
            labels
        };
        let reason =
            |failure: Option<&Failure>| failure.map(|f| f.reason.as_str().to_string()).unwrap_or_default();
        let mut probe_labels: Labels = vec![("probe".into(), self.config.name.clone())];
        if let Some(lb) = &self.config.lb {
            probe_labels.push(("lb".into(), lb.clone()));
        }
        probe_labels.push(("vantage".into(), self.config.vantage.clone()));
        let idle = self.lb_idle_timeout(discovered);
        out.push(Sample::new(
            &families::PROBE_LB_IDLE_TIMEOUT,
            probe_labels.clone(),
            idle.as_secs_f64(),
        ));
        out.push(Sample::new(
            &families::PROBE_LB_RESPONSE_TIMEOUT,
            probe_labels.clone(),
            self.config.lb_response_timeout.as_duration().as_secs_f64(),
        ));
        out.push(Sample::new(
            &families::PROBE_INTERVAL,
            probe_labels.clone(),
            self.config.interval.as_duration().as_secs_f64(),
        ));
        if let Some(report) = report {
            out.push(Sample::new(
                &families::PROBE_LAST_RUN,
                probe_labels.clone(),
                report.finished_at,
            ));
            // An IP literal resolves to itself: its "one address" says nothing about DNS. A front
            // door not checked says nothing either.
            if report.front_door && self.url_host.parse::<IpAddr>().is_err() {
                out.push(Sample::new(
                    &families::PROBE_DNS_ADDRESSES,
                    probe_labels.clone(),
                    report.dns.addresses.len() as f64,
                ));
            }
            if self.is_automatic() && !report.front_door && report.dns.failure.is_some() {
                let mut labels = probe_labels.clone();
                labels.push(("reason".into(), "front_door_unresolvable".to_string()));
                out.push(Sample::new(&families::AUTO_PROBE_BLIND, labels, 1.0));
            }
            out.push(Sample::new(
                &families::PROBE_QPS_LIMITED,
                probe_labels.clone(),
                flag(report.qps_limited()),
            ));
            for check in &report.http {
                let base = self.labels(check.via, &check.target.to_string());
                let failure = check.outcome.failure();
                let labels = with(
                    base.clone(),
                    &[
                        ("request", check.request.as_str().to_string()),
                        ("reason", reason(failure.as_ref())),
                    ],
                );
                out.push(Sample::new(
                    &families::PROBE_HTTP_SUCCESS,
                    labels,
                    flag(failure.is_none()),
                ));
                let request = [("request", check.request.as_str().to_string())];
                out.push(Sample::new(
                    &families::PROBE_HTTP_STATUS_CODE,
                    with(base.clone(), &request),
                    f64::from(check.outcome.status().unwrap_or(0)),
                ));
                for (phase, took) in check.outcome.phases.named() {
                    if let Some(took) = took {
                        let labels = with(base.clone(), &[request[0].clone(), ("phase", phase.to_string())]);
                        out.push(Sample::new(
                            &families::PROBE_HTTP_PHASE,
                            labels,
                            took.as_secs_f64(),
                        ));
                    }
                }
                if let (RequestKind::App, Some(tls)) = (check.request, &check.outcome.tls) {
                    if let Some(expiry) = tls.earliest_expiry {
                        out.push(Sample::new(
                            &families::PROBE_TLS_EXPIRY,
                            base.clone(),
                            expiry as f64,
                        ));
                    }
                    out.push(Sample::new(
                        &families::PROBE_TLS_HOSTNAME_MATCH,
                        base.clone(),
                        flag(tls.hostname_match),
                    ));
                    out.push(Sample::new(
                        &families::PROBE_TLS_CHAIN_VALID,
                        base.clone(),
                        flag(tls.chain_valid),
                    ));
                    out.push(Sample::new(
                        &families::PROBE_TLS_VERSION,
                        with(base, &[("version", tls.version.clone())]),
                        1.0,
                    ));
                }
            }
            for check in &report.tcp {
                let failure = check.result.as_ref().err();
                let labels = with(
                    self.labels(Via::Backend, &check.target),
                    &[("reason", reason(failure))],
                );
                out.push(Sample::new(
                    &families::PROBE_TCP_SUCCESS,
                    labels,
                    flag(failure.is_none()),
                ));
            }
            for check in &report.large_headers {
                let failure = check.failure();
                let labels = with(
                    self.labels(check.via, &check.target.to_string()),
                    &[
                        ("header_bytes", check.bytes.to_string()),
                        ("within_floor", check.within_floor.to_string()),
                    ],
                );
                out.push(Sample::new(
                    &families::PROBE_LARGE_HEADER_STATUS_CODE,
                    labels.clone(),
                    f64::from(check.outcome.status().unwrap_or(0)),
                ));
                out.push(Sample::new(
                    &families::PROBE_LARGE_HEADER_SUCCESS,
                    with(labels, &[("reason", reason(failure.as_ref()))]),
                    flag(failure.is_none()),
                ));
            }
            for check in &report.large_bodies {
                let failure = check.failure();
                let labels = with(
                    self.labels(check.via, &check.target.to_string()),
                    &[
                        ("body_bytes", check.bytes.to_string()),
                        ("reason", reason(failure.as_ref())),
                    ],
                );
                out.push(Sample::new(
                    &families::PROBE_LARGE_BODY_SUCCESS,
                    labels,
                    flag(failure.is_none()),
                ));
            }
        }
        for check in keepalive {
            let base = self.labels(Via::Backend, &check.target.to_string());
            let (idle, closed) = match &check.result {
                KeepAlive::Closed(after) => (after.as_secs_f64(), 1.0),
                KeepAlive::StayedOpen(watched) => (watched.as_secs_f64(), 0.0),
                KeepAlive::NotOffered | KeepAlive::Failed(_) => continue,
            };
            out.push(Sample::new(&families::PROBE_KEEPALIVE_IDLE, base.clone(), idle));
            out.push(Sample::new(&families::PROBE_KEEPALIVE_CLOSED, base, closed));
        }
        out
    }
}

/// A check's outcome as a sample value: 1 passed, 0 failed.
fn flag(ok: bool) -> f64 {
    f64::from(u8::from(ok))
}
