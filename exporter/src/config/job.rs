//! What every cloud job has, declared and checked once: a unique name, regions, an optional
//! endpoint, the timing of its reads (period, delay, interval, collection, slow interval) and how
//! often its inventory is re-read. [`cloud_job!`] declares a cloud's job struct with these fields
//! and the cloud's own (serde's `flatten` cannot be combined with `deny_unknown_fields`, and an
//! unknown key must stay an error that names itself); `key_pair` adds the access-key credentials
//! and the call-rate bound of the clouds that sign requests with a key pair (Alibaba, Tencent).

use std::collections::HashSet;
use std::time::Duration;

use serde::Deserialize;

pub use super::duration::PromDuration;
use super::error::ConfigError;

/// Which metrics a cloud job reads, and when (docs/design.md, "Adaptive collection").
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Collection {
    /// Every cycle the sentinel tier; the detail tier for a load balancer whose sentinel shows
    /// errors, back-filled from its own watermark; the slow tier every `slow_interval`.
    #[default]
    Adaptive,
    /// Every metric every cycle.
    Full,
}

impl Collection {
    pub fn as_str(self) -> &'static str {
        match self {
            Collection::Adaptive => "adaptive",
            Collection::Full => "full",
        }
    }
}

pub fn default_period() -> PromDuration {
    PromDuration(Duration::from_secs(60))
}
/// Where a provider documents no figure: most of a minute's data is in two minutes after it ends.
/// (Tencent Cloud's managed Prometheus pulls Cloud Monitor data over a configurable delayed window
/// because "the reporting link latency of certain products" varies, without a figure:
/// https://www.tencentcloud.com/document/product/1116/78021; CloudMonitor gives none either.)
pub fn default_delay() -> PromDuration {
    PromDuration(Duration::from_secs(120))
}
/// ELB sends its metrics to CloudWatch every 60 seconds, so a minute's data starts arriving about
/// a minute after it ends (docs/metrics.md cites it); `settle` takes what arrives later.
pub fn sixty_seconds() -> PromDuration {
    PromDuration(Duration::from_secs(60))
}
pub fn default_interval() -> PromDuration {
    PromDuration(Duration::from_secs(60))
}
pub fn default_slow_interval() -> PromDuration {
    // 15 minutes keeps a quiet ALB under $1.50 a month (docs/BENCHMARKS.md); 5m costs $1.81.
    PromDuration(Duration::from_secs(900))
}
/// Ten minutes, as cloudwatch_exporter's default delay: CloudWatch values "can still change for
/// several minutes" after the minute (docs/metrics.md cites the providers).
pub fn default_settle() -> PromDuration {
    PromDuration(Duration::from_secs(600))
}
/// The longest `settle`: unsettled periods are remembered per series, and a read's window grows
/// by it.
pub const MAX_SETTLE: Duration = Duration::from_secs(3600);
pub fn default_discovery_ttl() -> PromDuration {
    PromDuration(Duration::from_secs(300))
}
pub fn default_profile() -> String {
    "default".to_string()
}

/// The fields every cloud job shares, borrowed from one.
#[derive(Debug, Clone, Copy)]
pub struct JobCore<'a> {
    pub name: &'a str,
    pub regions: &'a [String],
    pub endpoint_url: Option<&'a str>,
    pub period: PromDuration,
    pub delay: PromDuration,
    pub interval: PromDuration,
    pub discovery_ttl: PromDuration,
    pub collection: Collection,
    pub slow_interval: PromDuration,
    pub settle: PromDuration,
}

/// The access-key credentials and call-rate bound of a job that has them.
#[derive(Debug, Clone, Copy)]
pub struct KeyPairSettings<'a> {
    pub credentials_file: Option<&'a std::path::Path>,
    pub credentials_profile: &'a str,
    pub max_calls_per_second: u32,
}

