//! How a check fails: the `reason` label and what happened.

/// Why a check failed: the `reason` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Refused,
    Reset,
    Timeout,
    Dns,
    Tls,
    InvalidResponse,
    Status,
    /// A link-local or metadata address, refused by configuration.
    Forbidden,
    /// An automatic probe's target that this vantage could not reach while its load balancer was
    /// quiet (another VPC, a security group that admits only the load balancer): no evidence either
    /// way, and no rule reads it as such.
    UnreachableFromVantage,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Refused => "refused",
            Reason::Reset => "reset",
            Reason::Timeout => "timeout",
            Reason::Dns => "dns",
            Reason::Tls => "tls",
            Reason::InvalidResponse => "invalid_response",
            Reason::Status => "status",
            Reason::Forbidden => "forbidden",
            Reason::UnreachableFromVantage => "unreachable_from_vantage",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub reason: Reason,
    pub detail: String,
}

impl Failure {
    pub fn new(reason: Reason, detail: impl Into<String>) -> Self {
        Failure {
            reason,
            detail: detail.into(),
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.reason.as_str(), self.detail)
    }
}
