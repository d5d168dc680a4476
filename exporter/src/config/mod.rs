//! The configuration file: its schema, loading (YAML with `${VAR}` expansion in values) and
//! validation. Every error names the offending key, and the line where it can be found.

mod duration;
pub mod yaml;

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

pub use duration::{DurationError, PromDuration};

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// CloudWatch jobs, one per account/role and set of regions.
    #[serde(default)]
    pub aws: Vec<AwsJob>,
    /// Alibaba Cloud CloudMonitor jobs (SLB and ALB), one per account and set of regions.
    #[serde(default)]
    pub alibaba: Vec<AlibabaJob>,
    /// Active probes: the path through a load balancer and its backends reached directly.
    #[serde(default)]
    pub probes: Vec<ProbeConfig>,
    /// Overrides for the rendered alert rules (`lbtriage rules`).
    #[serde(default)]
    pub rules: crate::rules::RulesConfig,
    /// Splits a large fleet across exporters: this one watches its share of the load balancers
    /// (and of the probes).
    #[serde(default)]
    pub shard: Option<Shard>,
}

/// `shard: {index, count}`. Without `index`, the StatefulSet ordinal at the end of `HOSTNAME`
/// (`lbtriage-2` → 2) is used.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Shard {
    pub count: u32,
    #[serde(default)]
    pub index: Option<u32>,
}

/// A resolved shard: which of `count` this exporter is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardAssignment {
    pub index: u32,
    pub count: u32,
}

impl ShardAssignment {
    /// Whether this shard owns `key` (`<region>/<lb>` or `probe/<name>`); a restart never moves a
    /// load balancer to another shard.
    pub fn owns(&self, key: &str) -> bool {
        stable_hash(key) % u64::from(self.count.max(1)) == u64::from(self.index)
    }
}

/// FNV-1a of `text`: the same on every run, version and platform (the standard hasher is not), so
/// shard assignments and probe start offsets never move.
pub fn stable_hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The ordinal of a StatefulSet pod name: the digits after the last `-`.
fn ordinal_from_hostname(hostname: &str) -> Option<u32> {
    hostname.rsplit_once('-').and_then(|(_, n)| n.parse().ok())
}

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
fn default_probe_interval() -> PromDuration {
    PromDuration(Duration::from_secs(30))
}
fn default_probe_timeout() -> PromDuration {
    PromDuration(Duration::from_secs(10))
}
fn default_vantage() -> String {
    "default".to_string()
}

/// The default LB idle timeout when neither the config nor discovery says (AWS ALB's default).
pub const DEFAULT_LB_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum LoadBalancerType {
    Application,
    Network,
    Classic,
}

impl LoadBalancerType {
    pub const ALL: [LoadBalancerType; 3] = [Self::Application, Self::Network, Self::Classic];

    /// The value of the `lb_type` label.
    pub fn label(self) -> &'static str {
        match self {
            Self::Application => "application",
            Self::Network => "network",
            Self::Classic => "classic",
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AwsJob {
    pub name: String,
    pub regions: Vec<String>,
    /// One endpoint for every AWS client of the job: an emulator or a VPC endpoint.
    #[serde(default)]
    pub endpoint_url: Option<String>,
    #[serde(default)]
    pub role_arn: Option<String>,
    #[serde(default = "all_types")]
    pub load_balancer_types: Vec<LoadBalancerType>,
    /// Tag key → accepted values; a load balancer must match every key. Empty: every load balancer.
    #[serde(default)]
    pub tag_filters: BTreeMap<String, Vec<String>>,
    #[serde(default = "default_period")]
    pub period: PromDuration,
    #[serde(default = "default_delay")]
    pub delay: PromDuration,
    #[serde(default = "default_interval")]
    pub interval: PromDuration,
    #[serde(default = "default_discovery_ttl")]
    pub discovery_ttl: PromDuration,
}

fn all_types() -> Vec<LoadBalancerType> {
    LoadBalancerType::ALL.to_vec()
}
fn default_period() -> PromDuration {
    PromDuration(Duration::from_secs(60))
}
fn default_delay() -> PromDuration {
    // CloudWatch completes a minute's data about two minutes after it ends.
    PromDuration(Duration::from_secs(120))
}
fn default_interval() -> PromDuration {
    PromDuration(Duration::from_secs(60))
}
fn default_discovery_ttl() -> PromDuration {
    PromDuration(Duration::from_secs(300))
}

/// The CloudMonitor namespaces lbtriage reads.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AlibabaNamespace {
    /// Server Load Balancer (CLB).
    #[serde(rename = "acs_slb_dashboard")]
    Slb,
    /// Application Load Balancer.
    #[serde(rename = "acs_alb")]
    Alb,
}

impl AlibabaNamespace {
    pub const ALL: [AlibabaNamespace; 2] = [AlibabaNamespace::Slb, AlibabaNamespace::Alb];

