//! The one error a configuration can have: which key, where, and what is wrong with it.

/// A configuration error: which key, where, and what is wrong with it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{}{}: {message}", key.as_deref().map(|k| format!("config key `{k}`")).unwrap_or_else(|| "config".to_string()), line.map(|l| format!(" (line {l})")).unwrap_or_default())]
pub struct ConfigError {
    pub key: Option<String>,
    pub line: Option<usize>,
    pub message: String,
}

impl ConfigError {
    pub(super) fn at(key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            key: Some(key.into()),
            line: None,
            message: message.into(),
        }
    }
}
