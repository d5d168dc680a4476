//! Size limits: the application request again with one large header (load balancers reject
//! request headers past 16-32 KiB), and as a POST with a large body (packets past the path MTU are
//! dropped when PMTU discovery is broken, so small requests pass and large ones hang).

use std::time::Duration;

use super::exchange::Request;
use super::http::{self, HttpOutcome};
use super::target::Target;

/// Body size for the MTU check: many packets' worth.
pub const BODY_SIZE: usize = 64 * 1024;

pub async fn large_header(
    target: &Target,
    path: &str,
    host: &str,
    bytes: usize,
    timeout: Duration,
) -> HttpOutcome {
    let request = Request {
        padding_header_bytes: bytes,
        ..Request::get(path, host)
    };
    http::request(target, &request, timeout).await
}

pub async fn large_body(target: &Target, path: &str, host: &str, timeout: Duration) -> HttpOutcome {
    let request = Request {
        method: "POST",
        body_bytes: BODY_SIZE,
        ..Request::get(path, host)
    };
    http::request(target, &request, timeout).await
}
