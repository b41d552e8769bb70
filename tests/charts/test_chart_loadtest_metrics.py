"""The monitoring chart finds every LoadTest run's master while it runs: a
PodMonitor over the watched namespaces whose selector matches the pods the
operator makes, on the port their containers name, with ``loadtest`` and
``run`` taken from the pod's labels; and each run's NetworkPolicy lets the
release's namespace (where Prometheus runs) reach that port."""
from __future__ import annotations

import json

from operators.loadtest import manifests, names
from operators.loadtest.config import scrapers_from
from operators.loadtest.spec import parse
from perfcontract.runner import METRICS_PORT
from tests.support.charts import MONITORING_CHART, matches, render

SPEC = parse({"target": {"service": {"name": "blog", "port": 8000}}, "users": 5, "duration": 10, "workers": 1},
             "perf")


def operator_env(objects) -> dict:
    (deployment,) = objects.of_kind("Deployment")
    return {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}


def test_the_podmonitor_finds_the_masters_the_operator_makes_in_every_watched_namespace():
    objects = render(MONITORING_CHART, {"operator": {"watchNamespaces": ["perf", "blog"]}},
                     name="monitoring", namespace="monitoring")
    (monitor,) = objects.of_kind("PodMonitor")
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["perf", "blog"]}
    master = manifests.master_job("nightly", "nightly-3", SPEC, "img", 10)["spec"]["template"]
    worker = manifests.worker_job("nightly", "nightly-3", SPEC, "img")["spec"]["template"]
    assert matches(monitor["spec"]["selector"], master["metadata"]["labels"])
    assert not matches(monitor["spec"]["selector"], worker["metadata"]["labels"])   # workers serve nothing
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    ports = {p["name"]: p["containerPort"] for p in master["spec"]["containers"][0]["ports"]}
    assert ports[endpoint["port"]] == METRICS_PORT and endpoint["path"] == "/metrics"
    # Prometheus's meta label of each pod label the operator sets, renamed without "namespace".
    relabel = {r["targetLabel"]: r["sourceLabels"] for r in endpoint["relabelings"]}
    for target, label in (("loadtest", names.TEST_LABEL), ("run", names.RUN_LABEL)):
        meta = "__meta_kubernetes_pod_label_" + label.replace(".", "_").replace("/", "_").replace("-", "_")
        assert relabel[target] == [meta] and label in master["metadata"]["labels"]
    assert "namespace" not in relabel


def test_each_runs_network_policy_admits_prometheus_from_the_release_namespace():
    objects = render(MONITORING_CHART, {}, name="monitoring", namespace="monitoring")
    scrapers = scrapers_from(operator_env(objects)["LOADTEST_METRICS_SCRAPERS"])
    assert scrapers == {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    policy = manifests.run_network_policy("nightly", "nightly-3", SPEC, {"pods": {}, "port": 8000}, scrapers)
    assert {"from": [scrapers], "ports": [{"protocol": "TCP", "port": METRICS_PORT}]} in policy["spec"]["ingress"]


def test_the_scrapers_can_be_set_and_the_podmonitor_turned_off():
    peer = {"namespaceSelector": {"matchLabels": {"team": "observability"}}}
    objects = render(MONITORING_CHART, {"operator": {"runnerMetrics": {"scrapers": peer,
                                                                       "podMonitor": {"enabled": False}}}},
                     name="monitoring", namespace="monitoring")
    assert json.loads(operator_env(objects)["LOADTEST_METRICS_SCRAPERS"]) == peer
    assert not objects.of_kind("PodMonitor")
