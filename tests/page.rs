//! The exporter's `/` page in a real browser: Debian's Chromium driven through chromedriver
//! (WebDriver over HTTP), against an exporter with a working and a failing cloud source and probes
//! that meet real misbehaving servers. DOM assertions, a click through to a runbook, and a
//! screenshot kept in `target/test-artifacts/`.

use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::servers::{spawn, Behaviour};
use crate::support::{
    dimension, eventually, http_get, http_request, refusing_port, repo_root, start_exporter, start_on_a_port,
    Emulator, Process,
};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A WebDriver session on a chromedriver of its own; the browser quits with it.
struct Browser {
    port: u16,
    session: String,
    _driver: Process,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn start() -> Browser {
        let (driver, port) = start_on_a_port(
            "chromedriver",
            |port| {
                let mut command = Command::new("chromedriver");
                command.arg(format!("--port={port}"));
                command
            },
            |port| http_get(port, "/status", &[]).is_ok_and(|r| r.status == 200),
        );
        let profile = tempfile::tempdir().expect("profile dir");
        // The flags keep Chromium off the network it cannot reach here (see the machine notes).
        let args = [
            "--headless=new".to_string(),
            "--no-sandbox".to_string(),
            "--disable-gpu".to_string(),
            "--disable-dev-shm-usage".to_string(),
            "--disable-quic".to_string(),
            "--no-first-run".to_string(),
            "--disable-background-networking".to_string(),
            "--disable-component-update".to_string(),
            "--disable-sync".to_string(),
            "--window-size=1280,1800".to_string(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": args},
        }}});
        let mut browser = Browser {
            port,
            session: String::new(),
            _driver: driver,
            _profile: profile,
        };
        let created = browser.call("POST", "/session", Some(capabilities));
        browser.session = created["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {created}"))
            .to_string();
        browser
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let response = http_request(
            self.port,
            method,
            path,
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        )
        .unwrap_or_else(|err| panic!("chromedriver {method} {path}: {err}"));
        let value: Value = serde_json::from_slice(&response.body).unwrap_or_default();
        assert_eq!(response.status, 200, "chromedriver {method} {path}: {value}");
        value["value"].clone()
    }

    fn session_call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.call(method, &format!("/session/{}{path}", self.session), body)
    }

    fn open(&self, url: &str) {
        self.session_call("POST", "/url", Some(json!({ "url": url })));
    }

    fn script(&self, script: &str) -> Value {
        self.session_call(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
    }

    fn click(&self, css: &str) {
        let element = self.session_call(
            "POST",
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        );
        let id = element[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}"));
        self.session_call("POST", &format!("/element/{id}/click"), Some(json!({})));
    }

    fn screenshot(&self) -> Vec<u8> {
        let encoded = self.session_call("GET", "/screenshot", None);
        base64_decode(encoded.as_str().unwrap_or_default())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = http_request(
                self.port,
                "DELETE",
                &format!("/session/{}", self.session),
                &[],
                b"",
            );
        }
    }
}

fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let digits: Vec<u8> = text.bytes().filter_map(value).collect();
    digits
        .chunks(4)
        .flat_map(|chunk| {
            let n = chunk.iter().fold(0u32, |acc, d| (acc << 6) | u32::from(*d)) << (6 * (4 - chunk.len()));
            let bytes = n.to_be_bytes();
            bytes[1..chunk.len()].to_vec()
        })
        .collect()
}

