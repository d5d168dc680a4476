//! HTTP: one request to one address, through the load balancer or straight to a backend, with
//! its phases and, when it fails, why. This is also where the response-framing check lands: a
//! malformed or short response fails with `invalid_response`.

use std::time::{Duration, Instant};

use super::exchange::{self, Request, Stream};
use super::failure::{Failure, Reason};
use super::target::Target;
use super::tcp;
use super::tls::TlsInfo;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Phases {
    pub resolve: Option<Duration>,
    pub connect: Option<Duration>,
    pub tls: Option<Duration>,
    pub processing: Option<Duration>,
    pub transfer: Option<Duration>,
}

impl Phases {
    pub fn named(&self) -> [(&'static str, Option<Duration>); 5] {
        [
            ("resolve", self.resolve),
            ("connect", self.connect),
            ("tls", self.tls),
            ("processing", self.processing),
            ("transfer", self.transfer),
        ]
    }

    /// Request sent → end of body: what a load balancer's response timeout measures.
    pub fn response_time(&self) -> Option<Duration> {
        Some(self.processing? + self.transfer.unwrap_or_default())
    }
}

#[derive(Debug, Clone)]
pub struct HttpOutcome {
    pub phases: Phases,
    pub tls: Option<TlsInfo>,
    pub response: Result<exchange::Response, Failure>,
}

impl HttpOutcome {
    pub fn status(&self) -> Option<u16> {
        self.response.as_ref().ok().map(|r| r.status)
    }

    /// The request got no usable response at all (any status counts as a response).
    pub fn transport_failure(&self) -> Option<&Failure> {
        self.response.as_ref().err()
    }

    /// A well-framed response below 400, over a connection a real client would trust.
    pub fn failure(&self) -> Option<Failure> {
        match &self.response {
            Err(failure) => Some(failure.clone()),
            // The reason already says "status": the detail is the code and its meaning.
            Ok(response) if response.status >= 400 => Some(Failure::new(
                Reason::Status,
                match hyper::StatusCode::from_u16(response.status)
                    .ok()
                    .and_then(|code| code.canonical_reason())
                {
                    Some(meaning) => format!("{} {meaning}", response.status),
                    None => response.status.to_string(),
                },
            )),
            Ok(_) => None,
        }
    }
}

/// Connects (and handshakes for https) within the time left before `deadline`. Certificates are
/// judged by the caller: the handshake completes whatever they are worth.
pub async fn open(
    target: &Target,
    deadline: Instant,
    phases: &mut Phases,
) -> Result<(Stream, Option<TlsInfo>), Failure> {
    let left = deadline.saturating_duration_since(Instant::now());
    let (tcp, connect) = tcp::connect(target.addr, left).await?;
    phases.connect = Some(connect);
    let Some(tls) = &target.tls else {
        return Ok((Box::new(tcp), None));
    };
    let started = Instant::now();
    let left = deadline.saturating_duration_since(started);
    let (stream, info) = tokio::time::timeout(left, tls.settings.handshake(tcp, &tls.server_name))
        .await
        .map_err(|_| Failure::new(Reason::Timeout, "TLS handshake timed out"))??;
    phases.tls = Some(started.elapsed());
    Ok((stream, Some(info)))
}

/// One request within `timeout`, phases included.
pub async fn request(target: &Target, request: &Request<'_>, timeout: Duration) -> HttpOutcome {
    let deadline = Instant::now() + timeout;
    let mut phases = Phases::default();
    let mut tls = None;
    let response = async {
        let (mut stream, info) = open(target, deadline, &mut phases).await?;
        // Load balancers do not verify target certificates; clients verify the listener's.
        let untrusted =
            target.tls.as_ref().is_some_and(|t| t.verify) && info.as_ref().is_some_and(|i| !i.trusted());
        let problem = info.as_ref().and_then(|i| i.problem.clone());
        tls = info;
        if untrusted {
            let problem = problem.unwrap_or_else(|| "certificate not valid for this host".to_string());
            return Err(Failure::new(Reason::Tls, problem));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        tokio::time::timeout(left, exchange::exchange(&mut stream, request))
            .await
            .map_err(|_| {
                Failure::new(
                    Reason::Timeout,
                    format!("no complete response within {timeout:?}"),
                )
            })?
    }
    .await;
    if let Ok(done) = &response {
        phases.processing = Some(done.processing);
        phases.transfer = Some(done.transfer);
    }
    // An untrusted listener certificate still tells us about itself.
    HttpOutcome {
        phases,
        tls,
        response,
    }
}
