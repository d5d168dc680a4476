//! The CloudMonitor client: credentials, signed GET requests, a call-rate bound, retries with
//! backoff on throttling and transient faults, bounded reads, and `NextToken` pagination.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::client::legacy::Client;

use super::datapoints::{parse_page, Datapoint, ResponseError};
use super::signature;
use crate::sources::api::{exchange, https_client, with_retries, Connector};
use crate::sources::api::{iso8601, RateLimiter};
use crate::sources::engine::telemetry::{ApiCalls, Outcome};
use crate::sources::key_pair::{KeyPair, KeyPairNames};

pub const API_VERSION: &str = "2019-01-01";
pub const API: &str = "DescribeMetricList";
/// A page larger than this is refused (1,000 points are about 200 KiB).
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
/// An answer normally takes well under a second; a hung call must not hold a cycle for long.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// A runaway `NextToken` chain stops here.
const MAX_PAGES: usize = 1000;
pub const PAGE_LENGTH: &str = "1000";

pub fn default_endpoint(region: &str) -> String {
    format!("https://metrics.{region}.aliyuncs.com")
}

#[derive(Debug, thiserror::Error)]
pub enum AlibabaError {
    #[error("credentials: {0}")]
    Credentials(String),
    #[error("{API} failed: {0}")]
    Api(ResponseError),
    #[error("{API} failed: {0}")]
    Transport(String),
    #[error("{API} paginated past {MAX_PAGES} pages or repeated a NextToken")]
    Pagination,
    /// An inventory call (SLB, ALB) the API refused.
    #[error("{action} failed: {error}")]
    Call {
        action: &'static str,
        error: ResponseError,
    },
    #[error("{action} failed: {detail}")]
    CallTransport { action: &'static str, detail: String },
}

impl AlibabaError {
    /// The inventory action that failed, where the error comes from one.
    pub fn action(&self) -> Option<&'static str> {
        match self {
            AlibabaError::Call { action, .. } | AlibabaError::CallTransport { action, .. } => Some(action),
            _ => None,
        }
    }

    fn outcome(&self) -> Outcome {
        match self {
            AlibabaError::Api(err) | AlibabaError::Call { error: err, .. } => {
                Outcome::from_error_code(err.code())
            }
            _ => Outcome::Error,
        }
    }

    /// Worth another attempt: throttling, the service's own faults, the network.
    fn transient(&self) -> bool {
        match self {
            AlibabaError::Api(ResponseError::Api { code, .. })
            | AlibabaError::Call {
                error: ResponseError::Api { code, .. },
                ..
            } => {
                code.starts_with("Throttling")
                    || code == "ServiceUnavailable"
                    || code.starts_with("InternalError")
            }
            AlibabaError::Api(ResponseError::Malformed(_))
            | AlibabaError::Call {
                error: ResponseError::Malformed(_),
                ..
            }
            | AlibabaError::Transport(_)
            | AlibabaError::CallTransport { .. } => true,
            AlibabaError::Credentials(_) | AlibabaError::Pagination => false,
        }
    }
}

/// Where Alibaba Cloud's official SDKs and CLI keep an AccessKey pair.
pub const KEYS: KeyPairNames = KeyPairNames {
    env_id: "ALIBABA_CLOUD_ACCESS_KEY_ID",
    env_secret: "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
    file_id: "access_key_id",
    file_secret: "access_key_secret",
};

/// An AccessKey pair.
pub type Credentials = KeyPair;

/// From `credentials_file` if one is named, else from the official SDKs' variables.
pub fn credentials(file: Option<&Path>, profile: &str) -> Result<Credentials, AlibabaError> {
    KeyPair::resolve(file, profile, &KEYS).map_err(AlibabaError::Credentials)
}

pub struct CmsClient {
    endpoint: String,
    /// Where SLB and ALB calls go instead of their regional endpoints (a test server).
    inventory_endpoint: Option<String>,
    region: String,
    credentials: Credentials,
    http: Client<Connector, Empty<Bytes>>,
    limiter: std::sync::Arc<RateLimiter>,
}

/// The APIs the inventory reads, RPC style as CloudMonitor's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Product {
    /// Server Load Balancer (CLB), `DescribeLoadBalancers` and `DescribeHealthStatus`.
    Slb,
    /// Application Load Balancer, `ListLoadBalancers`, `ListServerGroups`, `ListServerGroupServers`.
    Alb,
    /// Elastic Compute Service, `DescribeInstances` (the private address of an ECS member).
    Ecs,
}

