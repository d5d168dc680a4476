#!/usr/bin/env python3
"""Load and soak of the real binary, collection running all along (results in docs/BENCHMARKS.md).

load: the CloudMonitor test server holds a fleet of SLB instances large enough for ~50,000 series;
      lbtriage collects from it every 5 s while wrk (Debian) hits /metrics with 64 connections for
      60 s. Reported: series count, requests/s, latency p50/p99 from wrk, errors (socket errors and
      non-2xx; must be zero).
soak: a smaller fleet plus probes against loopback backends (healthy, closing keep-alive early,
      refusing), collection and probes every 5 s, for --minutes; RSS sampled every 10 s and its
      least-squares slope reported (KiB per minute) with the first and last values.

Usage: load_and_soak.py --lbtriage target/release/lbtriage load
       load_and_soak.py --lbtriage target/release/lbtriage soak --minutes 30
"""

import argparse
import http.server
import json
import os
import pathlib
import re
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent
PYTHON = ROOT / ".venv/bin/python"
KEY_ID, SECRET = "LTAIbench", "bench-secret"
SLB_METRICS = {
    "InstanceQps": (None, 20.0), "InstanceStatusCode5xx": (None, 0.4), "InstanceUpstreamCode5xx": (None, 0.1),
    "InstanceDropConnection": (None, 0.0), "DropPacketRX": (80, 0.0), "DropPacketTX": (80, 0.0),
    "DropTrafficRX": (80, 0.0), "DropTrafficTX": (80, 0.0), "HeathyServerCount": (80, 2.0),
    "UnhealthyServerCount": (80, 0.0), "UpstreamRt": (80, 35.0), "InstanceQpsUtilization": (None, 20.0),
    "InstanceMaxConnectionUtilization": (None, 5.0), "InstanceNewConnectionUtilization": (None, 5.0),
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, deadline=30):
    end = time.time() + deadline
    while time.time() < end:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except OSError:
            time.sleep(0.2)
    sys.exit(f"{url} did not answer")


def post(url, body):
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=120).read()


def start_cms(instances, minutes_back, minutes_ahead):
    port = free_port()
    process = subprocess.Popen([str(PYTHON), str(ROOT / "tests/emulator/cms_server.py"), "--port", str(port),
                                "--access-key-id", KEY_ID, "--access-key-secret", SECRET],
                               stdout=subprocess.DEVNULL)
    wait_http(f"http://127.0.0.1:{port}/__cms/stats")
    now = int(time.time()) // 60 * 60
    for metric, (port_dim, value) in SLB_METRICS.items():
        points = []
        for minute in range(-minutes_back, minutes_ahead + 1):
            for i in range(instances):
                point = {"namespace": "acs_slb_dashboard", "metric": metric, "timestamp": now + minute * 60,
                         "instance": f"lb-bench{i:05d}", "value": value}
                if port_dim:
                    point["port"] = port_dim
                points.append(point)
        post(f"http://127.0.0.1:{port}/__cms/datapoints", {"points": points})
    return process, port


class Backend(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    closes_after = None

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    do_POST = do_GET


def backend(timeout=None):
    handler = type("B", (Backend,), {"timeout": timeout})
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server.server_address[1]


def start_lbtriage(binary, cms_port, extra, directory):
    port = free_port()
    config = pathlib.Path(directory) / "lbtriage.yml"
    config.write_text(
        "auto_probes:\n  when: never\n"
        "alibaba:\n  - name: bench\n    regions: [cn-hangzhou]\n"
        f"    endpoint_url: http://127.0.0.1:{cms_port}\n    namespaces: [acs_slb_dashboard]\n"
        "    period: 60s\n    delay: 0s\n    interval: 5s\n    max_calls_per_second: 50\n" + extra)
    env = dict(os.environ, ALIBABA_CLOUD_ACCESS_KEY_ID=KEY_ID, ALIBABA_CLOUD_ACCESS_KEY_SECRET=SECRET)
    process = subprocess.Popen([binary, f"--config.file={config}", f"--web.listen-address=127.0.0.1:{port}",
                                "--log.level=warn"], env=env, stderr=subprocess.DEVNULL)
    wait_http(f"http://127.0.0.1:{port}/-/healthy")
    return process, port


def series_count(port):
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30).read().decode()
    return sum(1 for line in text.splitlines() if line and not line.startswith("#"))


