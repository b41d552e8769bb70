"""The "Load tests" dashboard and the runs marked on the blog's dashboard
(issue #20): every panel's query returns data from a real Prometheus that
scrapes a real blog, a real Locust master during a real run (labelled as the
monitoring chart's PodMonitor labels it) and the operator's run history made
from that run's own result; the annotation query gives the run's start and
end. Grafana cannot run here: "a panel shows data" means its query returns
series in Prometheus."""
from __future__ import annotations

import json
import math
import re
import subprocess
import time
from datetime import datetime
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, start_http_server

from devstack import REPO, free_port, wait_until
from loadtests import live_metrics as live
from operators.loadtest import results as operator_results
from operators.loadtest.run_history import SERIES, RunHistory
from operators.loadtest.spec import parse
from perfcontract.run_summary import summary_of
from tests.support.charts import MONITORING_CHART, render
from tests.support.monitoring import PrometheusServer, dashboards, grafana_to_promql, panels
from tests.support.perf import BLOG_PERF, explain, load_results
from tests.test_monitoring_dashboards import exported_metric_names, metric_names_in

LOADTESTS = MONITORING_CHART / "dashboards" / "loadtests.json"
NAMESPACE, TEST, RUN = "perf", "dash", "dash-1"


def loadtests_dashboard() -> dict:
    return json.loads(LOADTESTS.read_text())


def queries(dashboard: dict) -> list[tuple[str, str]]:
    return [(panel["title"], grafana_to_promql(target["expr"])) for panel in panels(dashboard)
            for target in panel["targets"]]


def live_queries(dashboard: dict) -> list[tuple[str, str]]:
    """The panels fed by a run's master and the blog (not by the operator's kept results)."""
    return [(title, expr) for title, expr in queries(dashboard) if "loadtest_result_" not in expr]


def annotation_expr(dashboard: dict) -> str:
    (annotation,) = [a for a in dashboard["annotations"]["list"] if a["name"] == "Load tests"]
    return grafana_to_promql(annotation["expr"])


def known_names() -> set[str]:
    names = exported_metric_names() | set(SERIES)
    for name in live.NAMES:
        names |= {name, f"{name}_bucket", f"{name}_count", f"{name}_sum"}
    return names


def test_the_dashboard_is_portable_and_queries_only_metrics_that_exist():
    dashboard = loadtests_dashboard()
    assert dashboard["uid"] == "aiblog-loadtests" and dashboard.get("id") is None
    assert set(re.findall(r'"uid":\s*"([^"]*)"', LOADTESTS.read_text())) <= {"${datasource}", dashboard["uid"]}
    for panel in panels(dashboard):
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
    names = set()
    for _, expr in queries(dashboard) + [("annotation", annotation_expr(dashboard))]:
        # Metric names, not label names (loadtest_namespace is a label of the history series).
        names |= set(re.findall(r"\b(?:blog|loadtest)_[a-z0-9_]+(?=[{\[ )]|$)", expr))
    assert names and not names - known_names(), names - known_names()
    # The blog's dashboard marks runs with the same annotation.
    assert annotation_expr(dashboards()["aiblog-overview.json"]) == annotation_expr(dashboard)


def test_the_monitoring_chart_ships_it_for_grafanas_sidecar():
    objects = render(MONITORING_CHART, {}, name="monitoring", namespace="monitoring")
    (configmap,) = [o for o in objects.of_kind("ConfigMap") if o["metadata"]["labels"].get("grafana_dashboard")]
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(configmap["data"]["loadtests.json"]) == loadtests_dashboard()
    off = render(MONITORING_CHART, {"operator": {"dashboard": {"enabled": False}}}, name="monitoring",
                 namespace="monitoring")
    assert not [o for o in off.of_kind("ConfigMap") if o["metadata"]["labels"].get("grafana_dashboard")]


