//! What the HTML pages share: escaping, a sample's label, where a cause's runbook is.

use std::borrow::Cow;

use crate::store::Sample;

pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.contains(['<', '>', '&', '"', '\'']) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    Cow::Owned(out)
}

pub fn label<'a>(sample: &'a Sample, name: &str) -> &'a str {
    sample
        .labels
        .iter()
        .find(|(key, _)| key == name)
        .map_or("", |(_, value)| value.as_str())
}

/// The path the page links runbooks at (served by the exporter from the embedded catalog).
pub fn runbook_path(cause: &str) -> String {
    format!("/runbooks/{cause}.md")
}