def rss_kib(pid, field="VmRSS"):
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def load(args):
    cms, cms_port = start_cms(args.instances, 6, 3)
    with tempfile.TemporaryDirectory() as directory:
        lbtriage, port = start_lbtriage(args.lbtriage, cms_port, "", directory)
        try:
            deadline = time.time() + 300
            while series_count(port) < args.series and time.time() < deadline:
                time.sleep(2)
            series = series_count(port)
            print(f"series exposed: {series}")
            wrk = subprocess.run(["wrk", "-t2", "-c64", f"-d{args.seconds}s", "--timeout", "10s", "--latency",
                                  f"http://127.0.0.1:{port}/metrics"], capture_output=True, text=True, check=True)
            print(wrk.stdout)
            stats = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{cms_port}/__cms/stats").read())
            print(f"collection during the run: CloudMonitor calls {stats['calls']}, throttled {stats['throttled']}")
            errors = re.search(r"Socket errors: (.*)", wrk.stdout)
            non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", wrk.stdout)
            print(f"peak RSS {rss_kib(lbtriage.pid, 'VmHWM') // 1024} MiB")
            if errors or non2xx:
                sys.exit(f"errors: {errors.group(0) if errors else ''} {non2xx.group(0) if non2xx else ''}")
        finally:
            lbtriage.terminate()
            cms.terminate()


def soak(args):
    cms, cms_port = start_cms(args.instances, 6, args.minutes + 5)
    healthy, early = backend(), backend(timeout=1)
    with socket.socket() as refusing:
        refusing.bind(("127.0.0.1", 0))
        refused = refusing.getsockname()[1]
        probes = "probes:\n" + "".join(
            f"  - name: soak{i}\n    url: http://127.0.0.1:{healthy}/\n"
            f"    backends: ['127.0.0.1:{early}', '127.0.0.1:{refused}']\n"
            "    interval: 5s\n    timeout: 2s\n    lb_idle_timeout: 3s\n"
            for i in range(args.probes))
        with tempfile.TemporaryDirectory() as directory:
            lbtriage, port = start_lbtriage(args.lbtriage, cms_port, probes, directory)
            samples = []
            started = time.time()
            try:
                while time.time() - started < args.minutes * 60:
                    time.sleep(10)
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30).read()
                    samples.append(((time.time() - started) / 60, rss_kib(lbtriage.pid)))
                series = series_count(port)
            finally:
                lbtriage.terminate()
                cms.terminate()
    # Slope over the second half onward: the first minutes fill caches and connection pools.
    tail = [s for s in samples if s[0] >= args.minutes / 6]
    n = len(tail)
    mean_x = sum(x for x, _ in tail) / n
    mean_y = sum(y for _, y in tail) / n
    slope = sum((x - mean_x) * (y - mean_y) for x, y in tail) / sum((x - mean_x) ** 2 for x, _ in tail)
    print(f"soak {args.minutes} min, {args.instances} instances, {args.probes} probes, {series} series")
    print(f"RSS first {samples[0][1] // 1024} MiB, at {args.minutes // 6} min {tail[0][1] // 1024} MiB, "
          f"last {samples[-1][1] // 1024} MiB, max {max(y for _, y in samples) // 1024} MiB")
    print(f"RSS slope after minute {args.minutes // 6}: {slope:.1f} KiB/min over {n} samples")
    (pathlib.Path(args.csv)).write_text("minute,rss_kib\n" + "".join(f"{x:.2f},{y}\n" for x, y in samples))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--lbtriage", required=True)
    sub = parser.add_subparsers(dest="mode", required=True)
    p = sub.add_parser("load")
    p.add_argument("--instances", type=int, default=3340)
    p.add_argument("--series", type=int, default=50000)
    p.add_argument("--seconds", type=int, default=60)
    p = sub.add_parser("soak")
    p.add_argument("--minutes", type=int, default=30)
    p.add_argument("--instances", type=int, default=200)
    p.add_argument("--probes", type=int, default=20)
    p.add_argument("--csv", default="target/soak-rss.csv")
    args = parser.parse_args()
    load(args) if args.mode == "load" else soak(args)


if __name__ == "__main__":
    main()
