//! The `probes:` schema and its validation.

use std::collections::HashSet;
use std::time::Duration;

use serde::Deserialize;

use super::duration::PromDuration;
use super::error::ConfigError;
use super::job::check_url;
use crate::address::{is_link_local, probe_url_host, split_host_port, LINK_LOCAL_REFUSED};

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    #[default]
    Http,
    Https,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProbeConfig {
    pub name: String,
    /// The service's URL through the load balancer.
    pub url: String,
    /// The `lb` label of the cloud load balancer this URL fronts; joins probe and cloud evidence.
    #[serde(default)]
    pub lb: Option<String>,
    /// Backends reached directly, `host:port`, bypassing the load balancer.
    #[serde(default)]
    pub backends: Vec<String>,
    /// Also probe the IP targets the cloud source discovered for `lb`.
    #[serde(default)]
    pub discover_backends: bool,
    #[serde(default)]
    pub backend_scheme: Scheme,
    #[serde(default = "default_path")]
    pub app_path: String,
    #[serde(default = "default_path")]
    pub health_path: String,
    /// Host header and TLS server name for direct backend requests; default: the URL's host.
    #[serde(default)]
    pub host: Option<String>,
    /// Default: the idle timeout discovered for `lb`, else 60s.
    #[serde(default)]
    pub lb_idle_timeout: Option<PromDuration>,
    #[serde(default = "default_response_timeout")]
    pub lb_response_timeout: PromDuration,
    #[serde(default = "default_probe_interval")]
    pub interval: PromDuration,
    #[serde(default = "default_probe_timeout")]
    pub timeout: PromDuration,
    /// Where this exporter runs; a label on every probe series.
    #[serde(default = "default_vantage")]
    pub vantage: String,
    /// PEM file of extra CA certificates trusted for the listener and https backends.
    #[serde(default)]
    pub tls_ca_file: Option<std::path::PathBuf>,
    /// Link-local and cloud metadata addresses (169.254.0.0/16, fd00:ec2::254) are refused as
    /// probe targets unless this is true.
    #[serde(default)]
    pub allow_link_local: bool,
    /// Sizes of the one extra header the large-header check sends. A load balancer may answer a
    /// size above its documented limit with a 4xx (AWS: 16 K per header; Alibaba ALB: 32 KB).
    #[serde(default = "default_header_sizes")]
    pub header_sizes: Vec<usize>,
    /// The header size every hop must accept: any rejection at or below it is a finding. It is
    /// always sent, besides `header_sizes`.
    #[serde(default = "default_header_floor")]
    pub header_floor_bytes: usize,
}

/// The largest header the check sends: the probe client reads at most 64 KiB of response head,
/// and no load balancer documents a larger request-header limit than that.
pub const MAX_HEADER_CHECK_BYTES: usize = 64 * 1024;

pub fn default_header_sizes() -> Vec<usize> {
    vec![16 * 1024, 40 * 1024]
}
/// 4 KiB of value: below the stock limits of nginx (8 KiB lines), Apache (8,190 bytes) and Tomcat
/// (8 KiB for all headers), so a default backend never trips it; raise it to the load balancer's
/// documented limit to learn when a backend accepts less than the load balancer forwards.
pub fn default_header_floor() -> usize {
    4 * 1024
}

impl ProbeConfig {
    /// Every header size the check sends, ascending, each with whether it is within the floor.
    pub fn header_checks(&self) -> Vec<(usize, bool)> {
        let mut sizes = self.header_sizes.clone();
        sizes.push(self.header_floor_bytes);
        sizes.sort_unstable();
        sizes.dedup();
        sizes
            .into_iter()
            .map(|size| (size, size <= self.header_floor_bytes))
            .collect()
    }
}

fn default_path() -> String {
    "/".to_string()
}
fn default_response_timeout() -> PromDuration {
    PromDuration(Duration::from_secs(60))
}
pub(super) fn default_probe_interval() -> PromDuration {
    PromDuration(Duration::from_secs(30))
}
pub(super) fn default_probe_timeout() -> PromDuration {
    PromDuration(Duration::from_secs(10))
}
pub(super) fn default_vantage() -> String {
    "default".to_string()
}

