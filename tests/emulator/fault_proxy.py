"""A fault-injecting HTTP proxy between lbtriage and an emulator (the CBOR bridge, the CloudMonitor
test server). It forwards requests unchanged until told to misbehave:

    POST /__proxy/fault {"mode": "pass" | "status500" | "latency" | "reset" | "truncate" | "garbage",
                         "seconds": 30}

- status500: answers 500 with a short body, as a failing API front end does;
- latency: holds each request `seconds` before forwarding it;
- reset: reads the request, then resets the connection (RST, no answer);
- truncate: forwards, then sends the upstream head with half of its body and closes;
- garbage: answers 200 with random bytes under the upstream's content type.

GET /__proxy/stats reports how many requests each mode handled.
Usage: fault_proxy.py --listen-port P --upstream-port U
"""

import argparse
import http.client
import http.server
import json
import os
import socket
import socketserver
import struct
import threading
import time

import listening  # noqa: E402  (beside this script)

STATE = {"mode": "pass", "seconds": 30.0}
STATS = {}
LOCK = threading.Lock()
# Host passes through unchanged, as through a transparent proxy: Tencent's TC3 signature covers it.
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length"}


class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    upstream_port = 0

    def log_message(self, *args):
        pass

    def body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def send(self, status, headers, payload):
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in HOP_BY_HOP:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def control(self, payload):
        if self.path == "/__proxy/fault":
            update = json.loads(payload or b"{}")
            with LOCK:
                STATE["mode"] = update.get("mode", "pass")
                STATE["seconds"] = float(update.get("seconds", STATE["seconds"]))
                answer = dict(STATE)
        else:
            with LOCK:
                answer = dict(STATS)
        self.send(200, [("Content-Type", "application/json")], json.dumps(answer).encode())

    def forward(self, payload):
        connection = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        connection.request(self.command, self.path, body=payload or None, headers=headers)
        response = connection.getresponse()
        data = response.read()
        connection.close()
        return response.status, response.getheaders(), data

    def handle_any(self):
        payload = self.body()
        if self.path.startswith("/__proxy/"):
            self.control(payload)
            return
        with LOCK:
            mode, seconds = STATE["mode"], STATE["seconds"]
            STATS[mode] = STATS.get(mode, 0) + 1
        if mode == "status500":
            self.send(500, [("Content-Type", "text/plain")], b"injected fault: internal error\n")
        elif mode == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()
        elif mode == "garbage":
            status, headers, _ = self.forward(payload)
            kind = next((v for k, v in headers if k.lower() == "content-type"), "application/octet-stream")
            self.send(200, [("Content-Type", kind)], os.urandom(512))
        elif mode == "truncate":
            status, headers, data = self.forward(payload)
            self.send_response(status)
            for name, value in headers:
                if name.lower() not in HOP_BY_HOP:
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
        else:
            if mode == "latency":
                time.sleep(seconds)
            try:
                status, headers, data = self.forward(payload)
            except OSError as err:
                # The upstream is down (killed emulator): a gateway error, as a real proxy gives.
                self.send(502, [("Content-Type", "text/plain")], f"upstream unreachable: {err}\n".encode())
                return
            self.send(status, headers, data)

    do_GET = handle_any
    do_POST = handle_any


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        # A client that gave up on a held request (the latency fault) is expected, not news.
        pass


def main():
    parser = argparse.ArgumentParser()
    listening.add_arguments(parser)
    parser.add_argument("--upstream-port", type=int, required=True)
    args = parser.parse_args()
    Proxy.upstream_port = args.upstream_port
    listening.server(Server, Proxy, args).serve_forever()


if __name__ == "__main__":
    main()
