//! The fuzz corpus (`fuzz/corpus/<target>/`, kept from `make fuzz` runs, crashers included once
//! fixed) replayed through the same entry points the libFuzzer targets call: a short smoke on
//! stable Rust that fails when an input that once passed panics again.

use crate::support::repo_root;

fn replay(target: &str, check: fn(&[u8])) {
    let dir = repo_root().join("fuzz/corpus").join(target);
    let mut inputs = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|err| panic!("{}: {err}", dir.display())) {
        let path = entry.expect("corpus entry").path();
        let data = std::fs::read(&path).expect("read corpus file");
        let outcome = std::panic::catch_unwind(|| check(&data));
        assert!(outcome.is_ok(), "{} panics", path.display());
        inputs += 1;
    }
    assert!(inputs >= 3, "{target}: the corpus has inputs ({inputs})");
}

#[test]
fn config_corpus() {
    replay("config", lbtriage::fuzzing::config);
}

/// Every provider's answer parser, through its registry row's entry point.
#[test]
fn answers_corpus_of_every_provider() {
    for provider in lbtriage::sources::registry::PROVIDERS {
        replay(&format!("answers_{}", provider.name), provider.fuzz);
    }
}

#[test]
fn framing_corpus() {
    replay("framing", lbtriage::fuzzing::framing);
}