/// What the page shows, read from the DOM Chromium built.
const READ_PAGE: &str = r#"
const rows = (css) => Array.from(document.querySelectorAll(css));
return {
  title: document.title,
  scripts: document.scripts.length,
  findings: rows('tr.finding').map(r => ({lb: r.dataset.lb, cause: r.dataset.cause, evidence: r.querySelector('ul.evidence').innerText})),
  sources: rows('tr.source').map(r => ({name: r.cells[0].innerText, up: r.dataset.up, calls: r.cells[4].innerText, age: r.cells[3].innerText})),
  probes: rows('tr.probe-result').map(r => ({probe: r.cells[0].innerText, path: r.dataset.path, reason: r.dataset.reason, result: r.cells[5].innerText})),
  causes: rows('tr.cause').map(r => r.id),
  fleet: rows('tr.lb').map(r => ({lb: r.dataset.lb, share: r.cells[2].innerText, own: r.cells[3].innerText, targets: r.cells[4].innerText, probed: r.cells[5].innerText, causes: Array.from(r.cells[6].querySelectorAll('a')).map(a => a.getAttribute('href'))})),
  runbooks: rows('tr.cause a').map(a => a.getAttribute('href')),
};
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_triage_page_shows_sources_probes_and_causes_in_a_browser() {
    let emulator = Emulator::start();
    let fleet = emulator.seed(
        &json!({"region": "us-east-1", "load_balancers": [
            {"key": "shop", "type": "application", "name": "shop"},
            {"key": "gone", "type": "application", "name": "gone"},
        ]}),
        None,
    );
    let healthy = spawn(Behaviour::Healthy).await;
    let closes_early = spawn(Behaviour::KeepAliveCloses(Duration::from_millis(800))).await;
    let (_held, no_listener) = refusing_port();
    let (_held_too, dead_api) = refusing_port();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("lbtriage.yml");
    let probe = |name: &str, url: String, backends: String| {
        format!(
            "  - name: {name}\n    url: {url}\n    lb: {}\n    backends: [{backends}]\n    lb_idle_timeout: 2s\n    interval: 2s\n    timeout: 2s\n",
            dimension(&fleet, name)
        )
    };
    std::fs::write(
        &config,
        format!(
            "auto_probes:\n  when: never\naws:\n  - name: emu\n    regions: [us-east-1]\n    endpoint_url: {}\n    period: 10s\n    delay: 1s\n    interval: 2s\n  - name: dead\n    regions: [us-east-1]\n    endpoint_url: http://{dead_api}\n    interval: 2s\nprobes:\n{}{}",
            emulator.endpoint,
            probe("shop", format!("http://{healthy}/"), format!("'{closes_early}'")),
            probe("gone", format!("http://{no_listener}/"), String::new()),
        ),
    )
    .expect("write config");
    let (_lbtriage, port) = start_exporter(&config, |_| {});

    // The page is served once the evidence is in (the keep-alive check takes the idle timeout).
    eventually(
        "both findings and a collected source on /",
        Duration::from_secs(60),
        || {
            let page = http_get(port, "/", &[]).ok()?.text();
            (page.contains("data-cause=\"target_keepalive_too_short\"")
                && page.contains("data-cause=\"lb_listener_missing\"")
                && page.contains("data-up=\"1\""))
            .then_some(())
        },
    )
    .await;

    let browser = Browser::start();
    browser.open(&format!("http://127.0.0.1:{port}/"));
    let page = browser.script(READ_PAGE);
    let artifacts = repo_root().join("target/test-artifacts");
    std::fs::create_dir_all(&artifacts).expect("artifact dir");
    let png = browser.screenshot();
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000,
        "a real screenshot"
    );
    std::fs::write(artifacts.join("triage-page.png"), &png).expect("write screenshot");

    assert_eq!(page["title"], "lbtriage");
    assert_eq!(page["scripts"], 0, "a plain page, no scripts");

    // Per load balancer, the causes its probe evidence points at — and nothing for a healthy path.
    let findings = page["findings"].as_array().cloned().unwrap_or_default();
    let has = |lb: &str, cause: &str| findings.iter().any(|f| f["lb"] == lb && f["cause"] == cause);
    let shop = dimension(&fleet, "shop");
    let gone = dimension(&fleet, "gone");
    assert!(has(&shop, "target_keepalive_too_short"), "{findings:?}");
    assert!(has(&gone, "lb_listener_missing"), "{findings:?}");
    assert_eq!(findings.len(), 2, "no other cause: {findings:?}");
    let evidence = findings.iter().find(|f| f["lb"] == gone.as_str()).expect("gone");
    assert!(
        evidence["evidence"]
            .as_str()
            .unwrap_or_default()
            .contains(&no_listener.to_string()),
        "evidence names the refusing address: {evidence}"
    );

    // The fleet view: both load balancers, probed by their configured probes, each with the
    // runbook of the cause its probe evidence suggests.
    let lbs = page["fleet"].as_array().cloned().unwrap_or_default();
    let row = |lb: &str| {
        lbs.iter()
            .find(|r| r["lb"] == lb)
            .unwrap_or_else(|| panic!("no fleet row for {lb}: {lbs:?}"))
            .clone()
    };
    assert_eq!(lbs.len(), 2, "{lbs:?}");
    assert_eq!(row(&shop)["probed"], "configured");
    assert_eq!(
        row(&shop)["causes"],
        json!(["/runbooks/target_keepalive_too_short.md"])
    );
    assert_eq!(row(&gone)["causes"], json!(["/runbooks/lb_listener_missing.md"]));

    // Sources: the emulator's is up with successful calls; the dead endpoint's is down.
    let sources = page["sources"].as_array().cloned().unwrap_or_default();
    let source = |name: &str| {
        sources
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("no source {name}: {sources:?}"))
            .clone()
    };
    let emu = source("aws/emu/us-east-1");
    assert_eq!(emu["up"], "1");
    assert!(
        emu["calls"].as_str().unwrap_or_default().contains("success"),
        "{emu}"
    );
    assert_eq!(source("aws/dead/us-east-1")["up"], "0");

    // Probes: the latest result per address with the failure reason.
    let probes = page["probes"].as_array().cloned().unwrap_or_default();
    assert!(
        probes.iter().any(|p| p["probe"] == "gone"
            && p["path"] == "lb"
            && p["reason"] == "refused"
            && p["result"] == "refused"),
        "{probes:?}"
    );
    assert!(
        probes
            .iter()
            .any(|p| p["probe"] == "shop" && p["path"] == "lb" && p["result"] == "ok"),
        "{probes:?}"
    );

    // The whole catalog, each cause linking its runbook.
    let catalog = lbtriage::catalog::Catalog::embedded();
    assert_eq!(
        page["causes"].as_array().map(Vec::len),
        Some(catalog.causes.len())
    );
    assert_eq!(
        page["runbooks"][0],
        format!("/runbooks/{}.md", catalog.causes[0].id)
    );

    // Clicking a finding's cause opens its runbook, served by the exporter itself.
    browser.click(&format!("tr.finding[data-lb=\"{gone}\"] a"));
    let runbook = browser.script("return {url: location.pathname, text: document.body.innerText};");
    assert_eq!(runbook["url"], "/runbooks/lb_listener_missing.md");
    let text = runbook["text"].as_str().unwrap_or_default();
    for section in ["## Meaning", "## Impact", "## Diagnosis", "## Mitigation"] {
        assert!(text.contains(section), "runbook has {section}");
    }
}

