//! The container image, built and run: the Dockerfile's runtime stage is built with buildah from
//! the binary this suite already built (`deploy/docker/rootfs.sh` lays out its files and is handed
//! in as the `build` context, so the compile stage is skipped: a release build only for this would
//! cost minutes, and base images cannot be pulled here), then run with `--isolation chroot`:
//! `--version`, `check-config` on the shipped default configuration, its health check, and a scrape
//! of `/metrics` on loopback. Storage lives in a temporary directory.

use std::path::Path;
use std::process::{Command, Output};

use crate::support::{http_get, repo_root, spawn_exporter};

struct Buildah {
    storage: tempfile::TempDir,
}

impl Buildah {
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new("buildah");
        command
            .arg(format!("--root={}", self.storage.path().join("root").display()))
            .arg(format!(
                "--runroot={}",
                self.storage.path().join("runroot").display()
            ))
            .arg("--storage-driver=vfs")
            .args(args);
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        let output = self
            .command(args)
            .output()
            .expect("buildah (make test installs it)");
        assert!(
            output.status.success(),
            "buildah {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }
}

fn text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// Every file name under `dir`, recursively.
fn names(dir: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            names(&path, out);
        } else {
            out.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
}

#[test]
fn the_runtime_image_builds_from_the_binary_and_runs() {
    let context = tempfile::tempdir().expect("temp dir");
    let status = Command::new(repo_root().join("deploy/docker/rootfs.sh"))
        .args([
            env!("CARGO_BIN_EXE_lbtriage"),
            context.path().to_str().unwrap_or_default(),
        ])
        .status()
        .expect("rootfs.sh");
    assert!(status.success());
    // Only the binary, its C libraries and loader, the CA bundle and the default files: no shell.
    let mut files = Vec::new();
    names(&context.path().join("rootfs"), &mut files);
    for shell in ["sh", "bash", "dash", "busybox"] {
        assert!(!files.iter().any(|f| f == shell), "no {shell} in the image");
    }
    assert!(files.iter().any(|f| f == "ca-certificates.crt"));

    let buildah = Buildah {
        storage: tempfile::tempdir().expect("temp dir"),
    };
    let dockerfile = repo_root().join("deploy/docker/Dockerfile");
    let build_context = format!("build={}", context.path().display());
    let built = buildah.run(&[
        "bud",
        "--isolation=chroot",
        "--format=docker",
        "--target=runtime",
        "--build-context",
        &build_context,
        "-t",
        "lbtriage-test",
        "-f",
        dockerfile.to_str().unwrap_or_default(),
        context.path().to_str().unwrap_or_default(),
    ]);
    assert!(
        text(&built).lines().last().is_some_and(|id| id.len() == 64),
        "an image ID"
    );
    let inspect: serde_json::Value =
        serde_json::from_slice(&buildah.run(&["inspect", "--type=image", "lbtriage-test"]).stdout)
            .expect("inspect JSON");
    let config = &inspect["Docker"]["config"];
    assert_eq!(config["User"], "10502:10502", "non-root");
    assert!(config["ExposedPorts"].get("10502/tcp").is_some());
    assert_eq!(
        config["Healthcheck"]["Test"][1], "/usr/local/bin/lbtriage",
        "a health check without a shell: {config}"
    );
    assert_eq!(config["Entrypoint"][0], "/usr/local/bin/lbtriage");
    let size = text(&buildah.run(&["images", "--format={{.Size}}", "lbtriage-test"]));
    eprintln!("runtime image with the debug binary: {size}");

    let container = text(&buildah.run(&["from", "lbtriage-test"]));
    let inside = |args: &[&str]| {
        let mut all = vec!["run", "--isolation=chroot", container.as_str(), "--"];
        all.extend_from_slice(args);
        buildah.command(&all).output().expect("buildah run")
    };
    let version = inside(&["/usr/local/bin/lbtriage", "--version"]);
    assert_eq!(text(&version), format!("lbtriage {}", env!("CARGO_PKG_VERSION")));
    let checked = inside(&[
        "/usr/local/bin/lbtriage",
        "check-config",
        "--config.file=/etc/lbtriage/lbtriage.yml",
    ]);
    assert!(
        checked.status.success(),
        "the shipped configuration: {}{}",
        text(&checked),
        String::from_utf8_lossy(&checked.stderr)
    );

    // Serving, on loopback (chroot isolation shares this host's network): a configuration without
    // cloud jobs, so nothing leaves the host.
    let scrape_config = context.path().join("scrape.yml");
    std::fs::write(&scrape_config, "probes: []\n").expect("write config");
    buildah.run(&[
        "copy",
        &container,
        scrape_config.to_str().unwrap_or_default(),
        "/tmp/scrape.yml",
    ]);
    let mut serve = buildah.command(&[
        "run",
        "--isolation=chroot",
        &container,
        "--",
        "/usr/local/bin/lbtriage",
        "--config.file=/tmp/scrape.yml",
        "--web.listen-address=127.0.0.1:0",
    ]);
    // Its own process group: dropping the exporter ends buildah and the process it runs.
    std::os::unix::process::CommandExt::process_group(&mut serve, 0);
    let (exporter, port) = spawn_exporter(serve);
    let metrics = http_get(port, "/metrics", &[]).expect("scrape").text();
    assert!(
        metrics.contains(&format!(
            "lbtriage_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        )),
        "{metrics}"
    );
    let healthy = inside(&[
        "/usr/local/bin/lbtriage",
        "healthcheck",
        &format!("--web.listen-address=127.0.0.1:{port}"),
    ]);
    assert!(
        healthy.status.success(),
        "{}",
        String::from_utf8_lossy(&healthy.stderr)
    );
    // SAFETY: kill(2) on the process group the exporter leads; no memory is involved.
    unsafe {
        libc::kill(-(exporter.id() as i32), libc::SIGTERM);
    }
    drop(exporter);
    let unhealthy = inside(&[
        "/usr/local/bin/lbtriage",
        "healthcheck",
        &format!("--web.listen-address=127.0.0.1:{port}"),
    ]);
    assert!(!unhealthy.status.success(), "nothing answers once it stopped");
    buildah.run(&["rm", &container]);
}
