//! Renders what the cause catalog promises, one file per output: the Prometheus rule file
//! (`file.rs`), one runbook per alert (`runbooks.rs`) and `docs/causes.md` (`causes_doc.rs`).

mod causes_doc;
mod file;
mod runbooks;

pub use causes_doc::render_causes_doc;
pub use file::{render_prometheus_rule, render_rules, LB_LABELS, MAX_RULES_PER_GROUP};
pub use runbooks::{render_operational_runbook, render_runbook};
