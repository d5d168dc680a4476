#!/usr/bin/env python3
"""Front door for moto in lbtriage's tests: one endpoint for every AWS client.

The Rust CloudWatch client speaks Smithy RPC v2 CBOR, which moto's server does not. Requests to
`/service/GraniteServiceVersion20100801/operation/<Op>` are decoded from CBOR, forwarded to moto as the
JSON protocol (`X-Amz-Target: GraniteServiceVersion20100801.<Op>`), and moto's reply is encoded back to
CBOR, timestamp members as CBOR tag 1, found with botocore's CloudWatch service model. Every other
request (ELBv2, Classic ELB, tagging) passes through to moto unchanged.

Test controls: `POST /__bridge/faults` with `{"throttle": N}` answers the next N CloudWatch requests
with a ThrottlingException (HTTP 400, as AWS does); with `{"deny": ["DescribeInstances", ...]}` the
named Query-protocol actions (EC2, ELB) are refused as IAM refuses an action the policy does not grant:
HTTP 403, EC2's `UnauthorizedOperation` or ELB's `AccessDenied`, each in its service's XML error shape; `GET /__bridge/stats` returns
`{"cloudwatch_requests": N}` counting every CloudWatch request received, retries included.

Usage: cbor_bridge.py --listen-port N --moto-port M
"""

import argparse
import datetime
import http.client
import http.server
import json
import socketserver
import sys
import threading
import urllib.parse
import uuid

import botocore.session
import cbor2

import listening  # noqa: E402  (beside this script)

PREFIX = "/service/GraniteServiceVersion20100801/operation/"
SERVICE_MODEL = botocore.session.get_session().get_service_model("cloudwatch")


def to_json_value(value):
    """CBOR-decoded request → JSON: datetimes become epoch seconds."""
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        return value.timestamp()
    if isinstance(value, dict):
        return {k: to_json_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_json_value(v) for v in value]
    if isinstance(value, bytes):
        raise ValueError("blob members are not used by lbtriage")
    return value


def with_timestamps(value, shape):
    """JSON reply → CBOR-ready: members the model types as timestamps become datetimes."""
    if shape is None or value is None:
        return value
    kind = shape.type_name
    if kind == "timestamp" and isinstance(value, (int, float)):
        return datetime.datetime.fromtimestamp(value, tz=datetime.timezone.utc)
    if kind == "structure" and isinstance(value, dict):
        return {k: with_timestamps(v, shape.members.get(k)) for k, v in value.items()}
    if kind == "list" and isinstance(value, list):
        return [with_timestamps(v, shape.member) for v in value]
    if kind == "map" and isinstance(value, dict):
        return {k: with_timestamps(v, shape.value) for k, v in value.items()}
    return value


class State:
    lock = threading.Lock()
    throttle = 0
    cloudwatch_requests = 0
    denied = set()


class Bridge(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    moto_port = 0

    def log_message(self, fmt, *args):  # quiet: the tests read their own output
        pass

    def _forward(self, method, path, headers, body):
        conn = http.client.HTTPConnection("127.0.0.1", self.moto_port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers)
            reply = conn.getresponse()
            return reply.status, reply.getheaders(), reply.read()
        finally:
            conn.close()

    def _send(self, status, headers, body):
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in ("content-length", "transfer-encoding", "connection", "server", "date"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _json(self, status, value):
        self._send(status, [("Content-Type", "application/json")], json.dumps(value).encode())

    def _denied(self, body):
        """The IAM refusal of a denied Query-protocol action, in its service's error shape, or None."""
        form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
        action = form.get("Action", [""])[0]
        with State.lock:
            if action not in State.denied:
                return None
        request_id = str(uuid.uuid4())
        if form.get("Version", [""])[0] == "2016-11-15":
            xml = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>UnauthorizedOperation</Code>"
                   "<Message>You are not authorized to perform this operation.</Message></Error></Errors>"
                   f"<RequestID>{request_id}</RequestID></Response>")
        else:
            xml = ("<ErrorResponse xmlns=\"http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/\"><Error><Type>Sender</Type>"
                   f"<Code>AccessDenied</Code><Message>User is not authorized to perform: elasticloadbalancing:{action}</Message>"
                   f"</Error><RequestId>{request_id}</RequestId></ErrorResponse>")
        return 403, [("Content-Type", "text/xml")], xml.encode()

    def do_POST(self):
        body = self._body()
        if self.path == "/__bridge/faults":
            control = json.loads(body or b"{}")
            with State.lock:
                if "throttle" in control:
                    State.throttle = int(control["throttle"])
                if "deny" in control:
                    State.denied = set(control["deny"])
            return self._json(200, {"throttle": State.throttle})
        if not self.path.startswith(PREFIX):
            refusal = self._denied(body)
            if refusal:
                return self._send(*refusal)
            return self._send(*self._forward("POST", self.path, dict(self.headers), body))
        operation = self.path[len(PREFIX):]
        with State.lock:
            State.cloudwatch_requests += 1
            throttled = State.throttle > 0
            State.throttle -= 1 if throttled else 0
        if throttled:
            payload = cbor2.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"})
            return self._send(400, [("Content-Type", "application/cbor"), ("smithy-protocol", "rpc-v2-cbor")], payload)
        request = to_json_value(cbor2.loads(body)) if body else {}
        headers = {
            "Content-Type": "application/x-amz-json-1.0",
            "X-Amz-Target": f"GraniteServiceVersion20100801.{operation}",
            "Authorization": self.headers.get("Authorization", ""),
        }
        status, _, reply = self._forward("POST", "/", headers, json.dumps(request).encode())
        try:
            decoded = json.loads(reply) if reply else {}
        except ValueError:
            status, decoded = 500, {"__type": "InternalFailure", "message": reply.decode("utf-8", "replace")[:500]}
        if status < 300:
            shape = SERVICE_MODEL.operation_model(operation).output_shape
            decoded = with_timestamps(decoded, shape)
        elif "__type" not in decoded:
            decoded = {"__type": decoded.get("Error", {}).get("Code", "InternalFailure"), "message": str(decoded)}
        payload = cbor2.dumps(decoded, datetime_as_timestamp=True, timezone=datetime.timezone.utc)
        self._send(status, [("Content-Type", "application/cbor"), ("smithy-protocol", "rpc-v2-cbor")], payload)

    def do_GET(self):
        if self.path == "/__bridge/stats":
            with State.lock:
                return self._json(200, {"cloudwatch_requests": State.cloudwatch_requests})
        self._send(*self._forward("GET", self.path, dict(self.headers), None))


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    parser = argparse.ArgumentParser()
    listening.add_arguments(parser)
    parser.add_argument("--moto-port", type=int, required=True)
    args = parser.parse_args()
    Bridge.moto_port = args.moto_port
    server = listening.server(Server, Bridge, args)
    print(f"bridge listening on 127.0.0.1:{server.server_address[1]}", flush=True)
    return listening.serve_forever(server)


if __name__ == "__main__":
    sys.exit(main())
