//! Shared test harness: the emulator (moto behind the CBOR bridge), a small HTTP client, exposition
//! parsing, and waiting on conditions with a deadline.

#![allow(dead_code)]

pub mod servers;
pub mod stack;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use lbtriage::config::Config;
use lbtriage::sources::aws::{client, AwsSource, Clients};
use lbtriage::sources::Source;
use lbtriage::store::{render, Format};

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

/// A port the kernel just handed out and took back: only for servers that cannot take a held
/// socket, through [`start_on_a_port`] (which retries a start that loses it) or nginx's own retry.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free loopback port")
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

/// A loopback port that refuses connections for as long as the returned socket lives: bound but
/// never listening, so no other test can take it meanwhile (a merely free port could be).
pub fn refusing_port() -> (tokio::net::TcpSocket, std::net::SocketAddr) {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind("127.0.0.1:0".parse().expect("addr"))
        .expect("bind loopback");
    let addr = socket.local_addr().expect("local addr");
    (socket, addr)
}

/// A loopback port whose connects time out for as long as this lives, as a target behind a
/// security group that admits only the load balancer: it listens with a backlog of one and never
/// accepts, and the connection it holds fills that backlog, so the kernel drops every further SYN.
pub struct NeverAccepting {
    _listener: tokio::net::TcpListener,
    _filler: std::net::TcpStream,
    pub addr: std::net::SocketAddr,
}

impl NeverAccepting {
    /// Within a Tokio runtime.
    pub fn new() -> NeverAccepting {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket
            .bind("127.0.0.1:0".parse().expect("addr"))
            .expect("bind loopback");
        let listener = socket.listen(0).expect("listen");
        let addr = listener.local_addr().expect("local addr");
        let filler = std::net::TcpStream::connect(addr).expect("fill the backlog");
        NeverAccepting {
            _listener: listener,
            _filler: filler,
            addr,
        }
    }
}

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

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// moto's server with the CBOR bridge in front: `endpoint` serves every AWS client.
pub struct Emulator {
    pub endpoint: String,
    pub moto_endpoint: String,
    pub bridge_port: u16,
    moto_port: u16,
    /// The bridge's socket, held while it runs; dropped when it is killed (a crashed server's port
    /// refuses connections) and bound again on the same port when it restarts.
    bridge_socket: Option<HeldPort>,
    bridge: Option<Process>,
    moto: Option<Process>,
    _moto_socket: HeldPort,
}

/// A loopback port bound and listening for as long as this lives. A child process gets the socket
/// itself (as fd 3, `--listen-fd 3`), so the port is never guessed free and nothing else can take
/// it, not even while the child restarts.
pub struct HeldPort {
    listener: TcpListener,
    pub port: u16,
}

impl HeldPort {
    pub fn new() -> HeldPort {
        Self::on(0)
    }

    /// `port` again (a restart on the port clients know); 0 lets the kernel choose.
    pub fn on(port: u16) -> HeldPort {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind a loopback port");
        let port = listener.local_addr().expect("local address").port();
        HeldPort { listener, port }
    }

