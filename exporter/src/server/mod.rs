//! The HTTP endpoints: the telemetry path, `/-/healthy`, `/-/ready`, the triage page (`page.rs`) and
//! the runbooks it links. A scrape renders the store's latest snapshots and never waits for a cloud
//! API.

use std::convert::Infallible;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use flate2::write::GzEncoder;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::catalog::Catalog;
use crate::store::{Format, Sample, Store};

pub mod access;
pub mod fleet;
mod html;
mod page;
pub mod web_config;

pub use access::Access;
pub use web_config::WebConfig;

/// Clients get this long to finish the TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Slow clients get this long to send their request headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// In-flight requests get this long to finish on shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

pub struct AppState {
    pub store: Arc<Store>,
    pub telemetry_path: String,
    /// Samples about the process itself, rendered with every scrape.
    pub static_samples: Vec<Sample>,
    /// Asks the main loop to reload the config; the answer says whether it worked.
    pub reload: tokio::sync::mpsc::Sender<tokio::sync::oneshot::Sender<Result<(), String>>>,
    /// TLS and basic authentication (`--web.config.file`), re-read when the file changes.
    pub access: Arc<Access>,
    /// Counter readings of the `/` page's fleet view.
    pub fleet: fleet::History,
}

type Body = Full<Bytes>;

/// Serves until `shutdown` turns true, then lets in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    loop {
        let (stream, _peer): (_, SocketAddr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(err) => {
                    // Out of file descriptors and the like: wait briefly rather than spin.
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        let watcher = graceful.watcher();
        let tls = state.access.tls().map(tokio_rustls::TlsAcceptor::from);
        let state = state.clone();
        tokio::spawn(async move {
            match tls {
                None => serve_connection(stream, state, watcher).await,
                Some(acceptor) => {
                    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => serve_connection(stream, state, watcher).await,
                        Ok(Err(err)) => tracing::debug!(error = %err, "TLS handshake failed"),
                        Err(_) => tracing::debug!("TLS handshake timed out"),
                    }
                }
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the shutdown grace period");
    }
    Ok(())
}

/// One HTTP/1.1 connection, plain or TLS, until it ends or shutdown drains it.
async fn serve_connection<I>(io: I, state: Arc<AppState>, watcher: hyper_util::server::graceful::Watcher)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |request| {
        let state = state.clone();
        async move { Ok::<_, Infallible>(handle(&state, &request).await) }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .serve_connection(TokioIo::new(io), service);
    if let Err(err) = watcher.watch(connection).await {
        tracing::debug!(error = %err, "connection ended with an error");
    }
}

async fn handle(state: &AppState, request: &Request<Incoming>) -> Response<Body> {
    // Every endpoint, the reload endpoint included, sits behind the configured users.
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok());
    if !state.access.authorized(authorization).await {
        let mut response = text(StatusCode::UNAUTHORIZED, "Unauthorized.\n");
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"lbtriage\", charset=\"UTF-8\""),
        );
        return response;
    }
    if request.uri().path() == "/-/reload" {
        return reload(state, request.method()).await;
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed: use GET.\n");
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    let path = request.uri().path();
    if path == state.telemetry_path {
        return metrics(state, request.headers());
    }
    match path {
        "/-/healthy" => text(StatusCode::OK, "Healthy.\n"),
        "/-/ready" if state.store.ready() => text(StatusCode::OK, "Ready.\n"),
        "/-/ready" => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "Not ready: waiting for the first collection of every source.\n",
        ),
        "/" => {
            let now = (crate::runtime::system_clock())() as f64;
            html(&page::render(
                &state.store,
                &state.fleet,
                &state.telemetry_path,
                Catalog::embedded(),
                now,
            ))
        }
        _ if path.starts_with("/runbooks/") => runbook(path),
        _ => text(StatusCode::NOT_FOUND, "Not found.\n"),
    }
}

