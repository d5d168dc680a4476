//! The configuration file: its schema, loading (YAML via the `config` crate, `LBTRIAGE__...` environment
//! overrides) and validation. Every error names the offending key, and the line where it can be found.

mod duration;

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
}

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

#[derive(Debug, Clone, Deserialize)]
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
    /// Reads, parses and validates a config file; environment variables `LBTRIAGE__<KEY>` override
    /// top-level and nested scalar keys (`__` separates levels).
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|err| ConfigError {
            key: None,
            line: None,
            message: format!("cannot read {}: {err}", path.display()),
        })?;
        Self::parse_with_env(&text, true)
    }

    /// Parses and validates YAML text without looking at the environment (tests, embedded defaults).
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        Self::parse_with_env(text, false)
    }

    fn parse_with_env(text: &str, with_env: bool) -> Result<Config, ConfigError> {
        let mut builder =
            config::Config::builder().add_source(config::File::from_str(text, config::FileFormat::Yaml));
        if with_env {
            builder = builder.add_source(
                config::Environment::with_prefix("LBTRIAGE")
                    .prefix_separator("__")
                    .separator("__")
                    .try_parsing(true),
            );
        }
        let parsed = builder
            .build()
            .and_then(|raw| raw.try_deserialize::<Config>())
            .map_err(|err| from_config_crate(&err))
            .and_then(|parsed| parsed.validate().map(|()| parsed));
        parsed.map_err(|mut err| {
            err.line = err.key.as_deref().and_then(|key| find_line(text, key));
            err
        })
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut names = HashSet::new();
        for (index, job) in self.aws.iter().enumerate() {
            let key = |field: &str| format!("aws[{index}].{field}");
            if job.name.trim().is_empty() {
                return Err(ConfigError::at(key("name"), "must not be empty"));
            }
            if !names.insert(job.name.as_str()) {
                return Err(ConfigError::at(
                    key("name"),
                    format!("duplicate job name {:?}", job.name),
                ));
            }
            if job.regions.is_empty() {
                return Err(ConfigError::at(key("regions"), "must list at least one region"));
            }
            for (r, region) in job.regions.iter().enumerate() {
                if !is_region_name(region) {
                    return Err(ConfigError::at(
                        format!("aws[{index}].regions[{r}]"),
                        format!("{region:?} is not a region name such as us-east-1"),
                    ));
                }
            }
            if let Some(url) = &job.endpoint_url {
                check_url(url).map_err(|msg| ConfigError::at(key("endpoint_url"), msg))?;
            }
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

/// Turns the `config` crate's error into ours, recovering the full key path it names.
fn from_config_crate(err: &config::ConfigError) -> ConfigError {
    let text = err.to_string();
    let path = between(&text, "for key `", "`");
    let field = between(&text, "unknown field `", "`").or_else(|| between(&text, "missing field `", "`"));
    let path = path
        .or_else(|| between(&text, "missing configuration field \"", "\""))
        .map(normalize_key);
    let key = match (path, field) {
        (Some(path), Some(field)) => Some(format!("{path}.{field}")),
        (None, Some(field)) => Some(field.to_string()),
        (Some(path), None) => Some(path),
        (None, None) => None,
    };
    let message = match text.find(" for key `") {
        Some(at) => text[..at].to_string(),
        None => text,
    };
    ConfigError {
        key,
        line: None,
        message,
    }
}

/// The crate omits the dot after an index (`aws[0]regions`); restore it.
fn normalize_key(raw: &str) -> String {
    let mut key = String::with_capacity(raw.len() + 4);
    for c in raw.chars() {
        if key.ends_with(']') && c != '[' && c != '.' {
            key.push('.');
        }
        key.push(c);
    }
    key
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = text.find(start)? + start.len();
    let len = text[from..].find(end)?;
    Some(&text[from..from + len])
}

/// The first line (1-based) whose YAML key is the last named segment of `key`
/// (`aws[0].regions[1]` → `regions:`).
fn find_line(text: &str, key: &str) -> Option<usize> {
    let last = key
        .split(['.', '['])
        .rfind(|segment| !segment.is_empty() && !segment.ends_with(']'))?;
    text.lines()
        .position(|line| {
            let line = line.trim_start().trim_start_matches("- ").trim_start();
            line.strip_prefix(last)
                .is_some_and(|rest| rest.trim_start().starts_with(':'))
        })
        .map(|index| index + 1)
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
                "colour",
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
                "delay",
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
        ];
        for (text, key, message) in cases {
            let err = error(text);
            let shown = err.to_string();
            assert!(
                err.key.as_deref().is_some_and(|k| k.contains(key)),
                "{text:?}: expected key containing {key:?}, got {shown}"
            );
            assert!(
                shown.contains(message),
                "{text:?}: expected {message:?} in {shown}"
            );
        }
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