/// The default LB idle timeout when neither the config nor discovery says (AWS ALB's default).
pub const DEFAULT_LB_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Every probe: unique names, URLs and backends that can be probed, bounded timing.
pub(super) fn validate_probes(probes: &[ProbeConfig]) -> Result<(), ConfigError> {
    {
        let mut names = HashSet::new();
        for (index, probe) in probes.iter().enumerate() {
            let key = |field: &str| format!("probes[{index}].{field}");
            if probe.name.trim().is_empty() {
                return Err(ConfigError::at(key("name"), "must not be empty"));
            }
            if !names.insert(probe.name.as_str()) {
                return Err(ConfigError::at(
                    key("name"),
                    format!("duplicate probe name {:?}", probe.name),
                ));
            }
            check_url(&probe.url).map_err(|msg| ConfigError::at(key("url"), msg))?;
            if let Some(host) = probe_url_host(&probe.url) {
                if !probe.allow_link_local && host.parse().is_ok_and(|ip| is_link_local(&ip)) {
                    return Err(ConfigError::at(key("url"), LINK_LOCAL_REFUSED));
                }
            }
            for (b, backend) in probe.backends.iter().enumerate() {
                let backend_key = format!("probes[{index}].backends[{b}]");
                let (host, port) = split_host_port(backend)
                    .ok_or_else(|| ConfigError::at(&backend_key, format!("{backend:?} is not host:port")))?;
                if port == 0 {
                    return Err(ConfigError::at(&backend_key, "port must not be 0"));
                }
                if !probe.allow_link_local && host.parse().is_ok_and(|ip| is_link_local(&ip)) {
                    return Err(ConfigError::at(&backend_key, LINK_LOCAL_REFUSED));
                }
            }
            if probe.discover_backends && probe.lb.is_none() {
                return Err(ConfigError::at(
                    key("discover_backends"),
                    "needs `lb` to know whose targets to probe",
                ));
            }
            for (field, path) in [("app_path", &probe.app_path), ("health_path", &probe.health_path)] {
                if !path.starts_with('/') || path.contains(char::is_whitespace) {
                    return Err(ConfigError::at(
                        key(field),
                        format!("{path:?} must start with / and contain no spaces"),
                    ));
                }
            }
            check_vantage_and_ca(&key, &probe.vantage, probe.tls_ca_file.as_deref())?;
            for (field, value) in [
                ("timeout", Some(probe.timeout)),
                ("interval", Some(probe.interval)),
                ("lb_response_timeout", Some(probe.lb_response_timeout)),
                ("lb_idle_timeout", probe.lb_idle_timeout),
            ] {
                if value.is_some_and(|v| v.as_duration() < Duration::from_millis(100)) {
                    return Err(ConfigError::at(key(field), "must be at least 100ms"));
                }
            }
            for (field, size) in probe
                .header_sizes
                .iter()
                .enumerate()
                .map(|(i, size)| (format!("header_sizes[{i}]"), *size))
                .chain([("header_floor_bytes".to_string(), probe.header_floor_bytes)])
            {
                if size == 0 || size > MAX_HEADER_CHECK_BYTES {
                    return Err(ConfigError::at(
                        key(&field),
                        format!("must be between 1 and {MAX_HEADER_CHECK_BYTES} bytes"),
                    ));
                }
            }
            if probe.header_sizes.len() > 8 {
                return Err(ConfigError::at(key("header_sizes"), "at most 8 sizes"));
            }
        }
        Ok(())
    }
}

/// What a probe and the automatic probes both name: where this exporter runs, and extra CAs.
pub(super) fn check_vantage_and_ca(
    key: &dyn Fn(&str) -> String,
    vantage: &str,
    tls_ca_file: Option<&std::path::Path>,
) -> Result<(), ConfigError> {
    if vantage.trim().is_empty() {
        return Err(ConfigError::at(key("vantage"), "must not be empty"));
    }
    if let Some(path) = tls_ca_file {
        if !path.is_file() {
            return Err(ConfigError::at(
                key("tls_ca_file"),
                format!("{} is not a readable file", path.display()),
            ));
        }
    }
    Ok(())
}