    /// The child of `command` finds the socket at fd 3.
    pub fn pass_to(&self, command: &mut Command) {
        use std::os::fd::AsRawFd as _;
        use std::os::unix::process::CommandExt as _;
        let fd = self.listener.as_raw_fd();
        // SAFETY: runs in the child between fork and exec, calling only async-signal-safe
        // functions (dup2, fcntl) on a descriptor the parent keeps open.
        unsafe {
            command.pre_exec(move || {
                if fd == 3 {
                    // dup2 onto itself keeps close-on-exec: clear it instead.
                    if libc::fcntl(3, libc::F_SETFD, 0) == -1 {
                        return Err(std::io::Error::last_os_error());
                    }
                } else if libc::dup2(fd, 3) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
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

fn spawn_bridge(socket: &HeldPort, moto_port: u16) -> Process {
    python_server("cbor_bridge.py", socket, &["--moto-port", &moto_port.to_string()])
}

impl Emulator {
    pub fn start() -> Emulator {
        let moto_socket = HeldPort::new();
        let moto_port = moto_socket.port;
        let moto = python_server("moto_server.py", &moto_socket, &[]);
        let bridge_socket = HeldPort::new();
        let bridge_port = bridge_socket.port;
        let bridge = spawn_bridge(&bridge_socket, moto_port);
        wait_until("moto and the bridge to answer", Duration::from_secs(30), || {
            http_get(moto_port, "/moto-api/", &[]).is_ok() && http_get(bridge_port, "/moto-api/", &[]).is_ok()
        });
        Emulator {
            endpoint: format!("http://127.0.0.1:{bridge_port}"),
            moto_endpoint: format!("http://127.0.0.1:{moto_port}"),
            bridge_port,
            moto_port,
            bridge_socket: Some(bridge_socket),
            bridge: Some(bridge),
            moto: Some(moto),
            _moto_socket: moto_socket,
        }
    }

    /// Kills the CloudWatch front end (the bridge) as a crash would; moto keeps its state.
    pub fn kill_bridge(&mut self) {
        self.bridge = None;
        self.bridge_socket = None;
    }

    /// Starts the bridge again on the same port.
    pub fn restart_bridge(&mut self) {
        let socket = HeldPort::on(self.bridge_port);
        self.bridge = Some(spawn_bridge(&socket, self.moto_port));
        self.bridge_socket = Some(socket);
        wait_until("the bridge to answer again", Duration::from_secs(30), || {
            http_get(self.bridge_port, "/moto-api/", &[]).is_ok()
        });
    }

    /// Runs `tests/emulator/seed.py` with `spec`; returns the fleet it printed.
    pub fn seed(&self, spec: &serde_json::Value, fleet: Option<&Path>) -> serde_json::Value {
        let mut command = Command::new(python());
        command
            .arg(repo_root().join("tests/emulator/seed.py"))
            .args(["--endpoint", &self.moto_endpoint])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(fleet) = fleet {
            command.arg("--fleet").arg(fleet);
        }
        let mut child = command.spawn().expect("run seed.py");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(spec.to_string().as_bytes())
            .expect("write the spec");
        let output = child.wait_with_output().expect("seed.py output");
        assert!(
            output.status.success(),
            "seed.py failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).expect("seed.py prints JSON")
    }

    /// Makes the bridge answer the next `count` CloudWatch requests with ThrottlingException.
    pub fn throttle_cloudwatch(&self, count: u32) {
        let port = self.port();
        let body = format!("{{\"throttle\": {count}}}");
        let response =
            http_request(port, "POST", "/__bridge/faults", &[], body.as_bytes()).expect("bridge control");
        assert_eq!(response.status, 200);
    }

    /// These EC2 and ELB actions are refused as IAM refuses an action the policy does not grant.
    pub fn deny(&self, actions: &[&str]) {
        let body = serde_json::json!({ "deny": actions }).to_string();
        let response = http_request(self.port(), "POST", "/__bridge/faults", &[], body.as_bytes())
            .expect("bridge control");
        assert_eq!(response.status, 200);
    }

    /// CloudWatch requests the bridge received, retries included.
    pub fn cloudwatch_requests(&self) -> u64 {
        let response = http_get(self.port(), "/__bridge/stats", &[]).expect("bridge stats");
        let stats: serde_json::Value = serde_json::from_slice(&response.body).expect("stats JSON");
        stats["cloudwatch_requests"].as_u64().expect("a count")
    }

    fn port(&self) -> u16 {
        self.endpoint
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("endpoint port")
    }

    /// Stops moto and the bridge and closes the bridge's port: the cloud API refuses connections
    /// (a held port would accept them into its backlog, and each call would wait out its timeout).
    pub fn kill(&mut self) {
        self.bridge.take();
        self.bridge_socket.take();
        self.moto.take();
    }
}

/// The `lb` dimension `seed.py` reported for a load balancer of the fleet.
pub fn dimension(fleet: &serde_json::Value, key: &str) -> String {
    fleet[key]["dimension"]
        .as_str()
        .unwrap_or_else(|| panic!("the seeded fleet has no {key}"))
        .to_string()
}

pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A minimal HTTP/1.1 GET over loopback with `Connection: close`.
pub fn http_get(port: u16, path: &str, headers: &[(&str, &str)]) -> std::io::Result<HttpResponse> {
    http_request(port, "GET", path, headers, b"")
}

/// A minimal HTTP/1.1 request with a body, over loopback with `Connection: close`.
pub fn http_request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<HttpResponse> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes())?;
    stream.write_all(body)?;
    // Read to the end of the body: the close, or Content-Length bytes for servers (chromedriver)
    // that keep the connection open despite `Connection: close`.
    let mut raw = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let read = stream.read(&mut chunk)?;
        if read == 0 {
            break;
        }
        raw.extend_from_slice(&chunk[..read]);
        if let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length:"))
                .and_then(|value| value.trim().parse::<usize>().ok());
            if length.is_some_and(|length| raw.len() >= split + 4 + length) {
                break;
            }
        }
    }
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no header end"))?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other("bad status line"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = data.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(String::from_utf8_lossy(&data[..end]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = end + 2;
        out.extend_from_slice(&data[start..(start + size).min(data.len())]);
        data = &data[(start + size + 2).min(data.len())..];
    }
    out
}

/// One parsed exposition line.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

impl Series {
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses Prometheus text or OpenMetrics sample lines (comments skipped).
pub fn parse_exposition(text: &str) -> Vec<Series> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("sample line has a value");
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, parse_labels(rest.trim_end_matches('}'))),
                None => (series, Vec::new()),
            };
            Series {
                name: name.to_string(),
                labels,
                value: value.parse().unwrap_or(f64::NAN),
            }
        })
        .collect()
}

