#!/usr/bin/env python3
"""Probe cost, lbtriage vs blackbox_exporter, on the same 200 loopback HTTP targets.

Both tools probe 200 `return 200` sites of one real nginx (200 listen ports) for the same wall time.
What is measured, from /proc, for the tool's own process only:
  - CPU seconds (user + system) per 1,000 HTTP requests the tool made, counted by nginx's stub_status;
  - peak RSS (VmHWM);
  - the probe duration each tool reports for itself (blackbox: probe_duration_seconds; lbtriage: the
    sum of its HTTP phases), against a bare request made by this script for the baseline.
blackbox_exporter is driven the way Prometheus drives it: GET /probe?target=... from 8 concurrent
clients (this script's CPU is not counted). lbtriage runs its own schedule: 200 configured probes,
interval 1s; each probe run makes 5 HTTP requests (app and health paths, two large-header requests,
one large-body POST), so the comparison is per HTTP request.

Usage: probes_vs_blackbox.py --lbtriage target/release/lbtriage [--seconds 30] [--targets 200]
"""

import argparse
import concurrent.futures
import http.client
import os
import pathlib
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

TICK = os.sysconf("SC_CLK_TCK")


def free_ports(n):
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def cpu_seconds(pid):
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def peak_rss_mib(pid):
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def wait_port(port, deadline=20):
    end = time.time() + deadline
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def nginx_requests(status_port):
    text = urllib.request.urlopen(f"http://127.0.0.1:{status_port}/status", timeout=5).read().decode()
    # "Active connections: 1\nserver accepts handled requests\n 10 10 12\n..."
    return int(text.splitlines()[2].split()[2])


def start_nginx(workdir, ports, status_port):
    listens = "\n".join(f"    listen 127.0.0.1:{p};" for p in ports)
    conf = workdir / "nginx.conf"
    conf.write_text(f"""worker_processes 1;
user root;
pid {workdir}/nginx.pid;
error_log {workdir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {workdir}/body; proxy_temp_path {workdir}/proxy;
  fastcgi_temp_path {workdir}/fastcgi; uwsgi_temp_path {workdir}/uwsgi; scgi_temp_path {workdir}/scgi;
  client_body_buffer_size 128k;
  large_client_header_buffers 4 64k;
  server {{
{listens}
    location / {{ return 200 "ok"; }}
  }}
  server {{ listen 127.0.0.1:{status_port}; location /status {{ stub_status; }} }}
}}
""")
    proc = subprocess.Popen(["nginx", "-e", f"{workdir}/error.log", "-p", str(workdir), "-c", str(conf),
                             "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(status_port)
    return proc


def bare_latency(port, n=200):
    """A new connection and one GET per request, in this process: the floor both tools add to."""
    times = []
    for _ in range(n):
        start = time.perf_counter()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", "/")
        conn.getresponse().read()
        conn.close()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run_blackbox(workdir, ports, status_port, seconds):
    config = workdir / "blackbox.yml"
    config.write_text("modules:\n  http_2xx:\n    prober: http\n    timeout: 5s\n    http:\n"
                      "      preferred_ip_protocol: ip4\n")
    port = free_ports(1)[0]
    proc = subprocess.Popen(["prometheus-blackbox-exporter", f"--config.file={config}",
                             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        before_cpu, before_req = cpu_seconds(proc.pid), nginx_requests(status_port)
        durations, lock, stop = [], threading.Lock(), time.time() + seconds

        def client(offset):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            i = offset
            while time.time() < stop:
                target = ports[i % len(ports)]
                i += 8
                conn.request("GET", f"/probe?module=http_2xx&target=http://127.0.0.1:{target}/")
                body = conn.getresponse().read().decode()
                match = re.search(r"^probe_duration_seconds ([0-9.e+-]+)$", body, re.M)
                if match:
                    with lock:
                        durations.append(float(match.group(1)))

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(client, range(8)))
        cpu = cpu_seconds(proc.pid) - before_cpu
        requests = nginx_requests(status_port) - before_req
        return {"cpu": cpu, "requests": requests, "rss": peak_rss_mib(proc.pid),
                "probe_median": statistics.median(durations), "probes": len(durations)}
    finally:
        proc.terminate()
        proc.wait()


def run_lbtriage(binary, workdir, ports, status_port, seconds):
    config = workdir / "lbtriage.yml"
    config.write_text("probes:\n" + "".join(
        f"  - name: t{p}\n    url: http://127.0.0.1:{p}/\n    interval: 1s\n    timeout: 5s\n" for p in ports))
    port = free_ports(1)[0]
    proc = subprocess.Popen([binary, f"--config.file={config}", f"--web.listen-address=127.0.0.1:{port}",
                             "--log.level=warn"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        time.sleep(2)  # past start-up: measure the steady schedule
        before_cpu, before_req = cpu_seconds(proc.pid), nginx_requests(status_port)
        time.sleep(seconds)
        cpu = cpu_seconds(proc.pid) - before_cpu
        requests = nginx_requests(status_port) - before_req
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
        per_probe = {}
        for line in text.splitlines():
            if line.startswith("lbtriage_probe_http_phase_seconds{") and 'request="app"' in line:
                probe = re.search(r'probe="([^"]+)"', line).group(1)
                per_probe[probe] = per_probe.get(probe, 0.0) + float(line.rsplit(" ", 1)[1])
        return {"cpu": cpu, "requests": requests, "rss": peak_rss_mib(proc.pid),
                "probe_median": statistics.median(per_probe.values()) if per_probe else float("nan"),
                "probes": len(per_probe)}
    finally:
        proc.terminate()
        proc.wait()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--lbtriage", required=True)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--targets", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lbtriage-bench-") as tmp:
        workdir = pathlib.Path(tmp)
        ports = free_ports(args.targets + 1)
        status_port, ports = ports[0], ports[1:]
        nginx = start_nginx(workdir, ports, status_port)
        try:
            baseline = bare_latency(ports[0])
            results = {"blackbox_exporter 0.23.0": run_blackbox(workdir, ports, status_port, args.seconds),
                       "lbtriage": run_lbtriage(args.lbtriage, workdir, ports, status_port, args.seconds)}
        finally:
            nginx.terminate()
            nginx.wait()
    print(f"targets: {args.targets}; wall time per tool: {args.seconds:g} s; bare request median "
          f"{baseline * 1000:.2f} ms\n")
    print("| tool | HTTP requests | CPU s | CPU s per 1,000 requests | peak RSS MiB | median probe duration ms |")
    print("|---|---|---|---|---|---|")
    for tool, r in results.items():
        per_k = r["cpu"] / r["requests"] * 1000 if r["requests"] else float("nan")
        r["per_k"] = per_k
        print(f"| {tool} | {r['requests']:,} | {r['cpu']:.2f} | {per_k:.3f} | {r['rss']:.1f} | "
              f"{r['probe_median'] * 1000:.2f} |")
    bb, lt = results["blackbox_exporter 0.23.0"], results["lbtriage"]
    print(f"\nlbtriage / blackbox_exporter: CPU per request {lt['per_k'] / bb['per_k']:.2f}, "
          f"peak RSS {lt['rss'] / bb['rss']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
