//! The latest snapshot of every source, and its rendering as Prometheus text or OpenMetrics.
//!
//! Sources collect in the background and swap a whole snapshot in; a scrape only renders what is
//! there, so scrape latency never depends on a cloud API.

pub mod families;

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::{Arc, RwLock};

pub use families::{Family, Kind};

/// Label pairs in output order. Names are static except for the few built from data (`tag_<key>`).
pub type Labels = Vec<(Cow<'static, str>, String)>;

#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub family: &'static Family,
    pub labels: Labels,
    pub value: f64,
}

impl Sample {
    pub fn new(family: &'static Family, labels: Labels, value: f64) -> Self {
        Sample {
            family,
            labels,
            value,
        }
    }
}

/// Exposition format chosen by content negotiation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `text/plain; version=0.0.4`
    Prometheus,
    /// `application/openmetrics-text; version=1.0.0`
    OpenMetrics,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// Data a source publishes beside its samples (the probes' findings, for the `/` page): kept and
/// dropped with the source's snapshot, never read by the store itself.
pub type Attachment = Arc<dyn std::any::Any + Send + Sync>;

#[derive(Default)]
struct Inner {
    /// Bumped by every change to the snapshots; a rendering of one generation can be reused.
    generation: u64,
    snapshots: BTreeMap<String, Arc<Vec<Sample>>>,
    /// Keyed like the snapshots, and dropped with them on reconfiguration.
    attachments: BTreeMap<String, Attachment>,
    expected: BTreeSet<String>,
}

/// Snapshots keyed by source (`aws/prod/us-east-1`), plus the set of sources that must report before
/// the exporter is ready.
#[derive(Default)]
pub struct Store {
    inner: RwLock<Inner>,
    /// The latest rendering per format with its generation: concurrent scrapes between two
    /// collections share one body instead of each building its own (memory and CPU under load).
    rendered: std::sync::Mutex<Vec<(Format, u64, bytes::Bytes)>>,
}

impl Store {
    pub fn new(expected_sources: impl IntoIterator<Item = String>) -> Self {
        Store {
            inner: RwLock::new(Inner {
                expected: expected_sources.into_iter().collect(),
                ..Inner::default()
            }),
            rendered: std::sync::Mutex::default(),
        }
    }

    /// After a reload: the new config's sources become the expected set, and snapshots (with their
    /// attachments) of sources it no longer has and `keep` does not name are dropped: their series
    /// disappear rather than going stale.
    pub fn reconfigure(&self, expected_sources: impl IntoIterator<Item = String>, keep: &[&str]) {
        let mut inner = self
            .inner
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        inner.expected = expected_sources.into_iter().collect();
        inner.generation += 1;
        let Inner {
            snapshots,
            attachments,
            expected,
            ..
        } = &mut *inner;
        snapshots.retain(|key, _| expected.contains(key) || keep.contains(&key.as_str()));
        attachments.retain(|key, _| expected.contains(key) || keep.contains(&key.as_str()));
    }

    /// Replaces the snapshot of one source.
    pub fn publish(&self, source: &str, samples: Vec<Sample>) {
        let mut inner = self
            .inner
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        inner.snapshots.insert(source.to_string(), Arc::new(samples));
        inner.generation += 1;
    }

    /// Drops one source's snapshot and attachment (an automatic probe that stopped).
    pub fn remove(&self, source: &str) {
        let mut inner = self
            .inner
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        inner.snapshots.remove(source);
        inner.attachments.remove(source);
        inner.generation += 1;
    }

    /// The keys of every published snapshot.
    pub fn keys(&self) -> Vec<String> {
        let inner = self.inner.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        inner.snapshots.keys().cloned().collect()
    }

    /// Replaces what one source publishes beside its samples.
    pub fn attach(&self, source: &str, attachment: Attachment) {
        let mut inner = self
            .inner
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        inner.attachments.insert(source.to_string(), attachment);
    }

