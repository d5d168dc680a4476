//! DNS: the addresses the load balancer's name resolves to. Multi-AZ load balancers have several;
//! every one of them is probed.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use super::failure::{Failure, Reason};

#[derive(Debug, Clone, Default)]
pub struct DnsResult {
    pub addresses: Vec<IpAddr>,
    pub duration: Duration,
    pub failure: Option<Failure>,
}

/// Resolves `host` (an IP literal resolves to itself), deduplicated, in the resolver's order.
pub async fn resolve(host: &str, port: u16, timeout: Duration) -> DnsResult {
    let started = Instant::now();
    let lookup = tokio::time::timeout(timeout, tokio::net::lookup_host((host, port))).await;
    let (addresses, failure) = match lookup {
        Ok(Ok(found)) => {
            let mut addresses: Vec<IpAddr> = Vec::new();
            for ip in found.map(|addr: SocketAddr| addr.ip()) {
                if !addresses.contains(&ip) {
                    addresses.push(ip);
                }
            }
            let failure = addresses
                .is_empty()
                .then(|| Failure::new(Reason::Dns, format!("{host} resolved to no address")));
            (addresses, failure)
        }
        Ok(Err(err)) => (
            Vec::new(),
            Some(Failure::new(Reason::Dns, format!("{host}: {err}"))),
        ),
        Err(_) => (
            Vec::new(),
            Some(Failure::new(
                Reason::Timeout,
                format!("resolving {host} timed out"),
            )),
        ),
    };
    DnsResult {
        addresses,
        duration: started.elapsed(),
        failure,
    }
}
