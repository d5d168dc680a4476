//! What the hand-written cloud API clients share (CloudMonitor, Tencent Cloud Monitor and CLB): an
//! HTTPS client with a bounded answer and a deadline, a call-rate bound shared by a job's regions,
//! retries with backoff, credentials from an INI profile, and ISO 8601 times.

use std::future::Future;

use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::time::Instant;

pub type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

/// An HTTP/1.1 client for `https://` endpoints (the system's roots) and `http://` ones (test
/// servers, VPC endpoints behind a proxy).
pub fn https_client<B>() -> Result<Client<Connector, B>, String>
where
    B: hyper::body::Body + Send + 'static + Unpin,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .map_err(|err| format!("no trusted roots: {err}"))?
        .https_or_http()
        .enable_http1()
        .build();
    Ok(Client::builder(TokioExecutor::new()).build(connector))
}

/// Sends one request and reads at most `max_body` bytes of the answer, all within `timeout`.
pub async fn exchange<B>(
    http: &Client<Connector, B>,
    request: hyper::Request<B>,
    timeout: Duration,
    max_body: usize,
) -> Result<(hyper::StatusCode, Bytes), String>
where
    B: hyper::body::Body + Send + 'static + Unpin,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let exchange = async {
        let response = http.request(request).await.map_err(|err| error_chain(&err))?;
        let status = response.status();
        let body = Limited::new(response.into_body(), max_body)
            .collect()
            .await
            .map_err(|err| format!("reading the answer: {err}"))?
            .to_bytes();
        Ok((status, body))
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| format!("no answer within {timeout:?}"))?
}

/// Attempts per call, as the AWS SDK's standard retry mode: throttling and transient faults retry.
const ATTEMPTS: u32 = 3;
const BACKOFF_BASE: Duration = Duration::from_millis(250);

/// Runs `attempt` after a slot of `limiter`, again while it fails with an error `transient`
/// accepts, three times at most, with exponential backoff and up to 100 ms of jitter between.
pub async fn with_retries<T, E, F, Fut>(
    limiter: &RateLimiter,
    transient: impl Fn(&E) -> bool,
    mut attempt: F,
) -> Result<T, E>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut attempts = 0;
    loop {
        attempts += 1;
        limiter.acquire().await;
        match attempt().await {
            Err(err) if transient(&err) && attempts < ATTEMPTS => {
                let jitter = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| u64::from(d.subsec_nanos() % 100));
                let wait = BACKOFF_BASE * 2u32.pow(attempts - 1) + Duration::from_millis(jitter);
                tracing::debug!(error = %err, attempt = attempts, wait_ms = wait.as_millis() as u64, "retrying a cloud API call");
                tokio::time::sleep(wait).await;
            }
            other => return other,
        }
    }
}

/// An error and its sources, on one line.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Spaces calls evenly at most `per_second` apart; shared by every region of a job, since the
/// limit is the account's.
#[derive(Debug)]
pub struct RateLimiter {
    spacing: Duration,
    next: Mutex<Instant>,
}

impl RateLimiter {
    pub fn new(per_second: u32) -> Self {
        RateLimiter {
            spacing: Duration::from_secs(1) / per_second.max(1),
            next: Mutex::new(Instant::now()),
        }
    }

    pub async fn acquire(&self) {
        let slot = {
            let mut next = self.next.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let slot = (*next).max(Instant::now());
            *next = slot + self.spacing;
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

/// `YYYY-MM-DDThh:mm:ssZ` for Unix seconds.
pub fn iso8601(seconds: i64) -> String {
    let (year, month, day) = civil_date(seconds);
    let rest = seconds.rem_euclid(86_400);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// `YYYY-MM-DD` (UTC) for Unix seconds.
pub fn utc_date(seconds: i64) -> String {
    let (year, month, day) = civil_date(seconds);
    format!("{year:04}-{month:02}-{day:02}")
}

/// Civil-from-days (H. Hinnant's algorithm).
fn civil_date(seconds: i64) -> (i64, i64, i64) {
    let z = seconds.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_iso_8601_utc() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(1_767_268_800), "2026-01-01T12:00:00Z");
        assert_eq!(iso8601(951_827_696), "2000-02-29T12:34:56Z");
        assert_eq!(utc_date(1_767_225_599), "2025-12-31");
        assert_eq!(utc_date(1_767_225_600), "2026-01-01");
    }
}
