#!/usr/bin/env python3
"""How long from the start of an outage to the page, in real time, with the shipped rules.

One ALB in emulated AWS (moto behind the project's CBOR bridge) serves 100 requests a second in
60-second periods. Its datapoints arrive as CloudWatch documents ELB data arriving: about a minute
after the minute ends, and still changing for a while after: 80 % of each period is published 60 s
after the period ends, the rest 150 s after. At T0, a period boundary after a warm-up, 40 % of the
requests start failing with target 5xx. `make bench-page` warms up 20 minutes, so the request
count, a slow-tier series in adaptive collection (15 minutes behind), is flowing by then. lbtriage reads the emulator with the job settings under
test; Prometheus (the example configuration's 60 s scrape and 30 s evaluation) evaluates the rules
`lbtriage rules` renders (shipped `for` durations); Alertmanager runs the example configuration
(group_wait 30 s) with its receivers pointed at a webhook this script serves.

It prints, in seconds after T0: (a) the first backend 5xx lbtriage exports, (b) LBErrorBudgetBurn
firing in Prometheus, (c) the notification arriving from Alertmanager. A benchmark, not a test:
nothing fails on a slow machine. Usage:

    bench/outage_to_page.py --lbtriage target/debug/lbtriage --delay 120s --settle 0s --page-for 2m
"""

import argparse
import http.server
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "emulator"))
sys.path.insert(0, str(ROOT / "demo"))
import seed  # noqa: E402
from demo import Children, free_port, start_emulator, wait_http  # noqa: E402

PERIOD = 60
REQUESTS = 6000  # a minute at 100 requests a second
ERROR_SHARE = 0.4
# (seconds after the period ends, share of the period's counts published then)
PARTS = [(60, 0.8), (150, 0.2)]


class Webhook(http.server.BaseHTTPRequestHandler):
    page_at = None

    def log_message(self, *args):
        pass

    def do_POST(self):
        payload = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        for alert in payload.get("alerts", []):
            if alert.get("labels", {}).get("alertname") == "LBErrorBudgetBurn" and alert.get("status") == "firing":
                Webhook.page_at = Webhook.page_at or time.time()
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


class Feeder(threading.Thread):
    """Publishes each period in parts, late, as ELB data arrives in CloudWatch."""

    def __init__(self, clients, fleet, outage_from):
        super().__init__(daemon=True)
        self.clients, self.fleet, self.outage_from = clients, fleet, outage_from
        self.stop = threading.Event()
        self.done = set()

    def run(self):
        first = int(time.time()) // PERIOD * PERIOD - 10 * PERIOD
        while not self.stop.is_set():
            now = time.time()
            period = first
            while period + PERIOD <= now:
                for lag, share in PARTS:
                    if (period, lag) in self.done or now < period + PERIOD + lag:
                        continue
                    self.done.add((period, lag))
                    points = [{"lb": "shop", "metric": "RequestCount", "timestamp": period + 1,
                               "value": REQUESTS * share}]
                    if period >= self.outage_from:
                        points.append({"lb": "shop", "metric": "HTTPCode_Target_5XX_Count", "timestamp": period + 1,
                                       "value": REQUESTS * ERROR_SHARE * share})
                    seed.seed_datapoints(self.clients, self.fleet, points)
                period += PERIOD
            self.stop.wait(0.5)


