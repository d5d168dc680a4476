//! Prometheus-style durations (`90s`, `5m`, `1h30m`, `250ms`), the form operators already write in
//! Prometheus and Alertmanager configs.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// A duration written the Prometheus way. Zero is representable; validation decides where it is allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PromDuration(pub Duration);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid duration {input:?}: {reason} (expected e.g. 60s, 5m, 1h30m, 250ms)")]
pub struct DurationError {
    input: String,
    reason: &'static str,
}

impl PromDuration {
    pub fn parse(input: &str) -> Result<Self, DurationError> {
        let fail = |reason| DurationError {
            input: input.to_string(),
            reason,
        };
        let text = input.trim();
        if text.is_empty() {
            return Err(fail("empty"));
        }
        if text.starts_with('-') {
            return Err(fail("negative"));
        }
        let mut total_ms: u128 = 0;
        let mut rest = text;
        // Units must appear largest first and at most once, as in Prometheus.
        let mut last_rank = usize::MAX;
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return Err(fail("expected a number"));
            }
            let number: u128 = rest[..digits].parse().map_err(|_| fail("number too large"))?;
            rest = &rest[digits..];
            let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
            let (rank, unit_ms) = match &rest[..unit_len] {
                "y" => (0, 365 * 86_400_000),
                "w" => (1, 7 * 86_400_000),
                "d" => (2, 86_400_000),
                "h" => (3, 3_600_000),
                "m" => (4, 60_000),
                "s" => (5, 1_000),
                "ms" => (6, 1),
                "" => return Err(fail("missing unit")),
                _ => return Err(fail("unknown unit")),
            };
            if last_rank != usize::MAX && rank <= last_rank {
                return Err(fail("units out of order"));
            }
            last_rank = rank;
            rest = &rest[unit_len..];
            total_ms = number
                .checked_mul(unit_ms)
                .and_then(|ms| total_ms.checked_add(ms))
                .ok_or_else(|| fail("too large"))?;
        }
        let ms = u64::try_from(total_ms).map_err(|_| fail("too large"))?;
        Ok(PromDuration(Duration::from_millis(ms)))
    }

    pub fn as_duration(self) -> Duration {
        self.0
    }
}

impl fmt::Display for PromDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if ms == 0 {
            return write!(f, "0s");
        }
        let mut rest = ms;
        for (unit, size) in [("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1)] {
            if rest >= size {
                write!(f, "{}{unit}", rest / size)?;
                rest %= size;
            }
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for PromDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        PromDuration::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> PromDuration {
        PromDuration(Duration::from_secs(s))
    }

    #[test]
    fn parses_prometheus_forms() {
        assert_eq!(PromDuration::parse("60s"), Ok(secs(60)));
        assert_eq!(PromDuration::parse("5m"), Ok(secs(300)));
        assert_eq!(PromDuration::parse("1h30m"), Ok(secs(5400)));
        assert_eq!(PromDuration::parse("0s"), Ok(secs(0)));
        assert_eq!(
            PromDuration::parse("250ms"),
            Ok(PromDuration(Duration::from_millis(250)))
        );
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "60",
            "-5s",
            "5x",
            "s",
            "5m1h",
            "1s1s",
            "99999999999999999999y",
        ] {
            assert!(PromDuration::parse(bad).is_err(), "{bad:?} must be rejected");
        }
    }

    #[test]
    fn displays_round_trip() {
        for text in ["1h30m", "2m", "10s", "1s500ms"] {
            let parsed = PromDuration::parse(text).expect("valid");
            assert_eq!(parsed.to_string(), text);
        }
    }
}