def unix(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()


def with_data(prometheus: PrometheusServer, expr: str) -> bool:
    return any(math.isfinite(float(r["value"][1])) for r in prometheus.query(expr))


@pytest.mark.slow
def test_every_panel_and_the_annotation_return_data_for_a_real_run(perf_blog, tmp_path):
    master_port, history_port = free_port(), free_port()
    history = RunHistory()
    registry = CollectorRegistry()
    registry.register(history)
    server, thread = start_http_server(history_port, addr="127.0.0.1", registry=registry)
    prometheus = PrometheusServer([perf_blog.blog.metrics_url.split("/")[2]], scrape_interval="1s")
    prometheus.config["scrape_configs"][0]["static_configs"][0]["labels"] = {"namespace": NAMESPACE}
    prometheus.config["scrape_configs"] += [
        # As the PodMonitor labels a master: its namespace, and loadtest and run from the pod's labels.
        {"job_name": "loadtest-runs", "scrape_interval": "1s", "scrape_timeout": "1s",
         "static_configs": [{"targets": [f"127.0.0.1:{master_port}"],
                             "labels": {"namespace": NAMESPACE, "loadtest": TEST, "run": RUN}}]},
        {"job_name": "loadtest-operator", "scrape_interval": "1s", "scrape_timeout": "1s",
         "static_configs": [{"targets": [f"127.0.0.1:{history_port}"]}]},
    ]
    dashboard = loadtests_dashboard()
    live_panels = live_queries(dashboard)
    history_panels = [panel for panel in queries(dashboard) if panel not in live_panels]
    try:
        with prometheus:
            process = subprocess.Popen(
                [str(BLOG_PERF), "locust", "--target", perf_blog.blog.url, "--out", str(tmp_path), "--users", "6",
                 "--spawn-rate", "6", "--duration", "16", "--wait-min", "0.05", "--wait-max", "0.3",
                 "--weights", "home=4,post=4,login=1,write=1,ai=0", "--metrics-port", str(master_port), "--quiet"],
                cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            # While the run goes on: every live panel and the blog's own panels answer.
            empty = set(title for title, _ in live_panels)
            deadline = time.monotonic() + 40
            while empty and time.monotonic() < deadline and process.poll() is None:
                empty -= {title for title, expr in live_panels if title in empty and with_data(prometheus, expr)}
                time.sleep(0.5)
            out, err = process.communicate(timeout=90)
            done = subprocess.CompletedProcess(process.args, process.returncode, out, err)
            assert done.returncode == 0, explain(done)
            assert not empty, f"live panels without data during the run: {sorted(empty)}"

            # The run ended: the operator's history of it, made from its own result.
            document = load_results(tmp_path)
            spec = parse({"target": {"url": perf_blog.blog.url}, "users": 6, "duration": 16}, NAMESPACE)
            record = summary_of(document)
            verdict = operator_results.judge(record.get("summary"), spec)
            result = operator_results.result_spec(TEST, RUN, record, spec, verdict, {"note": "test"})
            history.observe(None, {"metadata": {"namespace": NAMESPACE, "name": RUN}, "spec": result})
            for title, expr in history_panels:
                wait_until(lambda: with_data(prometheus, expr), 15, f"history panel {title!r}: {expr}")

            # The annotation: the run's users, from its start to its end (scraped each second).
            run = document["runs"]["locust"]
            started, finished = unix(document["started_at"]), unix(document["finished_at"])
            # The master is gone: its next (failed) scrape marks its series stale, which ends the region.
            wait_until(lambda: prometheus.query('up{job="loadtest-runs"} == 0'), 15, "a failed scrape of the master")
            ranged = prometheus.api("query_range", query=annotation_expr(dashboard), start=started - 30,
                                    end=time.time(), step="1s")["result"]
            (series,) = [s for s in ranged if s["metric"].get("run") == RUN]
            times = [float(t) for t, _ in series["values"]]
            assert started - 3 <= times[0] <= started + 10, (times[0], started)
            assert finished - 10 <= times[-1] <= finished + 3, (times[-1], finished)
            assert run["summary"]["requests"] > 0
    finally:
        server.shutdown()
