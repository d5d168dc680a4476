"""Reference TC3-HMAC-SHA256 signatures from Tencent Cloud's official Python SDK.

Re-run to regenerate tests/fixtures/tencent_signatures.json:

    .venv/bin/python tests/emulator/tencent_signatures.py > tests/fixtures/tencent_signatures.json

Each case is signed by the SDK itself: `AbstractClient._build_req_with_tc3_signature` (the code every
official Python client runs before sending a request) builds the headers, the JSON payload and the
Authorization header, with the clock fixed at the case's timestamp. The first case is the worked
example of Tencent Cloud's signature documentation, whose signature the script checks against the
documented value. The Rust test `tencent_source::signatures_match_the_official_sdk` signs every
case's payload with lbtriage's own implementation and compares the Authorization header byte for
byte.
"""

import json
import sys
from unittest import mock

from tencentcloud.common import credential
from tencentcloud.common.abstract_client import AbstractClient
from tencentcloud.common.http.request import RequestInternal
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.common.sign import Sign

# The documented example: SecretKey, timestamp and payload from Tencent Cloud's "Signature v3" page.
DOCUMENTED = {
    "secret_key": "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",
    "timestamp": 1551113065,
    "service": "cvm",
    "host": "cvm.tencentcloudapi.com",
    "content_type": "application/json; charset=utf-8",
    "payload": '{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}',
    "signature": "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168",
}

SECRET_ID = "AKIDlbtriageEXAMPLEid"

CASES = [
    ("a GetMonitorData page of ten instances", "monitor", "2018-07-24", "GetMonitorData", "ap-guangzhou",
     "lbtriage-secret-key", 1767268800, {
         "Namespace": "QCE/LB_PUBLIC", "MetricName": "ClbHttp5xx", "Period": 60,
         "StartTime": "2026-01-01T11:55:00+08:00", "EndTime": "2026-01-01T11:58:00+08:00",
         "Instances": [{"Dimensions": [{"Name": "loadBalancerId", "Value": f"lb-{i:08x}"}]} for i in range(10)],
     }),
    ("a CLB inventory page", "clb", "2018-03-17", "DescribeLoadBalancers", "ap-shanghai",
     "s3cr3t/with+chars=", 1767225599, {"Offset": 20, "Limit": 20}),
    ("non-ASCII and JSON escapes in the payload, a date boundary", "clb", "2018-03-17",
     "DescribeTargetHealth", "ap-guangzhou", "ünïcödé key", 1767225600, {
         "LoadBalancerIds": ["lb-\u00e9t\u00e9", "lb-\"quoted\"\\slash", "lb-未命名"],
     }),
]


class Client(AbstractClient):
    def __init__(self, service, version, region, secret_id, secret_key):
        profile = ClientProfile(httpProfile=HttpProfile(endpoint=f"{service}.tencentcloudapi.com"))
        super().__init__(credential.Credential(secret_id, secret_key), region, profile)
        self._service = service
        self._apiVersion = version


def documented_signature():
    d = DOCUMENTED
    import hashlib
    canonical = "\n".join([
        "POST", "/", "",
        f"content-type:{d['content_type']}\nhost:{d['host']}\n",
        "content-type;host",
        hashlib.sha256(d["payload"].encode()).hexdigest(),
    ])
    string_to_sign = "\n".join([
        "TC3-HMAC-SHA256", str(d["timestamp"]), f"2019-02-25/{d['service']}/tc3_request",
        hashlib.sha256(canonical.encode()).hexdigest(),
    ])
    return Sign.sign_tc3(d["secret_key"], "2019-02-25", d["service"], string_to_sign)


def main():
    if documented_signature() != DOCUMENTED["signature"]:
        sys.exit("the SDK does not reproduce the documented example")
    cases = [{
        "name": "the documented example",
        "secret_id": "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE",
        "secret_key": DOCUMENTED["secret_key"],
        "service": DOCUMENTED["service"],
        "host": DOCUMENTED["host"],
        "timestamp": DOCUMENTED["timestamp"],
        "content_type": DOCUMENTED["content_type"],
        "payload": DOCUMENTED["payload"],
        "authorization": "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2019-02-25/cvm/"
                         "tc3_request, SignedHeaders=content-type;host, Signature=" + DOCUMENTED["signature"],
    }]
    for name, service, version, action, region, secret_key, timestamp, params in CASES:
        client = Client(service, version, region, SECRET_ID, secret_key)
        req = RequestInternal(client._get_endpoint(), "POST", "/")
        with mock.patch("time.time", return_value=timestamp):
            client._build_req_with_tc3_signature(action, params, req)
        cases.append({
            "name": name,
            "secret_id": SECRET_ID,
            "secret_key": secret_key,
            "service": service,
            "host": req.header["Host"],
            "timestamp": int(req.header["X-TC-Timestamp"]),
            "content_type": req.header["Content-Type"],
            "payload": req.data,
            "authorization": req.header["Authorization"],
        })
    print(json.dumps({"generator": "tencentcloud-sdk-python-common " + version_of(), "cases": cases},
                     indent=2, ensure_ascii=False))


def version_of():
    from importlib.metadata import version
    return version("tencentcloud-sdk-python-common")


if __name__ == "__main__":
    main()
