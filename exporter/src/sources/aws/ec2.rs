//! EC2 `DescribeInstances` over the Query API, signed with SigV4 by hand: the private addresses of
//! instance targets, for the probes. One read-only call is all lbtriage needs of EC2; the
//! aws-sdk-ec2 crate would add minutes of compile time on two cores for it.
//!
//! The call filters by `instance-id` rather than naming `InstanceId.N`: a filter skips an
//! instance that no longer exists, where `InstanceId.N` fails the whole call with
//! `InvalidInstanceID.NotFound` (EC2 API reference, DescribeInstances).

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use aws_smithy_xml::decode::{try_data, Document, ScopedDecoder};
use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;

use super::api::AwsError;
use crate::sources::api::{exchange, https_client, Connector};
use crate::sources::engine::telemetry::{ApiCalls, Outcome};

const API: &str = "DescribeInstances";
const VERSION: &str = "2016-11-15";
/// Instance IDs per call: EC2 accepts up to 200 values in one filter.
const IDS_PER_CALL: usize = 200;
const MAX_RESULTS: u32 = 1000;
const MAX_ANSWER_BYTES: usize = 8 << 20;
const TIMEOUT: Duration = Duration::from_secs(20);
/// Pages followed for one batch at most (a batch is at most 200 instances).
const MAX_PAGES: usize = 10;

pub struct Ec2 {
    endpoint: String,
    region: String,
    credentials: Option<SharedCredentialsProvider>,
    http: Client<Connector, Full<Bytes>>,
}

impl Ec2 {
    /// A client for the SDK configuration's region and endpoint override (emulators, VPC
    /// endpoints), with its credentials.
    pub fn new(sdk: &aws_config::SdkConfig) -> Result<Self, String> {
        let region = sdk.region().map(|r| r.as_ref().to_string()).ok_or("no region")?;
        let endpoint = sdk
            .endpoint_url()
            .map(|url| url.trim_end_matches('/').to_string())
            .unwrap_or_else(|| format!("https://ec2.{region}.amazonaws.com"));
        Ok(Ec2 {
            endpoint,
            region,
            credentials: sdk.credentials_provider(),
            http: https_client()?,
        })
    }

    /// The private IPv4 address of each instance that exists and has one.
    pub async fn private_ips(
        &self,
        calls: &ApiCalls,
        instance_ids: &[String],
    ) -> Result<HashMap<String, IpAddr>, AwsError> {
        let mut out = HashMap::new();
        for batch in instance_ids.chunks(IDS_PER_CALL) {
            let mut next_token: Option<String> = None;
            for _ in 0..MAX_PAGES {
                let body = form(batch, next_token.as_deref());
                let answer = self.call(calls, body).await?;
                let page = parse(&answer).map_err(|detail| AwsError::Unexpected { api: API, detail })?;
                out.extend(page.addresses);
                next_token = page.next_token.filter(|t| !t.is_empty());
                if next_token.is_none() {
                    break;
                }
            }
        }
        Ok(out)
    }

    async fn call(&self, calls: &ApiCalls, body: String) -> Result<String, AwsError> {
        let failed = |outcome: Outcome, message: String| {
            calls.record(API, outcome);
            AwsError::Api { api: API, message }
        };
        let request = self
            .signed(body)
            .await
            .map_err(|message| failed(Outcome::Error, message))?;
        let (status, answer) = exchange(&self.http, request, TIMEOUT, MAX_ANSWER_BYTES)
            .await
            .map_err(|message| failed(Outcome::Error, message))?;
        let text = String::from_utf8_lossy(&answer).into_owned();
        if status.is_success() {
            calls.record(API, Outcome::Success);
            return Ok(text);
        }
        let (code, message) = error_of(&text);
        Err(failed(
            Outcome::from_error_code(Some(&code)),
            format!("HTTP {status}: {code}: {message}"),
        ))
    }

    async fn signed(&self, body: String) -> Result<hyper::Request<Full<Bytes>>, String> {
        let content_type = "application/x-www-form-urlencoded; charset=utf-8";
        let url = format!("{}/", self.endpoint);
        let mut request = hyper::Request::post(&url)
            .header("content-type", content_type)
            .body(Full::new(Bytes::from(body.clone())))
            .map_err(|err| err.to_string())?;
        let provider = self.credentials.as_ref().ok_or("no AWS credentials configured")?;
        let credentials = provider
            .provide_credentials()
            .await
            .map_err(|err| format!("credentials: {err}"))?;
        let identity = Identity::from(credentials);
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("ec2")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|err| err.to_string())?
            .into();
        let host = request
            .uri()
            .authority()
            .map(|a| a.as_str().to_string())
            .unwrap_or_default();
        let headers = [("content-type", content_type), ("host", host.as_str())];
        let signable = SignableRequest::new(
            "POST",
            url.as_str(),
            headers.into_iter(),
            SignableBody::Bytes(body.as_bytes()),
        )
        .map_err(|err| err.to_string())?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|err| err.to_string())?
            .into_parts();
        instructions.apply_to_request_http1x(&mut request);
        Ok(request)
    }
}

