//! Command line: `lbtriage [flags]` runs the exporter; subcommands do one-off jobs.

pub mod diagnose;
mod logging;
mod plan;
mod running;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use tokio::sync::watch;

use self::running::Running;
use crate::config::Config;
use crate::server::{self, AppState};
use crate::store::{families, Sample, Store};

pub use logging::{LogFormat, LogLevel};

/// Not in use by any other exporter we know of (9100-9999 is fully allocated); mnemonic for 502.
pub const DEFAULT_LISTEN_ADDRESS: &str = ":10502";

#[derive(Debug, Parser)]
#[command(
    name = "lbtriage",
    version,
    about = "Prometheus exporter that names the cause of load-balancer 5xx"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate a configuration file and exit: 0 when valid, 1 with the offending key otherwise.
    CheckConfig(ConfigArg),
    /// Run every probe check once against a URL and its backends (or a load balancer the
    /// configured clouds' inventories know), and name the suspected causes.
    Diagnose(Box<diagnose::DiagnoseArgs>),
    /// Discover the fleet (read-only calls) and price its collection per job and region.
    Plan {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long, value_enum, default_value = "text")]
        output: diagnose::Output,
    },
    /// Exit 0 when the exporter at the address answers `/-/healthy` with 200 within 5 s, 1
    /// otherwise: the container image's health check, which has no shell or HTTP client.
    Healthcheck {
        /// The exporter's address; a bare `:port` means this host.
        #[arg(long = "web.listen-address", value_name = "HOST:PORT", default_value = DEFAULT_LISTEN_ADDRESS)]
        listen_address: String,
    },
    /// List the cause catalog.
    Causes {
        #[arg(long, value_enum, default_value = "text")]
        output: diagnose::Output,
    },
    /// Print the Prometheus rule file, with the `rules:` overrides of a config file if given.
    Rules {
        #[arg(long = "config.file", value_name = "PATH")]
        config_file: Option<PathBuf>,
    },
    /// Write the Grafana dashboards, with the runbook base URL of a config file's `rules:` if given.
    Dashboards {
        #[arg(long = "config.file", value_name = "PATH")]
        config_file: Option<PathBuf>,
        /// Directory to write the dashboard JSON files into.
        #[arg(long = "output-dir", value_name = "DIR", default_value = "grafana/dashboards")]
        output_dir: PathBuf,
    },
}

#[derive(Debug, Args)]
struct ConfigArg {
    /// Path to the configuration file.
    #[arg(long = "config.file", value_name = "PATH", default_value = "lbtriage.yml")]
    config_file: PathBuf,
}

#[derive(Debug, Args)]
struct RunArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Address to listen on for the web interface and telemetry.
    #[arg(long = "web.listen-address", value_name = "HOST:PORT", default_value = DEFAULT_LISTEN_ADDRESS)]
    listen_address: String,
    /// Path to the web configuration (exporter-toolkit format): TLS and basic authentication.
    #[arg(long = "web.config.file", value_name = "PATH")]
    web_config_file: Option<PathBuf>,
    /// Path under which to expose metrics.
    #[arg(long = "web.telemetry-path", value_name = "PATH", default_value = "/metrics")]
    telemetry_path: String,
    /// Only log messages with the given severity or above.
    #[arg(long = "log.level", value_enum, default_value = "info")]
    log_level: LogLevel,
    /// Output format of log messages.
    #[arg(long = "log.format", value_enum, default_value = "logfmt")]
    log_format: LogFormat,
}

/// Entry point of the binary; returns the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::CheckConfig(arg)) => check_config(&arg.config_file),
        Some(Command::Diagnose(args)) => diagnose::run(*args),
        Some(Command::Plan { config, output }) => plan::run(&config.config_file, output),
        Some(Command::Causes { output }) => causes(output),
        Some(Command::Healthcheck { listen_address }) => healthcheck(&listen_address),
        Some(Command::Rules { config_file }) => rules(config_file.as_deref()),
        Some(Command::Dashboards {
            config_file,
            output_dir,
        }) => dashboards(config_file.as_deref(), &output_dir),
        None => {
            logging::init(cli.run.log_level, cli.run.log_format);
            match run_exporter(cli.run) {
                Ok(()) => 0,
                Err(err) => {
                    tracing::error!(error = format!("{err:#}"), "exiting");
                    1
                }
            }
        }
    }
}