/// `POST /-/reload`, as in Prometheus: 200 once the new config runs, 500 when it was refused.
async fn reload(state: &AppState, method: &Method) -> Response<Body> {
    if method != Method::POST && method != Method::PUT {
        let mut response = text(
            StatusCode::METHOD_NOT_ALLOWED,
            "Use POST to reload the configuration.\n",
        );
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST, PUT"));
        return response;
    }
    let (reply, answer) = tokio::sync::oneshot::channel();
    if state.reload.send(reply).await.is_err() {
        return text(StatusCode::SERVICE_UNAVAILABLE, "Shutting down.\n");
    }
    match answer.await {
        Ok(Ok(())) => text(StatusCode::OK, "Configuration reloaded.\n"),
        Ok(Err(err)) => {
            let mut response = Response::new(Full::new(Bytes::from(format!(
                "Failed to reload the configuration: {err}\n"
            ))));
            *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            response
        }
        Err(_) => text(StatusCode::SERVICE_UNAVAILABLE, "Shutting down.\n"),
    }
}

fn metrics(state: &AppState, headers: &HeaderMap) -> Response<Body> {
    let format = negotiate_format(headers);
    let body = state.store.render_shared(format, &state.static_samples);
    let mut builder = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, format.content_type())
        .header(header::VARY, "Accept, Accept-Encoding");
    let body = if accepts_gzip(headers) {
        let mut encoder = GzEncoder::new(Vec::with_capacity(body.len() / 8), flate2::Compression::fast());
        match encoder.write_all(&body).and_then(|()| encoder.finish()) {
            Ok(compressed) => {
                builder = builder.header(header::CONTENT_ENCODING, "gzip");
                Bytes::from(compressed)
            }
            Err(_) => body,
        }
    } else {
        body
    };
    builder.body(Full::new(body)).unwrap_or_else(|_| {
        text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Response could not be built.\n",
        )
    })
}

/// Media ranges of an Accept-style header with their q-values.
fn accepted(headers: &HeaderMap, name: header::HeaderName) -> Vec<(String, f32)> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|item| {
            let mut parts = item.split(';').map(str::trim);
            let media = parts.next().unwrap_or_default().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.strip_prefix("q="))
                .filter_map(|q| q.parse::<f32>().ok())
                .next()
                .unwrap_or(1.0);
            (media, q)
        })
        .collect()
}

/// OpenMetrics when the scraper asks for it (Prometheus does, ahead of text 0.0.4), otherwise text.
pub fn negotiate_format(headers: &HeaderMap) -> Format {
    let openmetrics = accepted(headers, header::ACCEPT)
        .iter()
        .any(|(media, q)| media == "application/openmetrics-text" && *q > 0.0);
    if openmetrics {
        Format::OpenMetrics
    } else {
        Format::Prometheus
    }
}

fn accepts_gzip(headers: &HeaderMap) -> bool {
    accepted(headers, header::ACCEPT_ENCODING)
        .iter()
        .any(|(coding, q)| coding == "gzip" && *q > 0.0)
}

fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn html(body: &str) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

/// A runbook from the embedded catalog, so the page's links work without access to the repository.
fn runbook(path: &str) -> Response<Body> {
    let catalog = Catalog::embedded();
    let id = path
        .strip_prefix("/runbooks/")
        .and_then(|name| name.strip_suffix(".md"))
        .unwrap_or_default();
    let runbook = match catalog.cause(id) {
        Some(cause) => crate::rules::render_runbook(catalog, cause),
        None => catalog
            .operational(id)
            .map(crate::rules::render_operational_runbook),
    };
    match runbook {
        Some(markdown) => {
            let mut response = Response::new(Full::new(Bytes::from(markdown)));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/markdown; charset=utf-8"),
            );
            response
        }
        None => text(StatusCode::NOT_FOUND, "No such runbook.\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(header::HeaderName, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(name.clone(), HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn prometheus_scrape_accept_header_gets_openmetrics() {
        let accept = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(
            negotiate_format(&headers(&[(header::ACCEPT, accept)])),
            Format::OpenMetrics
        );
        assert_eq!(
            negotiate_format(&headers(&[(header::ACCEPT, "text/plain")])),
            Format::Prometheus
        );
        assert_eq!(negotiate_format(&headers(&[])), Format::Prometheus);
        assert_eq!(
            negotiate_format(&headers(&[(header::ACCEPT, "application/openmetrics-text;q=0")])),
            Format::Prometheus
        );
    }

    #[test]
    fn gzip_only_when_accepted() {
        assert!(accepts_gzip(&headers(&[(
            header::ACCEPT_ENCODING,
            "gzip, deflate"
        )])));
        assert!(!accepts_gzip(&headers(&[(header::ACCEPT_ENCODING, "gzip;q=0")])));
        assert!(!accepts_gzip(&headers(&[(header::ACCEPT_ENCODING, "br")])));
    }
}