    /// The attachments of type `T`, in source order.
    pub fn attachments<T: Send + Sync + 'static>(&self) -> Vec<Arc<T>> {
        let inner = self.inner.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        inner
            .attachments
            .values()
            .filter_map(|attachment| attachment.clone().downcast::<T>().ok())
            .collect()
    }

    /// The current samples of one family, across sources (for the `/` page).
    pub fn samples_of(&self, family: &'static Family) -> Vec<Sample> {
        self.snapshots()
            .iter()
            .flat_map(|snapshot| snapshot.iter())
            .filter(|sample| std::ptr::eq(sample.family, family))
            .cloned()
            .collect()
    }

    /// True once every expected source has published at least once (after its first attempt,
    /// successful or not).
    pub fn ready(&self) -> bool {
        let inner = self.inner.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        inner
            .expected
            .iter()
            .all(|source| inner.snapshots.contains_key(source))
    }

    fn snapshots(&self) -> Vec<Arc<Vec<Sample>>> {
        self.generation_and_snapshots().1
    }

    fn generation_and_snapshots(&self) -> (u64, Vec<Arc<Vec<Sample>>>) {
        let inner = self.inner.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        (inner.generation, inner.snapshots.values().cloned().collect())
    }

    /// Like [`Store::render`], reusing the body of the last scrape while nothing changed. `extra`
    /// must be the same on every call (the server's static samples).
    pub fn render_shared(&self, format: Format, extra: &[Sample]) -> bytes::Bytes {
        let (generation, snapshots) = self.generation_and_snapshots();
        let cached = |rendered: &[(Format, u64, bytes::Bytes)]| {
            rendered
                .iter()
                .find(|(f, g, _)| *f == format && *g == generation)
                .map(|(_, _, body)| body.clone())
        };
        if let Some(body) = cached(&self.rendered.lock().unwrap_or_else(|p| p.into_inner())) {
            return body;
        }
        let all = snapshots.iter().flat_map(|s| s.iter()).chain(extra.iter());
        let body = bytes::Bytes::from(render(all, format));
        let mut rendered = self.rendered.lock().unwrap_or_else(|p| p.into_inner());
        rendered.retain(|(f, g, _)| *f != format && *g == generation);
        rendered.push((format, generation, body.clone()));
        body
    }

    /// Renders every snapshot, with `extra` samples (build info) appended.
    pub fn render(&self, format: Format, extra: &[Sample]) -> String {
        let snapshots = self.snapshots();
        let all = snapshots.iter().flat_map(|s| s.iter()).chain(extra.iter());
        render(all, format)
    }
}

/// Renders samples grouped by family in declaration order, metadata once per family.
pub fn render<'a>(samples: impl Iterator<Item = &'a Sample>, format: Format) -> String {
    let mut buckets: Vec<Vec<&Sample>> = vec![Vec::new(); families::ALL.len()];
    let mut count = 0usize;
    for sample in samples {
        let index = families::ALL
            .iter()
            .position(|family| std::ptr::eq(*family, sample.family));
        if let Some(index) = index {
            buckets[index].push(sample);
            count += 1;
        }
    }
    let mut out = String::with_capacity(count * 160 + 4096);
    for (family, samples) in families::ALL.iter().zip(&buckets) {
        if samples.is_empty() {
            continue;
        }
        write_family(&mut out, family, samples, format);
    }
    if format == Format::OpenMetrics {
        out.push_str("# EOF\n");
    }
    out
}

