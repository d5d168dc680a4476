//! A deliberately small HTTP/1.1 client: one request, one response, every byte bounded. It exists
//! because the checks need what general-purpose clients hide: when each phase ended, whether the
//! response was framed correctly (the response-framing check), and the connection afterwards for
//! the keep-alive measurement.

use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::failure::{Failure, Reason};

/// Response heads larger than this are refused: a hostile server cannot make us buffer more.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Bodies are read up to this much; the rest is not needed for any check.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
const MAX_HEADERS: usize = 100;

pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}
pub type Stream = Box<dyn Io>;

#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub host: &'a str,
    /// Size of one extra header's value (the header-limit check).
    pub padding_header_bytes: usize,
    /// Size of the request body (the large-body check); 0 sends none.
    pub body_bytes: usize,
}

impl<'a> Request<'a> {
    pub fn get(path: &'a str, host: &'a str) -> Self {
        Request {
            method: "GET",
            path,
            host,
            padding_header_bytes: 0,
            body_bytes: 0,
        }
    }

    /// Writes the request. Padding and body are streamed from a static chunk rather than built
    /// in memory: many probes in flight would otherwise each hold ~100 KiB.
    async fn write_to<W: AsyncWrite + Unpin + ?Sized>(&self, out: &mut W) -> std::io::Result<()> {
        let mut head = format!(
            "{} {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: lbtriage/{}\r\nAccept: */*\r\nConnection: keep-alive\r\n",
            self.method,
            self.path,
            self.host,
            env!("CARGO_PKG_VERSION")
        );
        if self.padding_header_bytes > 0 {
            head.push_str("X-Lbtriage-Padding: ");
            out.write_all(head.as_bytes()).await?;
            write_filler(out, b'a', self.padding_header_bytes).await?;
            head = "\r\n".to_string();
        }
        if self.body_bytes > 0 {
            head.push_str(&format!(
                "Content-Type: application/octet-stream\r\nContent-Length: {}\r\n",
                self.body_bytes
            ));
        }
        head.push_str("\r\n");
        out.write_all(head.as_bytes()).await?;
        write_filler(out, b'x', self.body_bytes).await
    }
}

const FILLER_CHUNK: usize = 4096;

async fn write_filler<W: AsyncWrite + Unpin + ?Sized>(
    out: &mut W,
    byte: u8,
    mut count: usize,
) -> std::io::Result<()> {
    let chunk = [byte; FILLER_CHUNK];
    while count > 0 {
        let n = count.min(FILLER_CHUNK);
        out.write_all(&chunk[..n]).await?;
        count -= n;
    }
    Ok(())
}

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body_bytes: usize,
    /// The server left the connection open for another request.
    pub keep_alive: bool,
    /// Request fully sent → first response byte.
    pub processing: Duration,
    /// First response byte → end of body.
    pub transfer: Duration,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `request` and reads one response, validating its framing. Not bounded in time: callers
/// wrap it in their deadline.
pub async fn exchange<S: AsyncRead + AsyncWrite + Unpin + ?Sized>(
    stream: &mut S,
    request: &Request<'_>,
) -> Result<Response, Failure> {
    request.write_to(stream).await.map_err(io_failure)?;
    stream.flush().await.map_err(io_failure)?;
    let sent = Instant::now();
    let mut reader = Reader {
        stream,
        buffer: Vec::with_capacity(8192),
        first_byte: None,
    };
    let (status, http11, headers, head_len) = loop {
        let (status, http11, headers, head_len) = reader.read_head().await?;
        // 1xx responses are interim: the real one follows on the same connection.
        if (100..200).contains(&status) && status != 101 {
            reader.buffer.drain(..head_len);
            continue;
        }
        break (status, http11, headers, head_len);
    };
    let first_byte = reader.first_byte.unwrap_or(sent);
    reader.buffer.drain(..head_len);
    let framing = framing(request.method, status, &headers)?;
    let (body_bytes, complete) = match framing {
        Framing::None => (0, true),
        Framing::Length(length) => reader.read_length(length).await?,
        Framing::Chunked => reader.read_chunked().await?,
    };
    let connection_says = |token: &str| {
        headers
            .iter()
            .any(|(n, v)| n.eq_ignore_ascii_case("connection") && v.to_ascii_lowercase().contains(token))
    };
    // HTTP/1.1 keeps connections unless told otherwise; HTTP/1.0 closes unless told otherwise.
    let persistent = if http11 {
        !connection_says("close")
    } else {
        connection_says("keep-alive")
    };
    Ok(Response {
        status,
        headers,
        body_bytes,
        keep_alive: complete && persistent,
        processing: first_byte.saturating_duration_since(sent),
        transfer: first_byte.elapsed(),
    })
}

#[derive(Debug, PartialEq, Eq)]
enum Framing {
    None,
    Length(usize),
    Chunked,
}

fn invalid(detail: impl Into<String>) -> Failure {
    Failure::new(Reason::InvalidResponse, detail)
}

