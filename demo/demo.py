#!/usr/bin/env python3
"""`make demo`: lbtriage against an emulated AWS account, all on loopback.

Starts moto behind the CBOR bridge, seeds a fleet (3 ALBs, 1 NLB, 1 Classic ELB), feeds CloudWatch
datapoints every 10-second period with normal traffic plus a rolling sequence of incidents, runs
lbtriage against it, and prints what lbtriage exports as it changes. Ctrl-C stops exactly what it
started. With --seconds N it stops by itself; with --check it exits non-zero unless the incidents
show up in lbtriage's counters.
"""

import argparse
import json
import os
import pathlib
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "emulator"))
import seed  # noqa: E402  (the test suite's seeding code, reused)

PERIOD = 10
FLEET = {
    "region": "us-east-1",
    "load_balancers": [
        {"key": "shop", "type": "application", "name": "shop", "tags": {"team": "web"}, "idle_timeout": 60,
         "targets": 3, "target_groups": ["shop-web"]},
        {"key": "api", "type": "application", "name": "api", "tags": {"team": "api"}, "targets": 2,
         "target_groups": ["api-v1"]},
        {"key": "admin", "type": "application", "name": "admin", "tags": {"team": "ops"}, "targets": 2,
         "stopped_targets": 1, "target_groups": ["admin-web"]},
        {"key": "edge", "type": "network", "name": "edge", "tags": {"team": "web"}, "targets": 2,
         "target_groups": ["edge-tcp"]},
        {"key": "legacy", "type": "classic", "name": "legacy", "tags": {"team": "ops"}, "idle_timeout": 60,
         "targets": 2},
    ],
}
# Each incident: (title, load balancer, metric, datapoints per period). They roll every 30 s.
INCIDENTS = [
    ("shop: targets close keep-alive early -> LB-generated 502", "shop", "HTTPCode_ELB_502_Count", 40),
    ("edge: source ports exhausted towards targets", "edge", "PortAllocationErrorCount", 25),
    ("legacy: surge queue full -> spillover", "legacy", "SpilloverCount", 30),
    ("api: backend application returns 5xx", "api", "HTTPCode_Target_5XX_Count", 50),
]
WATCH = [
    ("requests", "lbtriage_lb_requests_total", {}),
    ("lb 502", "lbtriage_lb_responses_total", {"origin": "lb", "code": "502"}),
    ("lb 5xx", "lbtriage_lb_responses_total", {"origin": "lb", "code": "5xx"}),
    ("backend 5xx", "lbtriage_lb_responses_total", {"origin": "backend"}),
    ("port alloc err", "lbtriage_lb_port_allocation_errors_total", {}),
    ("spillover", "lbtriage_lb_spillover_total", {}),
]


def free_port(preferred=None):
    for port in ([preferred] if preferred else []) + [0]:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return s.getsockname()[1]
            except OSError:
                continue
    raise RuntimeError("no free port")


def wait_http(url, deadline_s=30):
    deadline = time.time() + deadline_s
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except Exception:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {deadline_s}s")


def scrape(port):
    series = []
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        head, value = line.rsplit(" ", 1)
        name, _, rest = head.partition("{")
        labels = {}
        for pair in rest.rstrip("}").split('",'):
            if "=" in pair:
                key, val = pair.split("=", 1)
                labels[key] = val.strip('"')
        series.append((name, labels, float(value)))
    return series


def total(series, name, lb_name, match, names):
    return sum(v for n, l, v in series if n == name and names.get(l.get("lb")) == lb_name
               and all(l.get(k) == want for k, want in match.items()))


