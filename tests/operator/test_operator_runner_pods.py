"""``spec.runner``: runner pods that fit the cluster (labels and annotations
for a mesh, placement, priority, pull secrets, env), each allowed by the
admin's policy; and a run whose pods carry a mesh's sidecar that never exits
is still judged on the runner container, and its Jobs do not run on."""
from __future__ import annotations

import dataclasses

import pytest

from operators.loadtest.policy import Policy
from tests.operator.cluster import SIDECAR, PodScript
from tests.operator.support import apply, load_test, objects, runner_log, summary_document, wait_status
from tests.operator.test_operator_policy import assert_rejected_with_nothing_created
from devstack import wait_until

RUNNER = {
    "metadata": {"labels": {"team": "checkout"}, "annotations": {"sidecar.istio.io/inject": "false"}},
    "nodeSelector": {"pool": "load"},
    "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]}}},
    "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                                   "whenUnsatisfiable": "ScheduleAnyway",
                                   "labelSelector": {"matchLabels": {"team": "checkout"}}}],
    "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "load", "effect": "NoSchedule"}],
    "priorityClassName": "batch-low",
    "imagePullSecrets": [{"name": "registry-team"}],
    "env": [{"name": "LOCUST_EXTRA", "value": "1"}],
}


@pytest.fixture
def open_policy(operator_config):
    operator_config.policy = dataclasses.replace(
        operator_config.policy, runner_tolerations=True, allowed_priority_classes=("batch-*",),
        allowed_image_pull_secrets=("registry-team",))
    return operator_config


def pod_templates(cluster) -> dict[str, dict]:
    return {name: job["spec"]["template"] for name, job in objects(cluster, "jobs").items()}


def test_every_runner_field_reaches_both_jobs_pod_templates(cluster, open_policy):
    cluster.cluster.scripts["master"] = PodScript(log=runner_log(summary_document(requests=400)), forever=True)
    cluster.cluster.scripts["worker"] = PodScript(forever=True)
    apply(cluster, load_test("placed", workers=2, runner=RUNNER))
    templates = wait_until(lambda: t if len(t := pod_templates(cluster)) == 2 else None, 20, "both Jobs")
    for name, template in templates.items():
        labels, pod = template["metadata"]["labels"], template["spec"]
        assert labels["team"] == "checkout" and labels["perf.aiblog.dev/run"] == "placed-1", name
        assert template["metadata"]["annotations"] == {"sidecar.istio.io/inject": "false"}
        for field in ("nodeSelector", "affinity", "topologySpreadConstraints", "tolerations", "priorityClassName"):
            assert pod[field] == RUNNER[field], (name, field)
        assert pod["imagePullSecrets"] == [{"name": "registry-team"}]
        env = {v["name"]: v.get("value") for v in pod["containers"][0]["env"]}
        assert env["LOCUST_EXTRA"] == "1" and env["BLOG_PERF_RUN_ID"] == "placed-1"
    # The pods the Job controller made carry them too (what the scheduler and a mesh's webhook read).
    pods = wait_until(lambda: p if len(p := objects(cluster, "pods")) == 3 else None, 20, "three pods")
    assert all(p["metadata"]["labels"]["team"] == "checkout" and p["spec"]["nodeSelector"] == {"pool": "load"}
               for p in pods.values())


@pytest.mark.parametrize("runner, words", [
    ({"tolerations": RUNNER["tolerations"]}, ["spec.runner.tolerations", "runnerTolerations is false"]),
    ({"priorityClassName": "system-cluster-critical"}, ["'system-cluster-critical'", "allowedPriorityClasses"]),
    ({"imagePullSecrets": [{"name": "prod-registry"}]}, ["'prod-registry'", "allowedImagePullSecrets"]),
    ({"env": [{"name": "DB", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}]},
     ["valueFrom", "runnerEnvValueFrom is false"]),
], ids=["tolerations", "priority-class", "pull-secret", "env-value-from"])
def test_the_default_policy_refuses_runner_fields_that_reach_beyond_the_author(cluster, operator_config, runner,
                                                                               words):
    operator_config.policy = Policy(target_hosts=("127.0.0.1",))
    apply(cluster, load_test("beyond", runner=runner))
    assert_rejected_with_nothing_created(cluster, "beyond", "rejected by the cluster's policy", *words)