fn write_family(out: &mut String, family: &Family, samples: &[&Sample], format: Format) {
    let sample_suffix = if family.kind == Kind::Counter {
        "_total"
    } else {
        ""
    };
    let (meta_name, meta_suffix, type_name) = match (format, family.kind) {
        (Format::OpenMetrics, Kind::Counter) => (family.name, "", "counter"),
        (Format::OpenMetrics, Kind::Info) => (
            family.name.strip_suffix("_info").unwrap_or(family.name),
            "",
            "info",
        ),
        (Format::OpenMetrics, Kind::Gauge) => (family.name, "", "gauge"),
        (Format::Prometheus, Kind::Counter) => (family.name, "_total", "counter"),
        (Format::Prometheus, _) => (family.name, "", "gauge"),
    };
    let _ = writeln!(
        out,
        "# HELP {meta_name}{meta_suffix} {}",
        escape_help(family.help)
    );
    let _ = writeln!(out, "# TYPE {meta_name}{meta_suffix} {type_name}");
    if let (Format::OpenMetrics, Some(unit)) = (format, family.unit) {
        let _ = writeln!(out, "# UNIT {meta_name} {unit}");
    }
    for sample in samples {
        out.push_str(family.name);
        out.push_str(sample_suffix);
        if !sample.labels.is_empty() {
            out.push('{');
            for (i, (name, value)) in sample.labels.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(name);
                out.push_str("=\"");
                escape_label_value(out, value);
                out.push('"');
            }
            out.push('}');
        }
        out.push(' ');
        write_value(out, sample.value);
        out.push('\n');
    }
}

fn write_value(out: &mut String, value: f64) {
    if value.is_nan() {
        out.push_str("NaN");
    } else if value.is_infinite() {
        out.push_str(if value > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        let _ = write!(out, "{value}");
    }
}

fn escape_help(help: &str) -> Cow<'_, str> {
    if help.contains(['\\', '\n']) {
        Cow::Owned(help.replace('\\', "\\\\").replace('\n', "\\n"))
    } else {
        Cow::Borrowed(help)
    }
}

fn escape_label_value(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Adds each tag as a `tag_<key>` label (key sanitized); a tag whose label name is already taken
/// (by a fixed label or an earlier tag that sanitizes alike) is left out.
pub fn push_tag_labels<'a>(labels: &mut Labels, tags: impl IntoIterator<Item = (&'a String, &'a String)>) {
    let mut seen: std::collections::BTreeSet<String> = labels.iter().map(|(k, _)| k.to_string()).collect();
    for (key, value) in tags {
        let name = format!("tag_{}", sanitize_label_name(key));
        if seen.insert(name.clone()) {
            labels.push((Cow::Owned(name), value.clone()));
        }
    }
}

/// A label name made from data (a tag key): invalid characters become `_`, and a leading digit is
/// prefixed, so `aws:cloudformation:stack-name` becomes `aws_cloudformation_stack_name`.
pub fn sanitize_label_name(raw: &str) -> String {
    let mut name: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.starts_with(|c: char| c.is_ascii_digit()) || name.is_empty() {
        name.insert(0, '_');
    }
    name
}

#[cfg(test)]
mod tests {
    use super::families::*;
    use super::*;

