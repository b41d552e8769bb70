"""``spec.compare``: a LoadTest judged against its own history or a named
result, with the tolerance rule of ``blog-perf compare`` (perfcontract.baseline)."""
from __future__ import annotations

import pytest
from kubernetes import client

from tests.operator.cluster import NAMESPACE, PodScript
from tests.operator.support import (GROUP, VERSION, apply, assert_fits_crd, cel_refusals, crd_schema, load_test, objects,
                                    patch_spec, runner_log, status, summary_document, wait_status)

CRD = "loadtests.perf.aiblog.dev.yaml"


def _master_reports(cluster, **figures) -> None:
    cluster.cluster.scripts["master"] = PodScript(log=runner_log(summary_document(**figures)), run_seconds=0)


def _next_run(cluster, name: str, number: int, p95_gate: float, **figures) -> dict:
    """Run ``name`` again with the same load (only a threshold is edited) and the given figures."""
    _master_reports(cluster, **figures)
    patch_spec(cluster, name, {"thresholds": {"p95Ms": p95_gate}})
    wait_status(cluster, name, f"run {number} is collected", lastResult=f"{name}-{number}", phase="Succeeded")
    return objects(cluster, "loadtestresults")[f"{name}-{number}"]["spec"]


def _figure(result: dict, key: str) -> dict:
    return next(f for f in result["comparison"]["figures"] if f["figure"] == key)


def test_a_run_is_judged_against_the_median_of_the_last_passed_runs_of_the_same_load(cluster):
    _master_reports(cluster, p95=120.0, p99=250.0, rps=33.0)
    apply(cluster, load_test("gate", thresholds={"p95Ms": 1000}, compare={"baseline": {"lastPassed": 3}}))
    wait_status(cluster, "gate", "run 1 is collected", lastResult="gate-1")
    first = objects(cluster, "loadtestresults")["gate-1"]["spec"]
    assert first["verdict"] == "Passed"  # the first run of a pipeline has nothing to compare with
    assert "no earlier Passed run" in first["comparison"]["baseline"]["note"]
    assert first["comparison"]["regressed"] is False

    # The same build again: small differences are noise, within the tolerances.
    second = _next_run(cluster, "gate", 2, 1001, p95=128.0, p99=270.0, rps=32.0)
    assert second["verdict"] == "Passed", second["reasons"]
    p95 = _figure(second, "p95")
    assert (p95["baseline"], p95["value"], p95["delta"], p95["regressed"]) == (120.0, 128.0, 8.0, False)
    assert p95["allowedWorsening"] == 60.0  # 50 % of 120 is larger than the 10 ms floor
    assert second["comparison"]["baseline"]["results"] == ["gate-1"]

    # A slower build: p95 and p99 far beyond the tolerance, the thresholds still met.
    third = _next_run(cluster, "gate", 3, 1002, p95=400.0, p99=900.0, rps=33.0)
    assert third["verdict"] == "Regressed"
    assert [r.split(":")[1].strip() for r in third["reasons"]] == ["non-AI p95 (ms)", "non-AI p99 (ms)"]
    assert "124 -> 400 (+276, allowed +62)" in third["reasons"][0]  # median of 120 and 128
    assert _figure(third, "p95")["deltaPercent"] == pytest.approx(222.58, abs=0.01)
    assert third["comparison"]["regressed"] is True and _figure(third, "rps")["regressed"] is False
    # The runner got the baseline too, so its report shows the comparison.
    args = objects(cluster, "jobs")["gate-3-master"]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--baseline-figures") + 1] == "p95=124,p99=260,rps=32.5,errorRate=0.005"
    assert args[args.index("--baseline-tolerances") + 1] == "p95=50:10,p99=75:25,rps=10:1,errorRate=0:0.005"
    final = status(cluster, "gate")
    assert final["verdict"] == "Regressed" and "regressed: non-AI p95" in final["message"]
    complete = next(c for c in final["conditions"] if c["type"] == "Complete")
    assert complete["status"] == "True" and complete["reason"] == "Regressed"
    assert_fits_crd(objects(cluster, "loadtestresults")["gate-3"], "loadtestresults.perf.aiblog.dev.yaml")
    assert_fits_crd(objects(cluster, "loadtests")["gate"], CRD)

    # A regressed run never becomes the baseline: the next one is judged against runs 1 and 2.
    fourth = _next_run(cluster, "gate", 4, 1003, p95=130.0, p99=260.0, rps=33.0)
    assert fourth["verdict"] == "Passed"
    assert fourth["comparison"]["baseline"]["results"] == ["gate-1", "gate-2"]


def test_a_changed_load_starts_a_new_series_instead_of_regressing(cluster):
    _master_reports(cluster, p95=50.0)
    apply(cluster, load_test("series", compare={"baseline": {"lastPassed": 2}}))
    wait_status(cluster, "series", "run 1 is collected", lastResult="series-1")
    _master_reports(cluster, p95=500.0)  # twice the users: slower, and not comparable
    patch_spec(cluster, "series", {"users": 40})
    wait_status(cluster, "series", "run 2 is collected", lastResult="series-2", phase="Succeeded")
    second = objects(cluster, "loadtestresults")["series-2"]["spec"]
    assert second["verdict"] == "Passed" and second["comparison"]["baseline"]["results"] == []


