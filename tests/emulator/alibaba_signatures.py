"""Reference Signature V1 (HMAC-SHA1) values from Alibaba Cloud's official Python SDK.

Re-run to regenerate tests/fixtures/alibaba_signatures.json:

    .venv/bin/python tests/emulator/alibaba_signatures.py > tests/fixtures/alibaba_signatures.json

Each case fixes every input the signature depends on (the request parameters including the nonce
and timestamp, and the secret); the signature is computed by
`alibabacloud_openapi_util.client.Client.get_rpcsignature`, the function the official SDKs call for
RPC-style APIs such as CloudMonitor's. The Rust test `sources::alibaba::signature` checks lbtriage's
own implementation against every case.
"""

import json

from alibabacloud_openapi_util.client import Client

COMMON = {
    "Format": "JSON",
    "Version": "2019-01-01",
    "AccessKeyId": "testid",
    "SignatureMethod": "HMAC-SHA1",
    "SignatureVersion": "1.0",
    "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
    "Timestamp": "2026-01-01T12:00:00Z",
}

CASES = [
    ("a first page", "testsecret", {
        "Action": "DescribeMetricList", "Namespace": "acs_slb_dashboard", "MetricName": "InstanceQps",
        "Period": "60", "StartTime": "2026-01-01T11:55:00Z", "EndTime": "2026-01-01T11:58:00Z",
        "Length": "1000",
    }),
    ("dimensions as JSON, a next page", "testsecret", {
        "Action": "DescribeMetricList", "Namespace": "acs_alb", "MetricName": "LoadBalancerHTTPCode502",
        "Period": "60", "StartTime": "2026-01-01T11:55:00Z", "EndTime": "2026-01-01T11:58:00Z",
        "Dimensions": '[{"loadBalancerId":"alb-abc123"},{"loadBalancerId":"alb-def456"}]',
        "NextToken": "15761485350009dd70bb64cff1f0fff7+/=", "Length": "1000",
    }),
    ("characters RFC 3986 treats specially", "s3cr3t/with+chars=", {
        "Action": "DescribeMetricList", "Namespace": "acs_slb_dashboard", "MetricName": "Drop*Traffic",
        "Period": "300", "Dimensions": '[{"instanceId": "lb ~x*y"}]', "Note": "ünïcödé & spaces",
    }),
]


def main():
    cases = []
    for name, secret, params in CASES:
        signed = dict(COMMON, **params)
        cases.append({
            "name": name,
            "secret": secret,
            "params": signed,
            "signature": Client.get_rpcsignature(signed, "GET", secret),
        })
    print(json.dumps({"generator": "alibabacloud_openapi_util " + version(), "cases": cases}, indent=2,
                     ensure_ascii=False))


def version():
    from importlib.metadata import version as v
    return v("alibabacloud_openapi_util")


if __name__ == "__main__":
    main()
