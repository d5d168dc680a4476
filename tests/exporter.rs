//! The `lbtriage` binary as operators run it: against the emulator with a real clock, with one
//! healthy and one unreachable source job; its endpoints, formats, shutdown, and `check-config`.

use std::io::Read as _;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::support::{
    self, count, http_get, lbtriage_command, parse_exposition, start_exporter, value, wait_until, Emulator,
};

fn write_config(dir: &Path, text: &str) -> std::path::PathBuf {
    let path = dir.join("lbtriage.yml");
    std::fs::write(&path, text).expect("write config");
    path
}

fn scrape(port: u16) -> Vec<support::Series> {
    http_get(port, "/metrics", &[])
        .map(|response| parse_exposition(&response.text()))
        .unwrap_or_default()
}

#[test]
fn exporter_serves_counts_formats_and_isolates_a_failing_source() {
    let emulator = Emulator::start();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    // The next 10-second period: it completes while the exporter runs.
    let next_period = (now / 10 + 1) * 10;
    let fleet = emulator.seed(
        &json!({"region": "us-east-1",
            "load_balancers": [{"key": "shop", "type": "application", "name": "shop", "targets": 1, "target_groups": ["web"]}],
            "datapoints": [{"lb": "shop", "metric": "HTTPCode_ELB_502_Count", "timestamp": next_period + 1, "value": 3.0}]}),
        None,
    );
    let shop = crate::support::dimension(&fleet, "shop");
    let dir = tempfile::tempdir().expect("temp dir");
    let (_held, dead_addr) = crate::support::refusing_port();
    let dead_port = dead_addr.port();
    let config = write_config(
        dir.path(),
        &format!(
            "auto_probes:\n  when: never\naws:\n  - name: emu\n    regions: [us-east-1]\n    endpoint_url: {}\n    period: 10s\n    delay: 1s\n    interval: 1s\n  - name: dead\n    regions: [us-east-1]\n    endpoint_url: http://127.0.0.1:{dead_port}\n    interval: 2s\n",
            emulator.endpoint
        ),
    );
    let (mut child, port) = start_exporter(&config, |_| {});

    wait_until("/-/healthy", Duration::from_secs(10), || {
        http_get(port, "/-/healthy", &[]).is_ok_and(|r| r.status == 200)
    });
    wait_until(
        "/-/ready after every source's first attempt",
        Duration::from_secs(60),
        || http_get(port, "/-/ready", &[]).is_ok_and(|r| r.status == 200),
    );
    let shop_502 = [("lb", shop.as_str()), ("origin", "lb"), ("code", "502")];
    wait_until("the seeded period to be counted", Duration::from_secs(40), || {
        let series = scrape(port);
        count(&series, "lbtriage_lb_responses_total", &shop_502) == 1
            && value(&series, "lbtriage_lb_responses_total", &shop_502) == 3.0
    });
    let series = scrape(port);
    assert_eq!(value(&series, "lbtriage_source_up", &[("source", "emu")]), 1.0);
    assert_eq!(value(&series, "lbtriage_source_up", &[("source", "dead")]), 0.0);
    assert_eq!(value(&series, "lbtriage_build_info", &[]), 1.0);

    // Text 0.0.4 by default; promtool finds nothing to lint.
    let text = http_get(port, "/metrics", &[]).expect("scrape");
    assert_eq!(
        text.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    assert_eq!(
        support::promtool_check_metrics(&text.text()),
        "",
        "promtool findings"
    );
    // OpenMetrics when Prometheus asks for it.
    let openmetrics = http_get(
        port,
        "/metrics",
        &[(
            "Accept",
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
        )],
    )
    .expect("scrape");
    assert!(openmetrics
        .header("content-type")
        .is_some_and(|c| c.starts_with("application/openmetrics-text")));
    assert!(openmetrics.text().ends_with("# EOF\n"));
    assert!(openmetrics
        .text()
        .contains("# TYPE lbtriage_lb_responses counter\n"));
    // Gzip when accepted.
    let compressed = http_get(port, "/metrics", &[("Accept-Encoding", "gzip")]).expect("scrape");
    assert_eq!(compressed.header("content-encoding"), Some("gzip"));
    let mut inflated = String::new();
    flate2::read::GzDecoder::new(compressed.body.as_slice())
        .read_to_string(&mut inflated)
        .expect("valid gzip");
    assert!(inflated.contains("lbtriage_lb_responses_total{"));
    assert_eq!(http_get(port, "/nope", &[]).map(|r| r.status).ok(), Some(404));

    // SIGTERM: a clean exit, promptly.
    child.signal("TERM");
    let mut exit = None;
    wait_until("exit after SIGTERM", Duration::from_secs(10), || {
        exit = child.try_wait();
        exit.is_some()
    });
    assert_eq!(exit.and_then(|s| s.code()), Some(0));
    let log = child.log();
    assert!(
        log.contains("level=warn") && log.contains("source=aws/dead/us-east-1"),
        "failure logged: {log}"
    );
    assert!(
        !log.contains("testing"),
        "credentials must never be logged: {log}"
    );
}

#[test]
fn check_config_accepts_valid_and_names_the_bad_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let good = write_config(
        dir.path(),
        "aws:\n  - name: prod\n    regions: [us-east-1, eu-west-1]\n",
    );
    let output = lbtriage_command()
        .arg("check-config")
        .arg(format!("--config.file={}", good.display()))
        .output()
        .expect("run");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("valid (2 source job/region pairs)"));

    let bad = write_config(
        dir.path(),
        "aws:\n  - name: prod\n    regions: [us-east-1]\n    period: 7s\n",
    );
    let output = lbtriage_command()
        .arg("check-config")
        .arg(format!("--config.file={}", bad.display()))
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("config key `aws[0].period` (line 4)"), "{stderr}");

    // The exporter refuses to start on the same file, naming the key too.
    let output = lbtriage_command()
        .arg(format!("--config.file={}", bad.display()))
        .arg("--web.listen-address=127.0.0.1:0")
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("aws[0].period"));

    // `${NAME}` in a value reads the environment (secrets and endpoints in containers); an unset
    // variable is an error naming the key and its line.
    let templated = dir.path().join("templated.yml");
    std::fs::write(
        &templated,
        "aws:\n  - name: prod\n    regions: [us-east-1]\n    endpoint_url: ${LBTRIAGE_TEST_ENDPOINT}\n",
    )
    .expect("write config");
    let check = |endpoint: Option<&str>| {
        let mut command = lbtriage_command();
        command
            .arg("check-config")
            .arg(format!("--config.file={}", templated.display()))
            .env_remove("LBTRIAGE_TEST_ENDPOINT");
        if let Some(endpoint) = endpoint {
            command.env("LBTRIAGE_TEST_ENDPOINT", endpoint);
        }
        command.output().expect("run")
    };
    let set = check(Some("http://127.0.0.1:5000"));
    assert_eq!(
        set.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );
    let unset = check(None);
    assert_eq!(unset.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&unset.stderr);
    assert!(
        stderr.contains("config key `aws[0].endpoint_url` (line 4)")
            && stderr.contains("LBTRIAGE_TEST_ENDPOINT is not set"),
        "{stderr}"
    );
    // The expanded value is held to the schema like any other.
    let bad = check(Some("ftp://nowhere"));
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("aws[0].endpoint_url"));

    let missing = lbtriage_command()
        .args(["check-config", "--config.file=/nonexistent/lbtriage.yml"])
        .output()
        .expect("run");
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot read"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exporter_runs_configured_probes() {
    use crate::support::servers::{spawn, Behaviour};
    let lb = spawn(Behaviour::Healthy).await;
    let closes = spawn(Behaviour::KeepAliveCloses(Duration::from_millis(500))).await;
    let (_held, dead) = crate::support::refusing_port();
    let dead = dead.to_string();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(
        dir.path(),
        &format!(
            "probes:\n  - name: shop\n    url: http://{lb}/\n    lb: app/shop/1\n    backends: ['{closes}', '{dead}']\n    lb_idle_timeout: 1s\n    interval: 1s\n    timeout: 2s\n    vantage: ci\n"
        ),
    );
    let (_child, port) = start_exporter(&config, |_| {});
    wait_until(
        "/-/ready after the first probe run",
        Duration::from_secs(20),
        || http_get(port, "/-/ready", &[]).is_ok_and(|r| r.status == 200),
    );
    let closes_label = closes.to_string();
    wait_until("the keep-alive measurement", Duration::from_secs(20), || {
        count(
            &scrape(port),
            "lbtriage_probe_keepalive_idle_seconds",
            &[("target", &closes_label)],
        ) == 1
    });
    let series = scrape(port);
    let common = [("probe", "shop"), ("lb", "app/shop/1"), ("vantage", "ci")];
    let with = |extra: &[(&'static str, &'static str)]| -> Vec<(&'static str, &'static str)> {
        common.iter().chain(extra).copied().collect()
    };
    let lb_label = lb.to_string();
    assert_eq!(
        value(
            &series,
            "lbtriage_probe_http_success",
            &[
                with(&[("path", "lb"), ("request", "app")]).as_slice(),
                &[("target", lb_label.as_str())]
            ]
            .concat()
        ),
        1.0
    );
    assert_eq!(
        value(
            &series,
            "lbtriage_probe_tcp_success",
            &[
                with(&[("reason", "refused")]).as_slice(),
                &[("target", dead.as_str())]
            ]
            .concat()
        ),
        0.0
    );
    assert_eq!(
        value(
            &series,
            "lbtriage_probe_keepalive_closed_by_backend",
            &[("target", &closes_label)]
        ),
        1.0
    );
    assert!(
        value(
            &series,
            "lbtriage_probe_keepalive_idle_seconds",
            &[("target", &closes_label)]
        ) < 1.0
    );
    assert_eq!(
        value(&series, "lbtriage_probe_lb_idle_timeout_seconds", &with(&[])),
        1.0
    );
    let text = http_get(port, "/metrics", &[]).expect("scrape").text();
    assert_eq!(support::promtool_check_metrics(&text), "", "promtool findings");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_applies_a_good_config_and_keeps_the_old_one_on_a_bad_one() {
    use crate::support::http_request;
    use crate::support::servers::{spawn, Behaviour};
    let backend = spawn(Behaviour::Healthy).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let probe_config = |name: &str| {
        format!("probes:\n  - name: {name}\n    url: http://{backend}/\n    interval: 1s\n    timeout: 2s\n")
    };
    let config = write_config(dir.path(), &probe_config("first"));
    let (child, port) = start_exporter(&config, |_| {});
    let probes_seen = || -> Vec<String> {
        let mut names: Vec<String> = scrape(port)
            .iter()
            .filter(|s| s.name == "lbtriage_probe_http_success")
            .filter_map(|s| s.label("probe").map(str::to_string))
            .collect();
        names.sort();
        names.dedup();
        names
    };
    wait_until("the first probe", Duration::from_secs(20), || {
        probes_seen() == ["first"]
    });
    assert_eq!(
        value(&scrape(port), "lbtriage_config_last_reload_successful", &[]),
        1.0
    );

    // SIGHUP with a new config: the old probe goes, the new one comes.
    write_config(dir.path(), &probe_config("second"));
    child.signal("HUP");
    wait_until("the reloaded probe", Duration::from_secs(20), || {
        probes_seen() == ["second"]
    });

    // A broken config over POST /-/reload: refused with the reason, the running one stays.
    write_config(dir.path(), "probes:\n  - name: third\n    url: ftp://nowhere/\n");
    let refused = http_request(port, "POST", "/-/reload", &[], b"").expect("reload request");
    assert_eq!(refused.status, 500);
    assert!(refused.text().contains("probes[0].url"), "{}", refused.text());
    assert_eq!(
        value(&scrape(port), "lbtriage_config_last_reload_successful", &[]),
        0.0
    );
    assert_eq!(probes_seen(), ["second"]);
    assert_eq!(http_get(port, "/-/reload", &[]).map(|r| r.status).ok(), Some(405));

    // Fixed again: reloads, and the gauge recovers.
    write_config(dir.path(), &probe_config("third"));
    let accepted = http_request(port, "POST", "/-/reload", &[], b"").expect("reload request");
    assert_eq!(accepted.status, 200, "{}", accepted.text());
    assert_eq!(
        value(&scrape(port), "lbtriage_config_last_reload_successful", &[]),
        1.0
    );
    wait_until("the third probe", Duration::from_secs(20), || {
        probes_seen() == ["third"]
    });
}

