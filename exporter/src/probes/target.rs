//! What a check is aimed at: a backend or the load balancer's address, over TCP or TLS, and which
//! configured request it sends.

use std::net::SocketAddr;

use super::tls::TlsSettings;

/// Through the load balancer, or straight to a backend: the `path` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Lb,
    Backend,
}

impl Via {
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Lb => "lb",
            Via::Backend => "backend",
        }
    }
}

/// Which configured path a request used: the `request` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    App,
    Health,
}

impl RequestKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RequestKind::App => "app",
            RequestKind::Health => "health",
        }
    }
}

#[derive(Clone)]
pub struct TlsTarget {
    pub settings: TlsSettings,
    pub server_name: String,
    /// Clients verify the listener's certificate; load balancers do not verify targets'.
    pub verify: bool,
}

#[derive(Clone)]
pub struct Target {
    pub via: Via,
    pub addr: SocketAddr,
    pub tls: Option<TlsTarget>,
}
