//! Entry points of the fuzz targets (`fuzz/`), shared with the corpus replay in the test suite so
//! both exercise exactly the same code. Each checks what must hold for any input, beyond "no panic".

use crate::probes::exchange::{check_response_bytes, MAX_BODY_BYTES};
use crate::sources::alibaba::datapoints::parse_page;

/// Any text: a valid config, or an error that names its key or says what it could not read.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(err) = crate::config::Config::parse(text) {
        assert!(!err.to_string().is_empty());
    }
}

/// Any answer body: a page whose points are finite and whose times are sane, or an error.
pub fn datapoints(data: &[u8]) {
    for (dimension, statistic) in [("instanceId", "Average"), ("loadBalancerId", "Value")] {
        if let Ok(page) = parse_page(data, dimension, statistic) {
            for point in &page.points {
                assert!(point.value.is_finite());
                assert!(point.timestamp >= 0);
            }
        }
    }
}

/// Any bytes from a server: a framed response whose counted body fits the cap (or is reported as
/// cut), or a failure with a reason.
pub fn framing(data: &[u8]) {
    if let Ok(response) = check_response_bytes(data) {
        assert!(response.body_bytes <= data.len() || response.body_bytes > MAX_BODY_BYTES);
    }
}
