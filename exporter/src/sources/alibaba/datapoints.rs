//! Decoding a `DescribeMetricList` answer. `Datapoints` is a JSON *string* holding a JSON array, so
//! it is decoded twice; points carry the statistic under `Average`/`Maximum`/`Minimum` (SLB) or
//! `Value` (ALB). Nothing here trusts the input: a missing `Datapoints` is an empty page, a point
//! without an instance or a number is skipped, and anything else malformed is an error, not a panic.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub struct Datapoint {
    /// Start of the period, Unix seconds.
    pub timestamp: i64,
    pub instance: String,
    /// The listener port, for per-port metrics.
    pub port: Option<String>,
    pub value: f64,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Page {
    pub points: Vec<Datapoint>,
    pub next_token: Option<String>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ResponseError {
    /// The API's own error answer (`Code` other than 200).
    #[error("{code}: {message}")]
    Api { code: String, message: String },
    #[error("malformed response: {0}")]
    Malformed(String),
}

impl ResponseError {
    pub fn code(&self) -> Option<&str> {
        match self {
            ResponseError::Api { code, .. } => Some(code),
            ResponseError::Malformed(_) => None,
        }
    }
}

/// Where the statistic may be: the requested one first, then the other shapes.
const STATISTICS: [&str; 4] = ["Value", "Average", "Maximum", "Minimum"];

fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::String(text) if !text.is_empty() => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

fn number_of(value: &Value) -> Option<f64> {
    match value {
        Value::Number(number) => number.as_f64(),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
    .filter(|n: &f64| n.is_finite())
}

/// Parses one page. `instance_dimension` is `instanceId` (SLB) or `loadBalancerId` (ALB);
/// `statistic` is the one asked for.
pub fn parse_page(body: &[u8], instance_dimension: &str, statistic: &str) -> Result<Page, ResponseError> {
    let answer: Value =
        serde_json::from_slice(body).map_err(|err| ResponseError::Malformed(format!("not JSON: {err}")))?;
    let Value::Object(answer) = answer else {
        return Err(ResponseError::Malformed("not a JSON object".to_string()));
    };
    let code = answer.get("Code").and_then(text_of);
    let success = answer.get("Success").and_then(Value::as_bool);
    if success == Some(false) || code.as_deref().is_some_and(|c| c != "200") {
        return Err(ResponseError::Api {
            code: code.unwrap_or_else(|| "Unknown".to_string()),
            message: answer
                .get("Message")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .chars()
                .take(300)
                .collect(),
        });
    }
    let next_token = answer.get("NextToken").and_then(text_of);
    let points = match answer.get("Datapoints") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(text)) if text.trim().is_empty() => Vec::new(),
        Some(Value::String(text)) => {
            let decoded: Value = serde_json::from_str(text)
                .map_err(|err| ResponseError::Malformed(format!("Datapoints is not JSON: {err}")))?;
            points(&decoded, instance_dimension, statistic)?
        }
        // Tolerate an already-decoded array.
        Some(array @ Value::Array(_)) => points(array, instance_dimension, statistic)?,
        Some(other) => {
            return Err(ResponseError::Malformed(format!(
                "Datapoints is neither a string nor an array: {}",
                kind(other)
            )))
        }
    };
    Ok(Page { points, next_token })
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn points(
    decoded: &Value,
    instance_dimension: &str,
    statistic: &str,
) -> Result<Vec<Datapoint>, ResponseError> {
    let Value::Array(items) = decoded else {
        return Err(ResponseError::Malformed(format!(
            "Datapoints holds {}, not an array",
            kind(decoded)
        )));
    };
    let order = std::iter::once(statistic).chain(STATISTICS.iter().copied().filter(|s| *s != statistic));
    let order: Vec<&str> = order.collect();
    Ok(items
        .iter()
        .filter_map(|item| {
            let timestamp_ms = item.get("timestamp").and_then(number_of)?;
            let instance = item.get(instance_dimension).and_then(text_of)?;
            let value = order.iter().find_map(|s| item.get(*s).and_then(number_of))?;
            // Milliseconds within any plausible range; anything else is not a time.
            if !(0.0..1e15).contains(&timestamp_ms) {
                return None;
            }
            Some(Datapoint {
                timestamp: (timestamp_ms / 1000.0) as i64,
                instance,
                port: item.get("port").and_then(text_of),
                value,
            })
        })
        .collect())
}

/// The fuzz entry point (`fuzz/fuzz_targets/answers_alibaba.rs`): any answer body, decoded as
/// either namespace answers, gives a page whose points are finite and whose times are sane, or an
/// error.
pub fn fuzz(data: &[u8]) {
    for (dimension, statistic) in [("instanceId", "Average"), ("loadBalancerId", "Value")] {
        if let Ok(page) = parse_page(data, dimension, statistic) {
            for point in &page.points {
                assert!(point.value.is_finite());
                assert!(point.timestamp >= 0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_the_string_twice_and_reads_every_statistic_shape() {
        let body = br#"{"Code":"200","Success":true,"NextToken":"abc","Period":"60",
            "Datapoints":"[{\"timestamp\":1700000000000,\"instanceId\":\"lb-1\",\"port\":\"80\",\"Average\":2.5,\"Maximum\":4},{\"timestamp\":1700000060000,\"instanceId\":\"lb-1\",\"port\":443,\"Value\":\"7\"}]"}"#;
        let page = parse_page(body, "instanceId", "Average").expect("parses");
        assert_eq!(page.next_token.as_deref(), Some("abc"));
        assert_eq!(
            page.points,
            vec![
                Datapoint {
                    timestamp: 1_700_000_000,
                    instance: "lb-1".into(),
                    port: Some("80".into()),
                    value: 2.5
                },
                Datapoint {
                    timestamp: 1_700_000_060,
                    instance: "lb-1".into(),
                    port: Some("443".into()),
                    value: 7.0
                },
            ]
        );
    }

    #[test]
    fn missing_datapoints_is_an_empty_page_and_errors_keep_their_code() {
        let page = parse_page(br#"{"Code":"200","Success":true}"#, "instanceId", "Average").expect("ok");
        assert!(page.points.is_empty() && page.next_token.is_none());
        let err = parse_page(
            br#"{"Code":"Throttling.User","Message":"Request was denied due to user flow control."}"#,
            "instanceId",
            "Average",
        )
        .expect_err("an error");
        assert_eq!(err.code(), Some("Throttling.User"));
    }

    #[test]
    fn garbage_is_an_error_never_a_panic() {
        for body in [
            &b""[..],
            b"<html>",
            b"[]",
            br#"{"Datapoints":"[{"}"#,
            br#"{"Datapoints":"{}"}"#,
            br#"{"Datapoints":7}"#,
        ] {
            assert!(parse_page(body, "instanceId", "Average").is_err(), "{body:?}");
        }
        // Points without an instance, a value or a sane time are skipped, not fatal.
        let page = parse_page(
            br#"{"Datapoints":"[{\"timestamp\":1,\"Average\":1},{\"instanceId\":\"x\",\"Average\":1},{\"timestamp\":-5,\"instanceId\":\"x\",\"Average\":1},{\"timestamp\":1000,\"instanceId\":\"x\",\"Average\":\"NaN\"}]"}"#,
            "instanceId",
            "Average",
        )
        .expect("parses");
        assert!(page.points.is_empty(), "{page:?}");
    }
}
