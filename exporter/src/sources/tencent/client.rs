//! The Tencent Cloud API client: TC3-signed JSON POSTs to Cloud Monitor and CLB, a call-rate
//! bound shared by a job's regions, retries with backoff on throttling and transient faults,
//! bounded answers and errors in the API's own shape (`Response.Error.Code`).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use serde_json::Value;

use super::signature;
use crate::sources::api::{exchange, https_client, with_retries, Connector, RateLimiter};
use crate::sources::engine::telemetry::{ApiCalls, Outcome};
use crate::sources::key_pair::{KeyPair, KeyPairNames};

/// An answer larger than this is refused (a page of 100 instances is well under 1 MiB).
const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;
/// An answer normally takes well under a second; a hung call must not hold a cycle for long.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
const CONTENT_TYPE: &str = "application/json";

/// The two APIs the source calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// Cloud Monitor, `GetMonitorData`.
    Monitor,
    /// Cloud Load Balancer, `DescribeLoadBalancers` and `DescribeTargetHealth`.
    Clb,
}

impl Service {
    pub fn name(self) -> &'static str {
        match self {
            Service::Monitor => "monitor",
            Service::Clb => "clb",
        }
    }

    pub fn version(self) -> &'static str {
        match self {
            Service::Monitor => "2018-07-24",
            Service::Clb => "2018-03-17",
        }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum TencentError {
    #[error("credentials: {0}")]
    Credentials(String),
    /// The API's own error answer.
    #[error("{action} failed: {code}: {message}")]
    Api {
        action: &'static str,
        code: String,
        message: String,
    },
    #[error("{action} failed: {detail}")]
    Transport { action: &'static str, detail: String },
    #[error("{action} returned an unexpected response: {detail}")]
    Malformed { action: &'static str, detail: String },
}

impl TencentError {
    fn outcome(&self) -> Outcome {
        match self {
            TencentError::Api { code, .. } if code.starts_with("RequestLimitExceeded") => Outcome::Throttled,
            _ => Outcome::Error,
        }
    }

    /// Worth another attempt: throttling, the service's own faults, the network.
    fn transient(&self) -> bool {
        match self {
            TencentError::Api { code, .. } => {
                code.starts_with("RequestLimitExceeded")
                    || code.starts_with("InternalError")
                    || code == "ResourceUnavailable"
            }
            TencentError::Transport { .. } | TencentError::Malformed { .. } => true,
            TencentError::Credentials(_) => false,
        }
    }
}

/// Where Tencent Cloud's official SDKs keep a SecretId and SecretKey.
pub const KEYS: KeyPairNames = KeyPairNames {
    env_id: "TENCENTCLOUD_SECRET_ID",
    env_secret: "TENCENTCLOUD_SECRET_KEY",
    file_id: "secret_id",
    file_secret: "secret_key",
};

/// A SecretId and SecretKey.
pub type Credentials = KeyPair;

/// From `credentials_file` if one is named, else from the official SDKs' variables.
pub fn credentials(file: Option<&Path>, profile: &str) -> Result<Credentials, TencentError> {
    KeyPair::resolve(file, profile, &KEYS).map_err(TencentError::Credentials)
}

pub struct TencentClient {
    /// `scheme://authority` of every call, or `None` for each service's public endpoint.
    endpoint: Option<String>,
    region: String,
    credentials: Credentials,
    http: Client<Connector, Full<Bytes>>,
    limiter: Arc<RateLimiter>,
}

impl TencentClient {
    pub fn new(
        endpoint: Option<String>,
        region: String,
        credentials: Credentials,
        limiter: Arc<RateLimiter>,
    ) -> Result<TencentClient, TencentError> {
        let http = https_client().map_err(|detail| TencentError::Transport {
            action: "connect",
            detail,
        })?;
        Ok(TencentClient {
            endpoint: endpoint.map(|e| e.trim_end_matches('/').to_string()),
            region,
            credentials,
            http,
            limiter,
        })
    }

    /// One action with its retries, recorded once in `lbtriage_api_calls_total`; the answer is
    /// the `Response` object.
    pub async fn call(
        &self,
        calls: &ApiCalls,
        service: Service,
        action: &'static str,
        body: &Value,
    ) -> Result<Value, TencentError> {
        let result = with_retries(&self.limiter, TencentError::transient, || {
            self.once(service, action, body)
        })
        .await;
        calls.record(
            action,
            result
                .as_ref()
                .map_or_else(TencentError::outcome, |_| Outcome::Success),
        );
        result
    }

    fn url(&self, service: Service) -> String {
        self.endpoint
            .clone()
            .unwrap_or_else(|| format!("https://{}.tencentcloudapi.com", service.name()))
    }

    async fn once(
        &self,
        service: Service,
        action: &'static str,
        body: &Value,
    ) -> Result<Value, TencentError> {
        let transport = |detail: String| TencentError::Transport { action, detail };
        let uri: hyper::Uri = format!("{}/", self.url(service))
            .parse()
            .map_err(|err| transport(format!("bad endpoint URL: {err}")))?;
        let host = uri
            .authority()
            .map(|a| a.as_str().to_string())
            .ok_or_else(|| transport("the endpoint URL has no host".to_string()))?;
        let payload = serde_json::to_vec(body).map_err(|err| transport(err.to_string()))?;
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let authorization = signature::authorization(
            &self.credentials.id,
            self.credentials.secret(),
            &signature::Request {
                service: service.name(),
                host: &host,
                content_type: CONTENT_TYPE,
                payload: &payload,
                timestamp,
            },
        );
        let request = hyper::Request::post(uri)
            .header("Host", &host)
            .header("Content-Type", CONTENT_TYPE)
            .header("X-TC-Action", action)
            .header("X-TC-Version", service.version())
            .header("X-TC-Timestamp", timestamp.to_string())
            .header("X-TC-Region", &self.region)
            .header("Authorization", authorization)
            .body(Full::new(Bytes::from(payload)))
            .map_err(|err| transport(err.to_string()))?;
        let (status, body) = exchange(&self.http, request, CALL_TIMEOUT, MAX_BODY_BYTES)
            .await
            .map_err(transport)?;
        let answer: Value = match serde_json::from_slice(&body) {
            Ok(answer) => answer,
            // An HTML error page from a proxy is a transport fault with a status.
            Err(err) if !status.is_success() => return Err(transport(format!("HTTP {status}: {err}"))),
            Err(err) => {
                return Err(TencentError::Malformed {
                    action,
                    detail: err.to_string(),
                })
            }
        };
        let Some(response) = answer.get("Response").filter(|r| r.is_object()) else {
            return Err(if status.is_success() {
                TencentError::Malformed {
                    action,
                    detail: "no Response object".to_string(),
                }
            } else {
                transport(format!("HTTP {status}"))
            });
        };
        if let Some(error) = response.get("Error") {
            let text = |field: &str| {
                error
                    .get(field)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            return Err(TencentError::Api {
                action,
                code: text("Code"),
                message: text("Message"),
            });
        }
        if !status.is_success() {
            return Err(transport(format!("HTTP {status}")));
        }
        Ok(response.clone())
    }
}
