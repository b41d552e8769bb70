"""The cluster admin's policy (the monitoring chart's ``operator.policy``,
``operators/loadtest/policy.py``): creating a LoadTest gives its author no
power they would not have without the operator. Under the default policy a
LoadTest may run only the chart's runner image, against Services in its own
namespace, within the ceilings; a Secret, ConfigMap or PVC it names must be
allowed by the admin and opted in by a label, checked at every run's start.
Anything else is Rejected, with the setting named, and nothing is created."""
from __future__ import annotations

import pytest
from kubernetes import client

from operators.loadtest.policy import ACCOUNTS_LABEL, REPORTS_LABEL, SCENARIO_LABEL, Policy
from tests.operator.cluster import NAMESPACE, PodScript
from tests.operator.support import (apply, load_test, objects, opted_in, patch_spec, runner_log, summary_document,
                                    wait_status)
from devstack import wait_until


@pytest.fixture
def default_policy(operator_config):
    operator_config.policy = Policy()
    return operator_config


def assert_rejected_with_nothing_created(cluster, name: str, *words: str) -> dict:
    final = wait_status(cluster, name, "the LoadTest is rejected", phase="Rejected")
    assert final["verdict"] == "Rejected" and all(w in final["message"] for w in words), final["message"]
    assert not objects(cluster, "jobs") and not objects(cluster, "services") and not objects(cluster, "pods")
    events = wait_until(lambda: [e for e in objects(cluster, "events").values() if e.get("reason") == "PolicyRejected"],
                        what="a PolicyRejected Event")
    assert events[0]["type"] == "Warning"
    return final


@pytest.mark.parametrize("spec, words", [
    ({"image": "registry.example/attacker:latest"}, ["spec.image", "operator.policy.allowedImages"]),
    ({"target": {"url": "http://db.other-team.svc:5432"}}, ["host 'db.other-team.svc'", "targetHosts"]),
    ({"workers": 11}, ["spec.workers 11", "maxWorkers (10)"]),
    ({"users": 100000}, ["spec.users 100000", "maxUsers (2000)"]),
    ({"duration": 86400}, ["spec.duration 86400", "maxDurationSeconds (3600)"]),
    ({"spawnRate": 5000}, ["spec.spawnRate 5000", "maxSpawnRate (100)"]),
    ({"resources": {"limits": {"cpu": "1000000"}}}, ["spec.resources.limits.cpu 1000000", "maxCpu (2)"]),
    ({"resources": {"requests": {"memory": "64Gi"}}}, ["spec.resources.requests.memory 64Gi", "maxMemory (2Gi)"]),
    ({"historyLimit": 1000}, ["spec.historyLimit 1000", "maxHistory (20)"]),
    ({"scenario": {"configMap": {"name": "kube-root-ca.crt", "key": "x.py"}}}, ["customScenarios is false"]),
    ({"accountsSecret": {"name": "db-password"}}, ["accountsSecrets is false"]),
    ({"reportVolumeClaim": "postgres-data"}, ["reportVolumeClaims is false"]),
], ids=["image", "url-target", "workers", "users", "duration", "spawn-rate", "cpu", "memory", "history",
        "scenario-configmap", "accounts-secret", "report-pvc"])
def test_the_default_policy_rejects_what_the_author_could_not_do_alone(cluster, default_policy, spec, words):
    apply(cluster, load_test("reach", **spec))
    assert_rejected_with_nothing_created(cluster, "reach", "rejected by the cluster's policy", *words)


def test_the_default_policy_runs_the_default_image_against_a_service_in_the_namespace(cluster, default_policy):
    cluster.cluster.scripts["master"] = PodScript(log=runner_log(summary_document(requests=400)))
    apply(cluster, load_test("plain", workers=2, users=2000))
    assert wait_status(cluster, "plain", "the run is collected", phase="Succeeded")["latest"]["requests"] == 400


@pytest.mark.parametrize("kind, field, label, spec", [
    ("Secret", "accountsSecret", ACCOUNTS_LABEL, {"accountsSecret": {"name": "team-accounts"}}),
    ("ConfigMap", "scenario.configMap", SCENARIO_LABEL, {"scenario": {"configMap": {"name": "team-accounts"}}}),
    ("PersistentVolumeClaim", "reportVolumeClaim", REPORTS_LABEL, {"reportVolumeClaim": "team-accounts"}),
], ids=["secret", "configmap", "pvc"])
def test_an_allowed_kind_of_object_is_still_refused_until_its_owner_labels_it(cluster, operator_config, kind, field,
                                                                              label, spec):
    operator_config.policy = Policy(custom_scenarios=True, accounts_secrets=True, report_volume_claims=True)
    apply(cluster, load_test("missing", **spec))
    assert_rejected_with_nothing_created(cluster, "missing", f"spec.{field}", "does not exist")
    opted_in(cluster, kind, "team-accounts", None)   # there, but not opted in
    apply(cluster, load_test("unlabelled", **spec))
    assert_rejected_with_nothing_created(cluster, "unlabelled", f"is not labelled {label}=true")


def test_the_label_is_checked_again_when_each_run_starts(cluster, operator_config):
    operator_config.policy = Policy(accounts_secrets=True)
    cluster.cluster.scripts["master"] = PodScript(log=runner_log(summary_document(requests=100)))
    opted_in(cluster, "Secret", "team-accounts", ACCOUNTS_LABEL, stringData={"accounts": "a:b\n"})
    apply(cluster, load_test("again", accountsSecret={"name": "team-accounts"}))
    wait_status(cluster, "again", "the first run is collected", phase="Succeeded")
    client.CoreV1Api(cluster.api).patch_namespaced_secret("team-accounts", NAMESPACE,
                                                          {"metadata": {"labels": {ACCOUNTS_LABEL: "false"}}})
    patch_spec(cluster, "again", {"users": 21})   # the next run
    final = wait_status(cluster, "again", "the second run is rejected", phase="Rejected")
    assert "is not labelled" in final["message"] and final["runs"] == 1
    assert set(objects(cluster, "loadtestresults")) == {"again-1"}


def test_reports_beyond_the_per_load_test_budget_are_not_kept(cluster, operator_config):
    report = b"<html>" + b"r" * 3000 + b"</html>"
    operator_config.policy = Policy(max_report_bytes=len(report) + 100)
    cluster.cluster.scripts["master"] = PodScript(log=runner_log(summary_document(requests=100), report))
    apply(cluster, load_test("budget"))
    wait_status(cluster, "budget", "the first run is collected", phase="Succeeded", lastResult="budget-1")
    patch_spec(cluster, "budget", {"users": 21})
    wait_status(cluster, "budget", "the second run is collected", phase="Succeeded", lastResult="budget-2")
    results = objects(cluster, "loadtestresults")
    assert results["budget-1"]["spec"]["report"]["configMap"] == "budget-1-report"
    assert "maxReportBytes" in results["budget-2"]["spec"]["report"]["note"]
    assert set(objects(cluster, "configmaps")) == {"budget-1-report"}
