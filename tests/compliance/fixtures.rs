//! One fixture per registry row: the cloud's double (moto behind the CBOR bridge for AWS, the
//! CloudMonitor and Cloud Monitor test servers, the test cloud's in-process API), a source over
//! it, and how to seed, delete, throttle and plan.

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials as AwsCredentials;
use lbtriage::config::{Collection, Config};
use lbtriage::runtime::Clock;
use lbtriage::sources::api::RateLimiter;
use lbtriage::sources::row::Provider;
use lbtriage::sources::{alibaba, aws, registry, tencent};
use serde_json::{json, Value};

use super::{Collect, Fixture, PERIOD};
use crate::support::{
    base_time, run_plan, CmsServer, Emulator, TencentServer, ALIBABA_KEY_ID, ALIBABA_SECRET,
    TENCENT_SECRET_ID, TENCENT_SECRET_KEY,
};
use crate::test_cloud;

/// Every fixture's job `delay`, in seconds: the suite times its cycles by it.
const DELAY: i64 = 120;

/// What was published per (load balancer, period start), for doubles that keep one value per
/// period: a later part raises the period's value to the sum of its parts.
#[derive(Default)]
struct Totals(BTreeMap<(String, i64), (f64, f64)>);

impl Totals {
    /// Adds a part of (requests, backend 5xx); the period's total so far.
    fn add(&mut self, lb: &str, period_start: i64, requests: f64, errors: f64) -> (f64, f64) {
        let total = self.0.entry((lb.to_string(), period_start)).or_default();
        total.0 += requests;
        total.1 += errors;
        *total
    }
}

fn row(name: &str) -> &'static Provider {
    registry::PROVIDERS
        .iter()
        .copied()
        .find(|row| row.name == name)
        .unwrap_or_else(|| panic!("a registry row named {name}"))
}

fn collection(full: bool) -> &'static str {
    if full {
        "    collection: full\n"
    } else {
        ""
    }
}

/// moto behind the CBOR bridge; the source signs with a secret of the suite's own.
pub struct Aws {
    emulator: Emulator,
    fleet: Value,
    fleet_file: tempfile::NamedTempFile,
}

const AWS_SECRET: &str = "compliance-aws-secret-5b1e";

impl Aws {
    pub fn start() -> Aws {
        Aws {
            emulator: Emulator::start(),
            fleet: json!({}),
            fleet_file: tempfile::NamedTempFile::new().expect("temp file"),
        }
    }

    fn yaml(&self, extra: &str) -> String {
        format!(
            "aws:\n  - name: compliance\n    regions: [us-east-1]\n    endpoint_url: {}\n    discovery_ttl: 1s\n    delay: {DELAY}s\n    settle: 5m\n{extra}",
            self.emulator.endpoint
        )
    }

    /// Seeds against the fleet so far and keeps what seed.py reports.
    fn seed(&mut self, spec: Value) {
        let fleet = self.emulator.seed(&spec, Some(self.fleet_file.path()));
        self.fleet = fleet;
        std::fs::write(self.fleet_file.path(), self.fleet.to_string()).expect("write the fleet");
    }
}

