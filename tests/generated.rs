//! Committed files rendered from code must match a fresh render. `make generate` rewrites them.

use crate::support::repo_root;

fn check_fresh(relative: &str, fresh: &str) {
    let path = repo_root().join(relative);
    if std::env::var_os("LBTRIAGE_UPDATE_GENERATED").is_some() {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("create the directory");
        }
        std::fs::write(&path, fresh).expect("write the generated file");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == fresh,
        "{relative} is stale: run `make generate` and commit the result"
    );
}

#[test]
fn metrics_doc_is_fresh() {
    check_fresh("docs/metrics.md", &lbtriage::docs::metrics_markdown());
}