def test_the_default_policy_runs_a_mesh_opt_out_and_placement(cluster, operator_config):
    operator_config.policy = Policy()
    cluster.cluster.scripts["master"] = PodScript(log=runner_log(summary_document(requests=250)))
    runner = {key: RUNNER[key] for key in ("metadata", "nodeSelector", "affinity", "topologySpreadConstraints", "env")}
    apply(cluster, load_test("meshless", runner=runner))
    final = wait_status(cluster, "meshless", "the run is collected", phase="Succeeded")
    assert final["latest"]["requests"] == 250


@pytest.mark.parametrize("runner, words", [
    ({"metadata": {"labels": {"perf.aiblog.dev/run": "other-7"}}}, ["perf.aiblog.dev/run", "belongs to the operator"]),
    ({"env": [{"name": "BLOG_PERF_RUN_TOKEN", "value": "guess"}]}, ["BLOG_PERF_RUN_TOKEN is set by the operator"]),
    ({"nodeSelector": {"pool": "x" * 64}}, ["spec.runner.nodeSelector.pool", "not a valid value"]),
    ({"tolerations": [{"key": "a", "operator": "Exists", "hostNetwork": True}]}, ["unknown field(s) hostNetwork"]),
    ({"env": [{"name": "X"}]}, ["give exactly one of value or valueFrom"]),
], ids=["operator-label", "run-token", "label-value", "toleration-field", "env-empty"])
def test_a_runner_field_the_operator_owns_or_cannot_use_is_an_invalid_spec(cluster, open_policy, runner, words):
    apply(cluster, load_test("bad-runner", runner=runner))
    final = wait_status(cluster, "bad-runner", "the spec is refused", phase="Rejected")
    assert final["message"].startswith("invalid spec") and all(w in final["message"] for w in words), final
    assert not objects(cluster, "jobs")


def test_a_sidecar_that_never_exits_does_not_hold_the_run_open(cluster):
    """Istio's classic sidecar keeps the pod Running after the runner exits, so the Job never
    completes: the run is judged on the runner container and its Jobs are removed."""
    cluster.cluster.scripts["master"] = PodScript(log=runner_log(summary_document(requests=900, failures=9)),
                                                  sidecar_forever=True)
    cluster.cluster.scripts["worker"] = PodScript(sidecar_forever=True)
    apply(cluster, load_test("meshed-forever", workers=1))
    final = wait_status(cluster, "meshed-forever", "the run is judged on the runner container", phase="Succeeded")
    assert final["latest"]["requests"] == 900 and final["verdict"] == "Passed"
    for pod in objects(cluster, "pods").values():  # what the kubelet showed: the sidecar still running
        assert {s["name"] for s in pod["status"]["containerStatuses"]} >= {SIDECAR}
    wait_until(lambda: not objects(cluster, "jobs"), 20, "the run's Jobs to be removed")
    wait_until(lambda: not objects(cluster, "pods"), 20, "their pods to go with them")
    assert not objects(cluster, "services") and not objects(cluster, "networkpolicies")
    assert len(objects(cluster, "loadtestresults")) == 1


def test_a_runner_that_fails_beside_a_running_sidecar_fails_the_run(cluster):
    cluster.cluster.scripts["master"] = PodScript(log="Traceback: the scenario broke\n", exit_code=3,
                                                  sidecar_forever=True)
    apply(cluster, load_test("meshed-broken"))
    final = wait_status(cluster, "meshed-broken", "the run fails", phase="Failed")
    assert "the runner exited with 3" in final["message"], final["message"]
    wait_until(lambda: not objects(cluster, "jobs"), 20, "the run's Jobs to be removed")