fn form(ids: &[String], next_token: Option<&str>) -> String {
    let mut fields = vec![
        ("Action".to_string(), API.to_string()),
        ("Version".to_string(), VERSION.to_string()),
        ("Filter.1.Name".to_string(), "instance-id".to_string()),
        ("MaxResults".to_string(), MAX_RESULTS.to_string()),
    ];
    for (index, id) in ids.iter().enumerate() {
        fields.push((format!("Filter.1.Value.{}", index + 1), id.clone()));
    }
    if let Some(token) = next_token {
        fields.push(("NextToken".to_string(), token.to_string()));
    }
    fields
        .iter()
        .map(|(name, value)| format!("{}={}", encode(name), encode(value)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Form encoding: everything but RFC 3986's unreserved characters is percent-encoded.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[derive(Debug, Default, PartialEq)]
struct Page {
    addresses: HashMap<String, IpAddr>,
    next_token: Option<String>,
}

/// The fuzz entry point (`fuzz/fuzz_targets/answers_aws.rs`): any `DescribeInstances` answer
/// gives a page of addresses or an error, and an empty `nextToken` never continues a chain.
pub fn fuzz(data: &[u8]) {
    let Ok(xml) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(page) = parse(xml) {
        assert!(page.addresses.len() <= xml.len());
        assert!(page
            .next_token
            .as_deref()
            .is_none_or(|token| token.len() <= xml.len()));
    }
}

/// `reservationSet/item/instancesSet/item/{instanceId, privateIpAddress}` and `nextToken`.
fn parse(xml: &str) -> Result<Page, String> {
    let mut document = Document::new(xml);
    let mut root = document.root_element().map_err(|err| err.to_string())?;
    let mut page = Page::default();
    while let Some(mut tag) = root.next_tag() {
        if tag.start_el().matches("nextToken") {
            page.next_token = Some(text(&mut tag)?);
        } else if tag.start_el().matches("reservationSet") {
            while let Some(mut reservation) = tag.next_tag() {
                while let Some(mut field) = reservation.next_tag() {
                    if !field.start_el().matches("instancesSet") {
                        continue;
                    }
                    while let Some(mut instance) = field.next_tag() {
                        let (mut id, mut ip) = (None, None);
                        while let Some(mut member) = instance.next_tag() {
                            if member.start_el().matches("instanceId") {
                                id = Some(text(&mut member)?);
                            } else if member.start_el().matches("privateIpAddress") {
                                ip = text(&mut member)?.parse::<IpAddr>().ok();
                            }
                        }
                        if let (Some(id), Some(ip)) = (id, ip) {
                            page.addresses.insert(id, ip);
                        }
                    }
                }
            }
        }
    }
    Ok(page)
}

fn text(tag: &mut ScopedDecoder<'_, '_>) -> Result<String, String> {
    try_data(tag)
        .map(|data| data.trim().to_string())
        .map_err(|err| err.to_string())
}

/// `Response/Errors/Error/{Code, Message}`, as EC2 answers a refused call.
fn error_of(xml: &str) -> (String, String) {
    let (mut code, mut message) = (String::from("Unknown"), String::new());
    let mut document = Document::new(xml);
    if let Ok(mut root) = document.root_element() {
        while let Some(mut errors) = root.next_tag() {
            while let Some(mut error) = errors.next_tag() {
                while let Some(mut field) = error.next_tag() {
                    if field.start_el().matches("Code") {
                        code = text(&mut field).unwrap_or_default();
                    } else if field.start_el().matches("Message") {
                        message = text(&mut field).unwrap_or_default();
                    }
                }
            }
        }
    }
    (code, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_each_instance_address_and_not_its_interfaces() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
  <requestId>8f7724cf</requestId>
  <reservationSet>
    <item>
      <reservationId>r-1</reservationId>
      <groupSet/>
      <instancesSet>
        <item>
          <instanceId>i-1</instanceId>
          <networkInterfaceSet><item><privateIpAddress>10.9.9.9</privateIpAddress></item></networkInterfaceSet>
          <privateIpAddress>10.0.1.5</privateIpAddress>
        </item>
        <item><instanceId>i-2</instanceId><instanceState><name>terminated</name></instanceState></item>
      </instancesSet>
    </item>
  </reservationSet>
  <nextToken>abc+/=</nextToken>
</DescribeInstancesResponse>"#;
        let page = parse(xml).expect("parses");
        assert_eq!(page.addresses.len(), 1);
        assert_eq!(page.addresses["i-1"], "10.0.1.5".parse::<IpAddr>().expect("ip"));
        assert_eq!(page.next_token.as_deref(), Some("abc+/="));
    }

    #[test]
    fn refusals_keep_their_code() {
        let xml = "<Response><Errors><Error><Code>UnauthorizedOperation</Code><Message>You are not authorized</Message></Error></Errors><RequestID>x</RequestID></Response>";
        assert_eq!(
            error_of(xml),
            (
                "UnauthorizedOperation".to_string(),
                "You are not authorized".to_string()
            )
        );
        assert!(parse("not xml").is_err() || parse("not xml").is_ok_and(|p| p.addresses.is_empty()));
    }

    #[test]
    fn the_form_names_ids_in_one_filter_and_encodes_tokens() {
        let body = form(&["i-1".to_string(), "i-2".to_string()], Some("a+b/c="));
        assert_eq!(
            body,
            "Action=DescribeInstances&Version=2016-11-15&Filter.1.Name=instance-id&MaxResults=1000&Filter.1.Value.1=i-1&Filter.1.Value.2=i-2&NextToken=a%2Bb%2Fc%3D"
        );
    }
}
