//! Rendering `/metrics` at 1k, 10k and 100k series: latency percentiles, bytes, peak RSS.
//!
//! Each size runs in its own child process so its peak RSS (VmHWM) is its own. Run with
//! `cargo bench --bench render`; figures go to docs/BENCHMARKS.md.

use std::process::Command;
use std::time::Instant;

use lbtriage::store::{families, Format, Labels, Sample, Store};

const SIZES: [usize; 3] = [1_000, 10_000, 100_000];
const ITERATIONS: usize = 50;

/// A realistic mix: per load balancer, the response series by origin/code plus other families.
fn fleet(series: usize) -> Vec<Sample> {
    let per_lb: [(&'static families::Family, &[(&str, &str)]); 10] = [
        (&families::LB_REQUESTS, &[]),
        (&families::LB_RESPONSES, &[("origin", "lb"), ("code", "500")]),
        (&families::LB_RESPONSES, &[("origin", "lb"), ("code", "502")]),
        (&families::LB_RESPONSES, &[("origin", "lb"), ("code", "503")]),
        (&families::LB_RESPONSES, &[("origin", "lb"), ("code", "504")]),
        (&families::LB_RESPONSES, &[("origin", "backend"), ("code", "5xx")]),
        (&families::LB_TARGET_CONNECTION_ERRORS, &[]),
        (&families::LB_TARGET_RESPONSE_TIME, &[]),
        (
            &families::LB_HEALTHY_TARGETS,
            &[("target_group", "targetgroup/web/73e2d6bc24d8a067")],
        ),
        (
            &families::LB_UNHEALTHY_TARGETS,
            &[("target_group", "targetgroup/web/73e2d6bc24d8a067")],
        ),
    ];
    (0..series)
        .map(|i| {
            let (family, extra) = per_lb[i % per_lb.len()];
            let lb = i / per_lb.len();
            let mut labels: Labels = vec![
                ("provider".into(), "aws".to_string()),
                ("region".into(), "us-east-1".to_string()),
                ("lb".into(), format!("app/service-{lb}/50dc6c495c0c{lb:04x}")),
                ("lb_name".into(), format!("service-{lb}")),
                ("lb_type".into(), "application".to_string()),
            ];
            labels.extend(extra.iter().map(|(k, v)| ((*k).into(), (*v).to_string())));
            Sample::new(family, labels, (i as f64) * 1.5)
        })
        .collect()
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn measure(series: usize) {
    let store = Store::new(["aws/bench/us-east-1".to_string()]);
    store.publish("aws/bench/us-east-1", fleet(series));
    let mut times = Vec::with_capacity(ITERATIONS);
    let mut bytes = 0;
    for _ in 0..ITERATIONS {
        let start = Instant::now();
        let text = store.render(Format::Prometheus, &[]);
        times.push(start.elapsed().as_secs_f64() * 1000.0);
        bytes = text.len();
    }
    times.sort_by(f64::total_cmp);
    println!(
        "| {series} | {:.2} | {:.2} | {:.1} | {:.1} |",
        percentile(&times, 50.0),
        percentile(&times, 99.0),
        bytes as f64 / 1_048_576.0,
        peak_rss_kib() as f64 / 1024.0
    );
}

fn main() {
    // `cargo bench` passes `--bench`; a bare number means "measure this size".
    if let Some(size) = std::env::args().skip(1).find_map(|a| a.parse::<usize>().ok()) {
        measure(size);
        return;
    }
    println!("| series | p50 ms | p99 ms | MiB | peak RSS MiB |\n|---|---|---|---|---|");
    let exe = std::env::current_exe().expect("own path");
    for size in SIZES {
        let status = Command::new(&exe)
            .arg(size.to_string())
            .status()
            .expect("run a size");
        assert!(status.success());
    }
}