    pub fn as_str(self) -> &'static str {
        match self {
            AlibabaNamespace::Slb => "acs_slb_dashboard",
            AlibabaNamespace::Alb => "acs_alb",
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AlibabaJob {
    pub name: String,
    pub regions: Vec<String>,
    /// Default `https://metrics.<region>.aliyuncs.com`.
    #[serde(default)]
    pub endpoint_url: Option<String>,
    #[serde(default = "all_namespaces")]
    pub namespaces: Vec<AlibabaNamespace>,
    /// Only these instances (SLB `lb-...`, ALB `alb-...`); empty: every instance the metrics name.
    #[serde(default)]
    pub instance_ids: Vec<String>,
    #[serde(default = "default_period")]
    pub period: PromDuration,
    #[serde(default = "default_delay")]
    pub delay: PromDuration,
    #[serde(default = "default_interval")]
    pub interval: PromDuration,
    /// An Alibaba Cloud credentials file (INI, as the official SDKs and CLI read it); without it,
    /// `ALIBABA_CLOUD_ACCESS_KEY_ID` and `ALIBABA_CLOUD_ACCESS_KEY_SECRET`.
    #[serde(default)]
    pub credentials_file: Option<std::path::PathBuf>,
    /// The profile (section) of `credentials_file` to use.
    #[serde(default = "default_profile")]
    pub credentials_profile: String,
    /// Calls per second this job makes at most; the account shares 50/s per API across all users.
    #[serde(default = "default_alibaba_calls_per_second")]
    pub max_calls_per_second: u32,
}

fn all_namespaces() -> Vec<AlibabaNamespace> {
    AlibabaNamespace::ALL.to_vec()
}
fn default_profile() -> String {
    "default".to_string()
}
fn default_alibaba_calls_per_second() -> u32 {
    10
}

/// A configuration error: which key, where, and what is wrong with it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{}{}: {message}", key.as_deref().map(|k| format!("config key `{k}`")).unwrap_or_else(|| "config".to_string()), line.map(|l| format!(" (line {l})")).unwrap_or_default())]
pub struct ConfigError {
    pub key: Option<String>,
    pub line: Option<usize>,
    pub message: String,
}

impl ConfigError {
    fn at(key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            key: Some(key.into()),
            line: None,
            message: message.into(),
        }
    }
}

impl Config {
    /// Reads, parses and validates a config file. `${NAME}` in a value is replaced by the
    /// environment variable NAME (secrets and endpoints in containers); `$${` is a literal `${`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|err| ConfigError {
            key: None,
            line: None,
            message: format!("cannot read {}: {err}", path.display()),
        })?;
        Self::parse_with(&text, &|name| std::env::var(name).ok())
    }

    /// Parses and validates YAML text without looking at the environment (tests, embedded defaults).
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        Self::parse_with(text, &|_| None)
    }

    fn parse_with(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let from_yaml = |err: yaml::Error| ConfigError {
            line: err.line,
            key: err.path,
            message: err.message,
        };
        let parsed = yaml::parse(text)
            .and_then(|mut document| {
                yaml::expand(&mut document, env)?;
                yaml::from_yaml::<Config>(&document)
            })
            .map_err(from_yaml)
            .and_then(|parsed| parsed.validate().map(|()| parsed));
        parsed.map_err(|mut err| {
            if err.line.is_none() {
                err.line = err.key.as_deref().and_then(|key| find_line(text, key));
            }
            err
        })
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut names = HashSet::new();
        for (index, job) in self.aws.iter().enumerate() {
            let key = |field: &str| format!("aws[{index}].{field}");
            let job_keys = JobKeys {
                prefix: format!("aws[{index}]"),
                name: &job.name,
                regions: &job.regions,
                endpoint_url: job.endpoint_url.as_deref(),
                region_example: "us-east-1",
            };
            job_keys.validate(&mut names)?;
            if let Some(arn) = &job.role_arn {
                if !(arn.starts_with("arn:") && arn.contains(":role/")) {
                    return Err(ConfigError::at(
                        key("role_arn"),
                        format!("{arn:?} is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)"),
                    ));
                }
            }
            if job.load_balancer_types.is_empty() {
                return Err(ConfigError::at(
                    key("load_balancer_types"),
                    "must list at least one of application, network, classic",
                ));
            }
            for (tag, values) in &job.tag_filters {
                if tag.is_empty() || values.is_empty() {
                    return Err(ConfigError::at(
                        format!("aws[{index}].tag_filters.{tag}"),
                        "a tag filter needs a non-empty key and at least one value",
                    ));
                }
            }
            let period = job.period.as_duration().as_secs();
            let whole_seconds = job.period.as_duration().subsec_millis() == 0;
            if !whole_seconds || !(matches!(period, 1 | 5 | 10 | 30) || (period >= 60 && period % 60 == 0)) {
                return Err(ConfigError::at(
                    key("period"),
                    format!(
                        "{} is not a CloudWatch period (1s, 5s, 10s, 30s or a multiple of 60s)",
                        job.period
                    ),
                ));
            }
            if job.interval.as_duration() < Duration::from_secs(1) {
                return Err(ConfigError::at(key("interval"), "must be at least 1s"));
            }
            if job.discovery_ttl.as_duration() < Duration::from_secs(1) {
                return Err(ConfigError::at(key("discovery_ttl"), "must be at least 1s"));
            }
        }
        self.validate_alibaba(&mut names)?;
        self.validate_probes()?;
        self.shard_assignment()?;
        self.rules
            .validate(crate::catalog::Catalog::embedded())
            .map_err(|err| {
                let key = match &err {
                    crate::rules::RulesError::UnknownOverride(name) => format!("rules.params.{name}"),
                    crate::rules::RulesError::UnknownCause { key, cause } => format!("rules.{key}.{cause}"),
                    crate::rules::RulesError::UnknownParam { .. } => "rules".to_string(),
                    crate::rules::RulesError::Objective { key, .. } => format!("rules.slo.{key}"),
                };
                ConfigError::at(key, err.to_string())
            })
    }

    /// The probes this exporter runs: all of them, or its shard's share (by probe name).
    pub fn sharded_probes(&self) -> impl Iterator<Item = &ProbeConfig> {
        let shard = self.shard_assignment().ok().flatten();
        self.probes
            .iter()
            .filter(move |probe| shard.is_none_or(|shard| shard.owns(&format!("probe/{}", probe.name))))
    }

    /// The resolved shard, if the config splits the fleet.
    pub fn shard_assignment(&self) -> Result<Option<ShardAssignment>, ConfigError> {
        let Some(shard) = self.shard else { return Ok(None) };
        if shard.count == 0 {
            return Err(ConfigError::at("shard.count", "must be at least 1"));
        }
        let index = match shard.index {
            Some(index) => index,
            None => {
                let hostname = std::env::var("HOSTNAME").unwrap_or_default();
                ordinal_from_hostname(&hostname).ok_or_else(|| {
                    ConfigError::at(
                        "shard.index",
                        format!("not set, and HOSTNAME {hostname:?} ends in no StatefulSet ordinal (name-N)"),
                    )
                })?
            }
        };
        if index >= shard.count {
            return Err(ConfigError::at(
                "shard.index",
                format!("{index} is not below shard.count {}", shard.count),
            ));
        }
        Ok(Some(ShardAssignment {
            index,
            count: shard.count,
        }))
    }

    fn validate_alibaba<'a>(&'a self, names: &mut HashSet<&'a str>) -> Result<(), ConfigError> {
        for (index, job) in self.alibaba.iter().enumerate() {
            let key = |field: &str| format!("alibaba[{index}].{field}");
            let job_keys = JobKeys {
                prefix: format!("alibaba[{index}]"),
                name: &job.name,
                regions: &job.regions,
                endpoint_url: job.endpoint_url.as_deref(),
                region_example: "cn-hangzhou",
            };
            job_keys.validate(names)?;
            if job.namespaces.is_empty() {
                return Err(ConfigError::at(
                    key("namespaces"),
                    "must list at least one of acs_slb_dashboard, acs_alb",
                ));
            }
            if let Some(id) = job.instance_ids.iter().find(|id| id.trim().is_empty()) {
                return Err(ConfigError::at(
                    key("instance_ids"),
                    format!("{id:?} is not an instance ID"),
                ));
            }
            let period = job.period.as_duration();
            if !matches!(period.as_secs(), 60 | 300 | 900) || period.subsec_millis() != 0 {
                return Err(ConfigError::at(
                    key("period"),
                    format!("{} is not a CloudMonitor period (60s, 300s or 900s)", job.period),
                ));
            }
            if job.interval.as_duration() < Duration::from_secs(1) {
                return Err(ConfigError::at(key("interval"), "must be at least 1s"));
            }
            if !(1..=50).contains(&job.max_calls_per_second) {
                return Err(ConfigError::at(
                    key("max_calls_per_second"),
                    "must be between 1 and 50 (the account-wide limit per API)",
                ));
            }
            if job.credentials_profile.trim().is_empty() {
                return Err(ConfigError::at(key("credentials_profile"), "must not be empty"));
            }
        }
        Ok(())
    }

    fn validate_probes(&self) -> Result<(), ConfigError> {
        let mut names = HashSet::new();
        for (index, probe) in self.probes.iter().enumerate() {
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
            if probe.vantage.trim().is_empty() {
                return Err(ConfigError::at(key("vantage"), "must not be empty"));
            }
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
            if let Some(path) = &probe.tls_ca_file {
                if !path.is_file() {
                    return Err(ConfigError::at(
                        key("tls_ca_file"),
                        format!("{} is not a readable file", path.display()),
                    ));
                }
            }
        }
        Ok(())
    }
}

