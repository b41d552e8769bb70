"""Specs that once made the operator retry forever (each child refused by the
API server, a TemporaryError every pass, the run never Failed). Any valid
LoadTest now gets valid children, and what the API still refuses ends the
run after a few passes. The test cluster refuses what the API server would
(tests/operator/api_rules.py), so these pass only on valid requests."""
from __future__ import annotations

import pytest

from operators.loadtest import names
from operators.loadtest.reconcile import START_ATTEMPTS
from tests.operator import api_rules
from tests.operator.cluster import PodScript
from tests.operator.support import apply, load_test, objects, patch_spec, runner_log, summary_document, wait_status
from devstack import wait_until

LONG = "checkout-flow-under-black-friday-load-with-forty-workers-and-ai"   # 63 characters, a valid LoadTest name


@pytest.mark.parametrize("name", [LONG + "-x" * 20, "web.v2", "2fast", "a" * 45], ids=["long", "dot", "digit", "45"])
def test_any_valid_load_test_name_gets_valid_children_and_a_result(cluster, name):
    assert api_rules.DNS_1123_SUBDOMAIN.match(name) and len(name) <= 253   # what the API accepts as its name
    cluster.cluster.scripts["master"] = PodScript(log=runner_log(summary_document(requests=250)), run_seconds=0.3)
    cluster.cluster.scripts["worker"] = PodScript(run_seconds=0.3)
    apply(cluster, load_test(name, workers=1, accounts=2))
    final = wait_status(cluster, name, "the run is collected", phase="Succeeded", timeout=30)
    run = final["lastResult"]
    assert run == names.run_name(name, 1) and final["latest"]["requests"] == 250
    children = [*objects(cluster, "jobs"), *objects(cluster, "services"), *objects(cluster, "secrets"),
                *objects(cluster, "networkpolicies")]
    assert len(children) == 5 and all(child.startswith(run) for child in children), children
    (result,) = objects(cluster, "loadtestresults").values()
    assert result["metadata"]["labels"][names.TEST_LABEL] == names.label_value(name)
    assert result["spec"]["testName"] == name


def test_two_long_names_that_share_their_start_get_different_runs():
    first, second = LONG + "-a" * 10, LONG + "-b" * 10
    assert names.run_name(first, 1) != names.run_name(second, 1)
    assert names.label_value(first) != names.label_value(second)
    assert all(len(names.run_name(n, 10_000)) <= names.RUN_NAME_MAX for n in (first, second, "2" * 253))


def test_a_cpu_request_above_the_default_limit_raises_the_limit_with_it(cluster):
    cluster.cluster.scripts["master"] = PodScript(forever=True)
    apply(cluster, load_test("hungry", resources={"requests": {"cpu": "2", "memory": "1Gi"}}))
    wait_status(cluster, "hungry", "the run is Running", phase="Running")
    (job,) = objects(cluster, "jobs").values()
    resources = job["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert resources["requests"] == {"cpu": "2", "memory": "1Gi"} and resources["limits"] == {"cpu": "2",
                                                                                            "memory": "1Gi"}


def test_a_request_above_a_limit_the_author_gave_is_refused_by_the_api_and_fails_the_run(cluster):
    apply(cluster, load_test("inverted", resources={"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}))
    final = wait_status(cluster, "inverted", "the run fails", phase="Failed")
    assert "must be less than or equal to cpu limit of 1" in final["message"], final["message"]
    assert any(c["reason"] == "CreateFailed" for c in final["conditions"])


def test_a_quota_that_refuses_the_jobs_fails_the_run_after_a_few_passes_and_the_next_spec_runs(cluster):
    cluster.k.refusals["jobs"] = (403, "Forbidden", 'jobs "quota-1-master" is forbidden: exceeded quota: '
                                                    "compute-resources, requested: limits.cpu=1, limited: limits.cpu=0")
    apply(cluster, load_test("quota"))
    final = wait_status(cluster, "quota", "the run fails", phase="Failed")
    assert f"could not start after {START_ATTEMPTS} attempts" in final["message"]
    assert "403" in final["message"] and "exceeded quota" in final["message"] and final["runs"] == 1
    events = wait_until(lambda: [e for e in objects(cluster, "events").values() if e.get("reason") == "CreateFailed"],
                        what="a CreateFailed Event")
    assert len(events) == 1 and not objects(cluster, "jobs")
    del cluster.k.refusals["jobs"]   # the quota was raised; the author edits the spec
    cluster.cluster.scripts["master"] = PodScript(forever=True)
    patch_spec(cluster, "quota", {"users": 21})
    wait_status(cluster, "quota", "the next run starts", phase="Running", currentRun="quota-2")


def test_a_result_the_api_refuses_fails_the_run_instead_of_retrying(cluster):
    cluster.k.refusals["loadtestresults"] = (422, "Invalid", "LoadTestResult is invalid: spec.totals: too large")
    cluster.cluster.scripts["master"] = PodScript(log=runner_log(summary_document()))
    apply(cluster, load_test("refused"))
    final = wait_status(cluster, "refused", "the run fails", phase="Failed")
    assert "422" in final["message"] and "CollectFailed" in [c["reason"] for c in final["conditions"]]
    del cluster.k.refusals["loadtestresults"]