/// How the body is delimited; a response a load balancer could not delimit is invalid.
fn framing(method: &str, status: u16, headers: &[(String, String)]) -> Result<Framing, Failure> {
    let lengths: Vec<&str> = headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .map(|(_, v)| v.trim())
        .collect();
    let encodings: Vec<String> = headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("transfer-encoding"))
        .map(|(_, v)| v.trim().to_ascii_lowercase())
        .collect();
    if method == "HEAD" || status == 204 || status == 304 {
        return Ok(Framing::None);
    }
    if !lengths.is_empty() && !encodings.is_empty() {
        return Err(invalid("both Content-Length and Transfer-Encoding"));
    }
    if let Some(encoding) = encodings.last() {
        return if encoding.rsplit(',').next().map(str::trim) == Some("chunked") {
            Ok(Framing::Chunked)
        } else {
            Err(invalid(format!("unsupported Transfer-Encoding {encoding:?}")))
        };
    }
    match lengths.as_slice() {
        [] => Err(invalid("neither Content-Length nor Transfer-Encoding: the body is delimited only by closing the connection")),
        [first, rest @ ..] => {
            if rest.iter().any(|other| other != first) {
                return Err(invalid("conflicting Content-Length headers"));
            }
            first
                .parse::<usize>()
                .map(Framing::Length)
                .map_err(|_| invalid(format!("Content-Length {first:?} is not a number")))
        }
    }
}

struct Reader<'s, S: ?Sized> {
    stream: &'s mut S,
    buffer: Vec<u8>,
    first_byte: Option<Instant>,
}

impl<S: AsyncRead + Unpin + ?Sized> Reader<'_, S> {
    /// Reads more bytes; Ok(false) on end of stream.
    async fn fill(&mut self) -> Result<bool, Failure> {
        let mut chunk = [0u8; 8192];
        let n = self.stream.read(&mut chunk).await.map_err(io_failure)?;
        if n > 0 && self.first_byte.is_none() {
            self.first_byte = Some(Instant::now());
        }
        self.buffer.extend_from_slice(&chunk[..n]);
        Ok(n > 0)
    }

    /// Status, whether the response is HTTP/1.1, headers, and the head's length.
    async fn read_head(&mut self) -> Result<(u16, bool, Vec<(String, String)>, usize), Failure> {
        loop {
            if let Some(end) = find(&self.buffer, b"\r\n\r\n") {
                let head_len = end + 4;
                let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
                let mut response = httparse::Response::new(&mut slots);
                return match response.parse(&self.buffer[..head_len]) {
                    Ok(httparse::Status::Complete(_)) => {
                        let status = response.code.unwrap_or(0);
                        let headers = response
                            .headers
                            .iter()
                            .map(|h| (h.name.to_string(), String::from_utf8_lossy(h.value).into_owned()))
                            .collect();
                        Ok((status, response.version == Some(1), headers, head_len))
                    }
                    Ok(httparse::Status::Partial) => Err(invalid("incomplete response head")),
                    Err(err) => Err(invalid(format!("malformed response head: {err}"))),
                };
            }
            if self.buffer.len() > MAX_HEAD_BYTES {
                return Err(invalid(format!(
                    "response head larger than {MAX_HEAD_BYTES} bytes"
                )));
            }
            if !self.fill().await? {
                return Err(if self.buffer.is_empty() {
                    Failure::new(Reason::Reset, "connection closed before any response")
                } else {
                    invalid("connection closed inside the response head")
                });
            }
        }
    }

    /// Reads a Content-Length body; Err when the stream ends short of it.
    async fn read_length(&mut self, length: usize) -> Result<(usize, bool), Failure> {
        let wanted = length.min(MAX_BODY_BYTES);
        while self.buffer.len() < wanted {
            if !self.fill().await? {
                return Err(invalid(format!(
                    "body ended after {} of {length} bytes (Content-Length)",
                    self.buffer.len()
                )));
            }
        }
        Ok((length.min(self.buffer.len()), length <= MAX_BODY_BYTES))
    }

    async fn read_chunked(&mut self) -> Result<(usize, bool), Failure> {
        let mut total = 0usize;
        let mut at = 0usize;
        loop {
            let line_end = loop {
                if let Some(end) = find(&self.buffer[at..], b"\r\n") {
                    break at + end;
                }
                if self.buffer.len() - at > 1024 {
                    return Err(invalid("chunk size line too long"));
                }
                if !self.fill().await? {
                    return Err(invalid("connection closed inside a chunked body"));
                }
            };
            let line = String::from_utf8_lossy(&self.buffer[at..line_end]).into_owned();
            let size_text = line.split(';').next().unwrap_or_default().trim();
            let size = usize::from_str_radix(size_text, 16)
                .map_err(|_| invalid(format!("bad chunk size {size_text:?}")))?;
            at = line_end + 2;
            if size == 0 {
                return Ok((total, true)); // trailers, if any, are not read
            }
            total = total.saturating_add(size);
            if total > MAX_BODY_BYTES {
                return Ok((total, false));
            }
            while self.buffer.len() < at + size + 2 {
                if !self.fill().await? {
                    return Err(invalid("connection closed inside a chunk"));
                }
            }
            at += size + 2;
        }
    }
}

