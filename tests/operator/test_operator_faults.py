"""``spec.faults``: pods evicted during a run, through the Eviction API, on
time, once, only where the admin allows it, and judged on what users felt."""
from __future__ import annotations

import json
from datetime import datetime

import pytest

from devstack import wait_until
from operators.loadtest.policy import Policy
from perfcontract import run_summary
from tests.operator.cluster import NAMESPACE, PodScript
from tests.operator.support import (apply, assert_fits_crd, load_test, objects, runner_log, status,
                                    summary_document, wait_status)
from tests.operator.test_operator_chart import _allowed, _default_policy_values, _render, _requests_made
from tests.support.charts import MONITORING_CHART

BLOG = {"app.kubernetes.io/name": "blog"}
FAULT = {"afterSeconds": 1, "evictPods": {"selector": BLOG, "count": 1}}


@pytest.fixture
def faulty(cluster, operator_config):
    """Faults allowed on the blog's pods; two blog pods that run until evicted; a master that runs on."""
    operator_config.policy = Policy(fault_selectors=(BLOG,))
    from kubernetes import client
    for name in ("blog-0", "blog-1"):
        client.CoreV1Api(cluster.api).create_namespaced_pod(NAMESPACE, {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": BLOG},
            "spec": {"containers": [{"name": "blog", "image": "localhost/aiblog:test"}]}, "status": {"phase": "Pending"}})
    cluster.cluster.scripts[None] = PodScript(forever=True)  # pods without a run's role: the blog's
    cluster.cluster.scripts["master"] = PodScript(forever=True)
    return cluster


def _applied(cluster, name: str) -> dict:
    return wait_until(lambda: next((f for f in status(cluster, name).get("faults") or []
                                    if f["outcome"] != "being applied"), None), what="the fault applied")


def _timeline_around(applied_at: float) -> list[dict]:
    """Users' view: 40 s of normal, then 3 bad points (20 failures each, p95 500 ms), then normal again."""
    points, requests, failures = [], 0, 0
    for offset in [*range(-40, 0, 2), 1, 3, 5, 7, 9, 11, 13, 15]:
        bad = offset in (1, 3, 5)
        requests += 100
        failures += 20 if bad else 0
        points.append({"time": applied_at + offset, "users": 20, "rps": 50.0, "requests": requests,
                       "failures": failures, "non_ai_p95_ms": 500.0 if bad else 20.0})
    return points


def _finish_with(cluster, timeline: list[dict]) -> None:
    document = summary_document(failures=60)
    document["runs"]["locust"]["history"] = timeline
    cluster.cluster.scripts["master"] = PodScript(log=runner_log(document), run_seconds=0)


def test_a_fault_evicts_a_pod_on_time_and_the_result_says_what_users_felt(faulty):
    cluster = faulty
    apply(cluster, load_test("chaos", faults=[FAULT], thresholds={"maxRecoverySeconds": 10,
                                                                  "maxErrorsDuringFault": 100}))
    fault = _applied(cluster, "chaos")
    assert fault["outcome"] == "evicted blog-0" and fault["pods"] == ["blog-0"] and fault["afterSeconds"] == 1
    (evicted, when), = cluster.cluster.evictions
    assert evicted == "blog-0" and "blog-0" not in objects(cluster, "pods") and "blog-1" in objects(cluster, "pods")
    # On time: one second after the master started, within the reconcile interval.
    master = next(p for n, p in objects(cluster, "pods").items() if n.startswith("chaos-1-master"))
    started = datetime.fromisoformat(master["status"]["containerStatuses"][0]["state"]["running"]["startedAt"]
                                     .replace("Z", "+00:00")).timestamp()
    assert 1 <= when - started <= 1 + 2 * cluster_interval(cluster) + 1  # the start time has whole seconds

    applied_at = datetime.fromisoformat(fault["appliedAt"].replace("Z", "+00:00")).timestamp()
    _finish_with(cluster, _timeline_around(applied_at))
    final = wait_status(cluster, "chaos", "the run is collected", phase="Succeeded")
    assert final["verdict"] == "Passed", final["message"]
    (felt,) = objects(cluster, "loadtestresults")["chaos-1"]["spec"]["faults"]
    assert felt["outcome"] == "evicted blog-0" and felt["selector"] == BLOG
    assert (felt["errors"], felt["worstP95Ms"], felt["normalP95Ms"]) == (60, 500.0, 20.0)
    assert (felt["recoverySeconds"], felt["recovered"]) == (7.0, True)
    checks = {c["check"]: c for c in objects(cluster, "loadtestresults")["chaos-1"]["spec"]["checks"]}
    assert checks["fault 0 recovery (s)"]["measured"] == 7.0 and checks["fault 0 failed requests"]["measured"] == 60
    assert_fits_crd(objects(cluster, "loadtestresults")["chaos-1"], "loadtestresults.perf.aiblog.dev.yaml")
    assert_fits_crd(objects(cluster, "loadtests")["chaos"], "loadtests.perf.aiblog.dev.yaml")


def cluster_interval(cluster) -> float:
    from operators.loadtest import handlers
    return handlers.CONFIG.interval_s


def test_a_slow_recovery_fails_the_verdict(faulty):
    cluster = faulty
    apply(cluster, load_test("slow", faults=[FAULT], thresholds={"maxRecoverySeconds": 5}))
    fault = _applied(cluster, "slow")
    _finish_with(cluster, _timeline_around(datetime.fromisoformat(fault["appliedAt"].replace("Z", "+00:00"))
                                           .timestamp()))
    final = wait_status(cluster, "slow", "the run is collected", phase="Succeeded")
    assert final["verdict"] == "Failed" and "fault 0 recovery (s): measured 7.0, limit 5.0" in final["message"]