impl Fixture for Aws {
    fn row(&self) -> &'static Provider {
        row("aws")
    }

    fn delay(&self) -> i64 {
        DELAY
    }

    async fn source(&self, full: bool, clock: Clock) -> Box<dyn Collect> {
        let job = Config::parse(&self.yaml(collection(full))).expect("valid").aws[0].clone();
        let credentials = AwsCredentials::new("AKIACOMPLIANCE", AWS_SECRET, None, None, "compliance");
        let sdk = aws::client::sdk_config_with_credentials(
            &job,
            "us-east-1",
            Some(SharedCredentialsProvider::new(credentials)),
        )
        .await;
        Box::new(aws::AwsSource::new(
            job,
            "us-east-1".to_string(),
            aws::Clients::new(&sdk),
            clock,
        ))
    }

    async fn add(&mut self, lbs: &[&str]) {
        let load_balancers: Vec<Value> = lbs
            .iter()
            .map(|lb| json!({"key": lb, "type": "application", "name": lb, "target_groups": [format!("{lb}-tg")]}))
            .collect();
        let fleet = self.emulator.seed(
            &json!({"region": "us-east-1", "load_balancers": load_balancers}),
            None,
        );
        self.fleet = fleet;
        std::fs::write(self.fleet_file.path(), self.fleet.to_string()).expect("write the fleet");
    }

    async fn remove(&mut self, lb: &str) {
        self.seed(json!({"region": "us-east-1", "delete": [lb]}));
    }

    fn lb_label(&self, lb: &str) -> String {
        crate::support::dimension(&self.fleet, lb)
    }

    async fn publish(&mut self, periods: &[(&str, i64, f64, f64)]) {
        let mut datapoints = Vec::new();
        for (lb, timestamp, requests, errors) in periods {
            datapoints
                .push(json!({"lb": lb, "metric": "RequestCount", "timestamp": timestamp, "value": requests}));
            if *errors > 0.0 {
                datapoints.push(json!({"lb": lb, "metric": "HTTPCode_Target_5XX_Count", "timestamp": timestamp, "value": errors}));
            }
        }
        self.seed(json!({"region": "us-east-1", "datapoints": datapoints}));
    }

    fn throttle(&self, calls: u32) {
        self.emulator.throttle_cloudwatch(calls);
    }

    async fn plan(&self) -> Value {
        run_plan(&self.yaml(""), &[])["jobs"][0].clone()
    }

    fn secrets(&self) -> Vec<String> {
        vec![AWS_SECRET.to_string()]
    }
}

/// The CloudMonitor (and SLB/ALB inventory) test server; SLB instances.
pub struct Alibaba {
    server: CmsServer,
    instances: Vec<String>,
    totals: Totals,
}

impl Alibaba {
    pub fn start() -> Alibaba {
        Alibaba {
            server: CmsServer::start(1000, 50),
            instances: Vec::new(),
            totals: Totals::default(),
        }
    }

    fn yaml(&self, extra: &str) -> String {
        format!(
            "alibaba:\n  - name: compliance\n    regions: [cn-hangzhou]\n    endpoint_url: {}\n    namespaces: [acs_slb_dashboard]\n    discovery_ttl: 60s\n    delay: {DELAY}s\n    settle: 5m\n    max_calls_per_second: 50\n{extra}",
            self.server.endpoint
        )
    }

    fn set_instances(&self) {
        let listed: Vec<Value> = self
            .instances
            .iter()
            .map(|id| json!({"id": id, "namespace": "acs_slb_dashboard", "name": id}))
            .collect();
        self.server.set_instances(&listed);
    }
}

