//! What one run of a probe's quick checks found, check by check.

use std::net::SocketAddr;
use std::time::Duration;

use super::dns::DnsResult;
use super::failure::Failure;
use super::http::HttpOutcome;
use super::keepalive::KeepAlive;
use super::target::{RequestKind, Via};

#[derive(Debug, Clone)]
pub struct HttpCheck {
    pub via: Via,
    pub target: SocketAddr,
    pub request: RequestKind,
    pub outcome: HttpOutcome,
}

/// What a size check made large.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Oversized {
    Header,
    Body,
}

#[derive(Debug, Clone)]
pub struct SizeCheck {
    pub kind: Oversized,
    pub via: Via,
    pub target: SocketAddr,
    pub bytes: usize,
    /// A header size every hop must accept (at most the probe's `header_floor_bytes`).
    pub within_floor: bool,
    pub outcome: HttpOutcome,
}

impl SizeCheck {
    /// Large headers fail on any rejection (400, 431, a load balancer's 502); a large body fails
    /// only when no response came back at all: a 405 or 501 to the POST still proves the packets
    /// arrived.
    pub fn failure(&self) -> Option<Failure> {
        match self.kind {
            Oversized::Header => self.outcome.failure(),
            Oversized::Body => self.outcome.transport_failure().cloned(),
        }
    }

    /// Whether the failure is evidence of a cause. A load balancer that answers a header above its
    /// documented limit with a 4xx works as documented; a 5xx or no answer through it (Alibaba SLB
    /// answers long headers with 502), or any rejection within the floor, is a finding.
    pub fn is_finding(&self) -> bool {
        let Some(_) = self.failure() else {
            return false;
        };
        match self.kind {
            Oversized::Body => true,
            Oversized::Header => {
                self.within_floor
                    || (self.via == Via::Lb && self.outcome.status().is_none_or(|status| status >= 500))
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct TcpCheck {
    /// `host:port` as configured or discovered.
    pub target: String,
    pub result: Result<Duration, Failure>,
}

#[derive(Debug, Clone)]
pub struct KeepAliveCheck {
    pub target: SocketAddr,
    pub result: KeepAlive,
}

/// Everything one run of a probe's quick checks found.
#[derive(Debug, Clone)]
pub struct Report {
    pub dns: DnsResult,
    pub http: Vec<HttpCheck>,
    pub tcp: Vec<TcpCheck>,
    pub large_headers: Vec<SizeCheck>,
    pub large_bodies: Vec<SizeCheck>,
    pub lb_idle_timeout: Duration,
    pub lb_response_timeout: Duration,
    /// Unix time the checks completed.
    pub finished_at: f64,
    /// Whether the front door was checked: an automatic probe skips it when told to, or when its
    /// name does not resolve from here (a private zone), so that raises no front-door cause.
    pub front_door: bool,
}

impl Report {
    /// A response through the load balancer said the QPS limit was hit.
    pub fn qps_limited(&self) -> bool {
        self.http.iter().filter(|c| c.via == Via::Lb).any(|c| {
            c.outcome
                .response
                .as_ref()
                .ok()
                .and_then(|r| r.header("ALB-QPS-Limited"))
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("limited"))
        })
    }
}
