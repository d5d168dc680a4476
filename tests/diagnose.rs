//! `lbtriage diagnose` end to end: a real nginx (Debian) is the load balancer in front of the
//! misbehaving backends, so the 502s and 504s come from a real proxy. Each scenario must name
//! exactly its cause, and a healthy pair none.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::servers::{spawn, Behaviour, Pki};
use crate::support::{free_port, Process};

/// One server block: where nginx listens and what it does.
struct Site {
    listen: u16,
    /// `proxy_pass` to this upstream, or a TLS site answering by itself.
    upstream: Option<SocketAddr>,
    tls: Option<(PathBuf, PathBuf)>,
    /// Overrides the 5 s `proxy_read_timeout`.
    read_timeout: &'static str,
}

/// Starts nginx with `sites` in `dir`. `http_extra` goes into the `http` block: nginx reads the
/// header buffer sizes from there for these sites, not from `server`. A port another test took
/// since it was chosen makes nginx fail to bind: then the sites get fresh ports and nginx another try.
fn start_nginx(dir: &Path, sites: &mut [Site], http_extra: &str) -> Process {
    for attempt in 1..=3 {
        let _ = std::fs::remove_file(dir.join("error.log"));
        let config = nginx_config(dir, sites, http_extra);
        let path = dir.join("nginx.conf");
        std::fs::write(&path, config).expect("write nginx.conf");
        let d = dir.display().to_string();
        let child = Command::new("nginx")
            .args(["-e", &format!("{d}/error.log"), "-p", &d, "-c"])
            .arg(&path)
            .args(["-g", "daemon off;"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx must be installed (make test installs it)");
        let mut process = Process(child);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let first = sites.first().map(|s| s.listen).unwrap_or_default();
        loop {
            if let Ok(Some(status)) = process.0.try_wait() {
                let log = std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
                assert!(
                    attempt < 3 && log.contains("Address already in use"),
                    "nginx exited ({status}): {log}"
                );
                for site in sites.iter_mut() {
                    site.listen = free_port();
                }
                break;
            }
            if std::net::TcpStream::connect(("127.0.0.1", first)).is_ok() {
                return process;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "nginx did not listen within 10 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    unreachable!("the last attempt either returns or fails its assertion")
}

fn nginx_config(dir: &Path, sites: &[Site], http_extra: &str) -> String {
    let mut http = String::new();
    for (i, site) in sites.iter().enumerate() {
        let listen = match &site.tls {
            Some((cert, key)) => format!(
                "listen 127.0.0.1:{} ssl;\n    ssl_certificate {};\n    ssl_certificate_key {};",
                site.listen,
                cert.display(),
                key.display()
            ),
            None => format!("listen 127.0.0.1:{};", site.listen),
        };
        let location = match site.upstream {
            Some(addr) => {
                http.push_str(&format!("  upstream u{i} {{ server {addr}; keepalive 4; }}\n"));
                format!(
                    "proxy_pass http://u{i}; proxy_http_version 1.1; proxy_set_header Connection \"\"; \
                     proxy_connect_timeout 2s; proxy_read_timeout {};",
                    site.read_timeout
                )
            }
            None => "return 200 \"ok\";".to_string(),
        };
        http.push_str(&format!(
            "  server {{\n    {listen}\n    location / {{ {location} }}\n  }}\n"
        ));
    }
    let d = dir.display();
    format!(
        "worker_processes 1;\nuser root;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
         events {{ worker_connections 256; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
         fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
         client_body_buffer_size 128k;\n  client_max_body_size 1m;\n  {http_extra}\n{http}}}\n"
    )
}

/// Runs `lbtriage diagnose --output json`; returns the exit code and the cause ids found.
fn diagnose(args: &[String]) -> (i32, Vec<String>, serde_json::Value) {
    let output = Command::new(env!("CARGO_BIN_EXE_lbtriage"))
        .arg("diagnose")
        .args(args)
        .args(["--output", "json"])
        .output()
        .expect("run diagnose");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|err| {
        panic!(
            "diagnose printed no JSON ({err}): {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    let mut causes: Vec<String> = report["findings"]
        .as_array()
        .map(|f| {
            f.iter()
                .filter_map(|x| x["cause"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    causes.sort();
    (output.status.code().unwrap_or(-1), causes, report)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diagnose_names_the_cause_behind_a_real_nginx() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pki = Pki::new();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &pki.ca_pem).expect("write CA");

    let healthy = spawn(Behaviour::Healthy).await;
    let (_held, dead) = crate::support::refusing_port();
    let (_held_too, no_listener) = crate::support::refusing_port();
    let slow = spawn(Behaviour::Slow(Duration::from_secs(5))).await;
    let closes_early = spawn(Behaviour::KeepAliveCloses(Duration::from_secs(1))).await;
    let malformed = spawn(Behaviour::MalformedHeader).await;
    let short = spawn(Behaviour::ShortBody).await;
    let throttled = spawn(Behaviour::Status(503, vec![("ALB-QPS-Limited", "Limited")])).await;
    let app_fails = spawn(Behaviour::AppFailsHealthPasses("/healthz")).await;
    let expired = pki.leaf_files(dir.path(), "expired", &["127.0.0.1"], (2020, 1, 1), (2021, 1, 1));
    let mismatched = pki.leaf_files(
        dir.path(),
        "mismatched",
        &["other.test"],
        (2020, 1, 1),
        (2099, 1, 1),
    );

    let site = |upstream: SocketAddr, read_timeout: &'static str| Site {
        listen: free_port(),
        upstream: Some(upstream),
        tls: None,
        read_timeout,
    };
    let sites = vec![
        site(healthy, "5s"),      // 0 healthy pair
        site(dead, "5s"),         // 1 dead upstream: nginx 502
        site(slow, "2s"),         // 2 slower than the proxy waits: nginx 504
        site(closes_early, "5s"), // 3 keep-alive shorter than nginx's
        site(malformed, "5s"),    // 4 invalid header: nginx 502
        site(short, "5s"),        // 5 short body
        site(throttled, "5s"),    // 6 QPS marker passed through
        site(app_fails, "5s"),    // 7 application 500, health page fine
        site(dead, "5s"),         // 8 nginx cannot reach what the exporter reaches
        Site {
            listen: free_port(),
            upstream: None,
            tls: Some(expired),
            read_timeout: "5s",
        }, // 9
        Site {
            listen: free_port(),
            upstream: None,
            tls: Some(mismatched),
            read_timeout: "5s",
        }, // 10
    ];
    // Room for the 40 KiB header check, so only the site meant to reject large headers does.
    let mut sites = sites;
    let _nginx = start_nginx(dir.path(), &mut sites, "large_client_header_buffers 4 64k;");
    // nginx's stock header buffers (8 KiB lines): the 16 KiB header is rejected with 400, as a
    // load balancer enforcing a documented limit answers.
    let stock_dir = dir.path().join("stock");
    std::fs::create_dir(&stock_dir).expect("create dir");
    let mut stock = [site(healthy, "5s")];
    let _stock_nginx = start_nginx(&stock_dir, &mut stock, "");
    let url = |i: usize| format!("http://127.0.0.1:{}/", sites[i].listen);
    // A 2 s LB idle timeout keeps each keep-alive measurement short (3 s with its margin).
    let base = |url: String, backend: Option<SocketAddr>| {
        let mut args = vec!["--url".to_string(), url, "--timeout".into(), "8s".into()];
        if let Some(backend) = backend {
            args.extend(["--backend".to_string(), backend.to_string()]);
        }
        args
    };
    let with = |mut args: Vec<String>, extra: &[&str]| {
        args.extend(extra.iter().map(|s| s.to_string()));
        if !args.iter().any(|a| a == "--lb-idle-timeout") {
            args.extend(["--lb-idle-timeout".to_string(), "2s".to_string()]);
        }
        args
    };
    let ca = ca_file.display().to_string();
    let scenarios: Vec<(&str, Vec<String>, &[&str])> = vec![
        ("healthy pair", with(base(url(0), Some(healthy)), &[]), &[]),
        (
            "dead upstream",
            base(url(1), Some(dead)),
            &["target_connection_refused"],
        ),
        (
            "slow backend",
            with(base(url(2), Some(slow)), &["--lb-response-timeout", "2s"]),
            &["target_response_timeout"],
        ),
        (
            "keep-alive",
            with(base(url(3), Some(closes_early)), &["--lb-idle-timeout", "3s"]),
            &["target_keepalive_too_short"],
        ),
        (
            "malformed header",
            base(url(4), Some(malformed)),
            &["target_invalid_response"],
        ),
        (
            "short body",
            base(url(5), Some(short)),
            &["target_invalid_response"],
        ),
        (
            "QPS throttled",
            with(base(url(6), Some(throttled)), &[]),
            &["lb_qps_throttled"],
        ),
        (
            "app fails",
            with(base(url(7), Some(app_fails)), &["--health-path", "/healthz"]),
            &["backend_errors_passthrough"],
        ),
        (
            "LB source blocked",
            with(base(url(8), Some(healthy)), &[]),
            &["lb_source_blocked"],
        ),
        (
            "expired certificate",
            with(
                base(format!("https://127.0.0.1:{}/", sites[9].listen), None),
                &["--tls-ca-file", &ca],
            ),
            &["lb_certificate_invalid"],
        ),
        (
            "mismatched certificate",
            with(
                base(format!("https://127.0.0.1:{}/", sites[10].listen), None),
                &["--tls-ca-file", &ca],
            ),
            &["lb_certificate_invalid"],
        ),
        // A load balancer that answers 400 above its limit works as documented: no finding...
        (
            "header limit enforced with a 400",
            with(
                base(format!("http://127.0.0.1:{}/", stock[0].listen), Some(healthy)),
                &[],
            ),
            &[],
        ),
        // ...unless the probe's floor says 16 KiB must pass every hop.
        (
            "header rejected within the floor",
            with(
                base(format!("http://127.0.0.1:{}/", stock[0].listen), Some(healthy)),
                &["--header-floor", "16384"],
            ),
            &["request_header_too_large"],
        ),
        (
            "no listener",
            with(base(format!("http://{no_listener}/"), None), &[]),
            &["lb_listener_missing"],
        ),
    ];
    let runs: Vec<_> = scenarios
        .into_iter()
        .map(|(name, args, expected)| {
            tokio::task::spawn_blocking(move || {
                let started = std::time::Instant::now();
                let (code, causes, report) = diagnose(&args);
                eprintln!("scenario {name}: {:?}", started.elapsed());
                (name, code, causes, expected, report)
            })
        })
        .collect();
    let mut wrong = Vec::new();
    for run in runs {
        let (name, code, causes, expected, report) = run.await.expect("scenario ran");
        let expected_code = if expected.is_empty() { 0 } else { 1 };
        if causes != expected || code != expected_code {
            wrong.push(format!(
                "{name}: exit {code}, causes {causes:?}, expected {expected:?}\n{report:#}"
            ));
        }
        for finding in report["findings"].as_array().into_iter().flatten() {
            let runbook = finding["runbook"].as_str().unwrap_or_default();
            assert_eq!(
                runbook,
                format!(
                    "alerts/runbooks/{}.md",
                    finding["cause"].as_str().unwrap_or_default()
                )
            );
            assert!(!finding["title"].as_str().unwrap_or_default().is_empty());
            assert!(finding["evidence"].as_array().is_some_and(|e| !e.is_empty()));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}

#[test]
fn diagnose_usage_errors_exit_2() {
    for args in [
        vec!["diagnose"],
        vec!["diagnose", "--url", "ftp://x/"],
        vec!["diagnose", "--url", "http://x/", "--backend", "nohostport"],
        vec!["diagnose", "--url", "http://x/", "--lb-idle-timeout", "soon"],
        vec!["diagnose", "--url", "http://169.254.169.254/"],
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_lbtriage"))
            .args(&args)
            .output()
            .expect("run");
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(!output.stderr.is_empty(), "{args:?} explains itself");
    }
}

/// Runs `lbtriage diagnose` under a pseudo-terminal (`script` from util-linux), returning each
/// chunk of what the terminal showed with the time it arrived.
fn on_a_terminal(args: &[String]) -> Vec<(std::time::Duration, String)> {
    use std::io::Read as _;
    let mut command_line = format!("'{}' diagnose", env!("CARGO_BIN_EXE_lbtriage"));
    for arg in args {
        command_line.push_str(&format!(" '{arg}'"));
    }
    let started = std::time::Instant::now();
    let mut child = Command::new("script")
        .args(["-q", "-e", "-c", &command_line, "/dev/null"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("script (util-linux) must be installed");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut chunks = Vec::new();
    let mut buffer = [0u8; 4096];
    // Bounded by the child: diagnose ends within its timeouts.
    while let Ok(read) = stdout.read(&mut buffer) {
        if read == 0 {
            break;
        }
        chunks.push((
            started.elapsed(),
            String::from_utf8_lossy(&buffer[..read]).into_owned(),
        ));
    }
    let _ = child.wait();
    chunks
}

/// On a terminal the quick checks show as soon as they finish, a status line says what is still
/// running and for how long at most, and the keep-alive measurement can be skipped; JSON output
/// stays one document.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_terminal_results_show_as_they_arrive() {
    let backend = spawn(Behaviour::Healthy).await;
    let url = format!("http://{backend}/");
    // A 3 s idle timeout: the keep-alive measurement watches for about 4 s.
    let args = |extra: &[&str]| {
        let mut args: Vec<String> = [
            "--url",
            &url,
            "--backend",
            &backend.to_string(),
            "--lb-idle-timeout",
            "3s",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    let chunks = on_a_terminal(&args(&[]));
    let arrived = |text: &str| {
        let mut seen = String::new();
        chunks.iter().find_map(|(at, chunk)| {
            seen.push_str(chunk);
            seen.contains(text).then_some(*at)
        })
    };
    let quick = arrived("http app").expect("the quick checks' rows");
    let status = arrived("still running: the keep-alive measurement (up to").expect("a status line");
    let first_status = arrived("still running: ").expect("a status line from the start");
    let done = arrived("No findings").expect("the end");
    let keepalive = arrived("keep-alive   backend").expect("the keep-alive row");
    assert!(
        first_status <= quick && quick <= status && status < keepalive,
        "a status line, the quick checks' rows, what still runs, then the keep-alive row"
    );
    assert!(
        done.saturating_sub(quick) >= std::time::Duration::from_secs(2),
        "the quick checks showed while the measurement still ran ({quick:?} vs {done:?})"
    );

    let skipped: String = on_a_terminal(&args(&["--skip-keepalive"]))
        .into_iter()
        .map(|(_, chunk)| chunk)
        .collect();
    assert!(
        skipped.contains("http app") && !skipped.contains("keep-alive   backend"),
        "{skipped}"
    );

    let json: String = on_a_terminal(&args(&["--output", "json"]))
        .into_iter()
        .map(|(_, chunk)| chunk)
        .collect();
    let parsed: serde_json::Value =
        serde_json::from_str(json.trim()).expect("one JSON document, no progress");
    assert!(parsed["checks"]
        .as_array()
        .is_some_and(|checks| checks.iter().any(|c| c["check"] == "keep-alive")));
}

/// `diagnose --lb` needs no URL or backends: the configured cloud's inventory names the load
/// balancer's targets (here a refusing one behind an emulated ALB, found by its name), and the
/// verdict is the one a configured probe would reach. An unknown load balancer is a usage error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diagnose_lb_probes_what_the_inventory_found() {
    let (_held, refused) = crate::support::refusing_port();
    let emulator = crate::support::Emulator::start();
    emulator.seed(
        &serde_json::json!({"region": "us-east-1", "load_balancers": [
            {"key": "shop", "type": "application", "name": "shop", "idle_timeout": 2, "ip_targets": [refused.to_string()]}
        ]}),
        None,
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("lbtriage.yml");
    // The emulated front door's DNS name is no address of this host: only targets are checked.
    std::fs::write(
        &config,
        format!(
            "aws:\n  - name: emu\n    regions: [us-east-1]\n    endpoint_url: {}\n    period: 10s\n    delay: 1s\nauto_probes:\n  front_door: false\n  timeout: 2s\n",
            emulator.endpoint
        ),
    )
    .expect("write config");
    let run = |lb: &str| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_lbtriage"));
        command.args([
            "diagnose",
            "--lb",
            lb,
            &format!("--config.file={}", config.display()),
            "--skip-keepalive",
            "--output",
            "json",
        ]);
        crate::support::with_test_credentials(&mut command);
        command.output().expect("run diagnose")
    };
    let output = run("shop");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|err| {
        panic!(
            "diagnose printed no JSON ({err}): {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    assert_eq!(output.status.code(), Some(1), "findings");
    let causes: Vec<&str> = report["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["cause"].as_str())
        .collect();
    assert_eq!(causes, ["target_connection_refused"], "{report:#}");

    let unknown = run("nowhere");
    assert_eq!(unknown.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("no load balancer \"nowhere\""),
        "{}",
        String::from_utf8_lossy(&unknown.stderr)
    );
}