/// A finished server's bytes: reads return them, then end of stream; writes are discarded.
struct Canned<'b>(&'b [u8]);

impl AsyncRead for Canned<'_> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let n = self.0.len().min(buf.remaining());
        buf.put_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        std::task::Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Canned<'_> {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::task::Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

/// The response-framing check on bytes a server sent before closing: what [`exchange`] makes of
/// them for a GET. Used by the fuzz target and the corpus replay in the test suite.
pub fn check_response_bytes(bytes: &[u8]) -> Result<Response, Failure> {
    use futures_util::FutureExt as _;
    exchange(&mut Canned(bytes), &Request::get("/", "fuzz.test"))
        .now_or_never()
        .unwrap_or_else(|| Err(invalid("the canned stream never blocks")))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Maps an I/O error during an exchange to a failure reason.
pub fn io_failure(err: std::io::Error) -> Failure {
    use std::io::ErrorKind::*;
    let reason = match err.kind() {
        ConnectionRefused => Reason::Refused,
        TimedOut => Reason::Timeout,
        _ => Reason::Reset,
    };
    Failure::new(reason, err.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn framing_rules() {
        assert_eq!(
            framing("GET", 200, &headers(&[("Content-Length", "5")])).ok(),
            Some(Framing::Length(5))
        );
        assert_eq!(
            framing("GET", 200, &headers(&[("Transfer-Encoding", "gzip, chunked")])).ok(),
            Some(Framing::Chunked)
        );
        assert_eq!(framing("HEAD", 200, &[]).ok(), Some(Framing::None));
        assert_eq!(framing("GET", 204, &[]).ok(), Some(Framing::None));
        for bad in [
            headers(&[]),
            headers(&[("Content-Length", "5"), ("Transfer-Encoding", "chunked")]),
            headers(&[("Content-Length", "5"), ("Content-Length", "6")]),
            headers(&[("Content-Length", "five")]),
            headers(&[("Transfer-Encoding", "gzip")]),
        ] {
            let err = framing("GET", 200, &bad).expect_err("invalid framing");
            assert_eq!(err.reason, Reason::InvalidResponse, "{bad:?}");
        }
    }

    #[tokio::test]
    async fn request_encoding_pads_and_sizes() {
        let request = Request {
            method: "POST",
            path: "/x",
            host: "h",
            padding_header_bytes: 10,
            body_bytes: 5000,
        };
        let mut written: Vec<u8> = Vec::new();
        request.write_to(&mut written).await.expect("write to memory");
        let bytes = String::from_utf8(written).expect("ascii");
        assert!(bytes.starts_with("POST /x HTTP/1.1\r\nHost: h\r\n"));
        assert!(bytes.contains("X-Lbtriage-Padding: aaaaaaaaaa\r\n"));
        assert!(bytes.contains("Content-Length: 5000\r\n\r\n"));
        assert!(bytes.ends_with(&format!("\r\n\r\n{}", "x".repeat(5000))));
    }

    async fn parse(raw: &'static [u8]) -> Result<Response, Failure> {
        let (client, mut server) = tokio::io::duplex(1 << 16);
        tokio::spawn(async move {
            let mut request = [0u8; 1024];
            let _ = server.read(&mut request).await;
            let _ = server.write_all(raw).await;
        });
        let mut stream: Stream = Box::new(client);
        exchange(&mut stream, &Request::get("/", "h")).await
    }

    #[tokio::test]
    async fn reads_well_framed_responses() {
        let ok = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi")
            .await
            .expect("valid");
        assert_eq!((ok.status, ok.body_bytes, ok.keep_alive), (200, 2, true));
        let chunked = parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
            .await
            .expect("valid");
        assert_eq!(chunked.body_bytes, 3);
        let interim = parse(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 503 No\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        )
        .await
        .expect("valid");
        assert_eq!((interim.status, interim.keep_alive), (503, false));
        let old = parse(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n")
            .await
            .expect("valid");
        assert!(!old.keep_alive, "HTTP/1.0 closes unless it says keep-alive");
        let old_kept = parse(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n")
            .await
            .expect("valid");
        assert!(old_kept.keep_alive);
    }

    #[tokio::test]
    async fn rejects_malformed_responses() {
        for raw in [
            &b"HTTP/1.1 200 OK\r\nBad Header Line\r\nContent-Length: 0\r\n\r\n"[..],
            &b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"[..],
            &b"HTP/1.1 200 OK\r\n\r\n"[..],
            &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"[..],
        ] {
            let err = parse(raw).await.expect_err("malformed");
            assert_eq!(
                err.reason,
                Reason::InvalidResponse,
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
        let closed = parse(b"").await.expect_err("no response");
        assert_eq!(closed.reason, Reason::Reset);
    }
}
