//! TCP connect to each backend: does anything accept connections on the port at all?

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

use super::exchange::io_failure;
use super::failure::{Failure, Reason};

/// Connects within `timeout`; the connection is closed again at once.
pub async fn connect(addr: SocketAddr, timeout: Duration) -> Result<(TcpStream, Duration), Failure> {
    let started = Instant::now();
    match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => {
            let _ = stream.set_nodelay(true);
            Ok((stream, started.elapsed()))
        }
        Ok(Err(err)) => Err(io_failure(err)),
        Err(_) => Err(Failure::new(
            Reason::Timeout,
            format!("no connection to {addr} within {timeout:?}"),
        )),
    }
}
