//! Entry points of the fuzz targets (`fuzz/`), shared with the corpus replay in the test suite so
//! both exercise exactly the same code. Each checks what must hold for any input, beyond "no panic".

use crate::probes::exchange::{check_response_bytes, MAX_BODY_BYTES};
use crate::sources::registry::PROVIDERS;

/// Any text: a valid config, or an error that names its key or says what it could not read.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(err) = crate::config::Config::parse(text) {
        assert!(!err.to_string().is_empty());
    }
}

/// Any answer body, through the named provider's own parser (its registry row's entry point).
pub fn answers(provider: &str, data: &[u8]) {
    if let Some(row) = PROVIDERS.iter().find(|row| row.name == provider) {
        (row.fuzz)(data);
    }
}

/// Any bytes from a server: a framed response whose counted body fits the cap (or is reported as
/// cut), or a failure with a reason.
pub fn framing(data: &[u8]) {
    if let Ok(response) = check_response_bytes(data) {
        assert!(response.body_bytes <= data.len() || response.body_bytes > MAX_BODY_BYTES);
    }
}
