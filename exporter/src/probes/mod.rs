//! Active probes: cloud metrics say a load balancer returned 502; probes say why. Each probe
//! compares the path through the load balancer (every address its name resolves to) with each
//! backend reached directly, and measures the backend behaviours that make load balancers fail.
//! One file per check; this module runs them, bounded; samples.rs turns the results into samples.
//!
//! Targets come only from configuration (and the cloud source's discovery): nothing that arrives
//! in a request can point a probe anywhere.

pub mod auto;
pub mod dns;
pub mod exchange;
pub mod failure;
pub mod findings;
pub mod http;
pub mod keepalive;
pub mod limits;
pub mod reach;
pub mod report;
pub mod runner;
mod samples;
pub mod target;
pub mod tcp;
pub mod tls;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use tokio::sync::Semaphore;

use crate::config::{ProbeConfig, Scheme, DEFAULT_LB_IDLE_TIMEOUT};
use crate::runtime::Discovered;

use self::dns::DnsResult;
use self::http::HttpOutcome;
use self::tls::TlsSettings;
use crate::address::{is_link_local, probe_url_host, split_host_port};

pub use self::failure::{Failure, Reason};
pub use self::report::{HttpCheck, KeepAliveCheck, Oversized, Report, SizeCheck, TcpCheck};
pub use self::target::{RequestKind, Target, TlsTarget, Via};

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("probe {probe}: {message}")]
    Setup { probe: String, message: String },
}

/// A probe ready to run: configured, or built from a load balancer's inventory facts.
pub struct Probe {
    pub config: ProbeConfig,
    url_host: String,
    url_port: u16,
    https: bool,
    tls: TlsSettings,
    /// Set for an automatic probe: what this vantage learned it can reach, and whether the front
    /// door is checked.
    automatic: Option<Automatic>,
}

#[derive(Clone)]
pub struct Automatic {
    pub reach: Arc<reach::Reachability>,
    pub front_door: bool,
}

impl Probe {
    pub fn new(config: ProbeConfig) -> Result<Probe, ProbeError> {
        let fail = |message: String| ProbeError::Setup {
            probe: config.name.clone(),
            message,
        };
        let uri: hyper::Uri = config.url.parse().map_err(|err| fail(format!("url: {err}")))?;
        let https = uri.scheme_str() == Some("https");
        let url_host = probe_url_host(&config.url).ok_or_else(|| fail("url has no host".to_string()))?;
        let url_port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let tls = TlsSettings::load(config.tls_ca_file.as_deref()).map_err(|err| fail(err.to_string()))?;
        Ok(Probe {
            config,
            url_host,
            url_port,
            https,
            tls,
            automatic: None,
        })
    }

    /// A probe built from inventory facts (`probes/auto.rs`): its targets are the configured
    /// `backends`, and a target this vantage cannot reach (`probes/reach.rs`) is reported as such,
    /// not probed.
    pub fn automatic(config: ProbeConfig, automatic: Automatic) -> Result<Probe, ProbeError> {
        let mut probe = Probe::new(config)?;
        probe.automatic = Some(automatic);
        Ok(probe)
    }

