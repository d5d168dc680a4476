//! Faults between lbtriage and the clouds, with the real binary and a fault-injecting proxy
//! (`tests/emulator/fault_proxy.py`) in front of each emulator (AWS, Alibaba, Tencent): API 5xx, connection resets,
//! truncated and garbage bodies, throttling bursts, 30 s latency, and the CloudWatch front end
//! killed and restarted. Throughout, a scraper checks that `/metrics` answers within 100 ms and that
//! no counter goes backwards; each fault must mark its sources down with their data age growing and
//! the last good values serving, and the first cycle after it clears must recover. At the end, the
//! counters must equal the seeded truth for exactly the periods their data end covers: nothing lost,
//! nothing counted twice.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::{
    dimension, http_get, http_request, parse_exposition, python_server, start_exporter, wait_until,
    with_test_credentials, CmsServer, Emulator, HeldPort, Process, Series, TencentServer,
};

struct FaultProxy {
    port: u16,
    _process: Process,
    _socket: HeldPort,
}

impl FaultProxy {
    fn start(upstream_port: u16) -> FaultProxy {
        let socket = HeldPort::new();
        let port = socket.port;
        let process = python_server(
            "fault_proxy.py",
            &socket,
            &["--upstream-port", &upstream_port.to_string()],
        );
        wait_until("the fault proxy", Duration::from_secs(20), || {
            http_get(port, "/__proxy/stats", &[]).is_ok_and(|r| r.status == 200)
        });
        FaultProxy {
            port,
            _process: process,
            _socket: socket,
        }
    }

    fn set(&self, mode: &str) {
        let body = json!({"mode": mode, "seconds": 30}).to_string();
        let response =
            http_request(self.port, "POST", "/__proxy/fault", &[], body.as_bytes()).expect("proxy");
        assert_eq!(response.status, 200);
    }
}

/// What the scraper saw over the whole test.
#[derive(Default)]
struct Watch {
    scrapes: usize,
    slowest: Duration,
    failures: Vec<String>,
    last: BTreeMap<String, f64>,
}

fn scraper(port: u16, stop: Arc<AtomicBool>, watch: Arc<Mutex<Watch>>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        while !stop.load(Ordering::SeqCst) {
            let started = Instant::now();
            let response = http_get(port, "/metrics", &[]);
            let took = started.elapsed();
            let mut watch = watch.lock().unwrap_or_else(|p| p.into_inner());
            watch.scrapes += 1;
            watch.slowest = watch.slowest.max(took);
            match response {
                Ok(response) if response.status == 200 => {
                    for series in parse_exposition(&response.text())
                        .iter()
                        .filter(|s| s.name.ends_with("_total"))
                    {
                        let key = format!("{}{:?}", series.name, series.labels);
                        if let Some(before) = watch.last.insert(key.clone(), series.value) {
                            if series.value < before {
                                watch
                                    .failures
                                    .push(format!("{key} went from {before} to {}", series.value));
                            }
                        }
                    }
                }
                Ok(response) => watch
                    .failures
                    .push(format!("/metrics answered {}", response.status)),
                Err(err) => watch.failures.push(format!("/metrics failed: {err}")),
            }
            drop(watch);
            std::thread::sleep(Duration::from_millis(250));
        }
    })
}

fn scrape(port: u16) -> Vec<Series> {
    http_get(port, "/metrics", &[])
        .map(|r| parse_exposition(&r.text()))
        .unwrap_or_default()
}

fn sample(series: &[Series], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    series
        .iter()
        .find(|s| s.name == name && labels.iter().all(|(k, v)| s.label(k) == Some(*v)))
        .map(|s| s.value)
}

fn up(port: u16, provider: &str) -> Option<f64> {
    sample(&scrape(port), "lbtriage_source_up", &[("provider", provider)])
}

/// (counter, data end) of one load balancer's requests, read from one scrape.
fn truth_point(port: u16, provider: &str, lb: &str) -> Option<(f64, f64)> {
    let series = scrape(port);
    let count = sample(&series, "lbtriage_lb_requests_total", &[("lb", lb)])?;
    let end = sample(
        &series,
        "lbtriage_collection_data_end_timestamp_seconds",
        &[("provider", provider)],
    )?;
    Some((count, end))
}