const LINK_LOCAL_REFUSED: &str =
    "is a link-local or cloud metadata address; set allow_link_local: true to probe it anyway";

/// 169.254.0.0/16, fe80::/10 and the EC2 IPv6 metadata address fd00:ec2::254.
pub fn is_link_local(ip: &std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(v4) => v4.is_link_local(),
        std::net::IpAddr::V6(v6) => {
            (v6.segments()[0] & 0xffc0) == 0xfe80
                || *v6 == std::net::Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)
        }
    }
}

/// `host:port`, `[v6]:port`; the host without brackets.
pub fn split_host_port(text: &str) -> Option<(&str, u16)> {
    let (host, port) = text.rsplit_once(':')?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() || host.contains(char::is_whitespace) || (host.contains(':') && !text.starts_with('['))
    {
        return None;
    }
    Some((host, port.parse().ok()?))
}

/// The host of a URL that passed [`check_url`], without IPv6 brackets.
pub fn probe_url_host(url: &str) -> Option<String> {
    let uri: hyper::Uri = url.parse().ok()?;
    let host = uri.host()?;
    Some(host.trim_start_matches('[').trim_end_matches(']').to_string())
}

/// What every cloud job has: a unique name, regions and an optional endpoint.
struct JobKeys<'a> {
    prefix: String,
    name: &'a str,
    regions: &'a [String],
    endpoint_url: Option<&'a str>,
    region_example: &'static str,
}

