"""``spec.profile``: a stepped LoadTest. The master runs the steps
(``blog-perf locust --steps``); the operator reads each step's figures from
its summary and judges capacity and knee with perfcontract.capacity."""
from __future__ import annotations

import pytest

from tests.operator.cluster import PodScript
from tests.operator.support import (apply, assert_fits_crd, cel_refusals, crd_schema, load_test, objects,
                                    printer_columns, runner_log, summary_document, wait_status)

PROFILE = {"startUsers": 10, "endUsers": 50, "stepUsers": 10, "stepSeconds": 30, "slo": {"p95Ms": 200}}


def _stepped(name: str, **spec) -> dict:
    document = load_test(name, profile=PROFILE, **spec)
    del document["spec"]["users"], document["spec"]["duration"]
    return document


def _steps(p95s, rps=(15, 30, 44, 50, 50)) -> list[dict]:
    return [{"users": 10 * (i + 1), "seconds": 30.0, "requests": int(r * 30), "failures": 0, "rps": r,
             "failure_rate": 0.0, "p50_ms": p / 2, "p95_ms": p, "p99_ms": p * 1.5} for i, (p, r) in enumerate(zip(p95s, rps))]


def _master_steps(cluster, steps) -> None:
    document = summary_document()
    document["runs"]["locust"]["summary"]["steps"] = steps
    cluster.cluster.scripts["master"] = PodScript(log=runner_log(document), run_seconds=0)


def test_a_stepped_run_records_its_steps_capacity_and_knee(cluster):
    _master_steps(cluster, _steps([20, 24, 30, 150, 400]))
    apply(cluster, _stepped("curve", thresholds={"minCapacityUsers": 40}))
    final = wait_status(cluster, "curve", "the stepped run is collected", phase="Succeeded")
    assert final["verdict"] == "Passed", final["message"]
    job = objects(cluster, "jobs")["curve-1-master"]
    args = job["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--steps") + 1] == "10:50:10:30" and args[args.index("--slo-p95-ms") + 1] == "200"
    assert args[args.index("--min-capacity-users") + 1] == "40" and args[args.index("--slo-error-rate") + 1] == "0.01"
    # Five steps of 30 s and the master's tail: the Job's deadline allows for all of them.
    assert job["spec"]["activeDeadlineSeconds"] > 155
    profile = objects(cluster, "loadtestresults")["curve-1"]["spec"]["profile"]
    assert (profile["capacityUsers"], profile["capacityP95Ms"], profile["kneeUsers"]) == (40, 150, 30)
    assert [s["users"] for s in profile["steps"]] == [10, 20, 30, 40, 50]
    assert profile["steps"][3] == {"users": 40, "seconds": 30.0, "requests": 1500, "failures": 0, "rps": 50,
                                   "failureRate": 0.0, "p50Ms": 75.0, "p95Ms": 150, "p99Ms": 225.0}
    assert final["latest"]["capacityUsers"] == 40
    assert_fits_crd(objects(cluster, "loadtestresults")["curve-1"], "loadtestresults.perf.aiblog.dev.yaml")
    assert_fits_crd(objects(cluster, "loadtests")["curve"], "loadtests.perf.aiblog.dev.yaml")
    assert printer_columns(objects(cluster, "loadtests")["curve"], "loadtests.perf.aiblog.dev.yaml")["Capacity"] == 40


def test_a_capacity_below_the_threshold_fails_the_run(cluster):
    _master_steps(cluster, _steps([20, 24, 30, 250, 400]))
    apply(cluster, _stepped("small", thresholds={"minCapacityUsers": 40}))
    final = wait_status(cluster, "small", "the stepped run is collected", phase="Succeeded")
    assert final["verdict"] == "Failed"
    assert "capacity (users within the SLO): measured 30, limit 40 (min)" in final["message"]


def test_a_runner_cannot_swell_the_result_with_steps(cluster):
    many = [{"users": n, "seconds": 1.0, "requests": 10, "failures": 0, "rps": 10.0, "failure_rate": 0.0,
             "p50_ms": 5.0, "p95_ms": 9.0, "p99_ms": 12.0} for n in range(1, 1001)]
    _master_steps(cluster, many)
    apply(cluster, _stepped("swollen"))
    wait_status(cluster, "swollen", "the run is collected", phase="Succeeded")
    steps = objects(cluster, "loadtestresults")["swollen-1"]["spec"]["profile"]["steps"]
    assert len(steps) == 100 and steps[0]["users"] == 1 and steps[-1]["users"] == 1000


@pytest.mark.parametrize("change, problem", [
    ({"users": 20}, "give spec.users and spec.duration, or spec.profile"),
    ({"profile": {**PROFILE, "endUsers": 5}}, "a profile goes from 1 or more users up to at least as many"),
    ({"profile": {**PROFILE, "stepUsers": 1, "endUsers": 200}}, "at most 100 steps"),
    ({"profile": {**PROFILE, "slo": {"maxErrorRate": 2}}}, "spec.maxErrorRate must be between 0 and 1"),
    ({"profile": {**PROFILE, "stepSeconds": 3600, "endUsers": 500}}, "spec.profile's steps last 180005 s, over"),
    ({"profile": {**PROFILE, "stepSeconds": 1000}}, "spec.profile (its steps' seconds) 5005 is over "
                                                    "operator.policy.maxDurationSeconds (3600)"),
])
def test_a_profile_that_cannot_run_is_rejected(cluster, change, problem):
    apply(cluster, {**_stepped("odd"), "spec": {**_stepped("odd")["spec"], **change}})
    final = wait_status(cluster, "odd", "the spec is rejected", phase="Rejected")
    assert problem in final["message"] and not objects(cluster, "jobs")


def test_a_capacity_threshold_without_a_profile_is_rejected(cluster):
    apply(cluster, load_test("flat", thresholds={"minCapacityUsers": 10}))
    final = wait_status(cluster, "flat", "the spec is rejected", phase="Rejected")
    assert "minCapacityUsers needs spec.profile" in final["message"]


def test_the_crd_refuses_what_a_profile_cannot_be_at_apply():
    schema = crd_schema("loadtests.perf.aiblog.dev.yaml")["properties"]["spec"]
    both = {**load_test("x", profile=PROFILE)["spec"]}
    assert "give users and duration, or profile (which sets both), not both" in cel_refusals(both, schema)
    assert cel_refusals(_stepped("x")["spec"], schema) == []
    neither = {k: v for k, v in load_test("x")["spec"].items() if k != "duration"}
    assert "give users and duration, or profile (which sets both), not both" in cel_refusals(neither, schema)
    backwards = {**_stepped("x")["spec"], "profile": {**PROFILE, "endUsers": 5}}
    assert "profile.endUsers is smaller than profile.startUsers" in cel_refusals(backwards, schema)
    no_profile = {**load_test("x")["spec"], "thresholds": {"minCapacityUsers": 5}}
    assert cel_refusals(no_profile, schema) == [
        "thresholds.minCapacityUsers needs a profile (a capacity comes from a stepped run)"]
