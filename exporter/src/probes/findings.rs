//! From probe results to suspected causes: the logic behind `lbtriage diagnose` (and the
//! exporter's own page). Each finding names a catalog cause and the evidence lines that point at
//! it; causes that need cloud metrics or several vantage points are the alert rules' job.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::failure::Reason;
use super::keepalive::KeepAlive;
use super::report::{HttpCheck, KeepAliveCheck, Report, SizeCheck};
use super::target::{RequestKind, Via};

/// Certificates expiring sooner than this are findings already.
pub const CERTIFICATE_WARNING: Duration = Duration::from_secs(14 * 86_400);

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Finding {
    pub cause: &'static str,
    pub evidence: Vec<String>,
}

/// What one probe's latest results point at, for the `/` page (the same logic as `diagnose`); the
/// runner attaches it to the probe's snapshot in the store.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeFindings {
    pub probe: String,
    pub lb: Option<String>,
    pub findings: Vec<Finding>,
}

#[derive(Default)]
struct Findings(Vec<Finding>);

impl Findings {
    fn add(&mut self, cause: &'static str, evidence: String) {
        match self.0.iter_mut().find(|f| f.cause == cause) {
            Some(finding) => finding.evidence.push(evidence),
            None => self.0.push(Finding {
                cause,
                evidence: vec![evidence],
            }),
        }
    }

    fn has(&self, cause: &str) -> bool {
        self.0.iter().any(|f| f.cause == cause)
    }
}

fn secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

fn app_ok(checks: &[HttpCheck], via: Via, target: std::net::SocketAddr) -> bool {
    checks.iter().any(|c| {
        c.via == via && c.target == target && c.request == RequestKind::App && c.outcome.failure().is_none()
    })
}

/// Small requests pass and the large variant fails on the same address in a way that is evidence
/// (see [`SizeCheck::is_finding`]).
fn size_findings(
    findings: &mut Findings,
    report: &Report,
    checks: &[SizeCheck],
    cause: &'static str,
    what: &str,
) {
    for check in checks.iter().filter(|c| c.is_finding()) {
        let Some(failure) = check.failure() else { continue };
        if app_ok(&report.http, check.via, check.target) {
            findings.add(
                cause,
                format!(
                    "{} {}: a {what} of {} bytes failed ({failure}) while the same request without it succeeded",
                    check.via.as_str(),
                    check.target,
                    check.bytes
                ),
            );
        }
    }
}