impl Product {
    fn version(self) -> &'static str {
        match self {
            Product::Slb => "2014-05-15",
            Product::Alb => "2020-06-16",
            Product::Ecs => "2014-05-26",
        }
    }

    fn endpoint(self, region: &str) -> String {
        match self {
            Product::Slb => format!("https://slb.{region}.aliyuncs.com"),
            Product::Alb => format!("https://alb.{region}.aliyuncs.com"),
            Product::Ecs => format!("https://ecs.{region}.aliyuncs.com"),
        }
    }
}

/// One `DescribeMetricList` query, every page of it.
pub struct Query<'a> {
    pub namespace: &'a str,
    pub metric: &'a str,
    pub period: i64,
    /// Exclusive, Unix seconds (the API's range is `(StartTime, EndTime]`).
    pub start: i64,
    pub end: i64,
    pub dimensions: Option<String>,
    pub instance_dimension: &'a str,
    pub statistic: &'a str,
}

fn nonce() -> String {
    let mut bytes = [0u8; 16];
    // SystemRandom fails only without an OS random source; the time-based fallback stays unique.
    if ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).is_err() {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        bytes[..16].copy_from_slice(&now.as_nanos().to_le_bytes());
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl CmsClient {
    /// `endpoint_url` (a test server) takes every call; else CloudMonitor, SLB and ALB each go
    /// to their regional endpoint.
    pub fn new(
        endpoint_url: Option<&str>,
        region: &str,
        credentials: Credentials,
        limiter: std::sync::Arc<RateLimiter>,
    ) -> Result<CmsClient, AlibabaError> {
        let trim = |url: &str| url.trim_end_matches('/').to_string();
        Ok(CmsClient {
            endpoint: endpoint_url.map_or_else(|| default_endpoint(region), trim),
            inventory_endpoint: endpoint_url.map(trim),
            region: region.to_string(),
            credentials,
            http: https_client().map_err(AlibabaError::Transport)?,
            limiter,
        })
    }

    /// Every datapoint of the query, following `NextToken` to the end. Each page is one call in
    /// `lbtriage_api_calls_total`, its retries folded in.
    pub async fn describe_metric_list(
        &self,
        calls: &ApiCalls,
        query: &Query<'_>,
    ) -> Result<Vec<Datapoint>, AlibabaError> {
        let mut points = Vec::new();
        let mut token: Option<String> = None;
        let mut seen = std::collections::HashSet::new();
        for _ in 0..MAX_PAGES {
            let result = self.page_with_retries(query, token.as_deref()).await;
            calls.record(
                API,
                result
                    .as_ref()
                    .map_or_else(AlibabaError::outcome, |_| Outcome::Success),
            );
            let page = result?;
            points.extend(page.points);
            match page.next_token {
                Some(next) if seen.insert(next.clone()) => token = Some(next),
                Some(_) => return Err(AlibabaError::Pagination),
                None => return Ok(points),
            }
        }
        Err(AlibabaError::Pagination)
    }

    async fn page_with_retries(
        &self,
        query: &Query<'_>,
        token: Option<&str>,
    ) -> Result<super::datapoints::Page, AlibabaError> {
        with_retries(&self.limiter, AlibabaError::transient, || self.page(query, token)).await
    }

    /// The signed URL of one RPC call: the common parameters added to `params`, all signed.
    fn signed_url(
        &self,
        endpoint: &str,
        version: &str,
        action: &str,
        mut params: BTreeMap<String, String>,
    ) -> String {
        let mut set = |k: &str, v: String| {
            params.insert(k.to_string(), v);
        };
        set("Action", action.to_string());
        set("Version", version.to_string());
        set("Format", "JSON".to_string());
        set("AccessKeyId", self.credentials.id.clone());
        set("SignatureMethod", "HMAC-SHA1".to_string());
        set("SignatureVersion", "1.0".to_string());
        set("SignatureNonce", nonce());
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        set("Timestamp", iso8601(now));
        let signature = signature::sign(&params, self.credentials.secret());
        format!(
            "{endpoint}/?{}&Signature={}",
            signature::canonical_query(&params),
            signature::percent_encode(&signature)
        )
    }

    /// One SLB or ALB call with its retries, recorded once in `lbtriage_api_calls_total`; the
    /// answer's JSON.
    pub async fn call(
        &self,
        calls: &ApiCalls,
        product: Product,
        action: &'static str,
        params: &[(&str, String)],
    ) -> Result<serde_json::Value, AlibabaError> {
        let endpoint = self
            .inventory_endpoint
            .clone()
            .unwrap_or_else(|| product.endpoint(&self.region));
        let params: BTreeMap<String, String> =
            params.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        // Each attempt is signed afresh: a new nonce and timestamp.
        let result = with_retries(&self.limiter, AlibabaError::transient, || {
            let url = self.signed_url(&endpoint, product.version(), action, params.clone());
            async move { self.send(action, &url).await }
        })
        .await;
        calls.record(
            action,
            result
                .as_ref()
                .map_or_else(AlibabaError::outcome, |_| Outcome::Success),
        );
        result
    }

    async fn send(&self, action: &'static str, url: &str) -> Result<serde_json::Value, AlibabaError> {
        let transport = |detail: String| AlibabaError::CallTransport { action, detail };
        let uri: hyper::Uri = url
            .parse()
            .map_err(|err| transport(format!("bad endpoint URL: {err}")))?;
        let request = hyper::Request::get(uri)
            .body(Empty::new())
            .map_err(|err| transport(err.to_string()))?;
        let (status, body) = exchange(&self.http, request, CALL_TIMEOUT, MAX_BODY_BYTES)
            .await
            .map_err(transport)?;
        let answer: serde_json::Value = match serde_json::from_slice(&body) {
            Ok(answer) => answer,
            Err(err) if !status.is_success() => return Err(transport(format!("HTTP {status}: {err}"))),
            Err(err) => {
                return Err(AlibabaError::Call {
                    action,
                    error: ResponseError::Malformed(err.to_string()),
                })
            }
        };
        if status.is_success() {
            return Ok(answer);
        }
        let text = |field: &str| {
            answer
                .get(field)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string()
        };
        Err(AlibabaError::Call {
            action,
            error: ResponseError::Api {
                code: Some(text("Code"))
                    .filter(|c| !c.is_empty())
                    .unwrap_or_else(|| format!("HTTP{}", status.as_u16())),
                message: text("Message"),
            },
        })
    }

    /// The signed request URL of one page.
    pub fn url(&self, query: &Query<'_>, token: Option<&str>) -> String {
        let mut params: BTreeMap<String, String> = BTreeMap::new();
        let mut set = |k: &str, v: String| {
            params.insert(k.to_string(), v);
        };
        set("Namespace", query.namespace.to_string());
        set("MetricName", query.metric.to_string());
        set("Period", query.period.to_string());
        set("StartTime", iso8601(query.start));
        set("EndTime", iso8601(query.end));
        set("Length", PAGE_LENGTH.to_string());
        if let Some(dimensions) = &query.dimensions {
            set("Dimensions", dimensions.clone());
        }
        if let Some(token) = token {
            set("NextToken", token.to_string());
        }
        self.signed_url(&self.endpoint, API_VERSION, API, params)
    }

    async fn page(
        &self,
        query: &Query<'_>,
        token: Option<&str>,
    ) -> Result<super::datapoints::Page, AlibabaError> {
        let uri: hyper::Uri = self
            .url(query, token)
            .parse()
            .map_err(|err| AlibabaError::Transport(format!("bad endpoint URL: {err}")))?;
        let request = hyper::Request::get(uri)
            .body(Empty::new())
            .map_err(|err| AlibabaError::Transport(err.to_string()))?;
        let (status, body) = exchange(&self.http, request, CALL_TIMEOUT, MAX_BODY_BYTES)
            .await
            .map_err(AlibabaError::Transport)?;
        match parse_page(&body, query.instance_dimension, query.statistic) {
            Ok(page) if status.is_success() => Ok(page),
            Ok(_) => Err(AlibabaError::Api(ResponseError::Api {
                code: if status.is_server_error() {
                    "ServiceUnavailable"
                } else {
                    "HttpError"
                }
                .to_string(),
                message: format!("HTTP {status}"),
            })),
            // An HTML error page from a proxy is a transport fault with a status, not a parse bug.
            Err(ResponseError::Malformed(detail)) if !status.is_success() => {
                Err(AlibabaError::Transport(format!("HTTP {status}: {detail}")))
            }
            Err(err) => Err(AlibabaError::Api(err)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_do_not_repeat() {
        let nonces: std::collections::HashSet<String> = (0..1000).map(|_| nonce()).collect();
        assert_eq!(nonces.len(), 1000);
    }

    #[test]
    fn credentials_come_from_the_named_profile_and_hide_the_secret() {
        let dir = std::env::temp_dir().join(format!("lbtriage-cred-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("credentials");
        std::fs::write(
            &file,
            "[default]\naccess_key_id = a\naccess_key_secret = b\n\n[prod]\ntype = access_key\naccess_key_id = LTAIprod\naccess_key_secret = \"s3cret\"\n",
        )
        .expect("write");
        let credentials = KeyPair::from_file(&file, "prod", &KEYS).expect("prod profile");
        assert_eq!(credentials.id, "LTAIprod");
        assert_eq!(credentials.secret(), "s3cret");
        assert!(!format!("{credentials:?}").contains("s3cret"));
        assert!(KeyPair::from_file(&file, "missing", &KEYS).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