fn parse_labels(text: &str) -> Vec<(String, String)> {
    let mut labels = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        let name: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if name.is_empty() {
            return labels;
        }
        assert_eq!(chars.next(), Some('"'));
        let mut value = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(other) => value.push(other),
                    None => break,
                },
                '"' => break,
                c => value.push(c),
            }
        }
        labels.push((name.trim_start_matches(',').to_string(), value));
        if chars.peek() == Some(&',') {
            chars.next();
        }
    }
}

/// The single series of `name` carrying all of `labels`; panics when none or several match.
pub fn find<'a>(series: &'a [Series], name: &str, labels: &[(&str, &str)]) -> &'a Series {
    let matches: Vec<&Series> = series
        .iter()
        .filter(|s| s.name == name && labels.iter().all(|(k, v)| s.label(k) == Some(*v)))
        .collect();
    assert_eq!(
        matches.len(),
        1,
        "expected one {name}{labels:?}, found {matches:#?}"
    );
    matches[0]
}

pub fn value(series: &[Series], name: &str, labels: &[(&str, &str)]) -> f64 {
    find(series, name, labels).value
}

pub fn count(series: &[Series], name: &str, labels: &[(&str, &str)]) -> usize {
    series
        .iter()
        .filter(|s| s.name == name && labels.iter().all(|(k, v)| s.label(k) == Some(*v)))
        .count()
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

/// Runs `promtool check metrics` on exposition text; returns its findings (empty when clean).
pub fn promtool_check_metrics(text: &str) -> String {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool must be installed (make test installs the prometheus package)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write metrics");
    let output = child.wait_with_output().expect("promtool output");
    let findings = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if output.status.success() && findings.trim().is_empty() {
        String::new()
    } else {
        format!("exit {:?}: {findings}", output.status.code())
    }
}

/// An in-process AWS source against the emulator, with a clock the test steps.
pub struct Harness {
    pub source: AwsSource,
    clock: Arc<AtomicI64>,
}

impl Harness {
    pub async fn new(endpoint: &str, extra_yaml: &str) -> Harness {
        let yaml = format!(
            "aws:\n  - name: test\n    regions: [us-east-1]\n    endpoint_url: {endpoint}\n    period: 60s\n    delay: 120s\n{extra_yaml}"
        );
        let config = Config::parse(&yaml).expect("test config is valid");
        let job = config.aws[0].clone();
        let credentials =
            SharedCredentialsProvider::new(Credentials::new("testing", "testing", None, None, "test"));
        let sdk = client::sdk_config_with_credentials(&job, "us-east-1", Some(credentials)).await;
        let clock = Arc::new(AtomicI64::new(0));
        let reader = clock.clone();
        let source = AwsSource::new(
            job,
            "us-east-1".to_string(),
            Clients::new(&sdk),
            Arc::new(move || reader.load(Ordering::SeqCst)),
        );
        Harness { source, clock }
    }

    /// The same source watching only shard `index` of `count`.
    pub fn with_shard(self, index: u32, count: u32) -> Harness {
        let shard = lbtriage::config::ShardAssignment { index, count };
        Harness {
            source: self.source.with_shard(Some(shard)),
            clock: self.clock,
        }
    }

    pub async fn collect_at(&mut self, now: i64) -> Vec<Series> {
        self.clock.store(now, Ordering::SeqCst);
        let samples = self.source.collect().await;
        parse_exposition(&render(samples.iter(), Format::Prometheus))
    }
}

/// An hour ago, on a minute boundary: every seeded period lies in the past.
pub fn base_time() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    now / 60 * 60 - 3600
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

/// The AccessKey pair the CloudMonitor test server accepts.
pub const ALIBABA_KEY_ID: &str = "LTAItestkey";
pub const ALIBABA_SECRET: &str = "test-alibaba-secret-0f9e8d";

/// The SecretId and SecretKey the Tencent Cloud test server accepts.
pub const TENCENT_SECRET_ID: &str = "AKIDlbtriagetestid";
pub const TENCENT_SECRET_KEY: &str = "test-tencent-secret-7c1a";

/// Every credential variable of every provider in the registry, with the value a test gives it:
/// what the test server checks where one does, else a marker unique to the variable.
pub fn test_credentials() -> Vec<(&'static str, String)> {
    lbtriage::sources::registry::PROVIDERS
        .iter()
        .flat_map(|provider| provider.credential_env.iter().copied())
        .map(|env| {
            let value = match env {
                "ALIBABA_CLOUD_ACCESS_KEY_ID" => ALIBABA_KEY_ID.to_string(),
                "ALIBABA_CLOUD_ACCESS_KEY_SECRET" => ALIBABA_SECRET.to_string(),
                "TENCENTCLOUD_SECRET_ID" => TENCENT_SECRET_ID.to_string(),
                "TENCENTCLOUD_SECRET_KEY" => TENCENT_SECRET_KEY.to_string(),
                _ => format!("lbtriage-{}-never-print-me", env.to_ascii_lowercase()),
            };
            (env, value)
        })
        .collect()
}

/// Gives `command` every provider's test credentials.
pub fn with_test_credentials(command: &mut Command) {
    for (env, value) in test_credentials() {
        command.env(env, value);
    }
}

/// A strict test double of a cloud API (a Python server under `tests/emulator/`) on a port the
/// test holds, with its JSON control paths.
pub struct CloudDouble {
    pub port: u16,
    pub endpoint: String,
    /// Where its control paths start (`/__cms`, `/__tencent`).
    control: &'static str,
    _process: Process,
    _socket: HeldPort,
}

impl CloudDouble {
    fn start(script: &str, args: &[&str], control: &'static str) -> CloudDouble {
        let socket = HeldPort::new();
        let port = socket.port;
        let process = python_server(script, &socket, args);
        wait_until(&format!("{script} to answer"), Duration::from_secs(20), || {
            http_get(port, &format!("{control}/stats"), &[]).is_ok_and(|r| r.status == 200)
        });
        CloudDouble {
            port,
            endpoint: format!("http://127.0.0.1:{port}"),
            control,
            _process: process,
            _socket: socket,
        }
    }

    /// POSTs `body` to the control path `path` (below the double's prefix).
    fn post(&self, path: &str, body: &serde_json::Value) {
        let path = format!("{}/{path}", self.control);
        let response = http_request(
            self.port,
            "POST",
            &path,
            &[("Content-Type", "application/json")],
            body.to_string().as_bytes(),
        )
        .expect("test server");
        assert_eq!(response.status, 200, "{path}: {}", response.text());
    }

    pub fn stats(&self) -> serde_json::Value {
        let response = http_get(self.port, &format!("{}/stats", self.control), &[]).expect("stats");
        serde_json::from_slice(&response.body).expect("stats JSON")
    }
}

/// The strict CloudMonitor (and SLB/ALB inventory) test server (`tests/emulator/cms_server.py`).
pub struct CmsServer(CloudDouble);

impl std::ops::Deref for CmsServer {
    type Target = CloudDouble;
    fn deref(&self) -> &CloudDouble {
        &self.0
    }
}

impl CmsServer {
    /// `max_page` caps points per page (pagination with little data); `rate_limit` is calls/s.
    pub fn start(max_page: u32, rate_limit: u32) -> CmsServer {
        let (max_page, rate_limit) = (max_page.to_string(), rate_limit.to_string());
        CmsServer(CloudDouble::start(
            "cms_server.py",
            &[
                "--access-key-id",
                ALIBABA_KEY_ID,
                "--access-key-secret",
                ALIBABA_SECRET,
                "--max-page",
                &max_page,
                "--rate-limit",
                &rate_limit,
            ],
            "/__cms",
        ))
    }

    /// Adds datapoints: `{namespace, metric, timestamp (s), instance, port?, value}`.
    pub fn seed(&self, points: &[serde_json::Value]) {
        self.post("datapoints", &serde_json::json!({ "points": points }));
    }

    /// Sets the SLB and ALB inventory: `{id, namespace, name, address, tags, backends: [{ip, port,
    /// listener_port, status}]}` (without it, the instances the datapoints name).
    pub fn set_instances(&self, instances: &[serde_json::Value]) {
        self.post("instances", &serde_json::json!({ "instances": instances }));
    }

    /// As [`CmsServer::set_instances`], with ALB server groups on the instances (`server_groups:
    /// [{id, health_path, servers: [{id, type, ip?, port}]}]`) and the ECS instances' private
    /// addresses (`{"i-...": "10.0.0.5"}`).
    pub fn set_inventory(&self, instances: &[serde_json::Value], ecs: &serde_json::Value) {
        self.post(
            "instances",
            &serde_json::json!({ "instances": instances, "ecs_instances": ecs }),
        );
    }

    /// The next `calls` API calls answer `Throttling.User`.
    pub fn throttle(&self, calls: u32) {
        self.post("faults", &serde_json::json!({ "throttle": calls }));
    }

    /// These actions answer `Forbidden.RAM` (HTTP 403), as for a policy that does not grant them.
    pub fn deny(&self, actions: &[&str]) {
        self.post("faults", &serde_json::json!({ "deny": actions }));
    }
}

/// The strict Tencent Cloud Monitor and CLB test server (`tests/emulator/tencent_server.py`).
pub struct TencentServer(CloudDouble);

impl std::ops::Deref for TencentServer {
    type Target = CloudDouble;
    fn deref(&self) -> &CloudDouble {
        &self.0
    }
}

impl TencentServer {
    /// `rate_limit` is calls per second before `RequestLimitExceeded`.
    pub fn start(rate_limit: u32) -> TencentServer {
        let rate_limit = rate_limit.to_string();
        TencentServer(CloudDouble::start(
            "tencent_server.py",
            &[
                "--secret-id",
                TENCENT_SECRET_ID,
                "--secret-key",
                TENCENT_SECRET_KEY,
                "--rate-limit",
                &rate_limit,
            ],
            "/__tencent",
        ))
    }

    /// Replaces the inventory: `[{id, name, type, vip, vpc_id, tags, listeners: [{port, targets:
    /// [{ip, port, healthy, detail}]}]}]`.
    pub fn seed_load_balancers(&self, load_balancers: &[serde_json::Value]) {
        self.post("seed", &serde_json::json!({ "load_balancers": load_balancers }));
    }

    /// Adds datapoints: `{instance, metric, timestamp (s), value}`.
    pub fn seed_points(&self, points: &[serde_json::Value]) {
        self.post("points", &serde_json::json!({ "points": points }));
    }

    /// The next `calls` API calls answer `RequestLimitExceeded`.
    pub fn throttle(&self, calls: u32) {
        self.post("faults", &serde_json::json!({ "throttle": calls }));
    }

    /// These actions answer `UnauthorizedOperation`, as for a CAM policy that does not grant them.
    pub fn deny(&self, actions: &[&str]) {
        self.post("faults", &serde_json::json!({ "deny": actions }));
    }
}
