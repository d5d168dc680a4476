//! `lbtriage diagnose`: the on-call's one-command check. Runs every probe check once against one
//! URL and its backends, then prints each check and the suspected causes with their evidence and
//! runbooks. With `--lb` and `--config.file` instead of `--url`, the configured clouds' inventories
//! say where the load balancer's front door and targets are (as for automatic probes), so any
//! member of the fleet can be checked without knowing its backends. Exit 0: no findings; 1:
//! findings; 2: bad usage.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::{json, Value};

use crate::catalog::Catalog;
use crate::config::{Config, ProbeConfig, PromDuration, Scheme};
use crate::probes::findings::{self, Finding};
use crate::probes::keepalive::KeepAlive;
use crate::probes::{limiter, KeepAliveCheck, Probe, Report};
use crate::runtime::Discovered;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct DiagnoseArgs {
    /// The service's URL through the load balancer.
    #[arg(long, required_unless_present = "lb", conflicts_with = "lb")]
    url: Option<String>,
    /// A load balancer of the configured clouds, by its `lb` label (ID, ARN suffix) or its name:
    /// its front door, listeners, health-check path and targets come from the inventory.
    #[arg(long, requires = "config_file")]
    lb: Option<String>,
    /// The configuration whose cloud jobs hold `--lb` (its `auto_probes:` settings apply).
    #[arg(long = "config.file", value_name = "PATH")]
    config_file: Option<PathBuf>,
    /// A backend reached directly, HOST:PORT (repeatable).
    #[arg(long = "backend", value_name = "HOST:PORT")]
    backends: Vec<String>,
    #[arg(long = "backend-scheme", value_enum, default_value = "http")]
    backend_scheme: SchemeArg,
    /// A path that exercises the application.
    #[arg(long = "app-path", default_value = "/")]
    app_path: String,
    /// The load balancer's health-check path.
    #[arg(long = "health-path", default_value = "/")]
    health_path: String,
    /// Host header and TLS name for backend requests (default: the URL's host).
    #[arg(long)]
    host: Option<String>,
    #[arg(long = "lb-idle-timeout", default_value = "60s", value_parser = parse_duration)]
    lb_idle_timeout: PromDuration,
    #[arg(long = "lb-response-timeout", default_value = "60s", value_parser = parse_duration)]
    lb_response_timeout: PromDuration,
    /// Budget of each check (the keep-alive measurement runs up to the idle timeout plus a margin).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    timeout: PromDuration,
    /// PEM file of extra CA certificates to trust.
    #[arg(long = "tls-ca-file", value_name = "PATH")]
    tls_ca_file: Option<PathBuf>,
    /// Header size the large-header check sends (repeat; default 16384 and 40960). A load
    /// balancer may reject sizes above its documented limit with a 4xx.
    #[arg(long = "header-size", value_name = "BYTES")]
    header_sizes: Vec<usize>,
    /// Header size every hop must accept; any rejection at or below it is a finding.
    #[arg(long = "header-floor", value_name = "BYTES", default_value_t = crate::config::default_header_floor())]
    header_floor: usize,
    #[arg(long, value_enum, default_value = "text")]
    output: Output,
    /// Skip the keep-alive measurement, which lasts up to the LB idle timeout plus a margin (the
    /// evidence for target_keepalive_too_short).
    #[arg(long = "skip-keepalive")]
    skip_keepalive: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum SchemeArg {
    Http,
    Https,
}

fn parse_duration(text: &str) -> Result<PromDuration, String> {
    PromDuration::parse(text).map_err(|err| err.to_string())
}

pub fn run(args: DiagnoseArgs) -> i32 {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("lbtriage diagnose: cannot start the runtime: {err}");
            return 2;
        }
    };
    let (probe, discovered, title) = match (&args.url, &args.lb, &args.config_file) {
        (Some(url), _, _) => match url_probe(&args, url) {
            Ok(probe) => (probe, Discovered::default(), url.clone()),
            Err(code) => return code,
        },
        (None, Some(lb), Some(path)) => match runtime.block_on(lb_probe(lb, path)) {
            Ok(found) => found,
            Err(message) => {
                eprintln!("lbtriage diagnose: {message}");
                return 2;
            }
        },
        _ => {
            eprintln!("lbtriage diagnose: give --url, or --lb with --config.file");
            return 2;
        }
    };
    // On a terminal, text output shows the quick checks as they finish and what is still running;
    // anywhere else (and always for JSON) everything is printed once, at the end.
    let live = args.output == Output::Text && std::io::stdout().is_terminal();
    let (report, keepalive) = runtime.block_on(run_checks(&probe, &discovered, &args, &title, live));
    let found = findings::evaluate(&report, &keepalive);
    let catalog = Catalog::embedded();
    match args.output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&to_json(&found, &report, &keepalive, catalog)).unwrap_or_default()
        ),
        // The quick checks are on the screen already.
        Output::Text if live => print!(
            "{}{}",
            rows_text(&keepalive_rows(&report, &keepalive)),
            findings_text(&found, catalog)
        ),
        Output::Text => print!("{}", to_text(&title, &found, &report, &keepalive, catalog)),
    }
    i32::from(!found.is_empty())
}

