//! `--web.config.file`: TLS and bcrypt basic authentication on every endpoint, exercised by real
//! TLS clients — curl (OpenSSL) and Prometheus (Go's TLS stack) scraping with `basic_auth`.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::support::servers::Pki;
use crate::support::{http_get, lbtriage_command, start_exporter, start_on_a_port, wait_until, Exporter};

const USER: &str = "prometheus";
const PASSWORD: &str = "correct horse battery staple";

struct Secured {
    _dir: tempfile::TempDir,
    ca: std::path::PathBuf,
    port: u16,
    _exporter: Exporter,
}

fn secured() -> Secured {
    let dir = tempfile::tempdir().expect("temp dir");
    let pki = Pki::new();
    let (cert, key) = pki.leaf_files(
        dir.path(),
        "server",
        &["127.0.0.1", "localhost"],
        (2020, 1, 1),
        (2099, 1, 1),
    );
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &pki.ca_pem).expect("write CA");
    let hash = bcrypt::hash(PASSWORD, 6).expect("bcrypt");
    // Relative paths resolve against the web config's directory.
    let web = dir.path().join("web.yml");
    std::fs::write(
        &web,
        format!(
            "tls_server_config:\n  cert_file: {}\n  key_file: {}\nbasic_auth_users:\n  {USER}: '{hash}'\n",
            cert.file_name().and_then(|n| n.to_str()).unwrap_or_default(),
            key.display()
        ),
    )
    .expect("write web config");
    let config = dir.path().join("lbtriage.yml");
    std::fs::write(&config, "probes: []\n").expect("write config");
    let (exporter, port) = start_exporter(&config, |command| {
        command.arg(format!("--web.config.file={}", web.display()));
    });
    Secured {
        _dir: dir,
        ca,
        port,
        _exporter: exporter,
    }
}

/// curl's `%{http_code}` for `url` ("000" when no HTTP exchange happened), trusting `ca` if given.
fn curl_code(ca: Option<&std::path::Path>, url: &str, credentials: Option<&str>) -> String {
    let mut command = Command::new("curl");
    command.args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5"]);
    if let Some(ca) = ca {
        command.arg("--cacert").arg(ca);
    }
    if let Some(credentials) = credentials {
        command.args(["-u", credentials]);
    }
    let output = command.arg(url).output().expect("curl must be installed");
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// The status code with the test CA trusted, or 0 when the connection itself failed.
fn curl(secured: &Secured, url: &str, credentials: Option<&str>) -> u16 {
    curl_code(Some(&secured.ca), url, credentials)
        .parse()
        .unwrap_or(0)
}

#[test]
fn every_endpoint_needs_tls_and_a_password() {
    let secured = secured();
    let base = format!("https://127.0.0.1:{}", secured.port);
    let good = format!("{USER}:{PASSWORD}");
    wait_until("the TLS listener", Duration::from_secs(10), || {
        curl(&secured, &format!("{base}/-/healthy"), Some(&good)) == 200
    });
    for path in [
        "/metrics",
        "/",
        "/-/healthy",
        "/-/ready",
        "/runbooks/lb_listener_missing.md",
        "/-/reload",
    ] {
        let url = format!("{base}{path}");
        assert_eq!(curl(&secured, &url, None), 401, "{path} without credentials");
        assert_eq!(
            curl(&secured, &url, Some(&format!("{USER}:wrong"))),
            401,
            "{path}, wrong password"
        );
        assert_eq!(
            curl(&secured, &url, Some(&format!("nobody:{PASSWORD}"))),
            401,
            "{path}, unknown user"
        );
    }
    assert_eq!(curl(&secured, &format!("{base}/metrics"), Some(&good)), 200);
    // Plain HTTP gets no answer from the TLS listener.
    let plain = http_get(secured.port, "/metrics", &[]);
    assert!(
        plain.is_err() || plain.is_ok_and(|r| r.status != 200),
        "plain HTTP must not be served"
    );
    // A client that does not trust the certificate refuses to talk.
    assert_eq!(curl_code(None, &format!("{base}/metrics"), Some(&good)), "000");
}

#[test]
fn prometheus_scrapes_with_tls_and_basic_auth() {
    let secured = secured();
    let dir = tempfile::tempdir().expect("temp dir");
    let job = |name: &str, password: &str| {
        format!(
            "  - job_name: {name}\n    scheme: https\n    tls_config:\n      ca_file: {}\n    basic_auth:\n      username: {USER}\n      password: '{password}'\n    static_configs:\n      - targets: ['127.0.0.1:{}']\n",
            secured.ca.display(),
            secured.port
        )
    };
    std::fs::write(
        dir.path().join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n{}{}",
            job("authorized", PASSWORD),
            job("wrong_password", "nope")
        ),
    )
    .expect("write prometheus.yml");
    let (_prometheus, prometheus_port) = start_on_a_port(
        "prometheus",
        |port| {
            let mut command = Command::new("prometheus");
            command
                .arg(format!("--config.file={}/prometheus.yml", dir.path().display()))
                .arg(format!("--storage.tsdb.path={}/tsdb", dir.path().display()))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"));
            command
        },
        |port| http_get(port, "/-/ready", &[]).is_ok_and(|r| r.status == 200),
    );
    let targets = || -> Option<Vec<Value>> {
        let response = http_get(prometheus_port, "/api/v1/targets", &[]).ok()?;
        let body: Value = serde_json::from_slice(&response.body).ok()?;
        body["data"]["activeTargets"].as_array().cloned()
    };
    let health = |job: &str| -> Option<(String, String)> {
        targets()?
            .iter()
            .find(|t| t["labels"]["job"] == job)
            .and_then(|t| {
                let health = t["health"].as_str()?;
                (health != "unknown").then(|| {
                    (
                        health.to_string(),
                        t["lastError"].as_str().unwrap_or_default().to_string(),
                    )
                })
            })
    };
    wait_until("both scrape jobs to report", Duration::from_secs(30), || {
        health("authorized").is_some_and(|(h, _)| h == "up") && health("wrong_password").is_some()
    });
    let (state, error) = health("wrong_password").expect("reported");
    assert_eq!(state, "down");
    assert!(error.contains("401"), "{error}");
}