    fn labels(pairs: &[(&'static str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (Cow::Borrowed(*k), v.to_string()))
            .collect()
    }

    /// Text format 0.0.4, whole: families in declaration order whatever the input order, HELP and
    /// TYPE once per family, `_total` on counters, label values escaped (`"`, `\\`, newline).
    #[test]
    fn prometheus_text_renders_whole_families_in_order() {
        let samples = [
            Sample::new(&LB_REQUESTS, labels(&[("lb", "app/a/1")]), 12.0),
            Sample::new(&LB_IDLE_TIMEOUT, labels(&[("lb", "app/a/1")]), 60.0),
            Sample::new(&LB_INFO, labels(&[("lb", "say \"hi\"\\\n")]), 1.0),
        ];
        assert_eq!(
            render(samples.iter(), Format::Prometheus),
            "# HELP lbtriage_lb_info A discovered load balancer; tags become tag_<key> labels.\n\
             # TYPE lbtriage_lb_info gauge\n\
             lbtriage_lb_info{lb=\"say \\\"hi\\\"\\\\\\n\"} 1\n\
             # HELP lbtriage_lb_idle_timeout_seconds Configured idle timeout of the load balancer's connections.\n\
             # TYPE lbtriage_lb_idle_timeout_seconds gauge\n\
             lbtriage_lb_idle_timeout_seconds{lb=\"app/a/1\"} 60\n\
             # HELP lbtriage_lb_requests_total Requests the load balancer received.\n\
             # TYPE lbtriage_lb_requests_total counter\n\
             lbtriage_lb_requests_total{lb=\"app/a/1\"} 12\n"
        );
    }

    /// OpenMetrics 1.0, whole: counter families named without `_total` (samples with it), info
    /// families without `_info`, UNIT for families with a unit, `# EOF` last.
    #[test]
    fn openmetrics_renders_units_info_and_eof() {
        let samples = [
            Sample::new(&LB_REQUESTS, labels(&[]), 1.5),
            Sample::new(&LB_IDLE_TIMEOUT, labels(&[]), 60.0),
            Sample::new(&LB_INFO, labels(&[("lb", "x")]), 1.0),
        ];
        assert_eq!(
            render(samples.iter(), Format::OpenMetrics),
            "# HELP lbtriage_lb A discovered load balancer; tags become tag_<key> labels.\n\
             # TYPE lbtriage_lb info\n\
             lbtriage_lb_info{lb=\"x\"} 1\n\
             # HELP lbtriage_lb_idle_timeout_seconds Configured idle timeout of the load balancer's connections.\n\
             # TYPE lbtriage_lb_idle_timeout_seconds gauge\n\
             # UNIT lbtriage_lb_idle_timeout_seconds seconds\n\
             lbtriage_lb_idle_timeout_seconds 60\n\
             # HELP lbtriage_lb_requests Requests the load balancer received.\n\
             # TYPE lbtriage_lb_requests counter\n\
             lbtriage_lb_requests_total 1.5\n\
             # EOF\n"
        );
    }

    #[test]
    fn attachments_are_typed_and_dropped_with_their_source() {
        let store = Store::new(["a".to_string(), "b".to_string()]);
        store.attach("a", Arc::new("first".to_string()));
        store.attach("b", Arc::new(7_u32));
        assert_eq!(store.attachments::<String>(), [Arc::new("first".to_string())]);
        assert_eq!(store.attachments::<u32>(), [Arc::new(7)]);
        store.reconfigure(["b".to_string()], &[]);
        assert!(store.attachments::<String>().is_empty());
        assert_eq!(store.attachments::<u32>(), [Arc::new(7)]);
    }

    #[test]
    fn scrapes_share_a_rendering_until_a_source_publishes() {
        let store = Store::new(["a".to_string()]);
        store.publish(
            "a",
            vec![Sample::new(&SOURCE_UP, labels(&[("source", "a")]), 1.0)],
        );
        let first = store.render_shared(Format::Prometheus, &[]);
        let again = store.render_shared(Format::Prometheus, &[]);
        assert_eq!(
            first.as_ptr(),
            again.as_ptr(),
            "the same body, not a new rendering"
        );
        let open_metrics = store.render_shared(Format::OpenMetrics, &[]);
        assert!(open_metrics.ends_with(b"# EOF\n"));
        store.publish(
            "a",
            vec![Sample::new(&SOURCE_UP, labels(&[("source", "a")]), 0.0)],
        );
        let changed = store.render_shared(Format::Prometheus, &[]);
        assert_eq!(
            String::from_utf8_lossy(&changed),
            "# HELP lbtriage_source_up 1 when the last collection of this source job and region succeeded, 0 when it failed.\n\
             # TYPE lbtriage_source_up gauge\n\
             lbtriage_source_up{source=\"a\"} 0\n"
        );
        assert_eq!(changed, bytes::Bytes::from(store.render(Format::Prometheus, &[])));
    }

    #[test]
    fn store_readiness_waits_for_every_source() {
        let store = Store::new(["a".to_string(), "b".to_string()]);
        assert!(!store.ready());
        store.publish("a", vec![]);
        assert!(!store.ready());
        store.publish("b", vec![Sample::new(&SOURCE_UP, labels(&[]), 0.0)]);
        assert!(store.ready());
    }

    #[test]
    fn tag_keys_become_valid_label_names() {
        assert_eq!(
            sanitize_label_name("aws:cloudformation:stack-name"),
            "aws_cloudformation_stack_name"
        );
        assert_eq!(sanitize_label_name("1team"), "_1team");
        assert_eq!(sanitize_label_name("Team"), "Team");
    }
}
