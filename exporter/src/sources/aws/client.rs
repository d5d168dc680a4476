//! AWS SDK configuration shared by every client of a job and region: one TLS stack (rustls + ring),
//! standard retries (exponential backoff with jitter on throttling and 5xx), bounded timeouts, an
//! optional endpoint override and an optional assumed role.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::sts::AssumeRoleProvider;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};

use super::ec2;
use crate::config::AwsJob;

pub async fn sdk_config(job: &AwsJob, region: &str) -> SdkConfig {
    sdk_config_with_credentials(job, region, None).await
}

/// As [`sdk_config`], with explicit credentials instead of the default chain (tests, emulators).
pub async fn sdk_config_with_credentials(
    job: &AwsJob,
    region: &str,
    credentials: Option<SharedCredentialsProvider>,
) -> SdkConfig {
    let http_client = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region.to_string()))
        .http_client(http_client)
        .retry_config(RetryConfig::standard().with_max_attempts(3))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_attempt_timeout(Duration::from_secs(20))
                .operation_timeout(Duration::from_secs(60))
                .build(),
        );
    if let Some(url) = &job.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    if let Some(credentials) = credentials {
        loader = loader.credentials_provider(credentials);
    }
    let base = loader.load().await;
    match &job.role_arn {
        Some(role_arn) => {
            let mut builder = AssumeRoleProvider::builder(role_arn).session_name("lbtriage");
            if let Some(external_id) = &job.external_id {
                builder = builder.external_id(external_id);
            }
            let provider = builder.configure(&base).build().await;
            base.into_builder()
                .credentials_provider(SharedCredentialsProvider::new(provider))
                .build()
        }
        None => base,
    }
}

/// The AWS clients of one job and region.
pub struct Clients {
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub elbv2: aws_sdk_elasticloadbalancingv2::Client,
    pub elb: aws_sdk_elasticloadbalancing::Client,
    pub tagging: aws_sdk_resourcegroupstagging::Client,
    /// `None` when no HTTPS client could be built (no trusted roots): instance targets then go
    /// without addresses, and nothing else.
    pub ec2: Option<ec2::Ec2>,
}

impl Clients {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Clients {
            cloudwatch: aws_sdk_cloudwatch::Client::new(config),
            elbv2: aws_sdk_elasticloadbalancingv2::Client::new(config),
            elb: aws_sdk_elasticloadbalancing::Client::new(config),
            tagging: aws_sdk_resourcegroupstagging::Client::new(config),
            ec2: ec2::Ec2::new(config)
                .inspect_err(
                    |err| tracing::warn!(error = %err, "no EC2 client: instance targets get no address"),
                )
                .ok(),
        }
    }
}
