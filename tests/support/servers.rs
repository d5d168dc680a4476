//! Misbehaving backends on loopback, each doing one thing load balancers choke on. Real sockets,
//! real timing: the probe evidence in the tests comes from these, not from canned numbers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Clone)]
pub enum Behaviour {
    /// 200 with Content-Length; idle keep-alive connections are held until the client leaves.
    Healthy,
    /// Like Healthy, but closes an idle keep-alive connection after this long.
    KeepAliveCloses(Duration),
    /// Accepts, then resets the connection (SO_LINGER 0).
    Reset,
    /// A header line without a colon.
    MalformedHeader,
    /// Content-Length 100, 10 bytes of body, close.
    ShortBody,
    /// Answers after this long.
    Slow(Duration),
    /// Every response has this status and these extra headers.
    Status(u16, Vec<(&'static str, &'static str)>),
    /// The health path answers 200, everything else 500 (php-fpm down behind a static health page).
    AppFailsHealthPasses(&'static str),
    /// Requests whose head exceeds this many bytes get 431 (a backend's answer).
    RejectsLargeHeaders(usize),
    /// Requests whose head exceeds this many bytes get 400, everything else 200: a load balancer
    /// enforcing its documented limit (AWS: 16 K per header; Alibaba ALB: 32 KB).
    EnforcesHeaderLimit(usize),
    /// Requests whose body exceeds this many bytes never get an answer (the MTU black hole).
    DropsLargeBodies(usize),
    /// 405 to POST, 200 to everything else.
    RejectsPost,
    /// Hostile: sends its status line one byte every 200 ms, forever (slowloris towards clients).
    Drip,
    /// Hostile: announces 10 GB and streams without end.
    EndlessBody,
    /// Hostile: one header line of 1 MB.
    HugeHeader,
    /// Hostile: answers anything with random-looking bytes (TLS garbage to a TLS client).
    Garbage,
    /// Hostile: promises a body, sends part of it, and never closes.
    NeverCloses,
}

/// Starts a plain-HTTP server; it lives as long as the test runtime.
pub async fn spawn(behaviour: Behaviour) -> SocketAddr {
    spawn_with(behaviour, None, None).await
}

/// Requests in progress at once (head read → response about to be written) across the servers sharing it,
/// and the most seen. Each is a connection the client holds open for it; counting connections
/// themselves would include ones the client already closed but whose FIN the server has not read.
#[derive(Debug, Default)]
pub struct InFlight {
    now: std::sync::atomic::AtomicUsize,
    pub peak: std::sync::atomic::AtomicUsize,
    /// Connections accepted and requests read, in all.
    pub connections: std::sync::atomic::AtomicUsize,
    pub requests: std::sync::atomic::AtomicUsize,
}

impl InFlight {
    fn enter(self: &Arc<Self>) -> InFlightGuard {
        use std::sync::atomic::Ordering::SeqCst;
        let now = self.now.fetch_add(1, SeqCst) + 1;
        self.peak.fetch_max(now, SeqCst);
        self.requests.fetch_add(1, SeqCst);
        InFlightGuard(self.clone())
    }
}

/// Like [`spawn`], counting its requests in progress in `gauge`.
pub async fn spawn_counted(behaviour: Behaviour, gauge: Arc<InFlight>) -> SocketAddr {
    spawn_with(behaviour, None, Some(gauge)).await
}

/// Starts an HTTPS server presenting `chain` with `key`.
pub async fn spawn_tls(
    behaviour: Behaviour,
    chain: Vec<rustls::pki_types::CertificateDer<'static>>,
    key: rustls::pki_types::PrivateKeyDer<'static>,
) -> SocketAddr {
    let config =
        rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("server certificate");
    spawn_with(
        behaviour,
        Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))),
        None,
    )
    .await
}

async fn spawn_with(
    behaviour: Behaviour,
    tls: Option<tokio_rustls::TlsAcceptor>,
    gauge: Option<Arc<InFlight>>,
) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let behaviour = behaviour.clone();
            let tls = tls.clone();
            let gauge = gauge.clone();
            if let Some(gauge) = &gauge {
                gauge
                    .connections
                    .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            tokio::spawn(async move {
                match behaviour {
                    Behaviour::Reset => return reset(stream),
                    Behaviour::Garbage => return garbage(stream).await,
                    _ => {}
                }
                match tls {
                    Some(acceptor) => {
                        if let Ok(stream) = acceptor.accept(stream).await {
                            serve(stream, &behaviour, gauge.as_ref()).await;
                        }
                    }
                    None => serve(stream, &behaviour, gauge.as_ref()).await,
                }
            });
        }
    });
    addr
}

async fn garbage(mut stream: TcpStream) {
    let mut request = [0u8; 4096];
    let _ = stream.read(&mut request).await;
    let noise: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let _ = stream.write_all(&noise).await;
}

/// Ends a request in progress when dropped.
struct InFlightGuard(Arc<InFlight>);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.0.now.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

