//! Probe checks against real misbehaving servers on loopback: each failure reason, keep-alive,
//! size limits, the QPS marker, certificates, and the safety bounds against hostile servers.

use std::time::{Duration, Instant};

use lbtriage::config::Config;
use lbtriage::probes::keepalive::KeepAlive;
use lbtriage::probes::{limiter, Probe, Reason, Report, RequestKind, Via};
use lbtriage::runtime::Discovered;
use lbtriage::sources::Source;

use crate::support::servers::{spawn, spawn_tls, Behaviour, Pki};
use crate::support::{parse_exposition, value};

fn probe(yaml_fields: &str) -> Probe {
    let yaml = format!("probes:\n  - name: t\n    vantage: test\n{yaml_fields}");
    let config = Config::parse(&yaml).expect("valid probe config");
    Probe::new(config.probes[0].clone()).expect("probe")
}

async fn run(probe: &Probe) -> Report {
    probe.run(&limiter(), &Discovered::default()).await
}

fn http_reason(report: &Report, target: std::net::SocketAddr, request: RequestKind) -> Option<Reason> {
    let check = report
        .http
        .iter()
        .find(|c| c.target == target && c.request == request)
        .unwrap_or_else(|| panic!("no {request:?} check for {target}"));
    check.outcome.failure().map(|f| f.reason)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_misbehaviour_has_its_reason() {
    let lb = spawn(Behaviour::Healthy).await;
    let (_held, refused) = crate::support::refusing_port();
    let reset = spawn(Behaviour::Reset).await;
    let malformed = spawn(Behaviour::MalformedHeader).await;
    let short = spawn(Behaviour::ShortBody).await;
    let app_fails = spawn(Behaviour::AppFailsHealthPasses("/healthz")).await;
    let slow = spawn(Behaviour::Slow(Duration::from_secs(5))).await;
    let probe = probe(&format!(
        "    url: http://{lb}/\n    health_path: /healthz\n    timeout: 8s\n    lb_response_timeout: 2s\n    backends: ['{refused}', '{reset}', '{malformed}', '{short}', '{app_fails}', '{slow}']\n"
    ));
    let report = run(&probe).await;

    assert_eq!(report.dns.addresses.len(), 1);
    assert_eq!(http_reason(&report, lb, RequestKind::App), None);
    assert_eq!(
        http_reason(&report, refused, RequestKind::App),
        Some(Reason::Refused)
    );
    assert_eq!(http_reason(&report, reset, RequestKind::App), Some(Reason::Reset));
    assert_eq!(
        http_reason(&report, malformed, RequestKind::App),
        Some(Reason::InvalidResponse)
    );
    assert_eq!(
        http_reason(&report, short, RequestKind::App),
        Some(Reason::InvalidResponse)
    );
    assert_eq!(
        http_reason(&report, app_fails, RequestKind::App),
        Some(Reason::Status)
    );
    assert_eq!(http_reason(&report, app_fails, RequestKind::Health), None);
    assert_eq!(http_reason(&report, slow, RequestKind::App), None);
    let slow_check = report.http.iter().find(|c| c.target == slow).expect("slow check");
    let took = slow_check.outcome.phases.response_time().expect("response time");
    assert!(
        took >= Duration::from_millis(2900),
        "the 3 s backend measured at {took:?}"
    );
    let tcp_refused = report
        .tcp
        .iter()
        .find(|c| c.target == refused.to_string())
        .expect("tcp check");
    assert_eq!(
        tcp_refused.result.as_ref().err().map(|f| f.reason),
        Some(Reason::Refused)
    );
    // The resetting server accepted: its TCP check is never `refused` (its RST may land before
    // connect returns, so `reset` is as right as success). Every other backend connects.
    let tcp = |addr: std::net::SocketAddr| {
        report
            .tcp
            .iter()
            .find(|c| c.target == addr.to_string())
            .map(|c| c.result.clone())
    };
    assert!(tcp(reset).is_some_and(|r| r.as_ref().err().is_none_or(|f| f.reason == Reason::Reset)));
    for addr in [malformed, short, app_fails, slow] {
        assert!(tcp(addr).is_some_and(|r| r.is_ok()), "{addr}");
    }

    // The same as exposed: reason labels, status codes, phases.
    let series = parse_exposition(&lbtriage::store::render(
        probe.samples(Some(&report), &[], &Discovered::default()).iter(),
        lbtriage::store::Format::Prometheus,
    ));
    let target = |addr: std::net::SocketAddr| addr.to_string();
    let (refused_label, app_label) = (target(refused), target(app_fails));
    assert_eq!(
        value(
            &series,
            "lbtriage_probe_http_success",
            &[
                ("target", &refused_label),
                ("request", "app"),
                ("reason", "refused"),
                ("path", "backend")
            ]
        ),
        0.0
    );
    assert_eq!(
        value(
            &series,
            "lbtriage_probe_http_status_code",
            &[("target", &app_label), ("request", "app")]
        ),
        500.0
    );
    assert_eq!(
        value(
            &series,
            "lbtriage_probe_http_success",
            &[("target", &app_label), ("request", "health")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &series,
            "lbtriage_probe_tcp_success",
            &[("target", &refused_label), ("reason", "refused")]
        ),
        0.0
    );
    assert_eq!(
        value(
            &series,
            "lbtriage_probe_http_success",
            &[("target", &target(lb)), ("path", "lb"), ("request", "app")]
        ),
        1.0
    );
    assert!(
        value(
            &series,
            "lbtriage_probe_http_phase_seconds",
            &[
                ("target", &target(slow)),
                ("request", "app"),
                ("phase", "processing")
            ]
        ) >= 2.9
    );
    assert_eq!(
        value(&series, "lbtriage_probe_lb_response_timeout_seconds", &[]),
        2.0
    );
    assert_eq!(
        crate::support::count(&series, "lbtriage_probe_dns_addresses", &[]),
        0,
        "an IP-literal URL resolves nothing"
    );
    assert!(series.iter().all(|s| s.label("vantage") == Some("test")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keepalive_idle_close_is_measured() {
    let keeps = spawn(Behaviour::Healthy).await;
    let closes = spawn(Behaviour::KeepAliveCloses(Duration::from_secs(2))).await;
    let probe = probe(&format!(
        "    url: http://{keeps}/\n    lb_idle_timeout: 3s\n    backends: ['{keeps}', '{closes}']\n"
    ));
    let checks = probe.run_keepalive(&limiter(), &Discovered::default()).await;
    let result = |addr| checks.iter().find(|c| c.target == addr).map(|c| c.result.clone());
    match result(closes) {
        Some(KeepAlive::Closed(after)) => assert!(
            (Duration::from_millis(1800)..Duration::from_millis(2800)).contains(&after),
            "closed after {after:?}"
        ),
        other => panic!("expected a close after ~2 s, got {other:?}"),
    }
    match result(keeps) {
        // Watched for the LB idle timeout plus the 1 s margin.
        Some(KeepAlive::StayedOpen(watched)) => assert!(watched >= Duration::from_secs(4), "{watched:?}"),
        other => panic!("expected the connection to stay open, got {other:?}"),
    }
    let series = parse_exposition(&lbtriage::store::render(
        probe.samples(None, &checks, &Discovered::default()).iter(),
        lbtriage::store::Format::Prometheus,
    ));
    assert_eq!(
        value(
            &series,
            "lbtriage_probe_keepalive_closed_by_backend",
            &[("target", &closes.to_string())]
        ),
        1.0
    );
    assert_eq!(
        value(
            &series,
            "lbtriage_probe_keepalive_closed_by_backend",
            &[("target", &keeps.to_string())]
        ),
        0.0
    );
    assert_eq!(value(&series, "lbtriage_probe_lb_idle_timeout_seconds", &[]), 3.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_and_body_limits_and_the_qps_marker() {
    let healthy = spawn(Behaviour::Healthy).await;
    let strict = spawn(Behaviour::RejectsLargeHeaders(8 * 1024)).await;
    let black_hole = spawn(Behaviour::DropsLargeBodies(16 * 1024)).await;
    let throttled = spawn(Behaviour::Status(503, vec![("ALB-QPS-Limited", "Limited")])).await;
    let no_post = spawn(Behaviour::RejectsPost).await;
    let probe_through = |lb: std::net::SocketAddr| {
        probe(&format!(
            "    url: http://{lb}/\n    timeout: 2s\n    backends: ['{healthy}', '{strict}', '{black_hole}', '{no_post}']\n"
        ))
    };
    let report = run(&probe_through(healthy)).await;
    let header = |target, bytes| {
        report
            .large_headers
            .iter()
            .find(|c| c.target == target && c.bytes == bytes && c.via == Via::Backend)
            .and_then(|c| c.failure())
            .map(|f| f.reason)
    };
    assert_eq!(header(healthy, 16384), None);
    assert_eq!(header(healthy, 40960), None);
    assert_eq!(header(strict, 16384), Some(Reason::Status));
    assert_eq!(header(strict, 40960), Some(Reason::Status));
    // The floor (4 KiB by default) is always sent; only a rejection within it is evidence on a
    // backend, and a load balancer's 4xx above its limit is evidence of nothing.
    let check = |via: Via, target, bytes| {
        report
            .large_headers
            .iter()
            .find(|c| c.target == target && c.bytes == bytes && c.via == via)
            .expect("the size was sent")
    };
    assert_eq!(header(strict, 4096), None);
    assert!(check(Via::Backend, strict, 4096).within_floor);
    assert!(!check(Via::Backend, strict, 16384).within_floor);
    assert!(
        !check(Via::Backend, strict, 16384).is_finding(),
        "431 above the floor"
    );
    let strict_lb = run(&probe(&format!("    url: http://{strict}/\n    timeout: 2s\n"))).await;
    let lb_check = strict_lb
        .large_headers
        .iter()
        .find(|c| c.via == Via::Lb && c.bytes == 16384)
        .expect("the size was sent through the load balancer");
    assert_eq!(lb_check.outcome.status(), Some(431));
    assert!(
        !lb_check.is_finding(),
        "a 4xx through the load balancer above the floor"
    );
    // A 5xx through the load balancer (Alibaba SLB answers long headers with 502) is evidence.
    let bad_gateway = spawn(Behaviour::Status(502, vec![])).await;
    let slb = run(&probe(&format!(
        "    url: http://{bad_gateway}/\n    timeout: 2s\n"
    )))
    .await;
    assert!(slb
        .large_headers
        .iter()
        .filter(|c| c.via == Via::Lb)
        .all(|c| c.outcome.status() == Some(502) && c.is_finding()));
    let tight = run(&probe(&format!(
        "    url: http://{healthy}/\n    timeout: 2s\n    backends: ['{strict}']\n    header_floor_bytes: 16384\n"
    )))
    .await;
    assert!(
        tight
            .large_headers
            .iter()
            .any(|c| c.via == Via::Backend && c.target == strict && c.bytes == 16384 && c.is_finding()),
        "the backend rejects a size within a 16 KiB floor"
    );
    assert_eq!(
        http_reason(&report, strict, RequestKind::App),
        None,
        "small requests pass"
    );
    let body = |target| {
        report
            .large_bodies
            .iter()
            .find(|c| c.target == target && c.via == Via::Backend)
            .and_then(|c| c.failure())
            .map(|f| f.reason)
    };
    assert_eq!(body(black_hole), Some(Reason::Timeout));
    assert_eq!(body(healthy), None);
    assert_eq!(
        body(no_post),
        None,
        "a 405 to the POST still proves the body arrived"
    );
    assert_eq!(
        http_reason(&report, black_hole, RequestKind::App),
        None,
        "small requests pass"
    );
    assert!(!report.qps_limited());

    let report = run(&probe_through(throttled)).await;
    assert!(report.qps_limited());
    assert_eq!(
        http_reason(&report, throttled, RequestKind::App),
        Some(Reason::Status)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_are_judged_like_a_client_would() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().expect("temp dir");
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &pki.ca_pem).expect("write CA");
    let (chain, key) = pki.leaf(&["127.0.0.1"], (2020, 1, 1), (2099, 1, 1));
    let valid = spawn_tls(Behaviour::Healthy, chain, key).await;
    let (chain, key) = pki.leaf(&["127.0.0.1"], (2020, 1, 1), (2021, 1, 1));
    let expired = spawn_tls(Behaviour::Healthy, chain, key).await;
    let (chain, key) = pki.leaf(&["other.test"], (2020, 1, 1), (2099, 1, 1));
    let mismatched = spawn_tls(Behaviour::Healthy, chain, key).await;
    let listener = |addr: std::net::SocketAddr| {
        probe(&format!(
            "    url: https://{addr}/\n    tls_ca_file: {}\n    backend_scheme: https\n    backends: ['{expired}']\n",
            ca_file.display()
        ))
    };
    let tls_of = |report: &Report, target| {
        report
            .http
            .iter()
            .find(|c| c.target == target && c.request == RequestKind::App)
            .and_then(|c| c.outcome.tls.clone())
            .expect("TLS info")
    };

    let report = run(&listener(valid)).await;
    let info = tls_of(&report, valid);
    assert!(info.chain_valid && info.hostname_match, "{info:?}");
    assert_eq!(info.version, "TLSv1_3");
    assert_eq!(info.earliest_expiry, Some(4_070_908_800), "2099-01-01");
    assert_eq!(http_reason(&report, valid, RequestKind::App), None);
    // Load balancers do not verify target certificates: the expired backend still answers, and
    // its certificate is reported.
    assert_eq!(http_reason(&report, expired, RequestKind::App), None);
    assert!(!tls_of(&report, expired).chain_valid);

    let report = run(&listener(expired)).await;
    let info = tls_of(&report, expired);
    assert!(!info.chain_valid && info.hostname_match, "{info:?}");
    assert_eq!(info.earliest_expiry, Some(1_609_459_200), "2021-01-01");
    assert_eq!(http_reason(&report, expired, RequestKind::App), Some(Reason::Tls));

    let report = run(&listener(mismatched)).await;
    let info = tls_of(&report, mismatched);
    assert!(info.chain_valid && !info.hostname_match, "{info:?}");
    assert_eq!(
        http_reason(&report, mismatched, RequestKind::App),
        Some(Reason::Tls)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_servers_cost_at_most_the_timeout() {
    let drip = spawn(Behaviour::Drip).await;
    let endless = spawn(Behaviour::EndlessBody).await;
    let huge = spawn(Behaviour::HugeHeader).await;
    let garbage = spawn(Behaviour::Garbage).await;
    let probe = probe(&format!(
        "    url: http://{drip}/\n    timeout: 1s\n    backend_scheme: https\n    backends: ['{garbage}']\n"
    ));
    let started = Instant::now();
    let report = run(&probe).await;
    // Bound, not speed: every check of the run had a 1 s budget; 10 s means one ignored it.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(
        http_reason(&report, drip, RequestKind::App),
        Some(Reason::Timeout)
    );
    assert_eq!(http_reason(&report, garbage, RequestKind::App), Some(Reason::Tls));

    let probe = probe_for(&format!("http://{endless}/"), huge);
    let report = run(&probe).await;
    // The endless body is read up to the cap and no further; the response itself was fine.
    assert_eq!(http_reason(&report, endless, RequestKind::App), None);
    let huge_failure = report
        .http
        .iter()
        .find(|c| c.target == huge)
        .and_then(|c| c.outcome.failure());
    assert_eq!(
        huge_failure.as_ref().map(|f| f.reason),
        Some(Reason::InvalidResponse)
    );
    assert!(huge_failure.is_some_and(|f| f.detail.contains("larger than 65536")));
}

fn probe_for(url: &str, backend: std::net::SocketAddr) -> Probe {
    probe(&format!(
        "    url: {url}\n    timeout: 5s\n    backends: ['{backend}']\n"
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovered_targets_and_idle_timeout_feed_the_probe() {
    let backend = spawn(Behaviour::Healthy).await;
    let emulator = crate::support::Emulator::start();
    let fleet = emulator.seed(
        &serde_json::json!({"region": "us-east-1", "load_balancers": [
            {"key": "shop", "type": "application", "name": "shop", "idle_timeout": 30, "ip_targets": [backend.to_string()]}
        ]}),
        None,
    );
    let lb = crate::support::dimension(&fleet, "shop");
    let discovered = std::sync::Arc::new(Discovered::default());
    let harness = crate::support::Harness::new(&emulator.endpoint, "").await;
    let mut source = harness.source.with_discovered(discovered.clone());
    source.collect().await;
    assert_eq!(discovered.ip_targets(&lb), vec![backend]);
    assert_eq!(discovered.idle_timeout(&lb), Some(Duration::from_secs(30)));
    // With no probe wanting the facts only probes need (auto_probes: never), what the inventory
    // reads anyway still reaches configured probes, and no call is made for the rest.
    let unwanted = std::sync::Arc::new(Discovered::default());
    unwanted.set_wanted(false);
    let mut quiet = crate::support::Harness::new(&emulator.endpoint, "")
        .await
        .source
        .with_discovered(unwanted.clone());
    quiet.collect().await;
    assert_eq!(unwanted.idle_timeout(&lb), Some(Duration::from_secs(30)));
    assert_eq!(unwanted.ip_targets(&lb), vec![backend]);
    assert_eq!(quiet.api_calls().total("DescribeListeners"), 0);

    let probe = probe(&format!(
        "    url: http://{backend}/\n    lb: {lb}\n    discover_backends: true\n"
    ));
    let report = probe.run(&limiter(), &discovered).await;
    assert_eq!(
        report.lb_idle_timeout,
        Duration::from_secs(30),
        "discovered, not the 60 s default"
    );
    let direct = report
        .http
        .iter()
        .filter(|c| c.via == Via::Backend && c.target == backend)
        .count();
    assert_eq!(
        direct, 2,
        "app and health requests straight to the discovered target"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_bounded_across_all_checks() {
    use crate::support::servers::{spawn_counted, InFlight};
    use std::sync::atomic::Ordering::SeqCst;
    // 24 backends that hold every request for 400 ms: unbounded, one run would open
    // 24 × 6 connections (app, health, TCP, two header sizes, body) at once.
    let gauge = std::sync::Arc::new(InFlight::default());
    let mut backends = Vec::new();
    for _ in 0..24 {
        backends.push(format!(
            "'{}'",
            spawn_counted(Behaviour::Slow(Duration::from_millis(400)), gauge.clone()).await
        ));
    }
    let lb = spawn(Behaviour::Healthy).await;
    let probe = probe(&format!(
        "    url: http://{lb}/\n    timeout: 10s\n    backends: [{}]\n",
        backends.join(", ")
    ));
    let limiter = std::sync::Arc::new(tokio::sync::Semaphore::new(8));
    let report = probe.run(&limiter, &Discovered::default()).await;
    assert!(
        report.http.iter().all(|c| c.outcome.failure().is_none()),
        "every request eventually answered"
    );
    let peak = gauge.peak.load(SeqCst);
    assert!(
        peak <= 8,
        "at most the limiter's 8 connections in use at once, saw {peak}"
    );
    assert!(peak >= 4, "the limiter was actually used to capacity ({peak})");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_named_url_reports_its_dns_answer() {
    let server = spawn(Behaviour::Healthy).await;
    let probe = probe(&format!(
        "    url: http://localhost:{}/\n    timeout: 2s\n",
        server.port()
    ));
    let report = run(&probe).await;
    assert!(report.dns.failure.is_none(), "{:?}", report.dns.failure);
    let series = parse_exposition(&lbtriage::store::render(
        probe.samples(Some(&report), &[], &Discovered::default()).iter(),
        lbtriage::store::Format::Prometheus,
    ));
    let addresses = value(&series, "lbtriage_probe_dns_addresses", &[]);
    assert_eq!(addresses, report.dns.addresses.len() as f64);
    assert!(addresses >= 1.0 && report.dns.addresses.iter().all(|ip| ip.is_loopback()));
}