class Feeder(threading.Thread):
    """Puts one datapoint per metric and load balancer into each 10-second period."""

    def __init__(self, clients, fleet, started):
        super().__init__(daemon=True)
        self.clients, self.fleet, self.started = clients, fleet, started
        self.stop = threading.Event()

    def incident(self, now):
        return INCIDENTS[int((now - self.started) // 30) % len(INCIDENTS)]

    def run(self):
        last = None
        while not self.stop.is_set():
            now = time.time()
            period = int(now) // PERIOD * PERIOD
            if period != last:
                last = period
                title, lb, metric, count = self.incident(now)
                points = [{"lb": key, "metric": "RequestCount", "timestamp": period + 1,
                           "value": random.randint(500, 700)}
                          for key, e in self.fleet.items() if e["type"] != "network"]
                points.append({"lb": lb, "metric": metric, "timestamp": period + 2, "value": count})
                try:
                    seed.seed_datapoints(self.clients, self.fleet, points)
                except Exception as err:  # the emulator is going away at shutdown
                    print(f"feeder: {err}", file=sys.stderr)
            self.stop.wait(0.5)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lbtriage", default=str(ROOT / "target" / "debug" / "lbtriage"))
    parser.add_argument("--seconds", type=float, default=0, help="stop after this long (0: until Ctrl-C)")
    parser.add_argument("--check", action="store_true", help="fail unless the incidents show in lbtriage")
    args = parser.parse_args()

    children = []
    workdir = tempfile.TemporaryDirectory(prefix="lbtriage-demo-")

    def start(cmd, **kw):
        child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, start_new_session=True, **kw)
        children.append(child)
        return child

    def stop_all(*_):
        for child in reversed(children):
            if child.poll() is None:
                child.terminate()
        for child in reversed(children):
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
        workdir.cleanup()

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(130))
    try:
        moto_port, bridge_port = free_port(), free_port()
        start([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(moto_port)], stderr=subprocess.DEVNULL)
        start([sys.executable, str(ROOT / "tests/emulator/cbor_bridge.py"), "--listen-port", str(bridge_port),
               "--moto-port", str(moto_port)])
        wait_http(f"http://127.0.0.1:{moto_port}/moto-api/")
        wait_http(f"http://127.0.0.1:{bridge_port}/moto-api/")
        clients = seed.clients(f"http://127.0.0.1:{moto_port}", "us-east-1")
        fleet = seed.seed_fleet(clients, FLEET)
        names = {entry["dimension"]: key for key, entry in fleet.items()}

        config = pathlib.Path(workdir.name) / "lbtriage.yml"
        config.write_text(
            "# Generated by demo/demo.py: emulated AWS with 10-second periods.\n"
            "aws:\n  - name: demo\n    regions: [us-east-1]\n"
            f"    endpoint_url: http://127.0.0.1:{bridge_port}\n"
            "    period: 10s\n    delay: 2s\n    interval: 5s\n    discovery_ttl: 1m\n")
        port = free_port(10502)
        env = dict(os.environ, AWS_ACCESS_KEY_ID="demo", AWS_SECRET_ACCESS_KEY="demo",
                   AWS_EC2_METADATA_DISABLED="true")
        start([args.lbtriage, f"--config.file={config}", f"--web.listen-address=127.0.0.1:{port}"], env=env)
        wait_http(f"http://127.0.0.1:{port}/-/healthy")

        started = time.time()
        feeder = Feeder(clients, fleet, started)
        feeder.start()
        print(f"emulated AWS (moto + CBOR bridge): http://127.0.0.1:{bridge_port}")
        print(f"lbtriage:                         http://127.0.0.1:{port}/metrics")
        print(f"config:                           {config}")
        print("Incidents roll every 30 s; counters appear once a 10 s period completes (+2 s delay).")
        print("Ctrl-C stops everything the demo started.\n" if not args.seconds else "")

        last_title = None
        seen = {}
        while not args.seconds or time.time() - started < args.seconds:
            title = feeder.incident(time.time())[0]
            if title != last_title:
                print(f"--- incident now: {title}")
                last_title = title
            time.sleep(5)
            series = scrape(port)
            up = sum(v for n, _, v in series if n == "lbtriage_source_up")
            rows = []
            for key in fleet:
                cells = []
                for label, name, match in WATCH:
                    value = total(series, name, key, match, names)
                    delta = value - seen.get((key, label), value)
                    seen[(key, label)] = value
                    if label != "requests" and delta > 0:
                        cells.append(f"{label} +{delta:g}")
                if cells:
                    rows.append(f"  {key:<7} " + ", ".join(cells))
            stamp = time.strftime("%H:%M:%S")
            print(f"[{stamp}] source up={up:g}; " + ("new errors:\n" + "\n".join(rows) if rows else "no new errors"))

        if args.check:
            series = scrape(port)
            shop_502 = total(series, "lbtriage_lb_responses_total", "shop", {"origin": "lb", "code": "502"}, names)
            up = sum(v for n, _, v in series if n == "lbtriage_source_up")
            print(f"check: shop LB 502 counted = {shop_502:g}, source up = {up:g}")
            if not (shop_502 > 0 and up == 1):
                return 1
        return 0
    except KeyboardInterrupt:
        print("\nstopping")
        return 0
    finally:
        stop_all()


if __name__ == "__main__":
    sys.exit(main())