impl Fixture for Alibaba {
    fn row(&self) -> &'static Provider {
        row("alibaba")
    }

    fn delay(&self) -> i64 {
        DELAY
    }

    async fn source(&self, full: bool, clock: Clock) -> Box<dyn Collect> {
        let job = Config::parse(&self.yaml(collection(full)))
            .expect("valid")
            .alibaba[0]
            .clone();
        Box::new(alibaba::AlibabaSource::with_credentials(
            job,
            "cn-hangzhou".to_string(),
            Ok(alibaba::client::Credentials::new(ALIBABA_KEY_ID, ALIBABA_SECRET)),
            Arc::new(RateLimiter::new(50)),
            clock,
        ))
    }

    async fn add(&mut self, lbs: &[&str]) {
        let ids: Vec<String> = lbs.iter().map(|lb| self.lb_label(lb)).collect();
        self.instances.extend(ids);
        self.set_instances();
    }

    async fn remove(&mut self, lb: &str) {
        let id = self.lb_label(lb);
        self.instances.retain(|known| *known != id);
        self.set_instances();
    }

    fn lb_label(&self, lb: &str) -> String {
        format!("lb-{lb}")
    }

    /// SLB publishes rates per second; the status codes it returned include the backends'. A
    /// later part of a period raises the period's value.
    async fn publish(&mut self, periods: &[(&str, i64, f64, f64)]) {
        let mut points = Vec::new();
        for (lb, timestamp, requests, errors) in periods {
            let (requests, errors) = self.totals.add(lb, *timestamp, *requests, *errors);
            let point = |metric: &str, value: f64| {
                json!({"namespace": "acs_slb_dashboard", "metric": metric, "timestamp": timestamp,
                    "instance": self.lb_label(lb), "value": value})
            };
            let per_second = PERIOD as f64;
            points.push(point("InstanceQps", requests / per_second));
            points.push(point("InstanceStatusCode5xx", errors / per_second));
            points.push(point("InstanceUpstreamCode5xx", errors / per_second));
        }
        self.server.seed(&points);
    }

    fn throttle(&self, calls: u32) {
        self.server.throttle(calls);
    }

    /// The plan surveys the instances from the last five periods of their request metric (on the
    /// wall clock), so the instances publish those first.
    async fn plan(&self) -> Value {
        let now = base_time() + 3600;
        let recent: Vec<Value> = self
            .instances
            .iter()
            .flat_map(|id| {
                (1..=5).map(move |minutes| {
                    json!({"namespace": "acs_slb_dashboard", "metric": "InstanceQps",
                        "timestamp": now - minutes * PERIOD, "instance": id, "value": 1.0})
                })
            })
            .collect();
        self.server.seed(&recent);
        run_plan(
            &self.yaml(""),
            &[
                ("ALIBABA_CLOUD_ACCESS_KEY_ID", ALIBABA_KEY_ID),
                ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", ALIBABA_SECRET),
            ],
        )["jobs"][0]
            .clone()
    }

    fn secrets(&self) -> Vec<String> {
        vec![ALIBABA_SECRET.to_string()]
    }
}

/// The Cloud Monitor and CLB test server; public CLB instances.
pub struct Tencent {
    server: TencentServer,
    instances: BTreeMap<String, Value>,
    totals: Totals,
}

impl Tencent {
    pub fn start() -> Tencent {
        Tencent {
            server: TencentServer::start(50),
            instances: BTreeMap::new(),
            totals: Totals::default(),
        }
    }

    fn yaml(&self, extra: &str) -> String {
        format!(
            "tencent:\n  - name: compliance\n    regions: [ap-guangzhou]\n    endpoint_url: {}\n    discovery_ttl: 60s\n    delay: {DELAY}s\n    settle: 5m\n    max_calls_per_second: 20\n{extra}",
            self.server.endpoint
        )
    }

    fn seed_inventory(&self) {
        let listed: Vec<Value> = self.instances.values().cloned().collect();
        self.server.seed_load_balancers(&listed);
    }
}

