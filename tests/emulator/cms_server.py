"""A strict stand-in for Alibaba Cloud CloudMonitor's DescribeMetricList (API 2019-01-01), and for the
inventory calls beside it: SLB DescribeLoadBalancers and DescribeHealthStatus (2014-05-15), ALB
ListLoadBalancers, ListServerGroups and ListServerGroupServers (2020-06-16), ECS DescribeInstances
(2014-05-26). Response fields follow the official SDKs' models (alibabacloud_alb20200616,
alibabacloud_ecs20140526).

Nothing real runs locally for CloudMonitor, so this double is strict where the real service is:

- every request is signed (Signature V1); the expected signature is computed with the official SDK's
  `alibabacloud_openapi_util` and a mismatch answers `SignatureDoesNotMatch` in the real error shape;
  unknown keys, stale timestamps, reused nonces and missing common parameters are refused too;
- pages hold at most `Length` points (capped by --max-page) and continue with an opaque `NextToken`;
- more than --rate-limit calls in a second answer `Throttling.User`, and the test can ask for the
  next N calls to be throttled (POST /__cms/faults {"throttle": N});
- an action the test denies (POST /__cms/faults {"deny": ["DescribeLoadBalancers"]}) answers as RAM
  refuses an action the caller's policy does not grant: HTTP 403 `Forbidden.RAM`;
- `Datapoints` is a JSON string, points carry `timestamp` in milliseconds, the instance dimension
  (`instanceId` for acs_slb_dashboard, `loadBalancerId` for acs_alb), `port` where given, and the
  statistic (`Average`, `Maximum`, `Minimum` for SLB; `Value` for ALB); the range is (StartTime, EndTime].

Inventory: SLB pages by `PageNumber`/`PageSize` (at most 100), ALB by `NextToken`/`MaxResults` (at
most 100); Tags as each API writes them. Unless the test sets the instances, they are the ones the
datapoints name.

Test control: POST /__cms/datapoints (a minute posted again replaces its value, as late data
revises it) with {"points": [{"namespace", "metric", "timestamp" (s),
"instance", "port"?, "value"}]} adds data; POST /__cms/instances with {"instances": [{"id",
"namespace", "name", "address", "tags": {...}, "backends": [{"ip", "port", "listener_port",
"status"}], "server_groups": [{"id", "health_path", "servers": [{"id", "type", "ip"?, "port"}]}]}],
"ecs_instances": {"<instance id>": "<private ip>"}} sets the inventory; GET /__cms/stats reports metric calls (`ok`), inventory calls,
throttling and signature failures. Usage: cms_server.py --port P --access-key-id ID --access-key-secret SECRET
"""

import argparse
import base64
import json
import threading
import time
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from alibabacloud_openapi_util.client import Client as OpenApiUtil

import listening  # noqa: E402  (beside this script)

INSTANCE_DIMENSION = {"acs_slb_dashboard": "instanceId", "acs_alb": "loadBalancerId"}
COMMON = ("Format", "Version", "AccessKeyId", "SignatureMethod", "SignatureVersion", "SignatureNonce",
          "Timestamp", "Signature", "Action")
VERSIONS = {"DescribeMetricList": "2019-01-01", "DescribeLoadBalancers": "2014-05-15",
            "DescribeHealthStatus": "2014-05-15", "ListLoadBalancers": "2020-06-16",
            "ListServerGroups": "2020-06-16", "ListServerGroupServers": "2020-06-16",
            "DescribeInstances": "2014-05-26"}


class ApiError(Exception):
    def __init__(self, status, code, message):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class State:
    def __init__(self, key_id, secret, rate_limit, max_page):
        self.lock = threading.Lock()
        self.keys = {key_id: secret}
        self.rate_limit = rate_limit
        self.max_page = max_page
        # (namespace, metric) -> sorted [(timestamp_s, instance, port, value)]: a large fleet stays fast.
        self.points = {}
        # (namespace, metric) -> {(timestamp, instance, port): value}: one value per minute.
        self.minutes = {}
        self.nonces = set()
        self.instances = None     # set by the test; else derived from the datapoints
        self.ecs = {}             # ECS instance ID -> private IP
        self.throttle_next = 0
        self.denied = set()         # actions answered with Forbidden.RAM
        self.window = (0, 0)        # (second, calls in it)
        self.stats = {"calls": 0, "ok": 0, "throttled": 0, "signature_failures": 0, "errors": 0,
                      "max_calls_in_a_second": 0, "pages_with_token": 0, "inventory_calls": 0}


