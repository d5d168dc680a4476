//! The `auto_probes:` section: probes built from the clouds' inventories, for load balancers
//! nobody wrote a `probes:` entry for. What they may touch is fixed here and in
//! `probes/auto.rs`: only addresses the configured jobs' inventories list.

use std::time::Duration;

use serde::Deserialize;

use super::duration::PromDuration;
use super::error::ConfigError;
use super::probe::{
    default_probe_interval as default_interval, default_probe_timeout as default_timeout, default_vantage,
};

/// When a discovered load balancer is probed.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AutoProbeWhen {
    /// While its alarm is awake or it reports unhealthy targets, and for `linger` after.
    #[default]
    Alarmed,
    /// Every discovered load balancer, every `interval`.
    Always,
    /// No automatic probes (only `probes:` entries run).
    Never,
}

impl AutoProbeWhen {
    pub fn as_str(self) -> &'static str {
        match self {
            AutoProbeWhen::Alarmed => "alarmed",
            AutoProbeWhen::Always => "always",
            AutoProbeWhen::Never => "never",
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AutoProbes {
    #[serde(default)]
    pub when: AutoProbeWhen,
    /// How often an auto-probed load balancer is probed.
    #[serde(default = "default_interval")]
    pub interval: PromDuration,
    /// How long probing goes on after the last alarm.
    #[serde(default = "default_linger")]
    pub linger: PromDuration,
    /// Load balancers probed at once; the rest wait (the most recently alarmed go first).
    #[serde(default = "default_max_load_balancers")]
    pub max_load_balancers: usize,
    /// Targets probed per load balancer: unhealthy ones first, then a stable sample.
    #[serde(default = "default_max_targets")]
    pub max_targets: usize,
    /// Whether the front door (DNS name or VIP and listener) is probed too.
    #[serde(default = "default_true")]
    pub front_door: bool,
    /// How often a sample of every load balancer's targets gets one TCP connect, to learn
    /// which targets this vantage can reach at all.
    #[serde(default = "default_baseline_interval")]
    pub baseline_interval: PromDuration,
    /// Per check, as for `probes:`.
    #[serde(default = "default_timeout")]
    pub timeout: PromDuration,
    #[serde(default = "default_vantage")]
    pub vantage: String,
    #[serde(default)]
    pub tls_ca_file: Option<std::path::PathBuf>,
    #[serde(default)]
    pub allow_link_local: bool,
}

impl Default for AutoProbes {
    fn default() -> Self {
        AutoProbes {
            when: AutoProbeWhen::default(),
            interval: default_interval(),
            linger: default_linger(),
            max_load_balancers: default_max_load_balancers(),
            max_targets: default_max_targets(),
            front_door: true,
            baseline_interval: default_baseline_interval(),
            timeout: default_timeout(),
            vantage: default_vantage(),
            tls_ca_file: None,
            allow_link_local: false,
        }
    }
}

fn default_linger() -> PromDuration {
    PromDuration(Duration::from_secs(600))
}
fn default_max_load_balancers() -> usize {
    20
}
fn default_max_targets() -> usize {
    8
}
fn default_true() -> bool {
    true
}
fn default_baseline_interval() -> PromDuration {
    PromDuration(Duration::from_secs(900))
}

/// Bounds that keep one exporter's probing polite: at most this many load balancers and targets.
const MAX_LOAD_BALANCERS: usize = 200;
const MAX_TARGETS: usize = 64;

impl AutoProbes {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let auto = self;
        let key = |field: &str| format!("auto_probes.{field}");
        for (field, value, least) in [
            ("interval", auto.interval, Duration::from_secs(1)),
            ("timeout", auto.timeout, Duration::from_millis(100)),
            (
                "baseline_interval",
                auto.baseline_interval,
                Duration::from_secs(1),
            ),
            ("linger", auto.linger, Duration::ZERO),
        ] {
            if value.as_duration() < least {
                return Err(ConfigError::at(key(field), format!("must be at least {least:?}")));
            }
        }
        if !(1..=MAX_LOAD_BALANCERS).contains(&auto.max_load_balancers) {
            return Err(ConfigError::at(
                key("max_load_balancers"),
                format!("must be between 1 and {MAX_LOAD_BALANCERS}"),
            ));
        }
        if !(1..=MAX_TARGETS).contains(&auto.max_targets) {
            return Err(ConfigError::at(
                key("max_targets"),
                format!("must be between 1 and {MAX_TARGETS}"),
            ));
        }
        super::probe::check_vantage_and_ca(&key, &auto.vantage, auto.tls_ca_file.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn the_contract_keys_are_accepted_as_written() {
        let config = Config::parse("auto_probes: {when: alarmed, interval: 5s}\n").expect("valid");
        assert_eq!(config.auto_probes.when, AutoProbeWhen::Alarmed);
        assert_eq!(config.auto_probes.interval.as_duration(), Duration::from_secs(5));
        assert_eq!(config.auto_probes.linger.as_duration(), Duration::from_secs(600));
        let config = Config::parse(
            "auto_probes:\n  when: always\n  linger: 1m\n  max_load_balancers: 3\n  max_targets: 2\n  front_door: false\n  baseline_interval: 1m\n  vantage: eu\n  allow_link_local: true\n",
        )
        .expect("valid");
        assert_eq!(config.auto_probes.when, AutoProbeWhen::Always);
        assert!(!config.auto_probes.front_door);
        assert_eq!(
            Config::parse("").expect("valid").auto_probes,
            AutoProbes::default()
        );
    }

    #[test]
    fn errors_name_the_key_and_line() {
        let err = Config::parse("probes: []\nauto_probes:\n  when: sometimes\n").expect_err("invalid");
        assert_eq!(err.key.as_deref(), Some("auto_probes.when"));
        assert_eq!(err.line, Some(3));
        let err = Config::parse("auto_probes:\n  max_targets: 0\n").expect_err("invalid");
        assert_eq!(err.key.as_deref(), Some("auto_probes.max_targets"));
        assert_eq!(err.line, Some(2));
        let err = Config::parse("auto_probes:\n  intervall: 5s\n").expect_err("invalid");
        assert!(err.to_string().contains("intervall"), "{err}");
    }
}