#[test]
fn faults_never_stop_the_exporter_lose_or_double_a_period() {
    let mut emulator = Emulator::start();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    // 600 requests in every 10 s period for the next 15 minutes (the truth for AWS)...
    let points: Vec<_> = (-6..90)
        .map(|i| json!({"lb": "shop", "metric": "RequestCount", "timestamp": now / 10 * 10 + i * 10 + 1, "value": 600.0}))
        .collect();
    let fleet = emulator.seed(
        &json!({"region": "us-east-1", "load_balancers": [{"key": "shop", "type": "application", "name": "shop"}], "datapoints": points}),
        None,
    );
    let shop = dimension(&fleet, "shop");
    // ... and 2 requests/s in every minute on Alibaba (120 per 60 s period).
    let cms = CmsServer::start(1000, 50);
    let minutes: Vec<_> = (-10..16)
        .map(|m| json!({"namespace": "acs_slb_dashboard", "metric": "InstanceQps", "timestamp": now / 60 * 60 + m * 60, "instance": "lb-fault", "value": 2.0}))
        .collect();
    cms.seed(&minutes);
    // ... and on Tencent Cloud 2 requests/s a minute too (`TotalReq` is requests per second). Its
    // source asks Cloud Monitor only when a minute has completed, so the inventory is re-read every
    // cycle here (`discovery_ttl: 2s`) for each fault to meet a call within its deadline.
    let tencent = TencentServer::start(50);
    tencent.seed_load_balancers(&[json!({"id": "lb-tc-fault", "type": "OPEN", "vip": "203.0.113.7"})]);
    let minutes: Vec<_> = (-10..16)
        .map(|m| json!({"instance": "lb-tc-fault", "metric": "TotalReq", "timestamp": now / 60 * 60 + m * 60, "value": 2.0}))
        .collect();
    tencent.seed_points(&minutes);
    let aws_proxy = FaultProxy::start(emulator.bridge_port);
    let ali_proxy = FaultProxy::start(cms.port);
    let tc_proxy = FaultProxy::start(tencent.port);

    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("lbtriage.yml");
    std::fs::write(
        &config,
        format!(
            "auto_probes:\n  when: never\naws:\n  - name: faulty\n    regions: [us-east-1]\n    endpoint_url: http://127.0.0.1:{}\n    period: 10s\n    delay: 1s\n    interval: 2s\n    discovery_ttl: 1m\n    collection: full\nalibaba:\n  - name: faulty-ali\n    regions: [cn-hangzhou]\n    endpoint_url: http://127.0.0.1:{}\n    namespaces: [acs_slb_dashboard]\n    period: 60s\n    delay: 0s\n    interval: 2s\n    collection: full\ntencent:\n  - name: faulty-tc\n    regions: [ap-guangzhou]\n    endpoint_url: http://127.0.0.1:{}\n    delay: 0s\n    interval: 2s\n    discovery_ttl: 2s\n    collection: full\n",
            aws_proxy.port, ali_proxy.port, tc_proxy.port
        ),
    )
    .expect("write config");
    let (mut exporter, port) = start_exporter(&config, with_test_credentials);
    // Every provider of the registry runs through the faults.
    let providers: Vec<&str> = lbtriage::sources::registry::PROVIDERS
        .iter()
        .map(|p| p.name)
        .collect();
    let all_up = |port: u16, value: f64| providers.iter().all(|p| up(port, p) == Some(value));
    wait_until("every source up with data", Duration::from_secs(60), || {
        truth_point(port, "aws", &shop).is_some_and(|(count, _)| count > 0.0)
            && truth_point(port, "alibaba", "lb-fault").is_some()
            && truth_point(port, "tencent", "lb-tc-fault").is_some()
            && all_up(port, 1.0)
    });
    let aws_start = truth_point(port, "aws", &shop).expect("baseline");
    let ali_start = truth_point(port, "alibaba", "lb-fault").expect("baseline");
    let tc_start = truth_point(port, "tencent", "lb-tc-fault").expect("baseline");

    let stop = Arc::new(AtomicBool::new(false));
    let watch = Arc::new(Mutex::new(Watch::default()));
    let scraping = scraper(port, stop.clone(), watch.clone());

    // Each fault: every source goes down, their data end stops (the data age grows) while the last
    // good counters keep serving; clearing it brings them back on the next cycle.
    let through_fault = |name: &str, inject: &dyn Fn(), clear: &dyn Fn(), down_within: Duration| {
        let before = scrape(port);
        inject();
        wait_until(&format!("{name}: every source down"), down_within, || {
            all_up(port, 0.0)
        });
        // Frozen while down: nothing to wait for, so watch a few collection cycles go by.
        let during = scrape(port);
        std::thread::sleep(Duration::from_secs(3));
        let later = scrape(port);
        for provider in &providers {
            let end = |s: &[Series]| {
                sample(
                    s,
                    "lbtriage_collection_data_end_timestamp_seconds",
                    &[("provider", provider)],
                )
            };
            assert_eq!(
                end(&during),
                end(&later),
                "{name}: {provider} data end must not move while down"
            );
        }
        let requests = |s: &[Series]| sample(s, "lbtriage_lb_requests_total", &[("lb", shop.as_str())]);
        assert!(
            requests(&later) >= requests(&before) && requests(&later).is_some(),
            "{name}: last good values serve"
        );
        clear();
        let cleared = Instant::now();
        wait_until(
            &format!("{name}: every source back"),
            Duration::from_secs(30),
            || all_up(port, 1.0),
        );
        eprintln!(
            "{name}: recovered {:.1} s after clearing",
            cleared.elapsed().as_secs_f64()
        );
    };
    let every = |mode: &'static str| {
        let proxies = [&aws_proxy, &ali_proxy, &tc_proxy];
        move || {
            for proxy in proxies {
                proxy.set(mode);
            }
        }
    };
    for mode in ["status500", "reset", "truncate", "garbage"] {
        through_fault(mode, &every(mode), &every("pass"), Duration::from_secs(45));
    }
    let bridge = emulator.bridge_port;
    through_fault(
        "throttling burst",
        &|| {
            let _ = http_request(
                bridge,
                "POST",
                "/__bridge/faults",
                &[],
                br#"{"throttle": 100000}"#,
            );
            cms.throttle(100_000);
            tencent.throttle(100_000);
        },
        &|| {
            let _ = http_request(bridge, "POST", "/__bridge/faults", &[], br#"{"throttle": 0}"#);
            cms.throttle(0);
            tencent.throttle(0);
        },
        Duration::from_secs(45),
    );
    // 30 s per request: the SDK's attempt timeout (20 s) and CloudMonitor's call timeout (10 s) end
    // the calls; retries make a cycle last up to about a minute.
    through_fault(
        "30 s latency",
        &every("latency"),
        &every("pass"),
        Duration::from_secs(100),
    );
    // Killed mid-cycle: the CloudWatch front end dies (the proxy answers 502) and comes back.
    wait_until("AWS up before the kill", Duration::from_secs(30), || {
        up(port, "aws") == Some(1.0)
    });
    emulator.kill_bridge();
    wait_until(
        "AWS down while the emulator is dead",
        Duration::from_secs(45),
        || up(port, "aws") == Some(0.0),
    );
    emulator.restart_bridge();
    wait_until("AWS back after the restart", Duration::from_secs(30), || {
        up(port, "aws") == Some(1.0)
    });

    // AWS counts a period past the faults before the counters are compared with the truth (the
    // comparison holds for any span; Alibaba's 60 s periods are not waited for).
    let recovered = truth_point(port, "aws", &shop)
        .map(|(_, end)| end)
        .unwrap_or(f64::MAX);
    wait_until(
        "AWS to count a period after the faults",
        Duration::from_secs(30),
        || truth_point(port, "aws", &shop).is_some_and(|(_, end)| end > recovered),
    );
    stop.store(true, Ordering::SeqCst);
    let _ = scraping.join();
    let aws_end = truth_point(port, "aws", &shop).expect("end");
    let ali_end = truth_point(port, "alibaba", "lb-fault").expect("end");
    let tc_end = truth_point(port, "tencent", "lb-tc-fault").expect("end");
    assert_eq!(
        aws_end.0 - aws_start.0,
        600.0 * (aws_end.1 - aws_start.1) / 10.0,
        "AWS: every 10 s period between the data ends counted exactly once ({aws_start:?} → {aws_end:?})"
    );
    assert_eq!(
        ali_end.0 - ali_start.0,
        120.0 * (ali_end.1 - ali_start.1) / 60.0,
        "Alibaba: every minute between the data ends counted exactly once ({ali_start:?} → {ali_end:?})"
    );
    assert_eq!(
        tc_end.0 - tc_start.0,
        120.0 * (tc_end.1 - tc_start.1) / 60.0,
        "Tencent: every minute between the data ends counted exactly once ({tc_start:?} → {tc_end:?})"
    );
    assert!(aws_end.1 > aws_start.1, "AWS counting moved on");

    let watch = watch.lock().unwrap_or_else(|p| p.into_inner());
    eprintln!(
        "{} scrapes during the faults, slowest {:?}",
        watch.scrapes, watch.slowest
    );
    assert!(watch.failures.is_empty(), "{:#?}", watch.failures);
    assert!(
        watch.scrapes > 100,
        "the scraper ran throughout ({})",
        watch.scrapes
    );
    assert!(
        watch.slowest < Duration::from_millis(100),
        "slowest scrape {:?}",
        watch.slowest
    );
    assert!(exporter.try_wait().is_none(), "the exporter is still running");
}