/// The fleet view with 500 load balancers (Tencent CLB instances from the strict test server, read
/// adaptively: a two-metric sentinel for all, the detail tier for the two that err):
/// one row each, the erring ones first with their 5xx share and own share from lbtriage's own
/// counters, registered and healthy targets from the inventory. How long Chromium takes to load
/// and lay out the page is printed (docs/BENCHMARKS.md), not asserted: performance is measured in
/// benchmarks, not timed tests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleet_view_lists_500_load_balancers_worst_first() {
    let server = crate::support::TencentServer::start(50);
    let instances: Vec<Value> = (0..500)
        .map(|i| {
            json!({"id": format!("lb-{i:03}"), "name": format!("svc-{i:03}"), "type": "OPEN",
                // Cloud Monitor names an instance by its VIP: each must be its own (never contacted).
                "vip": format!("203.0.{}.{}", 113 + i / 250, i % 250 + 1),
                "listeners": [{"port": 80, "targets": [{"ip": "10.0.0.1", "port": 8080, "healthy": i != 7}]}]})
        })
        .collect();
    server.seed_load_balancers(&instances);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let mut points = Vec::new();
    for minute in -10..=2 {
        let timestamp = now / 60 * 60 + minute * 60;
        for i in 0..500 {
            points.push(json!({"instance": format!("lb-{i:03}"), "metric": "TotalReq", "timestamp": timestamp, "value": 10.0}));
        }
        // lb-042 answers a tenth of its requests with 502 itself; lb-100 passes 5xx through.
        for (instance, metric, value) in [
            ("lb-042", "ClbHttp5xx", 60.0),
            ("lb-042", "ClbHttp502", 60.0),
            ("lb-100", "ClbHttp5xx", 30.0),
            ("lb-100", "Http5xx", 30.0),
        ] {
            points.push(
                json!({"instance": instance, "metric": metric, "timestamp": timestamp, "value": value}),
            );
        }
    }
    server.seed_points(&points);
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("lbtriage.yml");
    std::fs::write(
        &config,
        format!(
            "auto_probes:\n  when: never\ntencent:\n  - name: fleet\n    regions: [ap-guangzhou]\n    endpoint_url: {}\n    delay: 0s\n    interval: 2s\n    max_calls_per_second: 20\n    collection: full\n",
            server.endpoint
        ),
    )
    .expect("write config");
    let (_lbtriage, port) = start_exporter(&config, crate::support::with_test_credentials);
    eventually(
        "500 load balancers with counted 5xx on /",
        Duration::from_secs(150),
        || {
            let page = http_get(port, "/", &[]).ok()?.text();
            let row = page
                .split("data-lb=\"lb-042\"")
                .nth(1)?
                .split("</tr>")
                .next()?
                .to_string();
            (page.matches("<tr class=\"lb\"").count() == 500 && row.contains("class=\"bad\"")).then_some(())
        },
    )
    .await;

    let browser = Browser::start();
    browser.open(&format!("http://127.0.0.1:{port}/"));
    let page = browser.script(
        r#"const timing = performance.getEntriesByType('navigation')[0];
           const rows = Array.from(document.querySelectorAll('tr.lb'));
           return {
             load_ms: timing.loadEventEnd - timing.startTime,
             rows: rows.map(r => ({lb: r.dataset.lb, share: r.cells[2].innerText, own: r.cells[3].innerText, targets: r.cells[4].innerText})),
           };"#,
    );
    eprintln!(
        "fleet view, 500 load balancers: Chromium loaded and laid out the page in {} ms",
        page["load_ms"]
    );
    let rows = page["rows"].as_array().cloned().unwrap_or_default();
    assert_eq!(rows.len(), 500);
    // Worst first: the one answering 5xx itself and the one passing them through lead, the own
    // share telling them apart; everything else has no 5xx.
    let leading: Vec<&str> = rows[..2].iter().filter_map(|r| r["lb"].as_str()).collect();
    assert_eq!(leading, ["lb-042", "lb-100"], "{:?}", &rows[..3]);
    let share = |row: &Value, field: &str| {
        row[field]
            .as_str()
            .and_then(|s| s.trim_end_matches('%').parse::<f64>().ok())
            .unwrap_or(-1.0)
    };
    // 60 of every 660 (600 requests plus its own 60 502s): 9.1 %, all of it its own.
    assert_eq!((share(&rows[0], "share"), share(&rows[0], "own")), (9.1, 9.1));
    // 30 passed through of 600 requests: 5.0 %, none its own.
    assert_eq!((share(&rows[1], "share"), share(&rows[1], "own")), (5.0, 0.0));
    assert_eq!(rows[2]["share"], "0.0%");
    let unhealthy = rows.iter().find(|r| r["lb"] == "lb-007").expect("lb-007");
    assert_eq!(unhealthy["targets"], "0 / 1");
    assert_eq!(
        rows.iter().find(|r| r["lb"] == "lb-008").expect("lb-008")["targets"],
        "1 / 1"
    );
}