impl<'a> JobKeys<'a> {
    /// Job names are unique across providers: they name the sources.
    fn validate(&self, names: &mut HashSet<&'a str>) -> Result<(), ConfigError> {
        let key = |field: &str| format!("{}.{field}", self.prefix);
        if self.name.trim().is_empty() {
            return Err(ConfigError::at(key("name"), "must not be empty"));
        }
        if !names.insert(self.name) {
            return Err(ConfigError::at(
                key("name"),
                format!("duplicate job name {:?}", self.name),
            ));
        }
        if self.regions.is_empty() {
            return Err(ConfigError::at(key("regions"), "must list at least one region"));
        }
        for (r, region) in self.regions.iter().enumerate() {
            if !is_region_name(region) {
                return Err(ConfigError::at(
                    format!("{}.regions[{r}]", self.prefix),
                    format!("{region:?} is not a region name such as {}", self.region_example),
                ));
            }
        }
        if let Some(url) = self.endpoint_url {
            check_url(url).map_err(|msg| ConfigError::at(key("endpoint_url"), msg))?;
        }
        Ok(())
    }
}

fn is_region_name(region: &str) -> bool {
    !region.is_empty()
        && region.contains('-')
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn check_url(url: &str) -> Result<(), String> {
    let uri: hyper::Uri = url
        .parse()
        .map_err(|err| format!("{url:?} is not a URL: {err}"))?;
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        _ => return Err(format!("{url:?} must start with http:// or https://")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(format!("{url:?} has no host"));
    }
    Ok(())
}

/// The line (1-based) of `key` (`aws[1].regions[0]`, `rules.slo.overrides[0].objective`) in the
/// YAML text: the line of that very entry, whatever list index it sits under. A key the text does
/// not hold (a missing required field) falls back to its nearest ancestor that it does.
fn find_line(text: &str, key: &str) -> Option<usize> {
    let lines = key_lines(text);
    let mut key = key;
    loop {
        if let Some(line) = lines.get(key) {
            return Some(*line);
        }
        let cut = key.rfind(['.', '['])?;
        key = &key[..cut];
    }
}

/// Every key path of the YAML text with the line it starts on, read from the parser's events so
/// that list indexes count (`aws[1].name` is the second entry's `name`, not the first one's).
fn key_lines(text: &str) -> std::collections::HashMap<String, usize> {
    use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
    use yaml_rust2::scanner::Marker;

    enum Frame {
        /// The path of the mapping, and the key whose value comes next.
        Map(String, Option<String>),
        /// The path of the sequence, and the index of its next element.
        Seq(String, usize),
    }
    #[derive(Default)]
    struct Walk {
        stack: Vec<Frame>,
        lines: std::collections::HashMap<String, usize>,
    }
    impl Walk {
        /// Where a new node goes: its path, or None when it is a mapping's key.
        fn place(&mut self, scalar: Option<&str>, line: usize) -> Option<String> {
            match self.stack.last_mut() {
                None => Some(String::new()),
                Some(Frame::Map(path, key @ None)) => {
                    if let Some(name) = scalar {
                        let full = if path.is_empty() {
                            name.to_string()
                        } else {
                            format!("{path}.{name}")
                        };
                        self.lines.entry(full).or_insert(line);
                        *key = Some(name.to_string());
                    }
                    None
                }
                Some(Frame::Map(path, key @ Some(_))) => {
                    let name = key.take().unwrap_or_default();
                    Some(if path.is_empty() {
                        name
                    } else {
                        format!("{path}.{name}")
                    })
                }
                Some(Frame::Seq(path, next)) => {
                    let full = format!("{path}[{next}]");
                    *next += 1;
                    self.lines.entry(full.clone()).or_insert(line);
                    Some(full)
                }
            }
        }
    }
    impl MarkedEventReceiver for Walk {
        fn on_event(&mut self, event: Event, mark: Marker) {
            let line = mark.line();
            match event {
                Event::Scalar(value, ..) => {
                    self.place(Some(&value), line);
                }
                Event::Alias(_) => {
                    self.place(None, line);
                }
                Event::MappingStart(..) => {
                    if let Some(path) = self.place(None, line) {
                        self.stack.push(Frame::Map(path, None));
                    }
                }
                Event::SequenceStart(..) => {
                    if let Some(path) = self.place(None, line) {
                        self.stack.push(Frame::Seq(path, 0));
                    }
                }
                Event::MappingEnd | Event::SequenceEnd => {
                    self.stack.pop();
                }
                _ => {}
            }
        }
    }
    let mut walk = Walk::default();
    // A text that does not parse has no lines to point at; the parse error says where instead.
    let _ = Parser::new_from_str(text).load(&mut walk, false);
    walk.lines
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "aws:\n  - name: prod\n    regions: [us-east-1]\n";

    fn error(text: &str) -> ConfigError {
        Config::parse(text).expect_err("config must be rejected")
    }

    #[test]
    fn defaults_apply() {
        let config = Config::parse(GOOD).expect("valid");
        let job = &config.aws[0];
        assert_eq!(job.period.as_duration(), Duration::from_secs(60));
        assert_eq!(job.delay.as_duration(), Duration::from_secs(120));
        assert_eq!(job.interval.as_duration(), Duration::from_secs(60));
        assert_eq!(job.discovery_ttl.as_duration(), Duration::from_secs(300));
        assert_eq!(job.load_balancer_types, LoadBalancerType::ALL.to_vec());
        assert!(job.tag_filters.is_empty());
    }

    #[test]
    fn full_example_parses() {
        let config = Config::parse(
            "aws:\n  - name: prod\n    regions: [us-east-1, eu-west-1]\n    endpoint_url: http://127.0.0.1:5000\n    role_arn: arn:aws:iam::123456789012:role/lbtriage\n    load_balancer_types: [application, network]\n    tag_filters: {Team: [web, api]}\n    period: 10s\n    delay: 20s\n    interval: 10s\n    discovery_ttl: 5m\n",
        )
        .expect("valid");
        let job = &config.aws[0];
        assert_eq!(job.regions, ["us-east-1", "eu-west-1"]);
        // Tag keys are case-sensitive in AWS: the config must not fold them.
        assert_eq!(job.tag_filters.get("Team").map(Vec::len), Some(2));
        assert_eq!(job.period.as_duration(), Duration::from_secs(10));
    }

    #[test]
    fn each_bad_key_names_itself() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "aws:\n  - name: a\n    regions: [us-east-1]\n    colour: red\n",
                "aws[0].colour",
                "unknown field",
            ),
            (
                "aws:\n  - name: a\n    regions: []\n",
                "aws[0].regions",
                "at least one region",
            ),
            (
                "aws:\n  - name: a\n    regions: [US_EAST]\n",
                "aws[0].regions[0]",
                "region name",
            ),
            (
                "aws:\n  - name: ''\n    regions: [us-east-1]\n",
                "aws[0].name",
                "empty",
            ),
            (
                "aws:\n  - name: a\n    regions: [us-east-1]\n  - name: a\n    regions: [us-east-1]\n",
                "aws[1].name",
                "duplicate",
            ),
            (
                "aws:\n  - name: a\n    regions: [us-east-1]\n    period: 7s\n",
                "aws[0].period",
                "CloudWatch period",
            ),
            (
                "aws:\n  - name: a\n    regions: [us-east-1]\n    interval: 0s\n",
                "aws[0].interval",
                "at least 1s",
            ),
            (
                "aws:\n  - name: a\n    regions: [us-east-1]\n    delay: -5s\n",
                "aws[0].delay",
                "negative",
            ),
            (
                "aws:\n  - name: a\n    regions: [us-east-1]\n    endpoint_url: ftp://x\n",
                "aws[0].endpoint_url",
                "http://",
            ),
            (
                "aws:\n  - name: a\n    regions: [us-east-1]\n    role_arn: lbtriage\n",
                "aws[0].role_arn",
                "role ARN",
            ),
            (
                "aws:\n  - name: a\n    regions: [us-east-1]\n    load_balancer_types: [gateway]\n",
                "aws[0].load_balancer_types[0]",
                "gateway",
            ),
            (
                "aws:\n  - name: a\n    regions: [us-east-1]\n    load_balancer_types: []\n",
                "aws[0].load_balancer_types",
                "at least one",
            ),
            (
                "aws:\n  - name: a\n    regions: [us-east-1]\n    tag_filters: {team: []}\n",
                "aws[0].tag_filters.team",
                "at least one value",
            ),
            ("aws:\n  - regions: [us-east-1]\n", "aws[0].name", "missing"),
            ("awz: []\n", "awz", "unknown field"),
            (
                "probes:\n  - name: p\n    url: ftp://x/\n",
                "probes[0].url",
                "http://",
            ),
            (
                "probes:\n  - name: p\n    url: http://169.254.169.254/\n",
                "probes[0].url",
                "link-local",
            ),
            (
                "probes:\n  - name: p\n    url: http://x/\n    backends: [nohostport]\n",
                "probes[0].backends[0]",
                "host:port",
            ),
            (
                "probes:\n  - name: p\n    url: http://x/\n    backends: ['[fd00:ec2::254]:80']\n",
                "probes[0].backends[0]",
                "metadata",
            ),
            (
                "probes:\n  - name: p\n    url: http://x/\n    discover_backends: true\n",
                "probes[0].discover_backends",
                "needs `lb`",
            ),
            (
                "probes:\n  - name: p\n    url: http://x/\n    app_path: nope\n",
                "probes[0].app_path",
                "start with /",
            ),
            (
                "probes:\n  - name: p\n    url: http://x/\n    timeout: 0s\n",
                "probes[0].timeout",
                "at least 100ms",
            ),
            (
                "probes:\n  - name: p\n    url: http://x/\n    backend_scheme: ftp\n",
                "probes[0].backend_scheme",
                "ftp",
            ),
            (
                "probes:\n  - name: p\n    url: http://x/\n  - name: p\n    url: http://y/\n",
                "probes[1].name",
                "duplicate",
            ),
            (
                "alibaba:\n  - name: a\n    regions: [cn-hangzhou]\n    period: 120s\n",
                "alibaba[0].period",
                "60s, 300s or 900s",
            ),
            (
                "alibaba:\n  - name: a\n    regions: [cn-hangzhou]\n    namespaces: [acs_ecs_dashboard]\n",
                "alibaba[0].namespaces[0]",
                "acs_ecs_dashboard",
            ),
            (
                "alibaba:\n  - name: a\n    regions: []\n",
                "alibaba[0].regions",
                "at least one region",
            ),
            (
                "alibaba:\n  - name: a\n    regions: [cn-hangzhou]\n    max_calls_per_second: 0\n",
                "alibaba[0].max_calls_per_second",
                "between 1 and 50",
            ),
            (
                "aws:\n  - name: prod\n    regions: [us-east-1]\nalibaba:\n  - name: prod\n    regions: [cn-hangzhou]\n",
                "alibaba[0].name",
                "duplicate",
            ),
            (
                "alibaba:\n  - name: a\n    regions: [cn-hangzhou]\n    endpoint_url: metrics.local\n",
                "alibaba[0].endpoint_url",
                "http",
            ),
        ];
        for (text, key, message) in cases {
            let err = error(text);
            let shown = err.to_string();
            assert_eq!(err.key.as_deref(), Some(*key), "{text:?}: {shown}");
            assert!(
                shown.contains(message),
                "{text:?}: expected {message:?} in {shown}"
            );
        }
    }

    #[test]
    fn probe_defaults_apply() {
        let config =
            Config::parse("probes:\n  - name: shop\n    url: https://shop.example.com/\n").expect("valid");
        let probe = &config.probes[0];
        assert_eq!(probe.backend_scheme, Scheme::Http);
        assert_eq!((probe.app_path.as_str(), probe.health_path.as_str()), ("/", "/"));
        assert_eq!(probe.interval.as_duration(), Duration::from_secs(30));
        assert_eq!(probe.timeout.as_duration(), Duration::from_secs(10));
        assert_eq!(probe.lb_response_timeout.as_duration(), Duration::from_secs(60));
        assert_eq!(probe.lb_idle_timeout, None);
        assert_eq!(probe.vantage, "default");
        assert!(!probe.allow_link_local);
        let allowed = Config::parse(
            "probes:\n  - name: p\n    url: http://169.254.169.254/\n    allow_link_local: true\n",
        );
        assert!(allowed.is_ok());
    }

    #[test]
    fn shards_split_keys_disjointly_and_completely() {
        let shards: Vec<ShardAssignment> = (0..3).map(|index| ShardAssignment { index, count: 3 }).collect();
        let mut sizes = [0usize; 3];
        for n in 0..3000 {
            let key = format!("us-east-1/app/lb{n}/{n:016x}");
            let owners: Vec<u32> = shards.iter().filter(|s| s.owns(&key)).map(|s| s.index).collect();
            assert_eq!(owners.len(), 1, "{key} owned by {owners:?}");
            sizes[owners[0] as usize] += 1;
        }
        assert!(
            sizes.iter().all(|n| (800..1200).contains(n)),
            "balanced: {sizes:?}"
        );
        assert_eq!(ordinal_from_hostname("lbtriage-2"), Some(2));
        assert_eq!(ordinal_from_hostname("lbtriage"), None);
        let config = Config::parse("shard: {count: 4, index: 1}\n").expect("valid");
        assert_eq!(
            config.shard_assignment(),
            Ok(Some(ShardAssignment { index: 1, count: 4 }))
        );
    }

    #[test]
    fn host_port_forms() {
        assert_eq!(split_host_port("10.0.1.5:8080"), Some(("10.0.1.5", 8080)));
        assert_eq!(split_host_port("[::1]:80"), Some(("::1", 80)));
        assert_eq!(
            split_host_port("backend.internal:443"),
            Some(("backend.internal", 443))
        );
        assert_eq!(split_host_port("::1:80"), None);
        assert_eq!(split_host_port("host"), None);
        assert_eq!(split_host_port("host:http"), None);
    }

    #[test]
    fn error_lines_follow_list_indexes_in_every_section() {
        let text = "probes:\n  - name: one\n    url: http://a/\n  - name: two\n    url: http://b/\naws:\n  - name: first\n    regions: [us-east-1]\n  - name: second\n    regions: [eu-west-1, \"\"]\n    period: 7s\nrules:\n  slo:\n    overrides:\n      - {selector: 'a=\"b\"', objective: 0.9}\n      - selector: 'c=\"d\"'\n        objective: 2\n";
        for (key, line) in [
            ("probes[0].name", 2),
            ("probes[1].name", 4),
            ("probes[1].url", 5),
            ("aws[0].name", 7),
            ("aws[1].name", 9),
            ("aws[1].regions[1]", 10),
            ("aws[1].period", 11),
            ("rules.slo.overrides[1].objective", 17),
            ("rules.slo.overrides[0].objective", 15),
            // Not in the text: the nearest ancestor that is.
            ("aws[1].delay", 9),
            ("probes[1]", 4),
        ] {
            assert_eq!(find_line(text, key), Some(line), "{key}");
        }
        // What the error of a second entry says.
        let err = error("aws:\n  - name: a\n    regions: [us-east-1]\n  - name: b\n    regions: [us-east-1]\n    period: 7s\n");
        assert_eq!(err.key.as_deref(), Some("aws[1].period"));
        assert_eq!(err.line, Some(6));
    }

    #[test]
    fn validation_errors_carry_the_line() {
        let err = error("aws:\n  - name: a\n    regions: [us-east-1]\n    period: 7s\n");
        assert_eq!(err.line, Some(4));
        assert!(
            err.to_string()
                .starts_with("config key `aws[0].period` (line 4): "),
            "{err}"
        );
    }
}
