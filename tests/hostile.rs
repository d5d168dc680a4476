//! A thousand hostile probe targets against the real binary: slowloris, an endless body, a 1 MB
//! header line, TLS garbage and a server that never closes. Every probe must reach a verdict (each
//! check ends at its timeout or its byte cap) and the exporter's peak RSS must stay under the
//! stated bound (docs/BENCHMARKS.md).

use std::collections::BTreeSet;
use std::time::Duration;

use crate::support::servers::{spawn, Behaviour};
use crate::support::{eventually, http_get, parse_exposition, start_exporter};

/// The stated bound on peak RSS with 1,000 hostile targets (64 checks at a time, each reading at
/// most 64 KiB of head and 1 MiB of body).
const RSS_BOUND_MIB: u64 = 192;

fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_hostile_targets_stay_under_the_memory_bound() {
    // Servers that never finish get 1 s per check, as they always use all of it; those that end
    // at a byte cap or a handshake error get 5 s, which they need only when the rest of the suite
    // starves them of the two cores (a verdict of `timeout` there would be the load's, not
    // theirs). One header size (the floor) keeps the checks per probe few.
    let hostile = [
        ("http", spawn(Behaviour::Drip).await, "1s"),
        ("http", spawn(Behaviour::EndlessBody).await, "5s"),
        ("http", spawn(Behaviour::HugeHeader).await, "5s"),
        ("https", spawn(Behaviour::Garbage).await, "5s"),
        ("http", spawn(Behaviour::NeverCloses).await, "1s"),
    ];
    let mut probes = String::from("probes:\n");
    for index in 0..1000 {
        let (scheme, address, timeout) = hostile[index % hostile.len()];
        probes.push_str(&format!(
            "  - name: hostile{index}\n    url: {scheme}://{address}/\n    timeout: {timeout}\n    interval: 10s\n    lb_idle_timeout: 1s\n    header_sizes: []\n"
        ));
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("lbtriage.yml");
    std::fs::write(&config, probes).expect("write config");
    let (exporter, port) = start_exporter(&config, |_| {});

    // Every probe reaches a verdict for its application request.
    let reasons = eventually("all 1,000 probes to report", Duration::from_secs(180), || {
        let response = http_get(port, "/metrics", &[]).ok()?;
        let series = parse_exposition(&response.text());
        let results: Vec<_> = series
            .iter()
            .filter(|s| s.name == "lbtriage_probe_http_success" && s.label("request") == Some("app"))
            .collect();
        let probes: BTreeSet<&str> = results.iter().filter_map(|s| s.label("probe")).collect();
        (probes.len() == 1000).then(|| {
            results
                .iter()
                .map(|s| (s.label("reason").unwrap_or_default().to_string(), s.value))
                .collect::<Vec<_>>()
        })
    })
    .await;
    // Slowloris, the never-closing body and the 1 MB header fail; the endless body is read up to
    // its cap and the response itself is fine.
    let count = |reason: &str| reasons.iter().filter(|(r, _)| r == reason).count();
    assert_eq!(
        count("timeout"),
        400,
        "drip and never-closes time out: {reasons:?}"
    );
    assert_eq!(count("invalid_response"), 200, "the 1 MB header is refused");
    assert_eq!(count("tls"), 200, "TLS garbage");
    assert_eq!(
        reasons.iter().filter(|(_, v)| *v == 1.0).count(),
        200,
        "the endless body, capped"
    );

    let peak = peak_rss_kib(exporter.id()).expect("/proc status");
    eprintln!("peak RSS with 1,000 hostile targets: {} MiB", peak / 1024);
    assert!(
        peak < RSS_BOUND_MIB * 1024,
        "peak RSS {} MiB over the {RSS_BOUND_MIB} MiB bound",
        peak / 1024
    );
}