#[test]
fn credentials_never_appear_in_any_output() {
    // Every credential variable of every provider, each with a value to look for: the ones the
    // test servers check are theirs, the rest unique markers.
    let credentials = crate::support::test_credentials();
    let with_credentials = crate::support::with_test_credentials;
    let emulator = Emulator::start();
    emulator.seed(
        &json!({"region": "us-east-1", "load_balancers": [{"key": "shop", "type": "application", "name": "shop"}]}),
        None,
    );
    let cms = crate::support::CmsServer::start(1000, 50);
    let tencent = crate::support::TencentServer::start(20);
    tencent.seed_load_balancers(&[json!({"id": "lb-secret", "type": "OPEN", "vip": "203.0.113.9"})]);
    let dir = tempfile::tempdir().expect("temp dir");
    let (_held, dead) = crate::support::refusing_port();
    let config = write_config(
        dir.path(),
        &format!(
            "auto_probes:\n  when: never\naws:\n  - name: emu\n    regions: [us-east-1]\n    endpoint_url: {}\n    interval: 1s\n  - name: dead\n    regions: [us-east-1]\n    endpoint_url: http://{dead}\n    interval: 1s\nalibaba:\n  - name: ali\n    regions: [cn-hangzhou]\n    endpoint_url: {}\n    interval: 1s\n  - name: ali-dead\n    regions: [cn-hangzhou]\n    endpoint_url: http://{dead}\n    interval: 1s\ntencent:\n  - name: tc\n    regions: [ap-guangzhou]\n    endpoint_url: {}\n    interval: 1s\n  - name: tc-dead\n    regions: [ap-guangzhou]\n    endpoint_url: http://{dead}\n    interval: 1s\n",
            emulator.endpoint, cms.endpoint, tencent.endpoint
        ),
    );
    let (mut child, port) = start_exporter(&config, |command| {
        command.arg("--log.level=debug");
        with_credentials(command);
    });
    // Several cycles, successful and failing, before looking.
    wait_until(
        "both sources to have failed and succeeded",
        Duration::from_secs(30),
        || {
            let series = scrape(port);
            count(
                &series,
                "lbtriage_api_calls_total",
                &[("source", "dead"), ("outcome", "error")],
            ) > 0
                && count(
                    &series,
                    "lbtriage_api_calls_total",
                    &[("source", "ali-dead"), ("outcome", "error")],
                ) > 0
                && count(
                    &series,
                    "lbtriage_api_calls_total",
                    &[("source", "ali"), ("outcome", "success")],
                ) > 0
                && count(
                    &series,
                    "lbtriage_api_calls_total",
                    &[("source", "tc-dead"), ("outcome", "error")],
                ) > 0
                && count(&series, "lbtriage_lb_info", &[]) == 2
        },
    );
    // Every provider of the registry ran here with its credentials.
    let series = scrape(port);
    for provider in lbtriage::sources::registry::PROVIDERS {
        assert!(
            series.iter().any(|s| s.name == "lbtriage_source_up"
                && s.label("provider") == Some(provider.name)
                && s.value == 1.0),
            "{}: a source of this provider collected with the credentials under test",
            provider.name
        );
    }
    let mut outputs = Vec::new();
    for path in ["/metrics", "/", "/-/ready", "/-/healthy"] {
        outputs.push((
            path.to_string(),
            http_get(port, path, &[]).map(|r| r.text()).unwrap_or_default(),
        ));
    }
    let mut check = Command::new(env!("CARGO_BIN_EXE_lbtriage"));
    check.args(["check-config", &format!("--config.file={}", config.display())]);
    with_credentials(&mut check);
    let check = check.output().expect("check-config");
    outputs.push((
        "check-config".to_string(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        ),
    ));
    child.signal("TERM");
    let log = child.log();
    assert!(
        log.contains("level=warn") && log.contains("level=debug"),
        "the log has content to search: {log}"
    );
    outputs.push(("log".to_string(), log));
    for (name, text) in &outputs {
        assert!(!text.is_empty() || name == "check-config", "{name} is empty");
        for (env, value) in &credentials {
            assert!(!text.contains(value.as_str()), "{env} appears in {name}");
        }
    }
}

