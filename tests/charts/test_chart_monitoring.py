"""The chart's monitoring objects against the files and the rules they come from:
the PrometheusRule is the promtool-tested rules file, and the jobs the
ServiceMonitor and PodMonitor produce are the jobs the rules select."""
from __future__ import annotations

import re
import subprocess
import sys

import pytest
import yaml

from tests.support.charts import BLOG_CHART, BLOG_VALUE_SETS, Render, render
from devstack import REPO, require_binary

pytestmark = pytest.mark.charts

RULES_FILE = BLOG_CHART / "rules" / "aiblog.rules.yml"
MONITORED = BLOG_VALUE_SETS["everything-enabled"]


def scrape_job_of_service_monitor(monitor: dict, service: dict) -> str:
    """What the Prometheus Operator puts in `job`: the Service's label named by
    jobLabel when it has one, otherwise the Service's name."""
    label = monitor["spec"].get("jobLabel")
    return service["metadata"]["labels"].get(label) if label in service["metadata"]["labels"] \
        else service["metadata"]["name"]


def scrape_job_of_pod_monitor(monitor: dict, pod_labels: dict) -> str:
    """PodMonitor: the pod's label named by jobLabel, otherwise "<namespace>/<podmonitor name>"."""
    label = monitor["spec"].get("jobLabel")
    return pod_labels[label] if label in pod_labels else f"{monitor['metadata'].get('namespace', 'blog')}/{monitor['metadata']['name']}"


def jobs_the_rules_select() -> set[str]:
    return set(re.findall(r'job="([^"]+)"', RULES_FILE.read_text()))


@pytest.mark.parametrize("release", ["aiblog", "prod", "blog"])
def test_the_servicemonitor_produces_the_job_the_rules_select(release):
    objects = render(BLOG_CHART, MONITORED, name=release)
    (monitor,) = objects.of_kind("ServiceMonitor")
    (service,) = [s for s in objects.of_kind("Service") if s["metadata"]["name"] == monitor["metadata"]["name"]]
    job = scrape_job_of_service_monitor(monitor, service)
    assert jobs_the_rules_select() == {job} == {"aiblog"}, "whatever the release is called"


def test_without_joblabel_the_job_would_follow_the_release_name():
    """The check above is not vacuous: the default job (the Service name) breaks with another release."""
    objects = render(BLOG_CHART, MONITORED, name="prod")
    (monitor,) = objects.of_kind("ServiceMonitor")
    service = objects.named("Service", monitor["metadata"]["name"])
    bare = {**monitor, "spec": {k: v for k, v in monitor["spec"].items() if k != "jobLabel"}}
    assert scrape_job_of_service_monitor(bare, service) == "prod-blog" not in jobs_the_rules_select()


def test_the_worker_job_is_the_one_make_monitor_uses():
    sys.path.insert(0, str(REPO / "scripts"))
    import monitor as make_monitor

    objects = render(BLOG_CHART, MONITORED)
    (pod_monitor,) = objects.of_kind("PodMonitor")
    worker = objects.named("Deployment", "aiblog-worker")
    job = scrape_job_of_pod_monitor(pod_monitor, worker["spec"]["template"]["metadata"]["labels"])
    assert job == "aiblog-worker"
    jobs = [c["job_name"] for c in make_monitor.prometheus_config(["x:1"], worker_targets=["y:2"])["scrape_configs"]]
    assert jobs == [make_monitor.JOB, job] == ["aiblog", "aiblog-worker"]


def test_the_prometheusrule_spec_is_the_rules_file_unchanged():
    (rule,) = render(BLOG_CHART, MONITORED).of_kind("PrometheusRule")
    assert rule["spec"] == yaml.safe_load(RULES_FILE.read_text())


def test_promtool_accepts_the_rendered_prometheusrule_spec(tmp_path):
    promtool = require_binary("promtool", "prometheus")
    (rule,) = render(BLOG_CHART, MONITORED).of_kind("PrometheusRule")
    spec = tmp_path / "rendered.rules.yml"
    spec.write_text(yaml.safe_dump(rule["spec"]))
    result = subprocess.run([promtool, "check", "rules", str(spec)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    count = sum(len(group["rules"]) for group in rule["spec"]["groups"])
    assert f"SUCCESS: {count} rules found" in result.stdout


def test_promtool_would_refuse_a_broken_spec(tmp_path):
    promtool = require_binary("promtool", "prometheus")
    spec = tmp_path / "broken.rules.yml"
    spec.write_text(yaml.safe_dump({"groups": [{"name": "x", "rules": [{"alert": "A", "expr": "up{"}]}]}))
    assert subprocess.run([promtool, "check", "rules", str(spec)], capture_output=True).returncode != 0


def test_the_rules_test_file_is_kept_out_of_the_chart():
    import helm_python

    with helm_python.Chart.load(BLOG_CHART) as chart:
        names = {f["name"] for f in chart.files}
    assert "rules/aiblog.rules.yml" in names
    assert "rules/aiblog.rules.test.yml" not in names


def test_the_stack_finds_the_blog_charts_dashboards_and_monitors_in_any_namespace():
    """kube-prometheus-stack's values in charts/monitoring against what charts/blog renders
    (the stack itself cannot be fetched here): Grafana's sidecar looks for exactly the
    dashboards' label in every namespace, and Prometheus selects monitors and rules of
    other releases in any namespace."""
    from tests.support.charts import MONITORING_CHART, chart_values, matches

    stack = chart_values(MONITORING_CHART)["kube-prometheus-stack"]
    sidecar = stack["grafana"]["sidecar"]
    dashboards = sidecar["dashboards"]
    assert dashboards["enabled"] and dashboards["searchNamespace"] == "ALL"
    assert sidecar["datasources"]["enabled"] and sidecar["datasources"]["defaultDatasourceEnabled"]
    blog = render(BLOG_CHART, MONITORED)
    shipped = [c for c in blog.of_kind("ConfigMap") if c["metadata"]["name"].endswith("-dashboards")
               or "grafana_dashboard" in c["metadata"].get("labels", {})]
    assert shipped and all(matches({"matchLabels": {dashboards["label"]: dashboards["labelValue"]}},
                                   c["metadata"]["labels"]) for c in shipped)
    spec = stack["prometheus"]["prometheusSpec"]
    for kind, key in (("ServiceMonitor", "serviceMonitor"), ("PodMonitor", "podMonitor"),
                      ("PrometheusRule", "rule")):
        assert blog.of_kind(kind), kind
        # Empty selectors with NilUsesHelmValues off: every object of the kind, from every namespace.
        assert spec[f"{key}SelectorNilUsesHelmValues"] is False and spec[f"{key}NamespaceSelector"] == {}, key
        assert not spec.get(f"{key}Selector"), key