fn check_config(path: &std::path::Path) -> i32 {
    match Config::load(path) {
        Ok(config) => {
            let sources = crate::sources::source_keys(&config).len();
            println!("{}: valid ({sources} source job/region pairs)", path.display());
            0
        }
        Err(err) => {
            eprintln!("{}: {err}", path.display());
            1
        }
    }
}

fn causes(output: diagnose::Output) -> i32 {
    let catalog = crate::catalog::Catalog::embedded();
    match output {
        diagnose::Output::Json => {
            let causes: Vec<serde_json::Value> = catalog
                .causes
                .iter()
                .map(|cause| {
                    serde_json::json!({
                        "cause": cause.id,
                        "title": cause.title,
                        "layer": cause.layer.as_str(),
                        "severity": cause.severity.as_str(),
                        "alert": cause.alert.as_ref().map(|_| cause.alert_name()),
                        "evidence": cause.evidence,
                        "sources": cause.sources.iter().filter_map(|s| catalog.guides.get(s)).collect::<Vec<_>>(),
                        "runbook": cause.runbook(),
                    })
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&causes).unwrap_or_default());
        }
        diagnose::Output::Text => {
            for cause in &catalog.causes {
                let alert = cause
                    .alert
                    .as_ref()
                    .map(|_| cause.alert_name())
                    .unwrap_or_else(|| "-".to_string());
                println!(
                    "{:<32} {:<9} {:<32} {}",
                    cause.id,
                    cause.severity.as_str(),
                    alert,
                    cause.title
                );
            }
        }
    }
    0
}

/// The `rules:` section of a config file, or the defaults without one.
fn rules_config(config_file: Option<&std::path::Path>) -> Option<crate::config::RulesConfig> {
    match config_file.map(Config::load).transpose() {
        Ok(config) => Some(config.map(|c| c.rules).unwrap_or_default()),
        Err(err) => {
            eprintln!("{err}");
            None
        }
    }
}

fn dashboards(config_file: Option<&std::path::Path>, output_dir: &std::path::Path) -> i32 {
    let Some(config) = rules_config(config_file) else {
        return 1;
    };
    if let Err(err) = std::fs::create_dir_all(output_dir) {
        eprintln!("{}: {err}", output_dir.display());
        return 1;
    }
    for (name, text) in crate::dashboards::render_all(crate::catalog::Catalog::embedded(), &config) {
        let path = output_dir.join(name);
        if let Err(err) = std::fs::write(&path, text) {
            eprintln!("{}: {err}", path.display());
            return 1;
        }
        println!("wrote {}", path.display());
    }
    0
}

fn rules(config_file: Option<&std::path::Path>) -> i32 {
    let Some(config) = rules_config(config_file) else {
        return 1;
    };
    match crate::rules::render_rules(crate::catalog::Catalog::embedded(), &config) {
        Ok(text) => {
            print!("{text}");
            0
        }
        Err(err) => {
            eprintln!("{err}");
            1
        }
    }
}