impl Fixture for Tencent {
    fn row(&self) -> &'static Provider {
        row("tencent")
    }

    fn delay(&self) -> i64 {
        DELAY
    }

    async fn source(&self, full: bool, clock: Clock) -> Box<dyn Collect> {
        let job = Config::parse(&self.yaml(collection(full)))
            .expect("valid")
            .tencent[0]
            .clone();
        Box::new(tencent::TencentSource::with_credentials(
            job,
            "ap-guangzhou".to_string(),
            Ok(tencent::client::Credentials::new(
                TENCENT_SECRET_ID,
                TENCENT_SECRET_KEY,
            )),
            Arc::new(RateLimiter::new(20)),
            clock,
        ))
    }

    async fn add(&mut self, lbs: &[&str]) {
        for (n, lb) in lbs.iter().enumerate() {
            let id = self.lb_label(lb);
            let vip = format!("198.51.100.{}", self.instances.len() + n + 1);
            self.instances.insert(
                id.clone(),
                json!({"id": id, "name": lb, "type": "OPEN", "vip": vip, "vpc_id": "", "tags": {}, "listeners": []}),
            );
        }
        self.seed_inventory();
    }

    async fn remove(&mut self, lb: &str) {
        self.instances.remove(&self.lb_label(lb));
        self.seed_inventory();
    }

    fn lb_label(&self, lb: &str) -> String {
        format!("lb-{lb}")
    }

    /// `TotalReq` is a rate per second; the status-code metrics count per minute, CLB's own
    /// (`ClbHttp5xx`) including what the real servers returned (`Http5xx`).
    async fn publish(&mut self, periods: &[(&str, i64, f64, f64)]) {
        let mut points = Vec::new();
        for (lb, timestamp, requests, errors) in periods {
            let (requests, errors) = self.totals.add(lb, *timestamp, *requests, *errors);
            let point = |metric: &str, value: f64| json!({"instance": self.lb_label(lb), "metric": metric, "timestamp": timestamp, "value": value});
            points.push(point("TotalReq", requests / PERIOD as f64));
            if errors > 0.0 {
                points.push(point("ClbHttp5xx", errors));
                points.push(point("Http5xx", errors));
            }
        }
        self.server.seed_points(&points);
    }

    fn throttle(&self, calls: u32) {
        self.server.throttle(calls);
    }

    async fn plan(&self) -> Value {
        run_plan(
            &self.yaml(""),
            &[
                ("TENCENTCLOUD_SECRET_ID", TENCENT_SECRET_ID),
                ("TENCENTCLOUD_SECRET_KEY", TENCENT_SECRET_KEY),
            ],
        )["jobs"][0]
            .clone()
    }

    fn secrets(&self) -> Vec<String> {
        vec![TENCENT_SECRET_KEY.to_string()]
    }
}

/// The test cloud (`tests/test_cloud/`): its in-process double and its row.
pub struct TestCloud {
    double: Arc<test_cloud::double::Double>,
}

const TEST_CLOUD_SECRET: &str = "compliance-testcloud-secret-77";

impl TestCloud {
    pub fn start() -> TestCloud {
        TestCloud {
            double: Arc::new(test_cloud::double::Double::new(TEST_CLOUD_SECRET)),
        }
    }
}

impl Fixture for TestCloud {
    fn row(&self) -> &'static Provider {
        &test_cloud::provider::ROW
    }

    fn delay(&self) -> i64 {
        DELAY
    }

    async fn source(&self, full: bool, clock: Clock) -> Box<dyn Collect> {
        let collection = if full {
            Collection::Full
        } else {
            Collection::Adaptive
        };
        Box::new(test_cloud::source(
            self.double.clone(),
            TEST_CLOUD_SECRET,
            collection,
            self.delay() as u64,
            300,
            clock,
        ))
    }

    async fn add(&mut self, lbs: &[&str]) {
        for lb in lbs {
            self.double.add(lb);
        }
    }

    async fn remove(&mut self, lb: &str) {
        self.double.remove(lb);
    }

    fn lb_label(&self, lb: &str) -> String {
        lb.to_string()
    }

    async fn publish(&mut self, periods: &[(&str, i64, f64, f64)]) {
        for (lb, timestamp, requests, errors) in periods {
            self.double.publish(lb, "Requests", *timestamp, *requests);
            if *errors > 0.0 {
                self.double.publish(lb, "Backend5xx", *timestamp, *errors);
            }
        }
    }

    fn throttle(&self, calls: u32) {
        self.double.throttle(calls);
    }

    async fn plan(&self) -> Value {
        let (sentinel, full) = test_cloud::calls_per_read();
        json!({"billed": {"per": "call", "sentinel_per_read": sentinel, "full_per_read": full}})
    }

    fn secrets(&self) -> Vec<String> {
        vec![TEST_CLOUD_SECRET.to_string()]
    }
}