def get_json(url):
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def backend_5xx(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith("lbtriage_lb_responses_total{") and 'origin="backend"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lbtriage", default=str(ROOT / "target" / "debug" / "lbtriage"))
    parser.add_argument("--delay", default="120s")
    parser.add_argument("--settle", default="0s")
    parser.add_argument("--page-for", default=None,
                        help="the page's `for` (rules.for.error_budget_burn); the shipped one if not given")
    parser.add_argument("--warmup", type=int, default=300, help="seconds of healthy traffic before T0")
    parser.add_argument("--timeout", type=int, default=900, help="seconds after T0 to wait for the page")
    args = parser.parse_args()

    children = Children()
    workdir = tempfile.TemporaryDirectory(prefix="lbtriage-bench-page-")
    work = pathlib.Path(workdir.name)

    def start(cmd, **kw):
        return children.start(cmd, stderr=subprocess.DEVNULL, **kw)

    try:
        bridge_port, clients = start_emulator(children)
        fleet = seed.seed_fleet(clients, {"region": "us-east-1", "load_balancers": [
            {"key": "shop", "type": "application", "name": "shop", "target_groups": ["shop-web"]}]})

        t0 = (int(time.time()) + args.warmup) // PERIOD * PERIOD + PERIOD
        feeder = Feeder(clients, fleet, t0)
        feeder.start()

        config = work / "lbtriage.yml"
        config.write_text(
            "auto_probes:\n  when: never\n"
            f"aws:\n  - name: bench\n    regions: [us-east-1]\n    endpoint_url: http://127.0.0.1:{bridge_port}\n"
            f"    delay: {args.delay}\n    settle: {args.settle}\n")
        port = free_port()
        env = dict(os.environ, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
                   AWS_EC2_METADATA_DISABLED="true")
        start([args.lbtriage, f"--config.file={config}", f"--web.listen-address=127.0.0.1:{port}"], env=env)
        wait_http(f"http://127.0.0.1:{port}/-/healthy")

        rules = work / "lbtriage.rules.yml"
        render = [args.lbtriage, "rules"]
        if args.page_for:
            overrides = work / "rules-overrides.yml"
            overrides.write_text(f"rules:\n  for:\n    error_budget_burn: {args.page_for}\n")
            render.append(f"--config.file={overrides}")
        rules.write_bytes(subprocess.run(render, check=True, capture_output=True).stdout)
        hook = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Webhook)
        threading.Thread(target=hook.serve_forever, daemon=True).start()
        am_config = work / "alertmanager.yml"
        am_config.write_text(re.sub(r"http://127\.0\.0\.1:9095", f"http://127.0.0.1:{hook.server_address[1]}",
                                    (ROOT / "deploy/alertmanager/alertmanager.yml").read_text()))
        am_port = free_port()
        start([shutil.which("prometheus-alertmanager") or "alertmanager", f"--config.file={am_config}",
               f"--storage.path={work}/alertmanager", f"--web.listen-address=127.0.0.1:{am_port}",
               "--cluster.listen-address="])
        prom_config = work / "prometheus.yml"
        example = (ROOT / "deploy/prometheus/prometheus.yml").read_text()
        example = example.replace("../../alerts/lbtriage.rules.yml", str(rules))
        example = example.replace("127.0.0.1:9093", f"127.0.0.1:{am_port}").replace("127.0.0.1:10502", f"127.0.0.1:{port}")
        prom_config.write_text(example)
        prom_port = free_port()
        start(["prometheus", f"--config.file={prom_config}", f"--storage.tsdb.path={work}/prometheus",
               f"--web.listen-address=127.0.0.1:{prom_port}"])
        wait_http(f"http://127.0.0.1:{am_port}/-/ready")
        wait_http(f"http://127.0.0.1:{prom_port}/-/ready")

        counted_at = firing_at = None
        while time.time() < t0 + args.timeout and Webhook.page_at is None:
            now = time.time()
            if counted_at is None and now >= t0 and backend_5xx(port) > 0:
                counted_at = now
            if firing_at is None:
                alerts = get_json(f"http://127.0.0.1:{prom_port}/api/v1/alerts")["data"]["alerts"]
                if any(a["labels"].get("alertname") == "LBErrorBudgetBurn" and a["state"] == "firing" for a in alerts):
                    firing_at = now
            time.sleep(1)
        feeder.stop.set()

        def after(at):
            return f"{at - t0:.0f}" if at else "not within the timeout"
        page_for = args.page_for or "shipped"
        print(f"| delay {args.delay}, settle {args.settle}, page for {page_for} | {after(counted_at)} | "
              f"{after(firing_at)} | "
              f"{after(Webhook.page_at)} |", flush=True)
        return 0
    finally:
        children.stop()
        workdir.cleanup()


if __name__ == "__main__":
    sys.exit(main())
