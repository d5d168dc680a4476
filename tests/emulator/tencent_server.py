"""A strict stand-in for Tencent Cloud's Cloud Monitor (`GetMonitorData`, 2018-07-24) and CLB
(`DescribeLoadBalancers`, `DescribeTargetHealth`, 2018-03-17) APIs.

Nothing real runs locally for either, so this double is strict where the real services are:

- every request is a TC3-HMAC-SHA256-signed JSON POST; the expected signature is computed with the
  official SDK's `tencentcloud.common.sign.Sign.sign_tc3` over the request as received, and a
  mismatch answers `AuthFailure.SignatureFailure`; an unknown SecretId, a credential scope for
  another service or date, a timestamp more than five minutes off, a wrong version or a missing
  common header are refused too;
- errors come back as the API writes them: HTTP 200 with `{"Response": {"Error": {"Code",
  "Message"}, "RequestId"}}`;
- `GetMonitorData` takes one metric of at most 10 instances, named by `vip` (public CLB) or
  `vip` and `vpcId` (private CLB); it answers only for periods that have ended and only where a
  datapoint was published (no traffic, no datapoint); `Period` must be one the metric documents;
- `DescribeLoadBalancers` pages by `Offset` and `Limit` (at most 100) and filters by up to 20
  `LoadBalancerIds`; `DescribeTargetHealth` takes up to 20 `LoadBalancerIds`;
- more than --rate-limit calls in a second answer `RequestLimitExceeded`, and the test can ask for
  the next N calls to be throttled.

Test control: POST /__tencent/seed with {"load_balancers": [{"id", "name", "type" (OPEN or
INTERNAL), "vip", "vpc_id", "tags": {...}, "listeners": [{"port", "protocol", "targets": [{"ip",
"port", "healthy", "detail"}]}]}]} replaces the inventory; POST /__tencent/points with {"points":
[{"instance", "metric", "timestamp" (s), "value"}]} adds datapoints; POST /__tencent/faults with
{"throttle": N} (the next N calls answer RequestLimitExceeded) or {"deny": ["DescribeTargetHealth"]} (those
actions answer `UnauthorizedOperation`, as CAM refuses an action the policy does not grant); GET /__tencent/stats reports calls per action, throttling and signature failures.
Usage: tencent_server.py --listen-fd 3 --secret-id ID --secret-key KEY
"""

import argparse
import hashlib
import json
import re
import threading
import time
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from tencentcloud.common.sign import Sign

import listening  # noqa: E402  (beside this script)

ACTIONS = {
    "GetMonitorData": ("monitor", "2018-07-24"),
    "DescribeLoadBalancers": ("clb", "2018-03-17"),
    "DescribeTargetHealth": ("clb", "2018-03-17"),
}
NAMESPACES = {"QCE/LB_PUBLIC": ("OPEN", ["vip"]), "QCE/LB_PRIVATE": ("INTERNAL", ["vip", "vpcId"])}
PERIODS = {60, 300, 3600}
AUTHORIZATION = re.compile(
    r"^TC3-HMAC-SHA256 Credential=(?P<id>[^/]+)/(?P<date>\d{4}-\d{2}-\d{2})/(?P<service>[a-z]+)/tc3_request, "
    r"SignedHeaders=(?P<signed>[a-z;-]+), Signature=(?P<signature>[0-9a-f]{64})$")