#[test]
fn a_bad_web_config_stops_the_start_and_names_the_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("lbtriage.yml");
    std::fs::write(&config, "probes: []\n").expect("write");
    for (web, key) in [
        ("tls_server_config:\n  cert_fil: a.pem\n", "cert_fil"),
        (
            "tls_server_config:\n  cert_file: missing.pem\n  key_file: missing.key\n",
            "tls_server_config.cert_file",
        ),
        (
            "basic_auth_users:\n  alice: plaintext\n",
            "basic_auth_users.alice",
        ),
        (
            "tls_server_config:\n  key_file: a.key\n",
            "tls_server_config.cert_file",
        ),
    ] {
        let path = dir.path().join("web.yml");
        std::fs::write(&path, web).expect("write");
        let output = lbtriage_command()
            .arg(format!("--config.file={}", config.display()))
            .arg("--web.listen-address=127.0.0.1:0")
            .arg(format!("--web.config.file={}", path.display()))
            .output()
            .expect("run");
        assert_eq!(output.status.code(), Some(1), "{web}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(key), "{web}: expected {key} in {stderr}");
    }
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// A flood of wrong passwords at bcrypt cost 10 while an authorised client scrapes: the checks run
/// off the async workers, a few at once, and the good credential is remembered, so the authorised
/// scrapes stay fast. (Before, a lock was held across bcrypt on a Tokio worker and every scrape
/// queued behind the flood.)
#[test]
fn a_wrong_password_flood_never_stalls_an_authorised_scrape() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Instant;

    let dir = tempfile::tempdir().expect("temp dir");
    let hash = bcrypt::hash(PASSWORD, 10).expect("bcrypt");
    let web = dir.path().join("web.yml");
    std::fs::write(&web, format!("basic_auth_users:\n  {USER}: '{hash}'\n")).expect("write web config");
    let config = dir.path().join("lbtriage.yml");
    std::fs::write(&config, "probes: []\n").expect("write config");
    let (_exporter, port) = start_exporter(&config, |command| {
        command.arg(format!("--web.config.file={}", web.display()));
    });
    wait_until("the exporter to listen", Duration::from_secs(20), || {
        http_get(port, "/-/healthy", &[]).is_ok()
    });
    let good = basic(USER, PASSWORD);
    let scrape = || http_get(port, "/metrics", &[("Authorization", good.as_str())]).map(|r| r.status);
    let first = scrape();
    assert_eq!(
        first.as_ref().ok(),
        Some(&200),
        "the first scrape pays bcrypt once: {first:?}"
    );

    let stop = Arc::new(AtomicBool::new(false));
    let refused = Arc::new(AtomicUsize::new(0));
    let flooders: Vec<_> = (0..16)
        .map(|thread| {
            let (stop, refused) = (stop.clone(), refused.clone());
            std::thread::spawn(move || {
                // Bounded: at most 200 requests a thread, each with a password never tried before.
                for i in 0..200 {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let wrong = basic(USER, &format!("wrong-{thread}-{i}"));
                    if let Ok(response) = http_get(port, "/metrics", &[("Authorization", wrong.as_str())]) {
                        assert_eq!(response.status, 401);
                        refused.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    wait_until("the flood to be under way", Duration::from_secs(10), || {
        refused.load(Ordering::Relaxed) >= 4
    });
    let mut slowest = Duration::ZERO;
    for _ in 0..30 {
        let started = Instant::now();
        assert_eq!(scrape().ok(), Some(200));
        slowest = slowest.max(started.elapsed());
        // Paced, not waiting for anything: the flood keeps going between scrapes.
        std::thread::sleep(Duration::from_millis(50));
    }
    let during = refused.load(Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    for flooder in flooders {
        flooder.join().expect("flooder");
    }
    assert!(during >= 8, "the flood ran during the scrapes ({during} refused)");
    assert!(
        slowest < Duration::from_millis(500),
        "an authorised scrape took {slowest:?} during the flood"
    );
}

/// Certificates rotate without a restart: the web config's files are re-read when they change.
#[test]
fn a_rotated_certificate_is_served_without_a_restart() {
    let secured = secured();
    let dir = secured._dir.path();
    let url = format!("https://localhost:{}/-/healthy", secured.port);
    let auth = format!("{USER}:{PASSWORD}");
    assert_eq!(curl(&secured, &url, Some(&auth)), 200);
    // A new CA signs a new leaf in the same files: until the exporter re-reads them, a client that
    // trusts only the new CA fails; afterwards it succeeds.
    let pki = Pki::new();
    let new_ca = dir.join("new-ca.pem");
    std::fs::write(&new_ca, &pki.ca_pem).expect("write CA");
    let (cert, key) = pki.leaf_files(
        dir,
        "rotated",
        &["127.0.0.1", "localhost"],
        (2020, 1, 1),
        (2099, 1, 1),
    );
    let code = |ca: &std::path::Path| curl_code(Some(ca), &url, Some(&auth));
    assert_eq!(code(&new_ca), "000", "the old certificate is still served");
    std::fs::copy(&cert, dir.join("server.pem")).expect("rotate the certificate");
    std::fs::copy(&key, dir.join("server.key")).expect("rotate the key");
    wait_until(
        "the rotated certificate to be served",
        Duration::from_secs(20),
        || code(&new_ca) == "200",
    );
}
