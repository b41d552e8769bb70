#!/usr/bin/env python3
"""make monitor: a real Prometheus watching the locally running blog.

Writes a Prometheus config — the project's scrape job and alert rules
(charts/blog/rules/aiblog.rules.yml) aimed at the blog's metrics port —
starts Debian's ``prometheus`` with it in the foreground and says where to
look. Ctrl-C stops it. Tests build their Prometheus config with
``prometheus_config`` from here, so both scrape the blog the same way.

    python scripts/monitor.py                   # blog on METRICS_PORT (9100)
    python scripts/monitor.py --port 9091 --target 127.0.0.1:9200
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

from devstack import StackTimeout, http_ok, port_open, wait_until
from devstack.monitor_targets import BLOG_JOB, LOAD_TEST_JOB, targets_dir

REPO = Path(__file__).resolve().parents[1]
RULES_FILE = REPO / "charts" / "blog" / "rules" / "aiblog.rules.yml"
DASHBOARDS = REPO / "charts" / "blog" / "dashboards"
JOB = BLOG_JOB  # the alert rules select up{job="aiblog"}
LOAD_TEST_DASHBOARD = REPO / "charts" / "monitoring" / "dashboards" / "loadtests.json"


def prometheus_config(targets: list[str], rules_file: Path = RULES_FILE, scrape_interval: str = "5s",
                      worker_targets: list[str] | None = None, announced_in: Path | None = None) -> dict:
    """The Prometheus configuration for scraping the blog's metrics servers
    (and, when given, the background worker's). With ``announced_in``, also
    every blog and load-test run announced there (devstack/monitor_targets.py:
    ``make bench`` and ``blog-perf locust --metrics-port`` on their free ports)."""
    jobs = [(JOB, targets)] + ([(f"{JOB}-worker", worker_targets)] if worker_targets else [])
    if announced_in is not None:
        jobs.append((LOAD_TEST_JOB, []))
    configs = []
    for name, job_targets in jobs:
        job = {"job_name": name, "metrics_path": "/metrics", "scrape_timeout": scrape_interval,
               "static_configs": [{"targets": job_targets}] if job_targets else []}
        if announced_in is not None and name in (JOB, LOAD_TEST_JOB):
            job["file_sd_configs"] = [{"files": [str(announced_in / f"{name}-*.json")], "refresh_interval": "5s"}]
        configs.append(job)
    return {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval},
        "rule_files": [str(rules_file)],
        "scrape_configs": configs,
    }


def write_config(path: Path, config: dict) -> None:
    # JSON is YAML, and needs no extra dependency.
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("# Written by scripts/monitor.py; edits are overwritten.\n" + json.dumps(config, indent=2) + "\n")


def default_target() -> str:
    sys.path.insert(0, str(REPO / "service"))
    from aiblog import config  # the settings table: same defaults as the blog

    settings = config.load()
    host = settings["METRICS_BIND"] or settings["BIND_HOST"]
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    return f"{host}:{settings['METRICS_PORT']}"


def default_worker_target() -> str | None:
    sys.path.insert(0, str(REPO / "service"))
    from aiblog import config

    settings = config.load()
    if not settings["WORKER_METRICS_PORT"]:
        return None
    host = settings["METRICS_BIND"] or settings["BIND_HOST"]
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    return f"{host}:{settings['WORKER_METRICS_PORT']}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Run Prometheus against the locally running blog.")
    parser.add_argument("--target", default=None,
                        help="host:port of the blog's metrics server (default: from METRICS_PORT/METRICS_BIND)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("MONITOR_PORT", "9090")),
                        help="Prometheus web port (default 9090, or MONITOR_PORT)")
    parser.add_argument("--dir", type=Path, default=REPO / ".run" / "monitor",
                        help="config and data directory (default .run/monitor)")
    parser.add_argument("--scrape-interval", default="5s")
    return parser


def cannot_start(binary: str | None, port: int) -> str | None:
    """Why Prometheus cannot start here, or None."""
    if binary is None:
        return ("!! Prometheus is not installed. Install the Debian package 'prometheus':\n"
                "   sudo apt-get install prometheus      (make monitor does this when run as root)")
    if port_open(port):
        return f"!! port {port} is taken (another Prometheus?). Use --port N or MONITOR_PORT=N."
    return None


def watch(process: subprocess.Popen, web: str, metrics_url: str, config_path: Path) -> int:
    """Wait for Prometheus to be ready, say where to look, and run until it ends or Ctrl-C."""
    try:
        try:
            wait_until(lambda: process.poll() is not None or http_ok(f"{web}/-/ready"), 30, "Prometheus")
        except StackTimeout:
            print("!! Prometheus did not become ready within 30 s.", file=sys.stderr)
            process.terminate()
            return 1
        if process.poll() is not None:
            print(f"!! Prometheus exited with {process.returncode}; see its messages above.", file=sys.stderr)
            return 1
        example = quote('sum(rate(blog_http_request_total[1m])) * 60')
        print(f"""
Prometheus is watching the blog's metrics at {metrics_url}
  targets (is the blog up?)  {web}/targets
  alert rules and state      {web}/alerts
  requests per minute        {web}/graph?g0.expr={example}&g0.tab=0&g0.range_input=15m
  config                     {config_path}
Load tests on this machine join by themselves: `make bench` and `blog-perf locust --metrics-port N`
  announce their targets in {targets_dir()} (job {LOAD_TEST_JOB}).
Grafana dashboards: import {DASHBOARDS.relative_to(REPO)}/*.json and {LOAD_TEST_DASHBOARD.relative_to(REPO)}
  with this Prometheus as data source.
Ctrl-C stops Prometheus.""", flush=True)
        return process.wait()
    except KeyboardInterrupt:
        process.terminate()
        process.wait(10)
        return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    binary = shutil.which("prometheus")
    if problem := cannot_start(binary, args.port):
        print(problem, file=sys.stderr)
        return 1

    target = args.target or default_target()
    config_path = args.dir / "prometheus.yml"
    worker = default_worker_target() if args.target is None else None
    write_config(config_path, prometheus_config([target], scrape_interval=args.scrape_interval,
                                                worker_targets=[worker] if worker else None,
                                                announced_in=targets_dir()))
    metrics_url = f"http://{target}/metrics"
    if not http_ok(metrics_url):
        print(f"!! nothing answers at {metrics_url} yet: start the blog with `make run` (it serves metrics "
              "there). Prometheus starts anyway and shows the target as down until then.", file=sys.stderr)

    process = subprocess.Popen([
        binary, f"--config.file={config_path}", f"--storage.tsdb.path={args.dir / 'data'}",
        f"--web.listen-address=127.0.0.1:{args.port}", "--storage.tsdb.retention.time=2d", "--log.level=warn",
    ])
    # Stop Prometheus with us, whether by Ctrl-C or by SIGTERM.
    signal.signal(signal.SIGTERM, lambda *_: process.terminate())
    return watch(process, f"http://127.0.0.1:{args.port}", metrics_url, config_path)


if __name__ == "__main__":
    sys.exit(main())
