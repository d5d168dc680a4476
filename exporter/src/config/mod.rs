//! The configuration file: its schema, loading (YAML with `${VAR}` expansion in values) and
//! validation. Every error names the offending key, and the line where it can be found.
//!
//! One file per concern: the top level (schema), what every cloud job shares (job), a schema per
//! section (aws, alibaba, tencent, probe, auto_probes, shard, rules), validation across sections
//! (validate), the error type (error) and where a key is in the text (lines). The YAML reader is
//! the crate's `yaml` module.

mod alibaba;
mod auto_probes;
mod aws;
mod duration;
mod error;
pub mod job;
mod lines;
mod probe;
mod rules;
mod schema;
mod shard;
mod tencent;
mod validate;

use std::path::Path;

pub use alibaba::{AlibabaJob, AlibabaNamespace};
pub use auto_probes::{AutoProbeWhen, AutoProbes};
pub use aws::{AwsJob, LoadBalancerType};
pub use duration::{DurationError, PromDuration};
pub use error::ConfigError;
pub use job::{CloudJob, Collection};
pub use probe::{
    default_header_floor, default_header_sizes, ProbeConfig, Scheme, DEFAULT_LB_IDLE_TIMEOUT,
    MAX_HEADER_CHECK_BYTES,
};
pub use rules::{RulesConfig, RulesError, SloConfig, SloOverride};
pub use schema::Config;
pub use shard::{stable_hash, Shard, ShardAssignment};
pub use tencent::{TencentJob, TencentNamespace};

use crate::yaml;
use lines::find_line;

impl Config {
    /// The probes this exporter runs: all of them, or its shard's share (by probe name).
    pub fn sharded_probes(&self) -> impl Iterator<Item = &ProbeConfig> {
        let shard = self.shard_assignment().ok().flatten();
        self.probes
            .iter()
            .filter(move |probe| shard.is_none_or(|shard| shard.owns(&format!("probe/{}", probe.name))))
    }

    /// Checks every section (`validate.rs`); `load` and `parse` call it.
    pub fn validate(&self) -> Result<(), ConfigError> {
        validate::validate(self)
    }

    /// The resolved shard, if the config splits the fleet.
    pub fn shard_assignment(&self) -> Result<Option<ShardAssignment>, ConfigError> {
        self.shard.map(Shard::assignment).transpose()
    }

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
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

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
        // ELB data starts arriving a minute after the minute; `settle` takes the rest.
        assert_eq!(job.delay.as_duration(), Duration::from_secs(60));
        assert_eq!(job.settle.as_duration(), Duration::from_secs(600));
        assert_eq!(job.interval.as_duration(), Duration::from_secs(60));
        assert_eq!(job.discovery_ttl.as_duration(), Duration::from_secs(300));
        assert_eq!(job.load_balancer_types, LoadBalancerType::ALL.to_vec());
        assert!(job.tag_filters.is_empty());
    }

    /// `settle` is part of every cloud job; short periods and re-reads as written are accepted.
    #[test]
    fn settle_is_accepted_as_written_and_bounded() {
        let config = Config::parse(
            "aws:\n  - name: fast\n    regions: [us-east-1]\n    period: 10s\n    delay: 1s\n    interval: 2s\n    settle: 30s\n",
        )
        .expect("valid");
        let job = &config.aws[0];
        assert_eq!(job.settle.as_duration(), Duration::from_secs(30));
        assert_eq!(job.delay.as_duration(), Duration::from_secs(1));
        let defaults = Config::parse(
            "aws:\n  - {name: a, regions: [us-east-1]}\nalibaba:\n  - {name: b, regions: [cn-hangzhou]}\ntencent:\n  - {name: c, regions: [ap-guangzhou]}\n",
        )
        .expect("valid");
        assert_eq!(defaults.aws[0].settle.as_duration(), Duration::from_secs(600));
        assert_eq!(defaults.alibaba[0].settle.as_duration(), Duration::from_secs(600));
        assert_eq!(defaults.tencent[0].settle.as_duration(), Duration::from_secs(600));
        let err = error("tencent:\n  - name: c\n    regions: [ap-guangzhou]\n    settle: 2h\n");
        assert_eq!(err.key.as_deref(), Some("tencent[0].settle"));
        assert_eq!(err.line, Some(4));
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
                "aws:\n  - name: a\n    regions: [us-east-1]\n    slow_interval: 30s\n",
                "aws[0].slow_interval",
                "shorter than interval",
            ),
            (
                "aws:\n  - name: a\n    regions: [us-east-1]\n    collection: lazy\n",
                "aws[0].collection",
                "unknown variant",
            ),
            (
                "alibaba:\n  - name: a\n    regions: [cn-hangzhou]\n    interval: 120s\n    slow_interval: 60s\n",
                "alibaba[0].slow_interval",
                "shorter than interval",
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
                "aws:\n  - name: a\n    regions: [us-east-1]\n    external_id: shop\n",
                "aws[0].external_id",
                "role_arn",
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
