//! Validation of the whole configuration, and what every cloud job shares.

use std::collections::HashSet;
use std::time::Duration;

use super::{Config, ConfigError, PromDuration};

impl Config {
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
            if job.external_id.is_some() && job.role_arn.is_none() {
                return Err(ConfigError::at(
                    key("external_id"),
                    "is sent when assuming `role_arn`, which is not set",
                ));
            }
            if job
                .external_id
                .as_deref()
                .is_some_and(|id| !(2..=1224).contains(&id.len()))
            {
                return Err(ConfigError::at(
                    key("external_id"),
                    "must be 2 to 1,224 characters (the STS AssumeRole limit)",
                ));
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
            job_keys.validate_intervals(&job.interval, &job.slow_interval)?;
            if job.discovery_ttl.as_duration() < Duration::from_secs(1) {
                return Err(ConfigError::at(key("discovery_ttl"), "must be at least 1s"));
            }
        }
        self.validate_alibaba(&mut names)?;
        self.validate_tencent(&mut names)?;
        self.validate_probes()?;
        self.validate_auto_probes()?;
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
}

/// What every cloud job has: a unique name, regions and an optional endpoint.
pub(super) struct JobKeys<'a> {
    pub(super) prefix: String,
    pub(super) name: &'a str,
    pub(super) regions: &'a [String],
    pub(super) endpoint_url: Option<&'a str>,
    pub(super) region_example: &'static str,
}

impl<'a> JobKeys<'a> {
    /// Job names are unique across providers: they name the sources.
    pub(super) fn validate(&self, names: &mut HashSet<&'a str>) -> Result<(), ConfigError> {
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

    /// The collection cadence: at least a second, and the slow tier no more often than a cycle.
    pub(super) fn validate_intervals(
        &self,
        interval: &PromDuration,
        slow_interval: &PromDuration,
    ) -> Result<(), ConfigError> {
        let key = |field: &str| format!("{}.{field}", self.prefix);
        if interval.as_duration() < Duration::from_secs(1) {
            return Err(ConfigError::at(key("interval"), "must be at least 1s"));
        }
        if slow_interval.as_duration() < interval.as_duration() {
            return Err(ConfigError::at(
                key("slow_interval"),
                format!("{slow_interval} is shorter than interval {interval}"),
            ));
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

pub(super) fn check_url(url: &str) -> Result<(), String> {
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
