//! Addresses probes may use: `host:port` forms, a URL's host, and the link-local and metadata
//! ranges that are refused unless configured otherwise.

pub const LINK_LOCAL_REFUSED: &str =
    "is a link-local or cloud metadata address; set allow_link_local: true to probe it anyway";

/// 169.254.0.0/16, fe80::/10 and the EC2 IPv6 metadata address fd00:ec2::254.
pub fn is_link_local(ip: &std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(v4) => v4.is_link_local(),
        std::net::IpAddr::V6(v6) => {
            (v6.segments()[0] & 0xffc0) == 0xfe80
                || *v6 == std::net::Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)
        }
    }
}

/// `host:port`, `[v6]:port`; the host without brackets.
pub fn split_host_port(text: &str) -> Option<(&str, u16)> {
    let (host, port) = text.rsplit_once(':')?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() || host.contains(char::is_whitespace) || (host.contains(':') && !text.starts_with('['))
    {
        return None;
    }
    Some((host, port.parse().ok()?))
}

/// The host of a URL that passed [`check_url`], without IPv6 brackets.
pub fn probe_url_host(url: &str) -> Option<String> {
    let uri: hyper::Uri = url.parse().ok()?;
    let host = uri.host()?;
    Some(host.trim_start_matches('[').trim_end_matches(']').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_forms() {
        assert_eq!(split_host_port("10.0.1.5:8080"), Some(("10.0.1.5", 8080)));
        assert_eq!(split_host_port("[::1]:80"), Some(("::1", 80)));
        assert_eq!(
            split_host_port("backend.internal:443"),
            Some(("backend.internal", 443))
        );
        assert_eq!(split_host_port("::1:80"), None);
        assert_eq!(split_host_port("host"), None);
        assert_eq!(split_host_port("host:http"), None);
    }
}