/// A reload keeps the running source of a job whose settings did not change: its counter goes on
/// from its first watermark, each period counted once, while the reload adds a probe. (Before, a
/// reload rebuilt every source: the counter restarted at 0 and the periods in between were lost.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_keeps_counting_for_an_unchanged_job() {
    use crate::support::servers::{spawn, Behaviour};
    let emulator = Emulator::start();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    // 60 requests in every 10-second period from a minute ago to five minutes ahead.
    let first = now / 10 * 10 - 60;
    let datapoints: Vec<_> = (0..36)
        .map(|i| json!({"lb": "steady", "metric": "RequestCount", "timestamp": first + i * 10 + 1, "value": 60.0}))
        .collect();
    let fleet = emulator.seed(
        &json!({"region": "us-east-1",
            "load_balancers": [{"key": "steady", "type": "application", "name": "steady"}],
            "datapoints": datapoints}),
        None,
    );
    let steady = crate::support::dimension(&fleet, "steady");
    let dir = tempfile::tempdir().expect("temp dir");
    let backend = spawn(Behaviour::Healthy).await;
    // A probe that runs once a minute: after the reload its series must still be there, long
    // before its next run.
    let job = format!(
        "auto_probes:\n  when: never\naws:\n  - name: emu\n    regions: [us-east-1]\n    endpoint_url: {}\n    period: 10s\n    delay: 1s\n    interval: 1s\n    collection: full\nprobes:\n  - name: kept\n    url: http://{backend}/\n    interval: 60s\n    timeout: 2s\n",
        emulator.endpoint
    );
    let config = write_config(dir.path(), &job);
    let (_child, port) = start_exporter(&config, |_| {});
    let requests = [("lb", steady.as_str())];
    // (counter, data end) once the counter exists.
    let read = || {
        let series = scrape(port);
        (count(&series, "lbtriage_lb_requests_total", &requests) == 1).then(|| {
            (
                value(&series, "lbtriage_lb_requests_total", &requests),
                value(
                    &series,
                    "lbtriage_collection_data_end_timestamp_seconds",
                    &[("source", "emu")],
                ),
            )
        })
    };
    let (counted, data_end) = crate::support::eventually("a counted period", Duration::from_secs(60), || {
        read().filter(|(counted, _)| *counted > 0.0)
    })
    .await;
    // Where counting began: every period since then adds exactly 60.
    let began = data_end - counted / 60.0 * 10.0;

    let kept = [("probe", "kept")];
    crate::support::eventually("the kept probe's first run", Duration::from_secs(70), || {
        (count(&scrape(port), "lbtriage_probe_http_success", &kept) > 0).then_some(())
    })
    .await;
    write_config(
        dir.path(),
        &format!("{job}  - name: added\n    url: http://{backend}/\n    interval: 1s\n    timeout: 2s\n"),
    );
    let reloaded = support::http_request(port, "POST", "/-/reload", &[], b"").expect("reload request");
    assert_eq!(reloaded.status, 200, "{}", reloaded.text());
    assert!(
        count(&scrape(port), "lbtriage_probe_http_success", &kept) > 0,
        "an unchanged probe keeps its series across the reload"
    );
    let (after, after_end) = crate::support::eventually(
        "two more periods counted after the reload",
        Duration::from_secs(60),
        || read().filter(|(_, end)| *end >= data_end + 20.0),
    )
    .await;
    assert_eq!(
        after,
        (after_end - began) / 10.0 * 60.0,
        "every period since the first watermark counted once (began {began}, data end {after_end})"
    );
    assert!(after > counted, "the counter went on: {counted} → {after}");
    assert_eq!(
        value(&scrape(port), "lbtriage_config_last_reload_successful", &[]),
        1.0
    );
}
