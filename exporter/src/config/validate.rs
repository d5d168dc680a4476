//! Validation of the whole configuration: every cloud job's shared fields once (`job.rs`), then
//! what each section alone can get wrong.

use std::collections::HashSet;

use super::error::ConfigError;
use super::job::{validate_core, JobKeys};
use super::probe::validate_probes;
use super::rules::RulesError;
use super::schema::Config;
use super::{alibaba, tencent};
use crate::catalog::Catalog;

pub(super) fn validate(config: &Config) -> Result<(), ConfigError> {
    // Job names are unique across providers: they name the sources.
    let mut names = HashSet::new();
    for (index, job) in config.aws.iter().enumerate() {
        let keys = JobKeys {
            prefix: format!("aws[{index}]"),
            region_example: "us-east-1",
            max_calls_per_second: (0, ""),
        };
        validate_core(job, &keys, &mut names)?;
        job.validate(&keys)?;
    }
    for (index, job) in config.alibaba.iter().enumerate() {
        let keys = JobKeys {
            prefix: format!("alibaba[{index}]"),
            region_example: "cn-hangzhou",
            max_calls_per_second: alibaba::MAX_CALLS_PER_SECOND,
        };
        validate_core(job, &keys, &mut names)?;
        job.validate(&keys)?;
    }
    for (index, job) in config.tencent.iter().enumerate() {
        let keys = JobKeys {
            prefix: format!("tencent[{index}]"),
            region_example: "ap-guangzhou",
            max_calls_per_second: tencent::MAX_CALLS_PER_SECOND,
        };
        validate_core(job, &keys, &mut names)?;
        job.validate(&keys)?;
    }
    validate_probes(&config.probes)?;
    config.auto_probes.validate()?;
    if let Some(shard) = config.shard {
        shard.assignment()?;
    }
    config.rules.validate(Catalog::embedded()).map_err(|err| {
        let key = match &err {
            RulesError::UnknownOverride(name) => format!("rules.params.{name}"),
            RulesError::UnknownCause { key, cause } => format!("rules.{key}.{cause}"),
            RulesError::UnknownParam { .. } => "rules".to_string(),
            RulesError::Objective { key, .. } => format!("rules.slo.{key}"),
        };
        ConfigError::at(key, err.to_string())
    })
}