class ApiError(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code, self.message = code, message


class State:
    def __init__(self, secret_id, secret_key, rate_limit):
        self.lock = threading.Lock()
        self.keys = {secret_id: secret_key}
        self.rate_limit = rate_limit
        self.load_balancers = []
        self.points = {}            # (instance, metric) -> {timestamp: value}
        self.throttle_next = 0
        self.denied = set()
        self.window = (0, 0)
        self.stats = {"calls": {}, "ok": 0, "throttled": 0, "signature_failures": 0, "errors": 0,
                      "max_calls_in_a_second": 0, "max_instances_per_call": 0}


def parse_time(text, name):
    try:
        return datetime.fromisoformat(text).timestamp()
    except (TypeError, ValueError):
        raise ApiError("InvalidParameterValue", f"{name} {text!r} is not an ISO 8601 time")


def make_handler(state):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def reply(self, body, status=200):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if urlsplit(self.path).path == "/__tencent/stats":
                with state.lock:
                    self.reply(json.loads(json.dumps(state.stats)))
            else:
                self.reply({"error": "unknown path"}, 404)

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            payload = self.rfile.read(length)
            path = urlsplit(self.path).path
            if path.startswith("/__tencent/"):
                self.control(path, json.loads(payload or b"{}"))
                return
            request_id = str(uuid.uuid4())
            with state.lock:
                action = self.headers.get("X-TC-Action", "")
                calls = state.stats["calls"]
                calls[action] = calls.get(action, 0) + 1
                try:
                    self.check_rate()
                    self.authenticate(action, payload)
                    if action in state.denied:
                        raise ApiError("UnauthorizedOperation",
                                       f"CAM authentication failed: no permission for clb:{action}.")
                    try:
                        body = json.loads(payload)
                    except ValueError:
                        raise ApiError("InvalidParameter", "the body is not JSON")
                    if not isinstance(body, dict):
                        raise ApiError("InvalidParameter", "the body is not a JSON object")
                    response = getattr(self, action)(body)
                except ApiError as err:
                    key = {"RequestLimitExceeded": "throttled", "AuthFailure.SignatureFailure": "signature_failures"}
                    state.stats[key.get(err.code, "errors")] += 1
                    self.reply({"Response": {"Error": {"Code": err.code, "Message": err.message},
                                             "RequestId": request_id}})
                    return
                state.stats["ok"] += 1
            response["RequestId"] = request_id
            self.reply({"Response": response})

        def control(self, path, body):
            with state.lock:
                if path == "/__tencent/seed":
                    state.load_balancers = body.get("load_balancers", [])
                elif path == "/__tencent/points":
                    for p in body["points"]:
                        state.points.setdefault((p["instance"], p["metric"]), {})[int(p["timestamp"])] = float(p["value"])
                elif path == "/__tencent/faults":
                    if "throttle" in body:
                        state.throttle_next = int(body["throttle"])
                    if "deny" in body:
                        state.denied = set(body["deny"])
                else:
                    self.reply({"error": "unknown control path"}, 404)
                    return
            self.reply({"ok": True})

        def check_rate(self):
            second = int(time.time())
            start, calls = state.window
            calls = calls + 1 if start == second else 1
            state.window = (second, calls)
            state.stats["max_calls_in_a_second"] = max(state.stats["max_calls_in_a_second"], calls)
            if state.throttle_next > 0 or calls > state.rate_limit:
                state.throttle_next = max(0, state.throttle_next - 1)
                raise ApiError("RequestLimitExceeded", "Your current request times equals to the maximum.")

        def authenticate(self, action, payload):
            if action not in ACTIONS:
                raise ApiError("InvalidAction", f"The action {action!r} does not exist.")
            service, version = ACTIONS[action]
            for header in ("Authorization", "Content-Type", "Host", "X-TC-Timestamp", "X-TC-Version", "X-TC-Region"):
                if not self.headers.get(header):
                    raise ApiError("MissingParameter", f"The request is missing the {header} header.")
            if self.headers["X-TC-Version"] != version:
                raise ApiError("NoSuchVersion", f"{action} has no version {self.headers['X-TC-Version']!r}.")
            match = AUTHORIZATION.match(self.headers["Authorization"])
            if not match or match["signed"] != "content-type;host":
                raise ApiError("AuthFailure.InvalidAuthorization", "The Authorization header is malformed.")
            secret = state.keys.get(match["id"])
            if secret is None:
                raise ApiError("AuthFailure.SecretIdNotFound", "The SecretId is not found.")
            try:
                timestamp = int(self.headers["X-TC-Timestamp"])
            except ValueError:
                raise ApiError("InvalidParameter", "X-TC-Timestamp is not a number.")
            if abs(timestamp - time.time()) > 300:
                raise ApiError("AuthFailure.SignatureExpire", "The request has expired.")
            date = datetime.fromtimestamp(timestamp, tz=timezone.utc).strftime("%Y-%m-%d")
            if match["date"] != date or match["service"] != service:
                raise ApiError("AuthFailure.SignatureFailure", "The credential scope does not match the request.")
            canonical = "\n".join([
                "POST", "/", "",
                f"content-type:{self.headers['Content-Type']}\nhost:{self.headers['Host']}\n",
                "content-type;host",
                hashlib.sha256(payload).hexdigest(),
            ])
            string_to_sign = "\n".join([
                "TC3-HMAC-SHA256", str(timestamp), f"{date}/{service}/tc3_request",
                hashlib.sha256(canonical.encode()).hexdigest(),
            ])
            if Sign.sign_tc3(secret, date, service, string_to_sign) != match["signature"]:
                raise ApiError("AuthFailure.SignatureFailure", "The provided credentials could not be validated.")

        def DescribeLoadBalancers(self, body):
            offset, limit = body.get("Offset", 0), body.get("Limit", 20)
            ids = body.get("LoadBalancerIds")
            if not isinstance(offset, int) or not isinstance(limit, int) or offset < 0 or not 1 <= limit <= 100:
                raise ApiError("InvalidParameterValue", "Offset must be >= 0 and Limit between 1 and 100.")
            if ids is not None and (not isinstance(ids, list) or len(ids) > 20):
                raise ApiError("InvalidParameterValue", "LoadBalancerIds holds at most 20 IDs.")
            matching = [lb for lb in state.load_balancers if ids is None or lb["id"] in ids]
            page = matching[offset:offset + limit]
            return {"TotalCount": len(matching), "LoadBalancerSet": [{
                "LoadBalancerId": lb["id"], "LoadBalancerName": lb.get("name", ""),
                "LoadBalancerType": lb.get("type", "OPEN"), "Forward": 1,
                "LoadBalancerVips": [lb["vip"]], "VpcId": lb.get("vpc_id", ""), "Status": 1,
                "Tags": [{"TagKey": k, "TagValue": v} for k, v in lb.get("tags", {}).items()],
            } for lb in page]}

        def DescribeTargetHealth(self, body):
            ids = body.get("LoadBalancerIds")
            if not isinstance(ids, list) or not ids or len(ids) > 20:
                raise ApiError("InvalidParameterValue", "LoadBalancerIds holds 1 to 20 IDs.")
            return {"LoadBalancers": [{
                "LoadBalancerId": lb["id"], "LoadBalancerName": lb.get("name", ""),
                "Listeners": [{
                    "ListenerId": f"lbl-{lb['id'][3:]}-{listener['port']}", "Port": listener["port"],
                    "Protocol": listener.get("protocol", "HTTP"), "ListenerName": "",
                    "Rules": [{"LocationId": "loc-1", "Domain": "", "Url": "/", "Targets": [{
                        "IP": target["ip"], "Port": target["port"], "HealthStatus": target["healthy"],
                        "TargetId": "ins-" + target["ip"].replace(".", ""),
                        "HealthStatusDetail": target.get("detail", "Alive" if target["healthy"] else "Dead"),
                    } for target in listener.get("targets", [])]}],
                } for listener in lb.get("listeners", [])],
            } for lb in state.load_balancers if lb["id"] in ids]}

        def GetMonitorData(self, body):
            namespace, metric, period = body.get("Namespace"), body.get("MetricName"), body.get("Period")
            if namespace not in NAMESPACES:
                raise ApiError("InvalidParameterValue", f"Namespace {namespace!r} is not supported.")
            if not isinstance(metric, str) or not metric:
                raise ApiError("MissingParameter", "MetricName is required.")
            if period not in PERIODS:
                raise ApiError("InvalidParameterValue", f"Period {period!r} is not one of {sorted(PERIODS)}.")
            start = parse_time(body.get("StartTime"), "StartTime")
            end = parse_time(body.get("EndTime"), "EndTime")
            if start > end:
                raise ApiError("InvalidParameterValue", "StartTime is later than EndTime.")
            instances = body.get("Instances")
            if not isinstance(instances, list) or not instances:
                raise ApiError("MissingParameter", "Instances is required.")
            if len(instances) > 10:
                raise ApiError("InvalidParameterValue", "Instances holds at most 10 instances.")
            state.stats["max_instances_per_call"] = max(state.stats["max_instances_per_call"], len(instances))
            lb_type, names = NAMESPACES[namespace]
            now = time.time()
            points = []
            for instance in instances:
                dimensions = {d.get("Name"): d.get("Value") for d in instance.get("Dimensions", [])}
                if sorted(dimensions) != sorted(names):
                    raise ApiError("InvalidParameterValue",
                                   f"{namespace} instances are named by {names}, not {sorted(dimensions)}.")
                lb = next((lb for lb in state.load_balancers if lb.get("type", "OPEN") == lb_type
                           and lb["vip"] == dimensions["vip"]
                           and (lb_type == "OPEN" or lb.get("vpc_id") == dimensions["vpcId"])), None)
                series = state.points.get((lb["id"], metric), {}) if lb else {}
                buckets = {}
                for timestamp, value in series.items():
                    bucket = timestamp // period * period
                    if start <= bucket <= end and bucket + period <= now:
                        buckets.setdefault(bucket, []).append(value)
                stamps = sorted(buckets)
                points.append({"Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
                               "Timestamps": stamps, "Values": [sum(buckets[t]) for t in stamps]})
            return {"Period": period, "MetricName": metric, "DataPoints": points,
                    "StartTime": body["StartTime"], "EndTime": body["EndTime"], "Msg": ""}

    return Handler


def main():
    parser = argparse.ArgumentParser()
    listening.add_arguments(parser, "--port")
    parser.add_argument("--secret-id", required=True)
    parser.add_argument("--secret-key", required=True)
    parser.add_argument("--rate-limit", type=int, default=20, help="calls per second, as Cloud Monitor's")
    args = parser.parse_args()
    state = State(args.secret_id, args.secret_key, args.rate_limit)
    server = listening.server(ThreadingHTTPServer, make_handler(state), args)
    return listening.serve_forever(server)


if __name__ == "__main__":
    main()
