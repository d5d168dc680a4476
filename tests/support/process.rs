//! Child processes: the lbtriage binary (exporter, plan, tools), the Python servers, and
//! waiting on a condition with a deadline.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::ports::*;

/// Polls `condition` until it holds or `timeout` passes; panics naming `what` on timeout.
pub fn wait_until(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if condition() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out after {timeout:?} waiting for {what}");
}

/// Polls `check` every half second until it returns a value; fails the test at the deadline.
pub async fn eventually<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// A child process killed when dropped.
pub struct Process(pub Child);

impl Process {
    /// Sends `signal` (`TERM`, `HUP`, ...) with the system's `kill`.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([format!("-{signal}"), self.0.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} failed");
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The lbtriage binary under test, with static test credentials so the AWS default chain never
/// looks further (no instance metadata).
pub fn lbtriage_command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_lbtriage"));
    command
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    command
}

/// Runs `lbtriage plan --output json` on `config_yaml` with `env` set; fails the test unless it
/// succeeds, and returns the document it printed.
pub fn run_plan(config_yaml: &str, env: &[(&str, &str)]) -> serde_json::Value {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("lbtriage.yml");
    std::fs::write(&config, config_yaml).expect("write config");
    let output = lbtriage_command()
        .envs(env.iter().copied())
        .args([
            "plan",
            "--config.file",
            &config.to_string_lossy(),
            "--output",
            "json",
        ])
        .output()
        .expect("run lbtriage plan");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("plan JSON")
}

/// The exporter under test: its process and everything it logged.
pub struct Exporter {
    pub process: Process,
    log: Option<std::thread::JoinHandle<String>>,
}

impl Exporter {
    pub fn signal(&self, signal: &str) {
        self.process.signal(signal);
    }

    pub fn id(&self) -> u32 {
        self.process.0.id()
    }

    pub fn try_wait(&mut self) -> Option<std::process::ExitStatus> {
        self.process.0.try_wait().ok().flatten()
    }

    /// Everything it logged (stderr); waits for the process to end first.
    pub fn log(&mut self) -> String {
        let _ = self.process.0.wait();
        self.log
            .take()
            .and_then(|reader| reader.join().ok())
            .unwrap_or_default()
    }
}

/// Runs the exporter with `config` on loopback port 0 and learns the port it bound from its
/// "listening" log line, so no port is guessed; `extra` adds flags or environment (later `env`
/// calls override the test credentials). Returns the exporter and its port.
pub fn start_exporter(config: &Path, extra: impl FnOnce(&mut Command)) -> (Exporter, u16) {
    let mut command = lbtriage_command();
    command
        .arg(format!("--config.file={}", config.display()))
        .arg("--web.listen-address=127.0.0.1:0")
        .arg("--log.format=logfmt");
    extra(&mut command);
    spawn_exporter(command)
}

/// Starts an exporter command that listens on port 0 (directly, or inside a container sharing this
/// host's network) and reads the port from its "listening" log line.
pub fn spawn_exporter(mut command: Command) -> (Exporter, u16) {
    use std::io::BufRead as _;
    command.stderr(Stdio::piped());
    let mut child = command.spawn().expect("start lbtriage");
    let stderr = child.stderr.take().expect("stderr is piped");
    let (port_tx, port_rx) = std::sync::mpsc::channel();
    let log = std::thread::spawn(move || {
        let mut log = String::new();
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("msg=\"lbtriage listening\"") {
                let port = line
                    .split_whitespace()
                    .find_map(|field| field.strip_prefix("address="))
                    .and_then(|address| address.rsplit_once(':'))
                    .and_then(|(_, port)| port.parse::<u16>().ok());
                let _ = port_tx.send(port);
            }
            log.push_str(&line);
            log.push('\n');
        }
        log
    });
    let process = Process(child);
    let port = port_rx
        .recv_timeout(Duration::from_secs(30))
        .ok()
        .flatten()
        .expect("lbtriage logs the address it listens on");
    (
        Exporter {
            process,
            log: Some(log),
        },
        port,
    )
}

/// Runs one of the test's Python servers (`tests/emulator/<script>`) in the project virtualenv,
/// serving on `port`'s socket.
pub fn python_server(script: &str, port: &HeldPort, args: &[&str]) -> Process {
    let mut command = Command::new(python());
    command
        .arg(repo_root().join("tests/emulator").join(script))
        .args(["--listen-fd", "3"])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    port.pass_to(&mut command);
    Process(
        command
            .spawn()
            .unwrap_or_else(|err| panic!("start {script}: {err}")),
    )
}

/// Runs a tool from the repository root; returns whether it succeeded and all it printed.
/// `installed_by` names what installs it, for the message when it is missing.
pub fn run_tool(program: &str, args: &[&str], installed_by: &str) -> (bool, String) {
    let output = Command::new(program)
        .args(args)
        .current_dir(repo_root())
        .output()
        .unwrap_or_else(|err| panic!("{program} must be installed ({installed_by}): {err}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// Starts a third-party server that takes a port number (Prometheus, Alertmanager, chromedriver).
/// It cannot take a held socket, so it gets a port the kernel just handed out; a start that loses
/// that port to another process (the server exits before it is `ready`) is retried on a new one,
/// three times at most.
pub fn start_on_a_port(
    what: &str,
    command: impl Fn(u16) -> Command,
    ready: impl Fn(u16) -> bool,
) -> (Process, u16) {
    for attempt in 1..=3 {
        let port = free_port();
        let mut process = Process(
            command(port)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|err| panic!("{what} must be installed (make test installs it): {err}")),
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = process.0.try_wait() {
                assert!(attempt < 3, "{what} exited ({status}) three times");
                break;
            }
            if ready(port) {
                return (process, port);
            }
            assert!(Instant::now() < deadline, "{what} did not answer within 30 s");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    unreachable!("the last attempt returns or fails its assertion")
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate lives one level below the repository root")
        .to_path_buf()
}

/// The project virtualenv's Python (made by `make venv`), or `LBTRIAGE_TEST_PYTHON`.
pub fn python() -> PathBuf {
    let path = std::env::var_os("LBTRIAGE_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv/bin/python"));
    assert!(
        path.exists(),
        "{} not found: run `make test` (it creates the virtualenv with moto) or set LBTRIAGE_TEST_PYTHON",
        path.display()
    );
    path
}