def test_a_restarted_operator_never_applies_a_fault_twice(faulty):
    cluster = faulty
    apply(cluster, load_test("once", faults=[FAULT]))
    _applied(cluster, "once")
    cluster.restart_operator()
    # The restarted operator follows the run (it reports the spec change below) without a second eviction.
    from tests.operator.support import patch_spec
    patch_spec(cluster, "once", {"users": 21})
    wait_until(lambda: any(c["type"] == "SpecChanged" for c in status(cluster, "once").get("conditions", [])),
               what="the restarted operator's pass over the run")
    assert [name for name, _ in cluster.cluster.evictions] == ["blog-0"]
    assert len(status(cluster, "once")["faults"]) == 1


def test_a_pod_disruption_budget_refuses_the_eviction_and_that_is_recorded(faulty):
    cluster = faulty
    cluster.cluster.protected.add("blog-0")
    apply(cluster, load_test("guarded", faults=[FAULT]))
    fault = _applied(cluster, "guarded")
    assert fault["outcome"] == "refused by a PodDisruptionBudget: blog-0"
    assert "blog-0" in objects(cluster, "pods") and cluster.cluster.evictions == []


def test_a_fault_the_policy_does_not_cover_is_rejected(cluster):
    apply(cluster, load_test("forbidden", faults=[FAULT]))  # the test policy names no fault selectors
    final = wait_status(cluster, "forbidden", "the spec is rejected", phase="Rejected")
    assert "spec.faults[0] evicts pods labelled {'app.kubernetes.io/name': 'blog'}, which no selector in " \
           "operator.policy.faultSelectors covers" in final["message"]


@pytest.mark.parametrize("faults, problem", [
    ([{"afterSeconds": 30, "evictPods": {"selector": BLOG}}], "afterSeconds must be a whole number of seconds "
                                                              "within the run (1 to 29)"),
    ([{"afterSeconds": 5, "evictPods": {"selector": {}}}], "needs at least one label"),
    ([{"afterSeconds": 5, "evictPods": {"selector": {"a=b,c": "d"}}}], "is not a label"),
    ([{"afterSeconds": 5, "evictPods": {"selector": BLOG, "count": 11}}], "count must be from 1 to 10"),
    ([{"afterSeconds": 5}], "needs evictPods"),
])
def test_a_fault_that_cannot_run_is_rejected_with_the_field_named(faulty, faults, problem):
    apply(faulty, load_test("odd", faults=faults))
    final = wait_status(faulty, "odd", "the spec is rejected", phase="Rejected")
    assert problem in final["message"] and faulty.cluster.evictions == []


def test_evicting_needs_only_the_rbac_the_policy_renders(faulty):
    cluster = faulty
    apply(cluster, load_test("audited", faults=[FAULT]))
    _applied(cluster, "audited")
    made = _requests_made(cluster)
    assert ("", "pods/eviction", "create", NAMESPACE) in made
    (role,) = _render(watchNamespaces=[NAMESPACE], policy={**_default_policy_values(),
                                                           "faultSelectors": [BLOG]}).of_kind("Role")
    assert _allowed(role["rules"], "", "pods/eviction", "create") and _allowed(role["rules"], "", "pods", "list")
    (default_role,) = _render(watchNamespaces=[NAMESPACE]).of_kind("Role")
    assert not any("pods/eviction" in rule["resources"] for rule in default_role["rules"])
    assert MONITORING_CHART.exists()


def test_the_summary_line_carries_a_bounded_timeline():
    long_run = [{"time": 1000.0 + 2 * i, "users": 10, "rps": 5.0, "requests": 10 * i, "failures": 0,
                 "non_ai_p95_ms": 100.0 + (i % 7)} for i in range(5000)]
    document = summary_document()
    document["runs"]["locust"]["history"] = long_run
    (line,) = [x for x in runner_log(document).splitlines() if x.startswith(run_summary.SUMMARY_PREFIX)]
    record = run_summary.parse_summary(line)
    assert len(record["timeline"]) <= 600 and record["timeline"][0]["time"] == 1000.0
    assert max(p["non_ai_p95_ms"] for p in record["timeline"]) == 106.0  # merging keeps the worst p95
    assert len(line) < run_summary.MAX_SUMMARY_BYTES
    assert json.loads(line[len(run_summary.SUMMARY_PREFIX):])["timeline"][-1]["requests"] == 49990


def test_the_fault_example_evicts_the_blog_charts_web_pods_and_nothing_else():
    import re
    import yaml
    from tests.support.charts import BLOG_CHART, REPO, render
    example = (REPO / "operators" / "examples" / "loadtest-fault.yaml").read_text()
    selector = yaml.safe_load(example)["spec"]["faults"][0]["evictPods"]["selector"]
    policy = json.loads(re.search(r"^# policy: (\{.*\})$", example, re.M).group(1))
    rendered = render(BLOG_CHART, name="aiblog")
    pods = {d["metadata"]["name"]: d["spec"]["template"]["metadata"]["labels"]
            for d in rendered.objects if d["kind"] in ("Deployment", "StatefulSet")}
    chosen = [name for name, labels in pods.items() if all(labels.get(k) == v for k, v in selector.items())]
    assert len(chosen) == 1 and "worker" not in chosen[0], (chosen, pods)
    assert Policy.from_json(json.dumps(policy)).fault_selectors == (selector,)