/// `:10502` means every interface, as in the Go exporters.
/// One `GET /-/healthy` over plain HTTP/1.1, bounded in time and bytes.
fn healthcheck(address: &str) -> i32 {
    use std::io::{Read as _, Write as _};
    use std::net::ToSocketAddrs as _;
    const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
    let address = if address.starts_with(':') {
        format!("127.0.0.1{address}")
    } else {
        address.to_string()
    };
    let check = || -> Result<bool, String> {
        let target = address
            .to_socket_addrs()
            .map_err(|err| err.to_string())?
            .next()
            .ok_or("no address")?;
        let mut stream =
            std::net::TcpStream::connect_timeout(&target, TIMEOUT).map_err(|err| err.to_string())?;
        stream
            .set_read_timeout(Some(TIMEOUT))
            .map_err(|err| err.to_string())?;
        stream
            .set_write_timeout(Some(TIMEOUT))
            .map_err(|err| err.to_string())?;
        stream
            .write_all(b"GET /-/healthy HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .map_err(|err| err.to_string())?;
        let mut head = [0u8; 64];
        let read = stream.read(&mut head).map_err(|err| err.to_string())?;
        Ok(head[..read].starts_with(b"HTTP/1.1 200"))
    };
    match check() {
        Ok(true) => 0,
        Ok(false) => {
            eprintln!("healthcheck: {address} answered, not healthy");
            1
        }
        Err(err) => {
            eprintln!("healthcheck: {address}: {err}");
            1
        }
    }
}

fn listen_address(raw: &str) -> String {
    if raw.starts_with(':') {
        format!("0.0.0.0{raw}")
    } else {
        raw.to_string()
    }
}

fn run_exporter(args: RunArgs) -> anyhow::Result<()> {
    let config = Config::load(&args.config.config_file)
        .with_context(|| format!("loading {}", args.config.config_file.display()))?;
    if !args.telemetry_path.starts_with('/') {
        anyhow::bail!(
            "--web.telemetry-path must start with '/', got {:?}",
            args.telemetry_path
        );
    }
    let access = Arc::new(match &args.web_config_file {
        Some(path) => server::Access::load(path.clone())?,
        None => server::Access::open(),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let store = Arc::new(Store::new(crate::sources::source_keys(&config)));
        let address = listen_address(&args.listen_address);
        let listener = tokio::net::TcpListener::bind(&address)
            .await
            .with_context(|| format!("listening on {address}"))?;
        tracing::info!(address = %listener.local_addr().map(|a| a.to_string()).unwrap_or(address), version = env!("CARGO_PKG_VERSION"), "lbtriage listening");

        let discovered = Arc::new(crate::runtime::Discovered::default());
        let mut running = Running::new(store.clone(), discovered.clone());
        running.apply(&config).await?;
        let mut last_reload_success = (crate::runtime::system_clock())();
        publish_reload(&store, true, last_reload_success);
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let (reload_tx, mut reload_rx) = tokio::sync::mpsc::channel(4);
        let state = Arc::new(AppState {
            store: store.clone(),
            telemetry_path: args.telemetry_path,
            static_samples: vec![build_info()],
            reload: reload_tx,
            access: access.clone(),
            fleet: crate::server::fleet::History::default(),
        });
        tokio::spawn(server::access::watch(access, shutdown_rx.clone()));
        let server = tokio::spawn(server::serve(listener, state, shutdown_rx));

        use tokio::signal::unix::{signal, SignalKind};
        let mut terminate = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
        let mut interrupt = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
        let mut hangup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
        loop {
            let reply = tokio::select! {
                _ = terminate.recv() => break,
                _ = interrupt.recv() => break,
                _ = hangup.recv() => None,
                request = reload_rx.recv() => match request {
                    Some(reply) => Some(reply),
                    None => continue,
                },
            };
            let outcome = reload(&args.config.config_file, &store, &mut running).await;
            if let Err(err) = &outcome {
                tracing::error!(error = %err, "reload failed; the previous configuration keeps running");
            }
            if outcome.is_ok() {
                last_reload_success = (crate::runtime::system_clock())();
            }
            publish_reload(&store, outcome.is_ok(), last_reload_success);
            if let Some(reply) = reply {
                let _ = reply.send(outcome.map_err(|err| format!("{err:#}")));
            }
        }
        tracing::info!("shutting down");
        let _ = shutdown_tx.send(true);
        running.stop().await;
        server.await.context("server task")?.context("server")?;
        Ok(())
    })
}

const CONFIG_SOURCE: &str = "lbtriage/config";

/// Reads the config file again; only a valid one is applied, and only what changed restarts.
async fn reload(path: &std::path::Path, store: &Arc<Store>, running: &mut Running) -> anyhow::Result<()> {
    let config = Config::load(path).with_context(|| format!("loading {}", path.display()))?;
    running.apply(&config).await?;
    // The probes that keep running keep their series and findings; removed ones lose them.
    let probes: Vec<String> = config
        .sharded_probes()
        .map(|probe| crate::probes::runner::source_key(&probe.name))
        .collect();
    let mut keep: Vec<&str> = probes.iter().map(String::as_str).collect();
    keep.push(CONFIG_SOURCE);
    // The auto prober keeps running across a reload that does not change it: so do its series.
    let automatic: Vec<String> = store
        .keys()
        .into_iter()
        .filter(|key| crate::probes::auto::owns_key(key))
        .collect();
    keep.extend(automatic.iter().map(String::as_str));
    store.reconfigure(crate::sources::source_keys(&config), &keep);
    tracing::info!(file = %path.display(), "configuration reloaded");
    Ok(())
}

fn publish_reload(store: &Store, success: bool, last_success: i64) {
    store.publish(
        CONFIG_SOURCE,
        vec![
            Sample::new(
                &families::CONFIG_LAST_RELOAD_SUCCESSFUL,
                vec![],
                f64::from(u8::from(success)),
            ),
            Sample::new(&families::CONFIG_LAST_RELOAD_SUCCESS, vec![], last_success as f64),
        ],
    );
}

fn build_info() -> Sample {
    Sample::new(
        &families::BUILD_INFO,
        vec![("version".into(), env!("CARGO_PKG_VERSION").to_string())],
        1.0,
    )
}