pub fn evaluate(report: &Report, keepalive: &[KeepAliveCheck]) -> Vec<Finding> {
    let mut findings = Findings::default();
    let lb_app: Vec<&HttpCheck> = report
        .http
        .iter()
        .filter(|c| c.via == Via::Lb && c.request == RequestKind::App)
        .collect();
    let backend: Vec<&HttpCheck> = report.http.iter().filter(|c| c.via == Via::Backend).collect();

    // Front door.
    if !lb_app.is_empty()
        && lb_app
            .iter()
            .all(|c| c.outcome.failure().is_some_and(|f| f.reason == Reason::Refused))
    {
        for check in &lb_app {
            findings.add(
                "lb_listener_missing",
                format!("connection to the load balancer at {} refused", check.target),
            );
        }
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    for check in &lb_app {
        match (&check.outcome.tls, check.outcome.failure()) {
            (Some(tls), _) => {
                if !tls.chain_valid || !tls.hostname_match {
                    let problem = tls.problem.clone().unwrap_or_else(|| "not trusted".to_string());
                    findings.add(
                        "lb_certificate_invalid",
                        format!("listener {}: certificate {problem}", check.target),
                    );
                } else if let Some(expiry) = tls
                    .earliest_expiry
                    .filter(|e| *e - now < CERTIFICATE_WARNING.as_secs() as i64)
                {
                    findings.add(
                        "lb_certificate_invalid",
                        format!(
                            "listener {}: certificate expires in {} days",
                            check.target,
                            (expiry - now) / 86_400
                        ),
                    );
                }
            }
            (None, Some(failure)) if failure.reason == Reason::Tls => {
                findings.add(
                    "client_tls_negotiation_failure",
                    format!("listener {}: {}", check.target, failure.detail),
                );
            }
            _ => {}
        }
    }
    if report.qps_limited() {
        findings.add(
            "lb_qps_throttled",
            "a response through the load balancer carried ALB-QPS-Limited: Limited".to_string(),
        );
    }
    size_findings(
        &mut findings,
        report,
        &report.large_headers,
        "request_header_too_large",
        "header",
    );
    size_findings(
        &mut findings,
        report,
        &report.large_bodies,
        "backend_mtu_mismatch",
        "request body",
    );

    // Between the load balancer and its targets.
    for check in &report.tcp {
        if let Err(failure) = &check.result {
            match failure.reason {
                Reason::Refused | Reason::Reset => findings.add(
                    "target_connection_refused",
                    format!(
                        "backend {}: TCP connection {}",
                        check.target,
                        failure.reason.as_str()
                    ),
                ),
                Reason::Timeout => findings.add(
                    "target_connect_timeout",
                    format!(
                        "backend {}: TCP connect timed out ({})",
                        check.target, failure.detail
                    ),
                ),
                _ => {}
            }
        }
    }
    for check in backend.iter().filter(|c| c.request == RequestKind::App) {
        let Some(failure) = check.outcome.failure() else {
            continue;
        };
        match failure.reason {
            Reason::Reset if !findings.has("target_connection_refused") => findings.add(
                "target_connection_refused",
                format!("backend {}: connection reset ({})", check.target, failure.detail),
            ),
            Reason::Tls => findings.add(
                "target_tls_failure",
                format!("backend {}: {}", check.target, failure.detail),
            ),
            Reason::InvalidResponse => findings.add(
                "target_invalid_response",
                format!("backend {}: {}", check.target, failure.detail),
            ),
            _ => {}
        }
    }

    // Target behaviour.
    for check in keepalive {
        if let KeepAlive::Closed(after) = check.result {
            if after < report.lb_idle_timeout {
                findings.add(
                    "target_keepalive_too_short",
                    format!(
                        "backend {} closed an idle keep-alive connection after {}; the load balancer keeps them for {}",
                        check.target,
                        secs(after),
                        secs(report.lb_idle_timeout)
                    ),
                );
            }
        }
    }
    for check in backend.iter().filter(|c| c.request == RequestKind::App) {
        let timed_out = check
            .outcome
            .failure()
            .is_some_and(|f| f.reason == Reason::Timeout);
        let slow = check
            .outcome
            .phases
            .response_time()
            .filter(|t| *t >= report.lb_response_timeout);
        if let Some(took) = slow {
            findings.add(
                "target_response_timeout",
                format!(
                    "backend {} answered in {}; the load balancer waits {}",
                    check.target,
                    secs(took),
                    secs(report.lb_response_timeout)
                ),
            );
        } else if timed_out && !findings.has("backend_mtu_mismatch") {
            findings.add(
                "target_response_timeout",
                format!("backend {}: no response within the probe timeout", check.target),
            );
        }
        let health_ok = backend.iter().any(|h| {
            h.target == check.target && h.request == RequestKind::Health && h.outcome.failure().is_none()
        });
        if let Some(status) = check.outcome.status().filter(|s| *s >= 500) {
            if health_ok {
                findings.add(
                    "backend_errors_passthrough",
                    format!(
                        "backend {}: the application path returns {status} while the health path passes",
                        check.target
                    ),
                );
            }
        }
    }

    // The load balancer fails and nothing above explains it.
    let lb_failures: Vec<String> = lb_app
        .iter()
        .filter_map(|c| {
            let failure = c.outcome.failure()?;
            let lb_error = matches!(failure.reason, Reason::Reset | Reason::Timeout)
                || c.outcome.status().is_some_and(|s| s >= 500);
            lb_error.then(|| format!("load balancer {}: {failure}", c.target))
        })
        .collect();
    if !lb_failures.is_empty() && findings.0.is_empty() {
        let backends_fine = !backend.is_empty() && backend.iter().all(|c| c.outcome.failure().is_none());
        let cause = if backends_fine {
            "lb_source_blocked"
        } else {
            "lb_5xx_unattributed"
        };
        for line in lb_failures {
            findings.add(cause, line);
        }
        if backends_fine {
            findings.add(
                "lb_source_blocked",
                "every backend answers this exporter directly: check what blocks the load balancer's source addresses".to_string(),
            );
        }
    }
    findings.0
}
