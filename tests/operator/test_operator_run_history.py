"""Finished runs stay queryable in Prometheus after their pods are gone: the
operator's metrics carry every kept LoadTestResult's verdict and headline
figures with its start and end, rebuilt from the results after a restart
(the operator keeps no state), gone with a deleted result, and bounded."""
from __future__ import annotations

from kubernetes import client
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from operators.loadtest import run_history
from tests.operator.cluster import NAMESPACE, PodScript
from tests.operator.support import GROUP, VERSION, apply, load_test, objects, runner_log, summary_document, wait_status
from devstack import wait_until


def result_series() -> dict[tuple[str, str], dict]:
    """The operator's loadtest_result_* samples, by (metric, run)."""
    found = {}
    for family in text_string_to_metric_families(generate_latest(REGISTRY).decode()):
        if family.name.startswith("loadtest_result_"):
            for sample in family.samples:
                found[(sample.name, sample.labels["run"])] = {**sample.labels, "value": sample.value}
    return found


def test_each_finished_run_is_a_series_that_outlives_its_pods_and_a_restart(cluster):
    cluster.cluster.scripts["master"] = PodScript(log=runner_log(summary_document(requests=1200, failures=12,
                                                                                  rps=40.0, p95=180.0)))
    apply(cluster, load_test("history", ttlSecondsAfterFinished=0))
    wait_status(cluster, "history", "the run is collected", phase="Succeeded")
    (result,) = objects(cluster, "loadtestresults").values()
    spec = result["spec"]
    series = wait_until(lambda: s if ("loadtest_result_passed", "history-1") in (s := result_series()) else None,
                        10, "the run's series")
    passed = series[("loadtest_result_passed", "history-1")]
    assert {k: passed[k] for k in ("loadtest_namespace", "loadtest", "run", "verdict")} == {
        "loadtest_namespace": NAMESPACE, "loadtest": "history", "run": "history-1", "verdict": spec["verdict"]}
    assert passed["value"] == (1.0 if spec["verdict"] == "Passed" else 0.0)
    assert series[("loadtest_result_requests_per_second", "history-1")]["value"] == spec["totals"]["rps"]
    assert series[("loadtest_result_p95_seconds", "history-1")]["value"] == spec["totals"]["latencyMs"]["p95"] / 1000
    assert series[("loadtest_result_error_ratio", "history-1")]["value"] == spec["totals"]["failureRate"]
    start = series[("loadtest_result_start_time_seconds", "history-1")]["value"]
    end = series[("loadtest_result_end_time_seconds", "history-1")]["value"]
    assert 0 < start <= end
    wait_until(lambda: not objects(cluster, "pods") and not objects(cluster, "jobs"), 20, "the run's pods to go")
    assert ("loadtest_result_passed", "history-1") in result_series()     # still there without its pods

    run_history.HISTORY.clear()  # what a new operator process starts with
    cluster.restart_operator()
    wait_until(lambda: ("loadtest_result_passed", "history-1") in result_series(), 15,
               "the series rebuilt from the LoadTestResults")

    client.CustomObjectsApi(cluster.api).delete_namespaced_custom_object(
        GROUP, VERSION, NAMESPACE, "loadtestresults", result["metadata"]["name"])
    wait_until(lambda: ("loadtest_result_passed", "history-1") not in result_series(), 15,
               "the series gone with its result")


def result_body(namespace: str, test: str, number: int, finish: str) -> dict:
    return {"metadata": {"namespace": namespace, "name": f"{test}-{number}"},
            "spec": {"testName": test, "runName": f"{test}-{number}", "verdict": "Passed", "finishTime": finish,
                     "totals": {"requests": 10, "failures": 0, "rps": float(number)}}}


def test_the_mirror_is_bounded_per_load_test_and_in_all(monkeypatch):
    monkeypatch.setattr(run_history, "MAX_PER_TEST", 3)
    monkeypatch.setattr(run_history, "MAX_RESULTS", 5)
    history = run_history.RunHistory()
    for number in range(1, 9):   # one LoadTest with 8 results (something else made them)
        history.observe(None, result_body("perf", "flood", number, f"2026-12-02T10:00:{number:02d}+00:00"))
    history.observe("ADDED", result_body("perf", "calm", 1, "2026-12-02T09:00:00+00:00"))
    runs = {sample.labels["run"] for family in history.collect() for sample in family.samples}
    assert runs == {"flood-8", "flood-7", "flood-6", "calm-1"}     # the newest 3 of flood, and calm
    history.observe("DELETED", result_body("perf", "calm", 1, ""))
    assert "calm-1" not in {s.labels["run"] for f in history.collect() for s in f.samples}


def test_a_hostile_result_cannot_mint_long_labels_or_break_the_scrape():
    history = run_history.RunHistory()
    body = result_body("perf", "x" * 500, 1, "not a time")
    body["spec"]["totals"]["rps"] = "fast"   # not a number: no sample, no error
    history.observe(None, body)
    samples = [s for family in history.collect() for s in family.samples]
    assert samples and all(len(v) <= 63 for s in samples for v in s.labels.values())
    assert not any(s.name == "loadtest_result_requests_per_second" for s in samples)
    assert not any(s.name == "loadtest_result_end_time_seconds" for s in samples)
