//! Keep-alive: how long a backend keeps an idle connection open after a response. A backend that
//! closes sooner than the load balancer's idle timeout races the load balancer reusing that
//! connection, and the loser is a client's request: an intermittent 502.

use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;

use super::exchange::{self, Request};
use super::failure::{Failure, Reason};
use super::http::{self, Phases};
use super::target::Target;

#[derive(Debug, Clone, PartialEq)]
pub enum KeepAlive {
    /// The backend closed the idle connection after this long.
    Closed(Duration),
    /// Still open at the end of the measurement, which lasted this long.
    StayedOpen(Duration),
    /// The backend answered `Connection: close`: the load balancer never reuses the connection.
    NotOffered,
    Failed(Failure),
}

/// Measures up to `limit` of idle time; `timeout` bounds the request before it.
pub async fn measure(
    target: &Target,
    path: &str,
    host: &str,
    timeout: Duration,
    limit: Duration,
) -> KeepAlive {
    let deadline = Instant::now() + timeout;
    let mut phases = Phases::default();
    let attempt = async {
        let (mut stream, _) = http::open(target, deadline, &mut phases).await?;
        let left = deadline.saturating_duration_since(Instant::now());
        let response = tokio::time::timeout(left, exchange::exchange(&mut stream, &Request::get(path, host)))
            .await
            .map_err(|_| Failure::new(Reason::Timeout, "no response before the idle measurement"))??;
        Ok::<_, Failure>((stream, response))
    };
    let (mut stream, response) = match attempt.await {
        Ok(done) => done,
        Err(failure) => return KeepAlive::Failed(failure),
    };
    if !response.keep_alive {
        return KeepAlive::NotOffered;
    }
    let idle_since = Instant::now();
    let mut byte = [0u8; 1];
    // Any outcome of the read other than the time limit means the connection is over: EOF, a
    // reset, or unsolicited bytes (which would also break the next request on it).
    match tokio::time::timeout(limit, stream.read(&mut byte)).await {
        Ok(_) => KeepAlive::Closed(idle_since.elapsed()),
        Err(_) => KeepAlive::StayedOpen(idle_since.elapsed()),
    }
}

/// How long to watch past the load balancer's idle timeout before calling a connection open.
pub fn margin(lb_idle_timeout: Duration) -> Duration {
    (lb_idle_timeout / 10).clamp(Duration::from_secs(1), Duration::from_secs(5))
}