/// A cloud's job, as [`cloud_job!`] declares it.
pub trait CloudJob {
    fn core(&self) -> JobCore<'_>;
    /// `None` for a cloud whose credentials come from its SDK's chain (AWS).
    fn key_pair(&self) -> Option<KeyPairSettings<'_>>;
}

/// Declares a cloud job: `cloud_job! { /// docs \n pub struct Job { own fields } delay = "fn",
/// settle = "fn" }` (the cloud's defaults), optionally followed by
/// `key_pair(calls_per_second = "path::to::default_fn")`.
macro_rules! cloud_job {
    (
        $(#[$meta:meta])*
        pub struct $job:ident { $($own:tt)* }
        delay = $delay:literal, settle = $settle:literal
    ) => {
        $crate::config::job::cloud_job!(@struct $(#[$meta])* $job { $($own)* } $delay, $settle {});
        impl $crate::config::job::CloudJob for $job {
            $crate::config::job::cloud_job!(@core);
            fn key_pair(&self) -> Option<$crate::config::job::KeyPairSettings<'_>> {
                None
            }
        }
    };
    (
        $(#[$meta:meta])*
        pub struct $job:ident { $($own:tt)* }
        delay = $delay:literal, settle = $settle:literal
        key_pair(calls_per_second = $calls:literal)
    ) => {
        $crate::config::job::cloud_job!(@struct $(#[$meta])* $job { $($own)* } $delay, $settle {
            /// A credentials file (INI, as the provider's official SDKs and CLI read it); without
            /// it, the provider's environment variables.
            #[serde(default)]
            pub credentials_file: Option<std::path::PathBuf>,
            /// The profile (section) of `credentials_file` to use.
            #[serde(default = "crate::config::job::default_profile")]
            pub credentials_profile: String,
            /// Calls per second this job makes at most, across its regions.
            #[serde(default = $calls)]
            pub max_calls_per_second: u32,
        });
        impl $crate::config::job::CloudJob for $job {
            $crate::config::job::cloud_job!(@core);
            fn key_pair(&self) -> Option<$crate::config::job::KeyPairSettings<'_>> {
                Some($crate::config::job::KeyPairSettings {
                    credentials_file: self.credentials_file.as_deref(),
                    credentials_profile: &self.credentials_profile,
                    max_calls_per_second: self.max_calls_per_second,
                })
            }
        }
    };
    (@struct $(#[$meta:meta])* $job:ident { $($own:tt)* } $delay:literal, $settle:literal { $($extra:tt)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, serde::Deserialize, PartialEq)]
        #[serde(deny_unknown_fields)]
        pub struct $job {
            /// Unique across providers: it names the job's sources.
            pub name: String,
            pub regions: Vec<String>,
            /// One endpoint for every call of the job: an emulator, a test server, a private
            /// endpoint. Default: the provider's public endpoint of each region.
            #[serde(default)]
            pub endpoint_url: Option<String>,
            /// The period of the datapoints read.
            #[serde(default = "crate::config::job::default_period")]
            pub period: $crate::config::job::PromDuration,
            /// How long after a period ends it is first counted.
            #[serde(default = $delay)]
            pub delay: $crate::config::job::PromDuration,
            /// How long after it was first counted a period is re-read (late data adds the
            /// difference); `0s` counts each period once.
            #[serde(default = $settle)]
            pub settle: $crate::config::job::PromDuration,
            /// How often a cycle runs.
            #[serde(default = "crate::config::job::default_interval")]
            pub interval: $crate::config::job::PromDuration,
            /// How often the inventory (load balancers, names, tags, targets) is re-read.
            #[serde(default = "crate::config::job::default_discovery_ttl")]
            pub discovery_ttl: $crate::config::job::PromDuration,
            /// Which metrics are read when: `adaptive` (tiers) or `full` (every metric every cycle).
            #[serde(default)]
            pub collection: $crate::config::job::Collection,
            /// How often the slow tier is read in `adaptive` collection.
            #[serde(default = "crate::config::job::default_slow_interval")]
            pub slow_interval: $crate::config::job::PromDuration,
            $($own)*
            $($extra)*
        }
    };
    (@core) => {
        fn core(&self) -> $crate::config::job::JobCore<'_> {
            $crate::config::job::JobCore {
                name: &self.name,
                regions: &self.regions,
                endpoint_url: self.endpoint_url.as_deref(),
                period: self.period,
                delay: self.delay,
                interval: self.interval,
                discovery_ttl: self.discovery_ttl,
                collection: self.collection,
                slow_interval: self.slow_interval,
                settle: self.settle,
            }
        }
    };
}

pub(crate) use cloud_job;

/// What one provider's validation needs to name a job's keys.
pub struct JobKeys<'a> {
    /// `aws[0]`, `alibaba[2]`, ...
    pub prefix: String,
    /// An example of the provider's region names, for the error.
    pub region_example: &'static str,
    /// The call rate the provider allows a job at most, for a key-pair job.
    pub max_calls_per_second: (u32, &'a str),
}

impl JobKeys<'_> {
    pub fn key(&self, field: &str) -> String {
        format!("{}.{field}", self.prefix)
    }
}

/// The checks every cloud job gets: job names unique across providers (they name the sources),
/// regions, endpoint, cadence, inventory refresh and, for a key-pair job, its credentials profile
/// and call rate.
pub fn validate_core<'a>(
    job: &'a impl CloudJob,
    keys: &JobKeys<'_>,
    names: &mut HashSet<&'a str>,
) -> Result<(), ConfigError> {
    let core = job.core();
    if core.name.trim().is_empty() {
        return Err(ConfigError::at(keys.key("name"), "must not be empty"));
    }
    if !names.insert(core.name) {
        return Err(ConfigError::at(
            keys.key("name"),
            format!("duplicate job name {:?}", core.name),
        ));
    }
    if core.regions.is_empty() {
        return Err(ConfigError::at(
            keys.key("regions"),
            "must list at least one region",
        ));
    }
    for (r, region) in core.regions.iter().enumerate() {
        if !is_region_name(region) {
            return Err(ConfigError::at(
                format!("{}.regions[{r}]", keys.prefix),
                format!("{region:?} is not a region name such as {}", keys.region_example),
            ));
        }
    }
    if let Some(url) = core.endpoint_url {
        check_url(url).map_err(|msg| ConfigError::at(keys.key("endpoint_url"), msg))?;
    }
    if core.interval.as_duration() < Duration::from_secs(1) {
        return Err(ConfigError::at(keys.key("interval"), "must be at least 1s"));
    }
    if core.slow_interval.as_duration() < core.interval.as_duration() {
        return Err(ConfigError::at(
            keys.key("slow_interval"),
            format!(
                "{} is shorter than interval {}",
                core.slow_interval, core.interval
            ),
        ));
    }
    if core.discovery_ttl.as_duration() < Duration::from_secs(1) {
        return Err(ConfigError::at(keys.key("discovery_ttl"), "must be at least 1s"));
    }
    if core.settle.as_duration() > MAX_SETTLE {
        return Err(ConfigError::at(
            keys.key("settle"),
            format!(
                "{} is longer than the 1h at most a period is re-read",
                core.settle
            ),
        ));
    }
    if let Some(key_pair) = job.key_pair() {
        let (most, why) = keys.max_calls_per_second;
        if !(1..=most).contains(&key_pair.max_calls_per_second) {
            return Err(ConfigError::at(
                keys.key("max_calls_per_second"),
                format!("must be between 1 and {most} ({why})"),
            ));
        }
        if key_pair.credentials_profile.trim().is_empty() {
            return Err(ConfigError::at(
                keys.key("credentials_profile"),
                "must not be empty",
            ));
        }
    }
    Ok(())
}

fn is_region_name(region: &str) -> bool {
    !region.is_empty()
        && region.contains('-')
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// An `http://` or `https://` URL with a host.
pub fn check_url(url: &str) -> Result<(), String> {
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
