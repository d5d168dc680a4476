#!/usr/bin/env python3
"""`make demo`: the whole chain on loopback, the way users run it.

Emulated AWS (moto behind the CBOR bridge) with a fleet (3 ALBs, 1 NLB, 1 Classic ELB) fed with
CloudWatch datapoints every 10-second period and a rolling sequence of incidents; misbehaving backends
(one closes idle keep-alive connections after a second, one answers with the QPS-limit marker, one
port refuses) behind a real nginx; lbtriage probing them and reading the emulated CloudWatch;
Prometheus evaluating lbtriage's rules (with short `for` durations); Alertmanager delivering to a
webhook this script serves. It prints what lbtriage exports and, as alerts arrive, each with its cause,
load balancer and runbook. Ctrl-C stops exactly what it started. With --seconds N it stops by itself;
with --check it exits non-zero unless the expected causes arrived at the webhook.
"""

import argparse
import http.server
import json
import shutil
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
# The NLB's incident first: its cause is the slowest to alert, so `--check` finishes sooner.
INCIDENTS = [
    ("edge: source ports exhausted towards targets", "edge", "PortAllocationErrorCount", 25),
    ("shop: targets close keep-alive early -> LB-generated 502", "shop", "HTTPCode_ELB_502_Count", 40),
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


class Backend(http.server.BaseHTTPRequestHandler):
    """A healthy HTTP/1.1 backend; subclasses misbehave."""

    protocol_version = "HTTP/1.1"
    timeout = 3600  # idle keep-alive connections are kept

    def log_message(self, *args):
        pass

    def answer(self, status, headers=()):
        body = b"ok"
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.answer(200)

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.answer(200)


class ClosesKeepAliveEarly(Backend):
    timeout = 1  # closes idle keep-alive connections after a second: shorter than the LB's


class QpsLimited(Backend):
    def do_GET(self):
        self.answer(503, [("ALB-QPS-Limited", "Limited")])


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True


def serve(handler):
    server = Server(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class Webhook(http.server.BaseHTTPRequestHandler):
    """Alertmanager's receiver: prints each alert once, when it starts firing."""

    seen = set()
    causes = set()
    pages = {}  # lb -> the page's description, which lists the causes firing with it
    lock = threading.Lock()

    def log_message(self, *args):
        pass

    def do_POST(self):
        payload = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        for alert in payload.get("alerts", []):
            labels, annotations = alert.get("labels", {}), alert.get("annotations", {})
            key = (labels.get("alertname"), labels.get("lb"), labels.get("target"), alert.get("status"))
            with Webhook.lock:
                if key in Webhook.seen:
                    continue
                Webhook.seen.add(key)
                firing = alert.get("status") == "firing"
                if firing and labels.get("cause"):
                    Webhook.causes.add(labels.get("cause"))
                if firing and labels.get("alertname") == "LBErrorBudgetBurn":
                    Webhook.pages[labels.get("lb")] = annotations.get("description", "")
            stamp = time.strftime("%H:%M:%S")
            # The symptom page names no cause: its description lists the cause alerts firing with it.
            kind = "PAGE " if labels.get("alertname") == "LBErrorBudgetBurn" else "ALERT"
            print(f"[{stamp}] {kind} {alert.get('status', '?').upper():8} {labels.get('alertname')} "
                  f"severity={labels.get('severity')} cause={labels.get('cause', '-')} "
                  f"lb={labels.get('lb', '-')} region={labels.get('region', '-')}\n"
                  f"           {annotations.get('description', '')}\n"
                  f"           runbook: {annotations.get('runbook_url', '')}", flush=True)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


def held_port():
    """A port that refuses connections while the socket lives (bound, never listening)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


def start_nginx(workdir, listen_port, upstream_port, start):
    conf = workdir / "nginx.conf"
    conf.write_text(f"""worker_processes 1;
pid {workdir}/nginx.pid;
error_log {workdir}/nginx-error.log warn;
events {{ worker_connections 256; }}
http {{
  access_log off;
  client_body_temp_path {workdir}/body; proxy_temp_path {workdir}/proxy;
  fastcgi_temp_path {workdir}/fastcgi; uwsgi_temp_path {workdir}/uwsgi; scgi_temp_path {workdir}/scgi;
  large_client_header_buffers 4 64k;
  client_body_buffer_size 128k;
  upstream shop {{ server 127.0.0.1:{upstream_port}; keepalive 8; }}
  server {{
    listen 127.0.0.1:{listen_port};
    location / {{ proxy_pass http://shop; proxy_http_version 1.1; proxy_set_header Connection ""; }}
  }}
}}
""")
    start(["nginx", "-e", f"{workdir}/nginx-error.log", "-p", str(workdir), "-c", str(conf), "-g", "daemon off;"],
          stderr=subprocess.DEVNULL)


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


class Children:
    """The processes a run started, each in its own session, stopped in reverse order."""

    def __init__(self):
        self.started = []

    def start(self, cmd, **kw):
        kw.setdefault("stdout", subprocess.DEVNULL)
        child = subprocess.Popen(cmd, start_new_session=True, **kw)
        self.started.append(child)
        return child

    def stop(self):
        for child in reversed(self.started):
            if child.poll() is None:
                child.terminate()
        for child in reversed(self.started):
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()


def start_emulator(children):
    """moto and the CBOR bridge in front of it: the bridge's port, and boto3 clients for seeding."""
    moto_port, bridge_port = free_port(), free_port()
    children.start([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(moto_port)],
                   stderr=subprocess.DEVNULL)
    children.start([sys.executable, str(ROOT / "tests/emulator/cbor_bridge.py"), "--listen-port", str(bridge_port),
                    "--moto-port", str(moto_port)])
    wait_http(f"http://127.0.0.1:{moto_port}/moto-api/")
    wait_http(f"http://127.0.0.1:{bridge_port}/moto-api/")
    return bridge_port, seed.clients(f"http://127.0.0.1:{moto_port}", "us-east-1")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lbtriage", default=str(ROOT / "target" / "debug" / "lbtriage"))
    parser.add_argument("--seconds", type=float, default=0, help="stop after this long (0: until Ctrl-C)")
    parser.add_argument("--check", action="store_true", help="fail unless the incidents show in lbtriage")
    args = parser.parse_args()

    children = Children()
    start = children.start
    workdir = tempfile.TemporaryDirectory(prefix="lbtriage-demo-")

    def stop_all(*_):
        children.stop()
        workdir.cleanup()

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(130))
    try:
        bridge_port, clients = start_emulator(children)
        fleet = seed.seed_fleet(clients, FLEET)
        names = {entry["dimension"]: key for key, entry in fleet.items()}

        work = pathlib.Path(workdir.name)
        healthy = serve(Backend)
        closes_early = serve(ClosesKeepAliveEarly)
        throttled = serve(QpsLimited)
        refusing = held_port()
        nginx_port = free_port()
        start_nginx(work, nginx_port, healthy.server_address[1], start)
        wait_http(f"http://127.0.0.1:{nginx_port}/")
        dim = {key: entry["dimension"] for key, entry in fleet.items()}

        config = work / "lbtriage.yml"
        config.write_text(
            "# Generated by demo/demo.py: emulated AWS with 10-second periods, probes every 5 s.\n"
            "# No automatic probes: the emulated instance targets have private addresses, not this host's.\n"
            "auto_probes:\n  when: never\n"
            "aws:\n  - name: demo\n    regions: [us-east-1]\n"
            f"    endpoint_url: http://127.0.0.1:{bridge_port}\n"
            "    period: 10s\n    delay: 2s\n    interval: 5s\n    discovery_ttl: 1m\n"
            # The slow tier (the request count among it) scaled to the demo's 10 s periods.
            "    slow_interval: 30s\n"
            "probes:\n"
            f"  - name: shop\n    url: http://127.0.0.1:{nginx_port}/\n    lb: {dim['shop']}\n"
            f"    backends: ['127.0.0.1:{healthy.server_address[1]}', '127.0.0.1:{closes_early.server_address[1]}']\n"
            "    lb_idle_timeout: 3s\n    interval: 5s\n    timeout: 3s\n    vantage: demo\n"
            f"  - name: api\n    url: http://127.0.0.1:{throttled.server_address[1]}/\n    lb: {dim['api']}\n"
            "    interval: 5s\n    timeout: 3s\n    vantage: demo\n"
            f"  - name: admin\n    url: http://127.0.0.1:{refusing.getsockname()[1]}/\n    lb: {dim['admin']}\n"
            "    interval: 5s\n    timeout: 3s\n    vantage: demo\n")
        port = free_port(10502)
        env = dict(os.environ, AWS_ACCESS_KEY_ID="demo", AWS_SECRET_ACCESS_KEY="demo",
                   AWS_EC2_METADATA_DISABLED="true")
        start([args.lbtriage, f"--config.file={config}", f"--web.listen-address=127.0.0.1:{port}"], env=env)
        wait_http(f"http://127.0.0.1:{port}/-/healthy")

        # The rules, rendered by lbtriage itself with every `for` (the page's too) shortened to 10 s.
        causes = json.loads(subprocess.run([args.lbtriage, "causes", "--output", "json"], check=True,
                                           capture_output=True).stdout)
        rules_config = work / "rules-config.yml"
        rules_config.write_text("rules:\n  for:\n    error_budget_burn: 10s\n" + "".join(
            f"    {c['cause']}: 10s\n" for c in causes if c["alert"]))
        rules_file = work / "lbtriage.rules.yml"
        rules_file.write_bytes(subprocess.run([args.lbtriage, "rules", f"--config.file={rules_config}"], check=True,
                                              capture_output=True).stdout)

        hook = Server(("127.0.0.1", 0), Webhook)
        threading.Thread(target=hook.serve_forever, daemon=True).start()
        am_port = free_port(9093)
        am_config = work / "alertmanager.yml"
        am_config.write_text(
            "route:\n  receiver: demo\n  group_by: [provider, region, lb]\n  group_wait: 1s\n  group_interval: 5s\n"
            "  repeat_interval: 1h\nreceivers:\n  - name: demo\n    webhook_configs:\n"
            f"      - url: http://127.0.0.1:{hook.server_address[1]}/\n")
        start([shutil.which("prometheus-alertmanager") or "alertmanager", f"--config.file={am_config}",
               f"--storage.path={work}/alertmanager", f"--web.listen-address=127.0.0.1:{am_port}",
               "--cluster.listen-address="], stderr=subprocess.DEVNULL)
        prom_port = free_port(9090)
        prom_config = work / "prometheus.yml"
        prom_config.write_text(
            "global:\n  scrape_interval: 2s\n  evaluation_interval: 2s\n"
            f"rule_files: ['{rules_file}']\n"
            f"alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['127.0.0.1:{am_port}']\n"
            f"scrape_configs:\n  - job_name: lbtriage\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n")
        start(["prometheus", f"--config.file={prom_config}", f"--storage.tsdb.path={work}/prometheus",
               f"--web.listen-address=127.0.0.1:{prom_port}"], stderr=subprocess.DEVNULL)
        wait_http(f"http://127.0.0.1:{am_port}/-/ready")
        wait_http(f"http://127.0.0.1:{prom_port}/-/ready")

        started = time.time()
        feeder = Feeder(clients, fleet, started)
        feeder.start()
        print(f"emulated AWS (moto + CBOR bridge): http://127.0.0.1:{bridge_port}")
        print(f"lbtriage:                         http://127.0.0.1:{port}/metrics")
        print(f"Prometheus:                       http://127.0.0.1:{prom_port}/alerts")
        print(f"Alertmanager:                     http://127.0.0.1:{am_port}/")
        print(f"nginx in front of the shop backends: http://127.0.0.1:{nginx_port}/")
        print(f"config:                           {config}")
        print("Incidents roll every 30 s; counters appear once a 10 s period completes (+2 s delay).")
        print("Probe-found causes (keep-alive, QPS limit, missing listener) alert within about 30 s.")
        print("Ctrl-C stops everything the demo started.\n" if not args.seconds else "")

        last_title = None
        seen = {}
        expected_causes = {"target_keepalive_too_short", "lb_qps_throttled", "lb_listener_missing",
                           "lb_port_allocation_exhausted"}
        while not args.seconds or time.time() - started < args.seconds:
            if args.check:
                with Webhook.lock:
                    if (expected_causes <= Webhook.causes and "target_keepalive_too_short" in
                            Webhook.pages.get(dim["shop"], "") and time.time() - started > 35):
                        break
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
            expected = {"target_keepalive_too_short", "lb_qps_throttled", "lb_listener_missing",
                        "lb_port_allocation_exhausted"}
            with Webhook.lock:
                arrived = set(Webhook.causes)
                shop_page = Webhook.pages.get(dim["shop"])
            print(f"check: shop LB 502 counted = {shop_502:g}; causes delivered by Alertmanager: {sorted(arrived)}")
            print(f"check: the page for shop: {shop_page}")
            missing = expected - arrived
            if shop_502 <= 0 or missing:
                print(f"check FAILED: missing {sorted(missing)}")
                return 1
            if not shop_page or "target_keepalive_too_short" not in shop_page:
                print("check FAILED: no page for shop naming its cause (target_keepalive_too_short)")
                return 1
            print("check passed: cloud API -> lbtriage -> Prometheus rules -> Alertmanager -> webhook")
        return 0
    except KeyboardInterrupt:
        print("\nstopping")
        return 0
    finally:
        stop_all()


if __name__ == "__main__":
    sys.exit(main())
