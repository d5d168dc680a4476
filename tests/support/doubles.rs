//! The Alibaba Cloud and Tencent Cloud test servers, and every provider's test credentials.

use std::process::Command;
use std::time::Duration;

use super::http::*;
use super::ports::*;
use super::process::*;

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