#[allow(deprecated)] // SO_LINGER 0 is exactly what a reset needs; the socket is closed at once.
fn reset(stream: TcpStream) {
    let _ = stream.set_linger(Some(Duration::ZERO));
    drop(stream);
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    behaviour: &Behaviour,
    gauge: Option<&Arc<InFlight>>,
) {
    let mut buffer = Vec::new();
    loop {
        let idle = match behaviour {
            Behaviour::KeepAliveCloses(after) => *after,
            _ => Duration::from_secs(3600),
        };
        let Ok(Some((head, body_length))) = tokio::time::timeout(idle, read_head(&mut stream, &mut buffer))
            .await
            .unwrap_or(Ok(None))
        else {
            return; // idle timeout, client gone, or garbage
        };
        let in_flight = gauge.map(InFlight::enter);
        let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
        if let Behaviour::DropsLargeBodies(limit) = behaviour {
            if body_length > *limit {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                return;
            }
        }
        // Consume the body.
        while buffer.len() < body_length {
            let mut chunk = vec![0u8; 65536];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        }
        buffer.drain(..body_length.min(buffer.len()));
        let response: Vec<u8> = match behaviour {
            Behaviour::MalformedHeader => b"HTTP/1.1 200 OK\r\nThis Is Not A Header\r\nContent-Length: 2\r\n\r\nok".to_vec(),
            Behaviour::ShortBody => {
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789").await;
                return;
            }
            Behaviour::Drip => {
                for byte in b"HTTP/1.1 200 OK\r\n".iter().cycle() {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    if stream.write_all(&[*byte]).await.is_err() {
                        return;
                    }
                }
                return;
            }
            Behaviour::EndlessBody => {
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 10000000000\r\n\r\n").await;
                let chunk = vec![b'x'; 65536];
                while stream.write_all(&chunk).await.is_ok() {}
                return;
            }
            Behaviour::NeverCloses => {
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial").await;
                std::future::pending::<()>().await;
                return;
            }
            Behaviour::HugeHeader => {
                let mut response = b"HTTP/1.1 200 OK\r\nX-Huge: ".to_vec();
                response.resize(response.len() + 1024 * 1024, b'h');
                response.extend_from_slice(b"\r\nContent-Length: 0\r\n\r\n");
                response
            }
            Behaviour::Slow(delay) => {
                tokio::time::sleep(*delay).await;
                ok(200, &[])
            }
            Behaviour::Status(code, headers) => ok(*code, headers),
            Behaviour::AppFailsHealthPasses(health) => ok(if path == *health { 200 } else { 500 }, &[]),
            Behaviour::RejectsPost if head.starts_with("POST") => ok(405, &[]),
            Behaviour::RejectsLargeHeaders(limit) if head.len() > *limit => {
                b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec()
            }
            Behaviour::EnforcesHeaderLimit(limit) if head.len() > *limit => {
                b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec()
            }
            _ => ok(200, &[]),
        };
        // The request stops counting before its response goes out: the client cannot finish (and
        // start another) until that write happens, so the count never runs ahead of the client.
        drop(in_flight);
        if stream.write_all(&response).await.is_err() {
            return;
        }
        if String::from_utf8_lossy(&response).contains("Connection: close") {
            return;
        }
    }
}

fn ok(status: u16, headers: &[(&str, &str)]) -> Vec<u8> {
    let mut head = format!("HTTP/1.1 {status} Status\r\nContent-Length: 2\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\nok");
    head.into_bytes()
}

/// Reads one request head; returns it and its Content-Length. Ok(None) when the client left.
async fn read_head<S: AsyncRead + Unpin>(
    stream: &mut S,
    buffer: &mut Vec<u8>,
) -> std::io::Result<Option<(String, usize)>> {
    loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
            buffer.drain(..end + 4);
            let length = head
                .lines()
                .filter_map(|l| l.split_once(':'))
                .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.trim().parse().ok())
                .unwrap_or(0);
            return Ok(Some((head, length)));
        }
        if buffer.len() > 256 * 1024 {
            return Ok(None);
        }
        let mut chunk = [0u8; 16384];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
}

/// A test CA and leaf certificates it signs.
pub struct Pki {
    ca: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
    pub ca_pem: String,
}

impl Pki {
    pub fn new() -> Pki {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "lbtriage test CA");
        let key = rcgen::KeyPair::generate().expect("CA key");
        let ca = rcgen::CertifiedIssuer::self_signed(params, key).expect("CA certificate");
        let ca_pem = ca.pem();
        Pki { ca, ca_pem }
    }

    fn issue(
        &self,
        names: &[&str],
        not_before: (i32, u8, u8),
        not_after: (i32, u8, u8),
    ) -> (rcgen::Certificate, rcgen::KeyPair) {
        let mut params =
            rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .expect("leaf params");
        params.not_before = rcgen::date_time_ymd(not_before.0, not_before.1, not_before.2);
        params.not_after = rcgen::date_time_ymd(not_after.0, not_after.1, not_after.2);
        let key = rcgen::KeyPair::generate().expect("leaf key");
        let cert = params.signed_by(&key, &self.ca).expect("sign leaf");
        (cert, key)
    }

    /// A leaf for `names`, valid between the given dates (year, month, day), with the CA in its chain.
    pub fn leaf(
        &self,
        names: &[&str],
        not_before: (i32, u8, u8),
        not_after: (i32, u8, u8),
    ) -> (
        Vec<rustls::pki_types::CertificateDer<'static>>,
        rustls::pki_types::PrivateKeyDer<'static>,
    ) {
        let (cert, key) = self.issue(names, not_before, not_after);
        let key = rustls::pki_types::PrivatePkcs8KeyDer::from(key.serialize_der());
        (vec![cert.der().clone(), self.ca.der().clone()], key.into())
    }

    /// The same as PEM files `<stem>.pem` (chain) and `<stem>.key` in `dir`, for nginx.
    pub fn leaf_files(
        &self,
        dir: &std::path::Path,
        stem: &str,
        names: &[&str],
        not_before: (i32, u8, u8),
        not_after: (i32, u8, u8),
    ) -> (std::path::PathBuf, std::path::PathBuf) {
        let (cert, key) = self.issue(names, not_before, not_after);
        let (cert_path, key_path) = (dir.join(format!("{stem}.pem")), dir.join(format!("{stem}.key")));
        std::fs::write(&cert_path, format!("{}{}", cert.pem(), self.ca.pem())).expect("write chain");
        std::fs::write(&key_path, key.serialize_pem()).expect("write key");
        (cert_path, key_path)
    }
}