def parse_time(text):
    if text is None or text == "":
        return None
    if text.isdigit():
        value = int(text)
        return value / 1000 if value > 10_000_000_000 else value
    for fmt in ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%d %H:%M:%S"):
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=timezone.utc).timestamp()
        except ValueError:
            pass
    raise ApiError(400, "InvalidParameter", f"StartTime/EndTime {text!r} is not a time")


def make_handler(state):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def reply(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json;charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def error(self, err, host):
            self.reply(err.status, {
                "RequestId": str(uuid.uuid4()).upper(),
                "HostId": host,
                "Code": err.code,
                "Message": err.message,
                "Recommend": f"https://api.aliyun.com/troubleshoot?q={err.code}&product=Cms",
            })

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            path = urlsplit(self.path).path
            with state.lock:
                if path == "/__cms/datapoints":
                    touched = set()
                    for p in body["points"]:
                        port = None if p.get("port") is None else str(p["port"])
                        key = (p["namespace"], p["metric"])
                        # A minute published again (late data) replaces its value, as a provider's
                        # value for a minute changes while its data completes.
                        minutes = state.minutes.setdefault(key, {})
                        minutes[(int(p["timestamp"]), p["instance"], port)] = float(p["value"])
                        touched.add(key)
                    for key in touched:
                        state.points[key] = sorted(
                            (at + (value,) for at, value in state.minutes[key].items()),
                            key=lambda p: (p[0], p[1], p[2] or ""))
                    self.reply(200, {"points": sum(len(v) for v in state.points.values())})
                elif path == "/__cms/instances":
                    state.instances = body["instances"]
                    state.ecs = body.get("ecs_instances", {})
                    self.reply(200, {"instances": len(state.instances)})
                elif path == "/__cms/faults":
                    if "throttle" in body:
                        state.throttle_next = int(body["throttle"])
                    if "deny" in body:
                        state.denied = set(body["deny"])
                    self.reply(200, {"throttle": state.throttle_next, "deny": sorted(state.denied)})
                else:
                    self.reply(404, {"error": "unknown control path"})

        def do_GET(self):
            url = urlsplit(self.path)
            host = self.headers.get("Host", "metrics.emulated")
            if url.path == "/__cms/stats":
                with state.lock:
                    self.reply(200, dict(state.stats))
                return
            if url.path != "/":
                self.reply(404, {"Code": "InvalidApi.NotFound", "Message": "Specified api is not found."})
                return
            pairs = parse_qsl(url.query, keep_blank_values=True)
            params = dict(pairs)
            with state.lock:
                state.stats["calls"] += 1
                try:
                    if len(params) != len(pairs):
                        raise ApiError(400, "InvalidParameter", "a parameter is repeated")
                    self.check_rate()
                    self.authenticate(params)
                    action = params["Action"]
                    if action in state.denied:
                        raise ApiError(403, "Forbidden.RAM", "User not authorized to operate on the specified "
                                       "resource, or this API doesn't support RAM.")
                    if action == "DescribeMetricList":
                        body = self.describe(params)
                    elif action in VERSIONS:
                        body = getattr(self, action)(params)
                        state.stats["inventory_calls"] += 1
                        body["RequestId"] = str(uuid.uuid4()).upper()
                        self.reply(200, body)
                        return
                    else:
                        raise ApiError(404, "InvalidAction.NotFound", f"Specified api is not found: {action}")
                except ApiError as err:
                    key = {"Throttling.User": "throttled", "SignatureDoesNotMatch": "signature_failures"}
                    state.stats[key.get(err.code, "errors")] += 1
                    self.error(err, host)
                    return
                state.stats["ok"] += 1
            self.reply(200, body)

        def check_rate(self):
            second = int(time.time())
            start, calls = state.window
            calls = calls + 1 if start == second else 1
            state.window = (second, calls)
            state.stats["max_calls_in_a_second"] = max(state.stats["max_calls_in_a_second"], calls)
            if state.throttle_next > 0 or calls > state.rate_limit:
                state.throttle_next = max(0, state.throttle_next - 1)
                raise ApiError(400, "Throttling.User", "Request was denied due to user flow control.")

        def authenticate(self, params):
            for name in COMMON:
                if not params.get(name):
                    raise ApiError(400, "MissingParameter", f"The input parameter \"{name}\" that is mandatory "
                                   "for processing this request is not supplied.")
            expected = {"Format": "JSON", "Version": VERSIONS.get(params["Action"], "2019-01-01"),
                        "SignatureMethod": "HMAC-SHA1", "SignatureVersion": "1.0"}
            for name, value in expected.items():
                if params[name] != value:
                    raise ApiError(400, "InvalidParameter", f"{name} must be {value}, not {params[name]!r}")
            secret = state.keys.get(params["AccessKeyId"])
            if secret is None:
                raise ApiError(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
            try:
                stamp = datetime.strptime(params["Timestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
            except ValueError:
                raise ApiError(400, "InvalidTimeStamp.Format", "Specified time stamp or date value is not well formatted.")
            if abs(stamp.timestamp() - time.time()) > 900:
                raise ApiError(400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.")
            signed = {k: v for k, v in params.items() if k != "Signature"}
            signature = OpenApiUtil.get_rpcsignature(signed, "GET", secret)
            if signature != params["Signature"]:
                raise ApiError(400, "SignatureDoesNotMatch",
                               "Specified signature is not matched with our calculation.")
            if params["SignatureNonce"] in state.nonces:
                raise ApiError(400, "SignatureNonceUsed", "Specified signature nonce was used already.")
            state.nonces.add(params["SignatureNonce"])

        def inventory(self, namespace):
            if state.instances is not None:
                return [i for i in state.instances if i["namespace"] == namespace]
            ids = sorted({p[1] for (ns, _), points in state.points.items() if ns == namespace for p in points})
            return [{"id": i, "namespace": namespace} for i in ids]

        def page_size(self, params, name):
            try:
                size = int(params.get(name) or 10)
            except ValueError:
                raise ApiError(400, "InvalidParameter", f"{name} is not a number.")
            if not 1 <= size <= 100:
                raise ApiError(400, "InvalidParameter", f"{name} must be between 1 and 100.")
            return size

        def DescribeLoadBalancers(self, params):
            size = self.page_size(params, "PageSize")
            page = int(params.get("PageNumber") or 1)
            instances = self.inventory("acs_slb_dashboard")
            chunk = instances[(page - 1) * size:page * size]
            return {"TotalCount": len(instances), "PageNumber": page, "PageSize": size,
                    "LoadBalancers": {"LoadBalancer": [{
                        "LoadBalancerId": i["id"], "LoadBalancerName": i.get("name", ""),
                        "Address": i.get("address", "192.0.2.1"), "AddressType": "internet",
                        "LoadBalancerStatus": "active", "RegionId": params.get("RegionId", ""),
                        "Tags": {"Tag": [{"TagKey": k, "TagValue": v} for k, v in i.get("tags", {}).items()]},
                    } for i in chunk]}}

        def ListLoadBalancers(self, params):
            chunk, body = self.token_page(self.inventory("acs_alb"), params)
            body["LoadBalancers"] = [{
                "LoadBalancerId": i["id"], "LoadBalancerName": i.get("name", ""),
                "DNSName": i.get("address", f"{i['id']}.cn-hangzhou.alb.aliyuncs.com"),
                "AddressType": "Internet", "LoadBalancerStatus": "Active",
                "Tags": [{"Key": k, "Value": v} for k, v in i.get("tags", {}).items()],
            } for i in chunk]
            return body

        def token_page(self, items, params):
            """A page of `items` by `MaxResults` (1 to 100) and an opaque `NextToken`."""
            size = self.page_size(params, "MaxResults")
            offset = 0
            if params.get("NextToken"):
                try:
                    offset = int(base64.urlsafe_b64decode(params["NextToken"]).decode())
                except ValueError:
                    raise ApiError(400, "InvalidParameter.NextToken", "NextToken is invalid.")
            body = {"TotalCount": len(items), "MaxResults": size}
            if offset + size < len(items):
                body["NextToken"] = base64.urlsafe_b64encode(str(offset + size).encode()).decode()
            return items[offset:offset + size], body

        def server_groups(self):
            groups = {}
            for lb in self.inventory("acs_alb"):
                for group in lb.get("server_groups", []):
                    entry = groups.setdefault(group["id"], dict(group, lbs=[]))
                    entry["lbs"].append(lb["id"])
            return groups

        def ListServerGroups(self, params):
            groups = sorted(self.server_groups().values(), key=lambda g: g["id"])
            chunk, body = self.token_page(groups, params)
            body["ServerGroups"] = [{
                "ServerGroupId": g["id"], "ServerGroupName": g["id"], "ServerGroupType": "Instance",
                "Protocol": "HTTP", "ServerGroupStatus": "Available", "ServerCount": len(g["servers"]),
                "RelatedLoadBalancerIds": g["lbs"],
                "HealthCheckConfig": {"HealthCheckEnabled": True, "HealthCheckProtocol": "HTTP",
                                      "HealthCheckPath": g.get("health_path", "/"), "HealthCheckConnectPort": 0},
            } for g in chunk]
            return body

        def ListServerGroupServers(self, params):
            group_id = params.get("ServerGroupId")
            group = self.server_groups().get(group_id) if group_id else None
            if group is None:
                raise ApiError(400, "ResourceNotFound.ServerGroup", f"The specified resource {group_id} is not found.")
            chunk, body = self.token_page(group["servers"], params)
            servers = []
            for server in chunk:
                entry = {"ServerId": server["id"], "ServerType": server["type"], "Port": server["port"],
                         "ServerGroupId": group_id, "Status": "Available", "Weight": 100}
                if server.get("ip"):
                    entry["ServerIp"] = server["ip"]
                servers.append(entry)
            body["Servers"] = servers
            return body

        def DescribeInstances(self, params):
            try:
                ids = json.loads(params.get("InstanceIds") or "[]")
            except ValueError:
                raise ApiError(400, "InvalidInstanceIds.Malformed", "The specified parameter InstanceIds is not valid.")
            if not isinstance(ids, list) or len(ids) > 100:
                raise ApiError(400, "InvalidInstanceIds.Malformed", "InstanceIds takes a JSON array of at most 100 IDs.")
            size = int(params.get("PageSize") or 10)
            if not 1 <= size <= 100:
                raise ApiError(400, "InvalidParameter", "PageSize must be between 1 and 100.")
            found = [i for i in ids if i in state.ecs][:size]
            return {"TotalCount": len(found), "PageSize": size, "PageNumber": 1, "Instances": {"Instance": [{
                "InstanceId": i, "Status": "Running",
                "VpcAttributes": {"PrivateIpAddress": {"IpAddress": [state.ecs[i]]}, "VpcId": "vpc-test"},
                "InnerIpAddress": {"IpAddress": []},
            } for i in found]}}

        def DescribeHealthStatus(self, params):
            lb_id = params.get("LoadBalancerId")
            if not lb_id:
                raise ApiError(400, "MissingLoadBalancerId", "LoadBalancerId is mandatory for this action.")
            instance = next((i for i in self.inventory("acs_slb_dashboard") if i["id"] == lb_id), None)
            if instance is None:
                raise ApiError(400, "InvalidLoadBalancerId.NotFound", f"The specified LoadBalancerId {lb_id} does not exist.")
            return {"BackendServers": {"BackendServer": [{
                "ServerId": "i-" + b["ip"].replace(".", ""), "ServerIp": b["ip"], "Port": b["port"],
                "ListenerPort": b["listener_port"], "Protocol": "http", "ServerHealthStatus": b["status"],
            } for b in instance.get("backends", [])]}}

        def describe(self, params):
            namespace, metric = params.get("Namespace"), params.get("MetricName")
            if not namespace or not metric:
                raise ApiError(400, "MissingParameter", "Namespace and MetricName are mandatory.")
            period = params.get("Period", "60")
            if period not in ("60", "300", "900"):
                raise ApiError(400, "InvalidParameter", f"Period {period} is not one of 60, 300, 900.")
            start, end = parse_time(params.get("StartTime")), parse_time(params.get("EndTime"))
            if start is not None and end is not None and start >= end:
                raise ApiError(400, "InvalidParameter", "StartTime must be earlier than EndTime.")
            wanted = None
            if params.get("Dimensions"):
                try:
                    wanted = {d[INSTANCE_DIMENSION.get(namespace, "instanceId")]
                              for d in json.loads(params["Dimensions"])}
                except (ValueError, KeyError, TypeError):
                    raise ApiError(400, "InvalidParameter", "Dimensions is not a JSON list of dimension maps.")
            length = min(int(params.get("Length") or 1000), 1000, state.max_page)
            offset = 0
            if params.get("NextToken"):
                try:
                    offset = int(base64.urlsafe_b64decode(params["NextToken"]).decode().split(":")[1])
                except (ValueError, IndexError):
                    raise ApiError(400, "InvalidParameter", "NextToken is invalid.")
            dimension = INSTANCE_DIMENSION.get(namespace, "instanceId")
            statistics = ("Value",) if namespace == "acs_alb" else ("Average", "Maximum", "Minimum")
            matching = [
                p for p in state.points.get((namespace, metric), [])
                if (start is None or p[0] > start) and (end is None or p[0] <= end)
                and (wanted is None or p[1] in wanted)
            ]
            matching = aggregate(matching, int(period))
            page = matching[offset:offset + length]
            points = []
            for timestamp, instance, port, values in page:
                point = {"timestamp": timestamp * 1000, "userId": "1234567890", dimension: instance}
                if port is not None:
                    point["port"] = str(port)
                    point["vip"] = "192.0.2.10"
                summary = {"Average": sum(values) / len(values), "Maximum": max(values),
                           "Minimum": min(values), "Value": sum(values) / len(values)}
                for statistic in statistics:
                    point[statistic] = summary[statistic]
                points.append(point)
            body = {"RequestId": str(uuid.uuid4()).upper(), "Code": "200", "Success": True, "Period": period,
                    "Datapoints": json.dumps(points)}
            if offset + length < len(matching):
                token = f"{uuid.uuid4().hex}:{offset + length}"
                body["NextToken"] = base64.urlsafe_b64encode(token.encode()).decode()
                state.stats["pages_with_token"] += 1
            return body

    return Handler


def aggregate(points, period):
    """One datapoint per instance, listener and `period` (60, 300 or 900 s), at the period's start,
    from the one-minute points stored: the statistics summarise the minutes inside it."""
    buckets = {}
    for timestamp, instance, port, value in points:
        key = (timestamp // period * period, instance, port)
        buckets.setdefault(key, []).append(value)
    return [(t, i, p, values) for (t, i, p), values in sorted(buckets.items(), key=lambda kv: (kv[0][0], kv[0][1], str(kv[0][2])))]


def main():
    parser = argparse.ArgumentParser()
    listening.add_arguments(parser, "--port")
    parser.add_argument("--access-key-id", required=True)
    parser.add_argument("--access-key-secret", required=True)
    parser.add_argument("--rate-limit", type=int, default=50, help="calls per second per API, as the account limit")
    parser.add_argument("--max-page", type=int, default=1000, help="points per page at most")
    args = parser.parse_args()
    state = State(args.access_key_id, args.access_key_secret, args.rate_limit, args.max_page)
    server = listening.server(ThreadingHTTPServer, make_handler(state), args)
    server.serve_forever()


if __name__ == "__main__":
    main()
