//! Sharding: which load balancers and probes this exporter owns when several split the fleet.

use serde::Deserialize;

use super::error::ConfigError;

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

impl Shard {
    /// The resolved shard.
    pub fn assignment(self) -> Result<ShardAssignment, ConfigError> {
        let shard = self;
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
        Ok(ShardAssignment {
            index,
            count: shard.count,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

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
}
