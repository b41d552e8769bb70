"""The Grafana dashboards: portable (datasource variable, no hard-coded uid),
filterable by namespace and pod, with the panels the issue asks for, and
querying only metrics the blog exports."""
from __future__ import annotations

import re

import pytest

from aiblog.monitoring import metrics, metrics_server
from tests.support.monitoring import DASHBOARD_DIR, alerts, dashboards, panels, rules

REQUIRED_PANELS = [
    "Requests per minute", "Latency p50 / p90 / p95", "Cache hit rate", "Active users", "Error rate",
    "AI generation time", "LLM tokens per second", "Time to first token", "In-flight LLM calls",
    "LLM circuit", "Job queue depth", "Database query p95", "CPU per pod", "Memory per pod",
]


def exported_metric_names() -> set[str]:
    """Every series name the blog's metrics server can expose."""
    names = {metrics.HTTP_REQUESTS}
    names |= {f"{metrics.HTTP_DURATION}{suffix}" for suffix in ("_bucket", "_count", "_sum")}
    for value in vars(metrics).values():
        if hasattr(value, "_name") and hasattr(value, "_type"):
            name = value._name
            if value._type == "counter":
                names.add(f"{name}_total")
            elif value._type == "histogram":
                names |= {f"{name}{suffix}" for suffix in ("_bucket", "_count", "_sum")}
            else:
                names.add(name)
    names |= {metrics_server.ACTIVE_USERS, metrics_server.JOBS_QUEUED, "blog_process_cpu_seconds_total",
              "blog_process_resident_memory_bytes", "blog_process_virtual_memory_bytes",
              "blog_process_start_time_seconds"}
    return names


def metric_names_in(expr: str) -> set[str]:
    return set(re.findall(r"\bblog_[a-z0-9_]+", expr))


def test_there_is_an_overview_dashboard():
    assert "aiblog-overview.json" in dashboards()
    assert DASHBOARD_DIR.parts[-3:] == ("charts", "blog", "dashboards")  # inside the chart, for its ConfigMaps


@pytest.mark.parametrize("name", sorted(dashboards()))
def test_dashboard_uses_a_datasource_variable_and_namespace_pod_filters(name):
    dashboard = dashboards()[name]
    assert dashboard["uid"] and dashboard.get("id") is None  # provisioned dashboards must not carry an id
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for filter_name in ("namespace", "pod"):
        variable = variables[filter_name]
        assert variable["includeAll"] and variable["allValue"] == ".*"
        assert variable["datasource"]["uid"] == "${datasource}"
    for panel in panels(dashboard):
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]
            assert 'namespace=~"$namespace"' in target["expr"] and 'pod=~"$pod"' in target["expr"], \
                f"{panel['title']}: {target['expr']}"


@pytest.mark.parametrize("name", sorted(dashboards()))
def test_no_datasource_uid_is_hard_coded(name):
    text = (DASHBOARD_DIR / name).read_text()
    uids = set(re.findall(r'"uid":\s*"([^"]*)"', text))
    assert uids <= {"${datasource}", dashboards()[name]["uid"]}


def test_overview_has_the_panels_the_issue_asks_for():
    titles = [panel["title"] for panel in panels(dashboards()["aiblog-overview.json"])]
    missing = [want for want in REQUIRED_PANELS if not any(title.startswith(want) for title in titles)]
    assert not missing


@pytest.mark.parametrize("name", sorted(dashboards()))
def test_panels_fit_the_grid_and_have_unique_ids(name):
    dashboard = dashboards()[name]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["w"] > 0 and grid["x"] + grid["w"] <= 24, panel["title"]


def test_dashboards_and_rules_query_only_exported_metrics():
    known = exported_metric_names()
    queries = [(panel["title"], target["expr"]) for dashboard in dashboards().values()
               for panel in panels(dashboard) for target in panel["targets"]]
    queries += [(rule.get("alert") or rule["record"], rule["expr"]) for rule in rules()]
    unknown = {(where, name) for where, expr in queries for name in metric_names_in(expr) - known}
    assert not unknown
    assert any("blog_active_users" in expr for _, expr in queries)
    assert len(alerts()) >= 7
