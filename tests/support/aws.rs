//! The AWS emulator (moto behind the CBOR bridge), seeding it, and an in-process AWS source
//! with a clock the test steps.

use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use lbtriage::config::Config;
use lbtriage::sources::aws::{client, AwsSource, Clients};
use lbtriage::sources::Source;
use lbtriage::store::{render, Format};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::exposition::*;
use super::http::*;
use super::ports::*;
use super::process::*;

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