    pub fn is_automatic(&self) -> bool {
        self.automatic.is_some()
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// Host header through the load balancer: the URL's authority.
    fn lb_host(&self) -> String {
        let default_port = if self.https { 443 } else { 80 };
        let host = if self.url_host.contains(':') {
            format!("[{}]", self.url_host)
        } else {
            self.url_host.clone()
        };
        if self.url_port == default_port {
            host
        } else {
            format!("{host}:{}", self.url_port)
        }
    }

    /// Host header and TLS name for direct backend requests.
    fn backend_host(&self) -> String {
        self.config.host.clone().unwrap_or_else(|| self.url_host.clone())
    }

    /// The idle timeout to compare keep-alive with: configured, else discovered, else 60s.
    pub fn lb_idle_timeout(&self, discovered: &Discovered) -> Duration {
        self.config
            .lb_idle_timeout
            .map(|d| d.as_duration())
            .or_else(|| {
                self.config
                    .lb
                    .as_deref()
                    .and_then(|lb| discovered.idle_timeout(lb))
            })
            .unwrap_or(DEFAULT_LB_IDLE_TIMEOUT)
    }

    fn timeout(&self) -> Duration {
        self.config.timeout.as_duration()
    }

    fn allowed(&self, ip: &IpAddr) -> bool {
        self.config.allow_link_local || !is_link_local(ip)
    }

    fn lb_target(&self, ip: IpAddr) -> Target {
        Target {
            via: Via::Lb,
            addr: SocketAddr::new(ip, self.url_port),
            tls: self.https.then(|| TlsTarget {
                settings: self.tls.clone(),
                server_name: self.url_host.clone(),
                verify: true,
            }),
        }
    }

    fn backend_target(&self, addr: SocketAddr) -> Target {
        Target {
            via: Via::Backend,
            addr,
            tls: (self.config.backend_scheme == Scheme::Https).then(|| TlsTarget {
                settings: self.tls.clone(),
                server_name: self.backend_host(),
                verify: false,
            }),
        }
    }

    /// Configured backends (host names resolved, first address) plus discovered IP targets;
    /// the ones that cannot be used become failed TCP checks.
    async fn backends(&self, discovered: &Discovered) -> (Vec<Target>, Vec<TcpCheck>) {
        let mut targets = Vec::new();
        let mut failed = Vec::new();
        let mut configured: Vec<(String, SocketAddr)> = Vec::new();
        for backend in &self.config.backends {
            let addr = match split_host_port(backend) {
                Some((host, port)) => match host.parse::<IpAddr>() {
                    Ok(ip) => Ok(SocketAddr::new(ip, port)),
                    Err(_) => {
                        let found = dns::resolve(host, port, self.timeout()).await;
                        match (found.addresses.first(), found.failure) {
                            (Some(ip), _) => Ok(SocketAddr::new(*ip, port)),
                            (None, failure) => {
                                Err(failure.unwrap_or_else(|| Failure::new(Reason::Dns, "no address")))
                            }
                        }
                    }
                },
                None => Err(Failure::new(Reason::Dns, "not host:port")),
            };
            match addr {
                Ok(addr) => configured.push((backend.clone(), addr)),
                Err(failure) => failed.push(TcpCheck {
                    target: backend.clone(),
                    result: Err(failure),
                }),
            }
        }
        if self.config.discover_backends {
            if let Some(lb) = &self.config.lb {
                for addr in discovered.ip_targets(lb) {
                    configured.push((addr.to_string(), addr));
                }
            }
        }
        for (label, addr) in configured {
            if targets.iter().any(|t: &Target| t.addr == addr) {
                continue;
            }
            if !self.allowed(&addr.ip()) {
                failed.push(TcpCheck {
                    target: label,
                    result: Err(Failure::new(Reason::Forbidden, "link-local or metadata address")),
                });
                continue;
            }
            if let Some(automatic) = &self.automatic {
                if !automatic.reach.reachable(addr, self.timeout()).await {
                    failed.push(TcpCheck {
                        target: label,
                        result: Err(Failure::new(
                            Reason::UnreachableFromVantage,
                            "not reached from this vantage while quiet: not evidence of a cause",
                        )),
                    });
                    continue;
                }
            }
            targets.push(self.backend_target(addr));
        }
        (targets, failed)
    }

    /// Runs the quick checks once: DNS, HTTP (app and health) through every load-balancer
    /// address and to every backend, TCP to backends, header and body limits.
    pub async fn run(&self, limiter: &Semaphore, discovered: &Discovered) -> Report {
        let timeout = self.timeout();
        let checks_front_door = self.automatic.as_ref().is_none_or(|a| a.front_door);
        let dns = if checks_front_door {
            dns::resolve(&self.url_host, self.url_port, timeout).await
        } else {
            DnsResult::default()
        };
        // An automatic probe whose front door does not resolve from here checks only targets.
        let front_door = checks_front_door && (self.automatic.is_none() || dns.failure.is_none());
        let mut lb_targets = Vec::new();
        let mut http_checks = Vec::new();
        for ip in dns.addresses.iter().filter(|_| front_door) {
            if self.allowed(ip) {
                lb_targets.push(self.lb_target(*ip));
            } else {
                let outcome = HttpOutcome {
                    phases: Default::default(),
                    tls: None,
                    response: Err(Failure::new(Reason::Forbidden, "link-local or metadata address")),
                };
                http_checks.push(HttpCheck {
                    via: Via::Lb,
                    target: SocketAddr::new(*ip, self.url_port),
                    request: RequestKind::App,
                    outcome,
                });
            }
        }
        let (backends, mut tcp_checks) = self.backends(discovered).await;
        let lb_host = self.lb_host();
        let backend_host = self.backend_host();
        let host_for = |target: &Target| match target.via {
            Via::Lb => lb_host.as_str(),
            Via::Backend => backend_host.as_str(),
        };
        let all: Vec<&Target> = lb_targets.iter().chain(backends.iter()).collect();
        let (app, health) = (self.config.app_path.as_str(), self.config.health_path.as_str());
        // An automatic probe sends its large body only where the load balancer's own health
        // checks go, never to an application path it knows nothing about.
        let body_path = if self.automatic.is_some() { health } else { app };

        let http_runs = all.iter().flat_map(|target| {
            [(RequestKind::App, app), (RequestKind::Health, health)].map(|(kind, path)| async move {
                let _permit = limiter.acquire().await;
                let mut outcome =
                    http::request(target, &exchange::Request::get(path, host_for(target)), timeout).await;
                outcome.phases.resolve = (target.via == Via::Lb).then_some(dns.duration);
                HttpCheck {
                    via: target.via,
                    target: target.addr,
                    request: kind,
                    outcome,
                }
            })
        });
        let tcp_runs = backends.iter().map(|target| async move {
            let _permit = limiter.acquire().await;
            TcpCheck {
                target: target.addr.to_string(),
                result: tcp::connect(target.addr, timeout).await.map(|(_, took)| took),
            }
        });
        let header_sizes = self.config.header_checks();
        let header_runs = all.iter().flat_map(|target| {
            header_sizes.iter().map(move |&(bytes, within_floor)| async move {
                let _permit = limiter.acquire().await;
                SizeCheck {
                    kind: Oversized::Header,
                    via: target.via,
                    target: target.addr,
                    bytes,
                    within_floor,
                    outcome: limits::large_header(target, app, host_for(target), bytes, timeout).await,
                }
            })
        });
        let body_runs = all.iter().map(|target| async move {
            let _permit = limiter.acquire().await;
            SizeCheck {
                kind: Oversized::Body,
                via: target.via,
                target: target.addr,
                bytes: limits::BODY_SIZE,
                within_floor: false,
                outcome: limits::large_body(target, body_path, host_for(target), timeout).await,
            }
        });
        let (http_done, tcp_done, headers_done, bodies_done) = futures_util::join!(
            join_all(http_runs),
            join_all(tcp_runs),
            join_all(header_runs),
            join_all(body_runs)
        );
        http_checks.extend(http_done);
        if let Some(automatic) = &self.automatic {
            for check in &tcp_done {
                if let Ok(addr) = check.target.parse() {
                    automatic.reach.record(addr, &check.result);
                }
            }
        }
        tcp_checks.extend(tcp_done);
        Report {
            dns,
            http: http_checks,
            tcp: tcp_checks,
            large_headers: headers_done,
            large_bodies: bodies_done,
            lb_idle_timeout: self.lb_idle_timeout(discovered),
            lb_response_timeout: self.config.lb_response_timeout.as_duration(),
            finished_at: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0),
            front_door,
        }
    }

    /// Measures every backend's keep-alive idle close, up to the LB idle timeout plus a margin.
    pub async fn run_keepalive(&self, limiter: &Semaphore, discovered: &Discovered) -> Vec<KeepAliveCheck> {
        let idle = self.lb_idle_timeout(discovered);
        let limit = idle + keepalive::margin(idle);
        let (backends, _) = self.backends(discovered).await;
        let host = self.backend_host();
        let path = self.config.health_path.as_str();
        let runs = backends.iter().map(|target| {
            let host = host.as_str();
            async move {
                let _permit = limiter.acquire().await;
                KeepAliveCheck {
                    target: target.addr,
                    result: keepalive::measure(target, path, host, self.timeout(), limit).await,
                }
            }
        });
        join_all(runs).await
    }
}

/// Bound on connections all probes hold at once.
pub const MAX_CONCURRENT_CHECKS: usize = 64;

pub fn limiter() -> Arc<Semaphore> {
    Arc::new(Semaphore::new(MAX_CONCURRENT_CHECKS))
}
