//! The release archive (`make dist`, `deploy/dist.sh`) as a user unpacks it: checksums verify, the
//! folder holds the binary, README, LICENSE, example configuration, rule file, dashboards, runbooks,
//! systemd unit and cloud policies, and the binary runs from there against the example
//! configuration. The suite packs the debug binary it already built; `make dist` packs the release
//! build with the same script.

use std::path::Path;
use std::process::Command;

use crate::support::repo_root;

fn pack(out: &Path) -> std::path::PathBuf {
    let output = Command::new(repo_root().join("deploy/dist.sh"))
        .args([env!("CARGO_BIN_EXE_lbtriage"), out.to_str().unwrap_or_default()])
        .output()
        .expect("run deploy/dist.sh");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    std::path::PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
}

fn files_in(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

#[test]
fn the_release_archive_unpacks_and_runs_against_its_example() {
    let out = tempfile::tempdir().expect("temp dir");
    let archive = pack(out.path());
    let name = archive
        .file_name()
        .and_then(|n| n.to_str())
        .expect("archive name")
        .to_string();
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        name.starts_with(&format!("lbtriage-{version}.linux-")) && name.ends_with(".tar.gz"),
        "{name}"
    );
    let check = Command::new("sha256sum")
        .args(["-c", "sha256sums.txt"])
        .current_dir(out.path())
        .output()
        .expect("sha256sum");
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
    // Packing again gives the same bytes: names sorted, owner and times fixed.
    let again = tempfile::tempdir().expect("temp dir");
    pack(again.path());
    let sums = |dir: &Path| std::fs::read_to_string(dir.join("sha256sums.txt")).expect("sha256sums.txt");
    assert_eq!(sums(out.path()), sums(again.path()), "reproducible");

    let unpacked = tempfile::tempdir().expect("temp dir");
    let status = Command::new("tar")
        .args(["-xzf", archive.to_str().unwrap_or_default(), "-C"])
        .arg(unpacked.path())
        .status()
        .expect("tar");
    assert!(status.success());
    let dir = unpacked.path().join(name.trim_end_matches(".tar.gz"));
    for file in [
        "lbtriage",
        "README.md",
        "LICENSE",
        "lbtriage.example.yml",
        "rules/lbtriage.rules.yml",
        "systemd/lbtriage.service",
        "iam/aws-policy.json",
        "iam/alibaba-ram-policy.json",
        "iam/tencent-cam-policy.json",
    ] {
        assert!(dir.join(file).is_file(), "{file} in the archive");
    }
    assert_eq!(
        files_in(&dir.join("dashboards")),
        files_in(&repo_root().join("grafana/dashboards"))
    );
    assert_eq!(
        files_in(&dir.join("runbooks")),
        files_in(&repo_root().join("alerts/runbooks"))
    );
    assert!(
        std::fs::read_to_string(dir.join("LICENSE"))
            .expect("LICENSE")
            .contains("Apache License"),
        "Cargo.toml declares Apache-2.0"
    );

    let run = |args: &[&str]| {
        Command::new(dir.join("lbtriage"))
            .args(args)
            .current_dir(&dir)
            .output()
            .expect("run the unpacked binary")
    };
    let version_output = run(&["--version"]);
    assert_eq!(
        String::from_utf8_lossy(&version_output.stdout).trim(),
        format!("lbtriage {version}")
    );
    let checked = run(&["check-config", "--config.file=lbtriage.example.yml"]);
    assert!(
        checked.status.success(),
        "{}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
    // The rule file shipped is the one this binary renders.
    let rules = run(&["rules"]);
    assert_eq!(
        String::from_utf8_lossy(&rules.stdout),
        std::fs::read_to_string(dir.join("rules/lbtriage.rules.yml")).expect("rules")
    );
}
