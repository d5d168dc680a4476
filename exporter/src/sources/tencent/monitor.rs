//! Cloud Monitor `GetMonitorData` (2018-07-24): one metric of at most ten instances per call,
//! named by their dimensions; the answer holds per instance `Timestamps` (period starts, Unix
//! seconds) and `Values`. Points are mapped back to instances by their dimensions; anything the
//! request did not name, or a value that is not a finite number, is dropped.

use std::collections::HashMap;

use serde_json::{json, Value};

use super::client::{Service, TencentClient, TencentError};
use super::inventory::Instance;
use super::metrics;
use crate::sources::api::iso8601;
use crate::sources::engine::telemetry::ApiCalls;

pub const API_GET_MONITOR_DATA: &str = "GetMonitorData";
/// The documented maximum of instances per `GetMonitorData` request.
pub const INSTANCES_PER_CALL: usize = 10;

/// (instance ID, metric) → (period start, value), in time order.
pub type Points = HashMap<(String, &'static str), Vec<(i64, f64)>>;

/// ISO 8601 with a UTC offset, as the API's examples write times (`2018-09-22T19:51:23+08:00`).
fn time(seconds: i64) -> String {
    let text = iso8601(seconds);
    format!("{}+00:00", text.trim_end_matches('Z'))
}

/// One metric of up to ten instances of one namespace over `[start, end]`.
pub async fn get(
    client: &TencentClient,
    calls: &ApiCalls,
    metric: &'static str,
    instances: &[&Instance],
    period: i64,
    (start, end): (i64, i64),
    into: &mut Points,
) -> Result<(), TencentError> {
    let Some(namespace) = instances.first().map(|i| i.namespace) else {
        return Ok(());
    };
    let by_dimensions: HashMap<Vec<(&str, String)>, &str> = instances
        .iter()
        .map(|i| (metrics::dimensions(namespace, &i.vip, &i.vpc_id), i.id.as_str()))
        .collect();
    let request = json!({
        "Namespace": namespace.as_str(),
        "MetricName": metric,
        "Period": period,
        "StartTime": time(start),
        "EndTime": time(end),
        "Instances": by_dimensions.keys().map(|dimensions| json!({
            "Dimensions": dimensions.iter().map(|(name, value)| json!({"Name": name, "Value": value})).collect::<Vec<_>>()
        })).collect::<Vec<_>>(),
    });
    let response = client
        .call(calls, Service::Monitor, API_GET_MONITOR_DATA, &request)
        .await?;
    read_points(&response, metric, &by_dimensions, into)
}

/// The points of a `GetMonitorData` answer, by the instance its dimensions name: finite values
/// only, each timestamp once, oldest first. Anything not asked for is dropped.
fn read_points(
    response: &Value,
    metric: &'static str,
    by_dimensions: &HashMap<Vec<(&str, String)>, &str>,
    into: &mut Points,
) -> Result<(), TencentError> {
    let malformed = |detail: &str| TencentError::Malformed {
        action: API_GET_MONITOR_DATA,
        detail: detail.to_string(),
    };
    let Some(series) = response.get("DataPoints").and_then(Value::as_array) else {
        return Err(malformed("no DataPoints list"));
    };
    for entry in series {
        let mut dimensions: Vec<(&str, String)> = Vec::new();
        for dimension in entry
            .get("Dimensions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = dimension.get("Name").and_then(Value::as_str).unwrap_or_default();
            let value = dimension.get("Value").and_then(Value::as_str).unwrap_or_default();
            // Only the names asked for, in the order `metrics::dimensions` gives them.
            if let Some(known) = ["vip", "vpcId"].into_iter().find(|k| *k == name) {
                dimensions.push((known, value.to_string()));
            }
        }
        dimensions.sort_by_key(|(name, _)| *name != "vip");
        let Some(id) = by_dimensions.get(&dimensions) else {
            continue;
        };
        let timestamps = entry.get("Timestamps").and_then(Value::as_array);
        let values = entry.get("Values").and_then(Value::as_array);
        let (Some(timestamps), Some(values)) = (timestamps, values) else {
            continue;
        };
        if timestamps.len() != values.len() {
            return Err(malformed("Timestamps and Values differ in length"));
        }
        let points = into.entry(((*id).to_string(), metric)).or_default();
        for (timestamp, value) in timestamps.iter().zip(values) {
            let (Some(timestamp), Some(value)) = (timestamp.as_i64(), value.as_f64()) else {
                continue;
            };
            if value.is_finite() {
                points.push((timestamp, value));
            }
        }
        points.sort_by_key(|(timestamp, _)| *timestamp);
        points.dedup_by_key(|(timestamp, _)| *timestamp);
    }
    Ok(())
}

/// The fuzz entry point (`fuzz/fuzz_targets/answers_tencent.rs`): any answer body gives points
/// whose values are finite and whose times are unique and ordered, or an error.
pub fn fuzz(data: &[u8]) {
    let Ok(response) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let mut by_dimensions: HashMap<Vec<(&str, String)>, &str> = HashMap::new();
    by_dimensions.insert(vec![("vip", "10.0.0.1".to_string())], "lb-public");
    by_dimensions.insert(
        vec![("vip", "10.0.0.2".to_string()), ("vpcId", "vpc-1".to_string())],
        "lb-private",
    );
    let mut points = Points::new();
    if read_points(&response, "TotalReq", &by_dimensions, &mut points).is_ok() {
        for series in points.values() {
            assert!(series.iter().all(|(_, value)| value.is_finite()));
            assert!(series.windows(2).all(|pair| pair[0].0 < pair[1].0));
        }
    }
}