def test_a_named_result_is_the_baseline_and_a_missing_one_stops_the_run(cluster):
    _master_reports(cluster, p95=100.0, rps=40.0)
    apply(cluster, load_test("release-1"))
    wait_status(cluster, "release-1", "the reference run is collected", lastResult="release-1-1")

    _master_reports(cluster, p95=101.0, rps=30.0)  # a quarter less throughput
    apply(cluster, load_test("release-2", compare={"baseline": {"result": "release-1-1"},
                                                   "tolerances": {"rps": {"percent": 5}}}))
    wait_status(cluster, "release-2", "the candidate run is collected", lastResult="release-2-1")
    result = objects(cluster, "loadtestresults")["release-2-1"]["spec"]
    assert result["verdict"] == "Regressed" and len(result["reasons"]) == 1
    assert result["reasons"][0].startswith("regressed: requests/s: 40 -> 30 (-10, allowed -2)")
    assert result["comparison"]["baseline"] == {"result": "release-1-1", "resultVerdict": "Passed"}
    assert _figure(result, "rps")["tolerance"] == {"percent": 5.0, "absolute": 1.0}

    # A baseline that is not there: no run is wasted on it.
    apply(cluster, load_test("release-3", compare={"baseline": {"result": "release-0-1"}}))
    final = wait_status(cluster, "release-3", "the run without its baseline is refused", phase="Rejected")
    assert final["message"] == "spec.compare: the baseline LoadTestResult release-0-1 does not exist"
    assert not any(name.startswith("release-3") for name in objects(cluster, "jobs"))

    # One deleted while the run goes on: the run cannot be judged, and a gate without its reference fails.
    cluster.cluster.scripts["master"] = PodScript(forever=True)
    apply(cluster, load_test("release-4", compare={"baseline": {"result": "release-1-1"}}))
    wait_status(cluster, "release-4", "the run is going", phase="Running")
    client.CustomObjectsApi(cluster.api).delete_namespaced_custom_object(
        GROUP, VERSION, NAMESPACE, "loadtestresults", "release-1-1")
    _master_reports(cluster, p95=100.0, rps=40.0)  # the kubelet ends the pod with these figures
    final = wait_status(cluster, "release-4", "the run is collected", phase="Succeeded")
    assert final["verdict"] == "Failed"
    assert "cannot compare: the baseline LoadTestResult release-1-1 does not exist" in final["message"]


@pytest.mark.parametrize("compare, problem", [
    ({"baseline": {"lastPassed": 3, "result": "x"}}, "exactly one of lastPassed"),
    ({"baseline": {}}, "exactly one of lastPassed"),
    ({"baseline": {"lastPassed": 11}}, "from 1 to spec.historyLimit (10)"),
    ({"baseline": {"result": "Not_A_Name"}}, "must be a LoadTestResult's name"),
    ({"baseline": {"lastPassed": 2}, "tolerances": {"p50": {"percent": 5}}}, "the figures are p95, p99"),
    ({"baseline": {"lastPassed": 2}, "tolerances": {"p95": {"percent": -1}}}, "p95.percent must be a number"),
    ({"baseline": {"lastPassed": 2}, "tolerances": {"errorRate": {"absolute": 2}}}, "errorRate.absolute"),
])
def test_a_compare_the_operator_cannot_use_is_rejected_with_the_field_named(cluster, compare, problem):
    apply(cluster, load_test("odd", compare=compare))
    final = wait_status(cluster, "odd", "the spec is rejected", phase="Rejected")
    assert problem in final["message"] and not objects(cluster, "jobs")


def test_the_crd_refuses_a_baseline_with_both_sources_at_apply():
    spec_schema = crd_schema(CRD)["properties"]["spec"]
    both = {"baseline": {"lastPassed": 3, "result": "x"}}
    assert cel_refusals(both, spec_schema["properties"]["compare"]) == ["give exactly one of lastPassed or result"]
    assert cel_refusals({"baseline": {"lastPassed": 3}}, spec_schema["properties"]["compare"]) == []


def test_the_crd_states_the_default_tolerances_the_operator_uses():
    from perfcontract.baseline import DEFAULT_TOLERANCES
    described = crd_schema(CRD)["properties"]["spec"]["properties"]["compare"]["properties"]["tolerances"]
    d = DEFAULT_TOLERANCES
    assert (f"Defaults p95 {d['p95'].percent:g} % or {d['p95'].absolute:g} ms, p99 {d['p99'].percent:g} % or "
            f"{d['p99'].absolute:g} ms, rps {d['rps'].percent:g} % or {d['rps'].absolute:g}, errorRate "
            f"{d['errorRate'].absolute:g} ({d['errorRate'].absolute * 100:g} points)") in described["description"]
