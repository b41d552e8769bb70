"""Helpers for the monitoring tests: a real Prometheus, the dashboards' and
rules' queries, and reading metrics the way a scraper does."""
from __future__ import annotations

import importlib.util
import json
import re
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterable, Iterator

import httpx
import yaml
from prometheus_client.parser import text_string_to_metric_families

from devstack import REPO, Service, free_port, http_ok, require_binary, wait_until

DASHBOARD_DIR = REPO / "charts" / "blog" / "dashboards"
RULES_FILE = REPO / "charts" / "blog" / "rules" / "aiblog.rules.yml"
RULES_TEST_FILE = REPO / "charts" / "blog" / "rules" / "aiblog.rules.test.yml"
RUNBOOKS = REPO / "docs" / "runbooks.md"

# What a Grafana dashboard's variables become when its queries are sent to
# Prometheus directly: every namespace and pod ("All"), one-minute windows.
GRAFANA_SUBSTITUTIONS = {
    "$__rate_interval": "1m", "$__interval": "15s", "$__range": "5m",
    "$namespace": ".*", "$pod": ".*", "$loadtest": ".*",
}


def load_monitor_script():
    """scripts/monitor.py as a module: the tests use its Prometheus config."""
    spec = importlib.util.spec_from_file_location("aiblog_monitor_script", REPO / "scripts" / "monitor.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class PrometheusServer(Service):
    """Debian's prometheus on a free port with a throwaway data dir."""

    name = "prometheus"

    def __init__(self, targets: list[str], scrape_interval: str = "1s", announced_in: Path | None = None):
        super().__init__()
        self.port = free_port()
        self.config = load_monitor_script().prometheus_config(targets, RULES_FILE, scrape_interval,
                                                              announced_in=announced_in)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "PrometheusServer":
        binary = require_binary("prometheus", "the Debian package 'prometheus'")
        config = self.workdir / "prometheus.yml"
        config.write_text(json.dumps(self.config))
        self.spawn([binary, f"--config.file={config}", f"--storage.tsdb.path={self.workdir / 'data'}",
                     f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"])
        self.wait_ready(lambda: http_ok(self.url + "/-/ready"), 30, "prometheus /-/ready")
        return self

    def api(self, path: str, **params) -> dict | list:
        response = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=10)
        body = response.json()
        assert body.get("status") == "success", f"{path} {params}: {body.get('error', body)}"
        return body["data"]

    def query(self, expr: str) -> list[dict]:
        """An instant query; a PromQL error fails the test with Prometheus' message."""
        data = self.api("query", query=expr)
        return data["result"] if data["resultType"] in ("vector", "matrix") else [data["result"]]

    def value(self, expr: str) -> float:
        result = self.query(expr)
        assert len(result) == 1, f"{expr} gave {len(result)} series: {result}"
        return float(result[0]["value"][1])

    def wait_for_scrape_after(self, moment: float, job: str = "aiblog", timeout: float = 20) -> None:
        """Until every target of ``job`` has been scraped successfully after ``moment`` (unix time)."""
        def scraped() -> bool:
            targets = self.api("targets")["activeTargets"]
            ours = [t for t in targets if t["labels"].get("job") == job]
            return bool(ours) and all(
                t["health"] == "up" and _rfc3339(t["lastScrape"]) > moment for t in ours)

        wait_until(scraped, timeout, f"a scrape of job {job} after the traffic")

def _rfc3339(stamp: str) -> float:
    from datetime import datetime

    # Prometheus gives nanoseconds; Python parses microseconds.
    stamp = re.sub(r"(\.\d{6})\d+", r"\1", stamp).replace("Z", "+00:00")
    return datetime.fromisoformat(stamp).timestamp()


# --- the blog's own files ----------------------------------------------------

def dashboards() -> dict[str, dict]:
    return {path.name: json.loads(path.read_text()) for path in sorted(DASHBOARD_DIR.glob("*.json"))}


def panels(dashboard: dict) -> Iterator[dict]:
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            yield from panel.get("panels", [])
        else:
            yield panel


def grafana_to_promql(expr: str) -> str:
    for variable, value in sorted(GRAFANA_SUBSTITUTIONS.items(), key=lambda kv: -len(kv[0])):
        expr = expr.replace(variable, value).replace("${" + variable[1:] + "}", value)
    assert "$" not in expr, f"unsubstituted variable in {expr}"
    return expr


def panel_queries() -> list[tuple[str, str, str]]:
    """(dashboard file, panel title, PromQL ready for Prometheus) for every panel target."""
    return [(name, panel["title"], grafana_to_promql(target["expr"]))
            for name, dashboard in dashboards().items()
            for panel in panels(dashboard)
            for target in panel.get("targets", [])]


def rules() -> list[dict]:
    return [rule for group in yaml.safe_load(RULES_FILE.read_text())["groups"] for rule in group["rules"]]


def alerts() -> list[dict]:
    return [rule for rule in rules() if "alert" in rule]


# --- reading metrics -----------------------------------------------------------

def scrape(url: str) -> dict[tuple[str, tuple], float]:
    """Every sample of an exposition: {(name, sorted labels): value}."""
    text = httpx.get(url, timeout=10).text
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def total(samples: dict, name: str, **labels: str) -> float:
    return sum(value for (sample_name, sample_labels), value in samples.items()
               if sample_name == name and all(dict(sample_labels).get(k) == v for k, v in labels.items()))


def worker_samples(multiproc_dir: str, pid: int) -> dict[tuple[str, tuple], float]:
    """What one worker process wrote, read with prometheus_client's own
    collector from a copy of that process's files only."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    with tempfile.TemporaryDirectory() as only_this_pid:
        for path in Path(multiproc_dir).glob(f"*_{pid}.db"):
            shutil.copy(path, only_this_pid)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, only_this_pid)
        text = generate_latest(registry).decode()
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


# --- traffic -----------------------------------------------------------------

def fetch_all(base_url: str, paths: Iterable[str], threads: int = 8, new_connections: bool = False,
              method: str = "GET") -> list[int]:
    """Request every path and return the status codes. With
    ``new_connections`` every request opens its own connection, so gunicorn
    spreads them over its workers instead of one keep-alive worker."""
    paths = list(paths)
    chunks = [paths[i::threads] for i in range(threads)]

    def run(chunk: list[str]) -> list[int]:
        limits = httpx.Limits(max_keepalive_connections=0 if new_connections else 1)
        with httpx.Client(base_url=base_url, timeout=30, limits=limits) as client:
            return [client.request(method, path).status_code for path in chunk]

    with ThreadPoolExecutor(threads) as pool:
        return [status for statuses in pool.map(run, chunks) for status in statuses]