/// How long `--lb` waits for the configured jobs' first inventories.
const DISCOVERY_DEADLINE: Duration = Duration::from_secs(60);

/// The automatic probe of `lb` (its `lb` label or its name) from the configured jobs'
/// inventories: every cloud job of the file runs one cycle (through the provider registry, as the
/// exporter would), until the load balancer is known or every source has reported once.
async fn lb_probe(lb: &str, path: &std::path::Path) -> Result<(Probe, Discovered, String), String> {
    let mut config = Config::load(path).map_err(|err| err.to_string())?;
    // Only the cloud jobs: no configured or automatic probe runs meanwhile.
    config.probes.clear();
    let auto = config.auto_probes.clone();
    config.auto_probes.when = crate::config::AutoProbeWhen::Never;
    let store = std::sync::Arc::new(crate::store::Store::new(crate::sources::source_keys(&config)));
    let discovered = std::sync::Arc::new(Discovered::default());
    let mut running = super::running::Running::new(store.clone(), discovered.clone()).wanting_facts();
    running.apply(&config).await.map_err(|err| format!("{err:#}"))?;
    let deadline = Instant::now() + DISCOVERY_DEADLINE;
    let matching = loop {
        let matching: Vec<(String, crate::runtime::LbFacts)> = discovered
            .all()
            .into_iter()
            .filter(|(key, facts, _)| key == lb || facts.name == lb)
            .map(|(key, facts, _)| (key, facts))
            .collect();
        if !matching.is_empty() || store.ready() || Instant::now() >= deadline {
            break matching;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    running.stop().await;
    let (key, facts) = match matching.as_slice() {
        [one] => one.clone(),
        [] => {
            return Err(format!(
                "no load balancer {lb:?} in the inventories of {}",
                path.display()
            ))
        }
        several => {
            let keys: Vec<&str> = several.iter().map(|(key, _)| key.as_str()).collect();
            return Err(format!(
                "{lb:?} names several load balancers: {}; give one of these",
                keys.join(", ")
            ));
        }
    };
    let (probe_config, front_door) = crate::probes::auto::probe_config(&key, &facts, &auto);
    let title = format!("{key} ({} {}, {})", facts.provider, facts.region, facts.name);
    let automatic = crate::probes::Automatic {
        reach: std::sync::Arc::new(crate::probes::reach::Reachability::default()),
        front_door,
    };
    let probe = Probe::automatic(probe_config, automatic).map_err(|err| err.to_string())?;
    let found = Discovered::default();
    found.update("diagnose", &key, facts);
    Ok((probe, found, title))
}

/// The probe of `--url` and the flags, validated as a configured probe is.
fn url_probe(args: &DiagnoseArgs, url: &str) -> Result<Probe, i32> {
    let probe_config = ProbeConfig {
        name: "diagnose".to_string(),
        url: url.to_string(),
        lb: None,
        backends: args.backends.clone(),
        discover_backends: false,
        backend_scheme: match args.backend_scheme {
            SchemeArg::Http => Scheme::Http,
            SchemeArg::Https => Scheme::Https,
        },
        app_path: args.app_path.clone(),
        health_path: args.health_path.clone(),
        host: args.host.clone(),
        lb_idle_timeout: Some(args.lb_idle_timeout),
        lb_response_timeout: args.lb_response_timeout,
        interval: args.timeout,
        timeout: args.timeout,
        vantage: "diagnose".to_string(),
        tls_ca_file: args.tls_ca_file.clone(),
        allow_link_local: false,
        header_sizes: if args.header_sizes.is_empty() {
            crate::config::default_header_sizes()
        } else {
            args.header_sizes.clone()
        },
        header_floor_bytes: args.header_floor,
    };
    let config = Config {
        probes: vec![probe_config.clone()],
        ..Config::default()
    };
    if let Err(err) = config.validate() {
        // Name the flag, not the config key it became.
        let flag = err
            .key
            .as_deref()
            .and_then(|k| k.rsplit('.').next())
            .unwrap_or("arguments");
        let flag = flag.split('[').next().unwrap_or(flag).replace('_', "-");
        eprintln!("lbtriage diagnose: --{flag}: {}", err.message);
        return Err(2);
    }
    Probe::new(probe_config).map_err(|err| {
        eprintln!("lbtriage diagnose: {err}");
        2
    })
}

/// The quick checks and the keep-alive measurement (unless skipped), side by side. With `live`,
/// the quick checks' rows are printed when they finish, and a status line says how long the
/// keep-alive measurement may still take.
async fn run_checks(
    probe: &Probe,
    discovered: &Discovered,
    args: &DiagnoseArgs,
    title: &str,
    live: bool,
) -> (Report, Vec<KeepAliveCheck>) {
    let limiter = limiter();
    let quick_done = std::sync::atomic::AtomicBool::new(false);
    let quick = async {
        let report = probe.run(&limiter, discovered).await;
        quick_done.store(true, std::sync::atomic::Ordering::Relaxed);
        if live {
            eprint!("\r\x1b[2K");
            print!("{}{}", heading(title), rows_text(&report_rows(&report)));
            use std::io::Write as _;
            let _ = std::io::stdout().flush();
        }
        report
    };
    let keepalive = async {
        if args.skip_keepalive {
            Vec::new()
        } else {
            probe.run_keepalive(&limiter, discovered).await
        }
    };
    let checks = async { tokio::join!(quick, keepalive) };
    if !live {
        return checks.await;
    }
    // The keep-alive measurement watches an idle connection for up to the idle timeout plus a margin.
    let idle = probe.lb_idle_timeout(discovered);
    let longest = idle + crate::probes::keepalive::margin(idle) + args.timeout.as_duration();
    let started = Instant::now();
    let progress = async {
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        loop {
            tick.tick().await;
            let left = longest.saturating_sub(started.elapsed());
            let running = if quick_done.load(std::sync::atomic::Ordering::Relaxed) {
                "the keep-alive measurement"
            } else {
                "the checks and the keep-alive measurement"
            };
            eprint!(
                "\r\x1b[2Klbtriage: {:.0}s; still running: {running} (up to {:.0}s more; --skip-keepalive skips it)",
                started.elapsed().as_secs_f64(),
                left.as_secs_f64()
            );
        }
    };
    let result = tokio::select! {
        result = checks => result,
        _ = progress => unreachable!("the progress loop never ends"),
    };
    eprint!("\r\x1b[2K");
    result
}

struct Row {
    check: &'static str,
    path: &'static str,
    target: String,
    ok: bool,
    summary: String,
    fields: Value,
}

fn ms(d: Duration) -> String {
    format!("{:.0}ms", d.as_secs_f64() * 1000.0)
}

/// Every check's row: the quick checks', then the keep-alive measurements'.
fn rows(report: &Report, keepalive: &[KeepAliveCheck]) -> Vec<Row> {
    let mut rows = report_rows(report);
    rows.extend(keepalive_rows(report, keepalive));
    rows
}

fn report_rows(report: &Report) -> Vec<Row> {
    let mut rows = Vec::new();
    let dns = &report.dns;
    let addresses: Vec<String> = dns.addresses.iter().map(|a| a.to_string()).collect();
    rows.push(Row {
        check: "dns",
        path: "lb",
        target: String::new(),
        ok: dns.failure.is_none(),
        summary: match &dns.failure {
            None => format!(
                "{} address(es) in {}: {}",
                addresses.len(),
                ms(dns.duration),
                addresses.join(", ")
            ),
            Some(failure) => failure.to_string(),
        },
        fields: json!({"addresses": addresses, "seconds": dns.duration.as_secs_f64()}),
    });
    for check in &report.http {
        let outcome = &check.outcome;
        let failure = outcome.failure();
        let phases: serde_json::Map<String, Value> = outcome
            .phases
            .named()
            .iter()
            .filter_map(|(name, took)| took.map(|t| (name.to_string(), json!(t.as_secs_f64()))))
            .collect();
        let timing = outcome
            .phases
            .named()
            .iter()
            .filter_map(|(n, t)| t.map(|t| format!("{n} {}", ms(t))))
            .collect::<Vec<_>>()
            .join(", ");
        rows.push(Row {
            check: if check.request == crate::probes::RequestKind::App {
                "http app"
            } else {
                "http health"
            },
            path: check.via.as_str(),
            target: check.target.to_string(),
            ok: failure.is_none(),
            summary: match (&failure, outcome.status()) {
                (None, Some(status)) => format!("{status} ({timing})"),
                (Some(failure), _) => failure.to_string(),
                (None, None) => "no response".to_string(),
            },
            fields: json!({
                "request": check.request.as_str(),
                "status": outcome.status(),
                "reason": failure.as_ref().map(|f| f.reason.as_str()),
                "detail": failure.as_ref().map(|f| f.detail.clone()),
                "phases": phases,
            }),
        });
        if let (crate::probes::RequestKind::App, Some(tls)) = (check.request, &outcome.tls) {
            rows.push(Row {
                check: "tls",
                path: check.via.as_str(),
                target: check.target.to_string(),
                ok: tls.trusted(),
                summary: format!(
                    "{}, chain {}, name {}, earliest expiry {}",
                    tls.version,
                    if tls.chain_valid { "valid" } else { "INVALID" },
                    if tls.hostname_match { "matches" } else { "DOES NOT MATCH" },
                    tls.earliest_expiry.map(|e| format!("unix {e}")).unwrap_or_else(|| "unknown".to_string())
                ),
                fields: json!({
                    "version": tls.version, "chain_valid": tls.chain_valid, "hostname_match": tls.hostname_match,
                    "earliest_expiry": tls.earliest_expiry, "problem": tls.problem,
                }),
            });
        }
    }
    for check in &report.tcp {
        rows.push(Row {
            check: "tcp",
            path: "backend",
            target: check.target.clone(),
            ok: check.result.is_ok(),
            summary: match &check.result {
                Ok(took) => format!("connected in {}", ms(*took)),
                Err(failure) => failure.to_string(),
            },
            fields: json!({"reason": check.result.as_ref().err().map(|f| f.reason.as_str())}),
        });
    }
    for (name, checks) in [
        ("large header", &report.large_headers),
        ("large body", &report.large_bodies),
    ] {
        for check in checks {
            let failure = check.failure();
            rows.push(Row {
                check: name,
                path: check.via.as_str(),
                target: check.target.to_string(),
                ok: failure.is_none(),
                summary: match &failure {
                    None => format!("{} bytes: {}", check.bytes, check.outcome.status().unwrap_or(0)),
                    Some(failure) => format!("{} bytes: {failure}", check.bytes),
                },
                fields: json!({"bytes": check.bytes, "reason": failure.as_ref().map(|f| f.reason.as_str())}),
            });
        }
    }
    rows
}

fn keepalive_rows(report: &Report, keepalive: &[KeepAliveCheck]) -> Vec<Row> {
    let mut rows = Vec::new();
    for check in keepalive {
        let (ok, summary, fields) = match &check.result {
            KeepAlive::Closed(after) => (
                *after >= report.lb_idle_timeout,
                format!(
                    "closed an idle connection after {:.1}s (LB idle timeout {:.1}s)",
                    after.as_secs_f64(),
                    report.lb_idle_timeout.as_secs_f64()
                ),
                json!({"closed_after_seconds": after.as_secs_f64()}),
            ),
            KeepAlive::StayedOpen(watched) => (
                true,
                format!("kept an idle connection open for {:.1}s", watched.as_secs_f64()),
                json!({"open_for_seconds": watched.as_secs_f64()}),
            ),
            KeepAlive::NotOffered => (
                true,
                "answers Connection: close (no reuse)".to_string(),
                json!({"offered": false}),
            ),
            KeepAlive::Failed(failure) => (
                false,
                failure.to_string(),
                json!({"reason": failure.reason.as_str()}),
            ),
        };
        rows.push(Row {
            check: "keep-alive",
            path: "backend",
            target: check.target.to_string(),
            ok,
            summary,
            fields,
        });
    }
    rows
}

fn to_json(found: &[Finding], report: &Report, keepalive: &[KeepAliveCheck], catalog: &Catalog) -> Value {
    let findings: Vec<Value> = found
        .iter()
        .map(|f| {
            let cause = catalog.cause(f.cause);
            json!({
                "cause": f.cause,
                "title": cause.map(|c| c.title.clone()).unwrap_or_default(),
                "evidence": f.evidence,
                "runbook": cause.map(|c| c.runbook()).unwrap_or_default(),
            })
        })
        .collect();
    let checks: Vec<Value> = rows(report, keepalive)
        .into_iter()
        .map(|row| {
            let mut value = json!({"check": row.check, "path": row.path, "target": row.target, "ok": row.ok, "summary": row.summary});
            if let (Some(object), Value::Object(fields)) = (value.as_object_mut(), row.fields) {
                object.extend(fields);
            }
            value
        })
        .collect();
    json!({"findings": findings, "checks": checks})
}

fn to_text(
    url: &str,
    found: &[Finding],
    report: &Report,
    keepalive: &[KeepAliveCheck],
    catalog: &Catalog,
) -> String {
    format!(
        "{}{}{}",
        heading(url),
        rows_text(&rows(report, keepalive)),
        findings_text(found, catalog)
    )
}

fn heading(url: &str) -> String {
    format!("lbtriage diagnose {url}\n\nChecks\n")
}

fn rows_text(rows: &[Row]) -> String {
    rows.iter()
        .map(|row| {
            format!(
                "  {} {:<12} {:<8} {:<22} {}\n",
                if row.ok { "ok  " } else { "FAIL" },
                row.check,
                row.path,
                row.target,
                row.summary
            )
        })
        .collect()
}

fn findings_text(found: &[Finding], catalog: &Catalog) -> String {
    if found.is_empty() {
        return "\nNo findings: nothing these checks can see explains load-balancer errors.\n".to_string();
    }
    let mut out = String::from("\nSuspected causes\n");
    for finding in found {
        let cause = catalog.cause(finding.cause);
        out.push_str(&format!(
            "  {} — {}\n",
            finding.cause,
            cause.map(|c| c.title.as_str()).unwrap_or("")
        ));
        for line in &finding.evidence {
            out.push_str(&format!("    - {line}\n"));
        }
        if let Some(cause) = cause {
            out.push_str(&format!("    runbook: {}\n", cause.runbook()));
        }
    }
    out
}
