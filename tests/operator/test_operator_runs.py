"""A LoadTest's life in an emulated cluster: the children it gets, the result
and verdict it ends with, and the failures it reports instead of hanging."""
from __future__ import annotations

from tests.operator.cluster import NAMESPACE, PodScript
from operators.loadtest.policy import ACCOUNTS_LABEL, REPORTS_LABEL, SCENARIO_LABEL
from tests.operator.support import (apply, assert_fits_crd, load_test, objects, opted_in, printer_columns, runner_log,
                                    summary_document, wait_status)
from devstack import wait_until


def _owned_by(obj: dict, owner: dict) -> bool:
    return any(ref["uid"] == owner["metadata"]["uid"] and ref.get("controller")
               for ref in obj["metadata"].get("ownerReferences", []))


def test_a_distributed_load_test_gets_a_master_service_and_two_jobs(cluster):
    cluster.cluster.scripts["master"] = PodScript(forever=True)
    cluster.cluster.scripts["worker"] = PodScript(forever=True)
    apply(cluster, load_test("shop", workers=3, thresholds={"p95Ms": 200}, resources={"limits": {"cpu": "2"}}))
    wait_status(cluster, "shop", "the run is Running", phase="Running")
    test = objects(cluster, "loadtests")["shop"]
    jobs, services = objects(cluster, "jobs"), objects(cluster, "services")
    assert set(jobs) == {"shop-1-master", "shop-1-worker"} and set(services) == {"shop-1-master"}
    for child in [*jobs.values(), *services.values()]:
        assert _owned_by(child, test), child["metadata"]
    master, worker = jobs["shop-1-master"], jobs["shop-1-worker"]
    assert worker["spec"]["parallelism"] == worker["spec"]["completions"] == 3
    assert master["spec"]["parallelism"] == 1 and master["spec"]["backoffLimit"] == 0
    pod = master["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False and pod["restartPolicy"] == "Never"
    assert pod["securityContext"]["runAsNonRoot"] is True
    container = pod["containers"][0]
    assert container["image"] == "localhost/aiblog:test" and container["command"] == ["blog-perf"]
    args = container["args"]
    assert args[:3] == ["locust", "--target", f"http://blog.{NAMESPACE}.svc:8000"]
    assert args[args.index("--expect-workers") + 1] == "3" and "--master" in args and "--log-summary" in args
    assert args[args.index("--users") + 1] == "20" and args[args.index("--max-p95-ms") + 1] == "200"
    assert container["securityContext"] == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                            "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}}
    assert container["resources"]["limits"] == {"cpu": "2", "memory": "512Mi"}
    assert {"name": "BLOG_PERF_RUN_ID", "value": "shop-1"} in container["env"]
    worker_args = worker["spec"]["template"]["spec"]["containers"][0]["args"]
    assert worker_args[worker_args.index("--master-host") + 1] == "shop-1-master" and "--worker" in worker_args
    assert services["shop-1-master"]["spec"]["clusterIP"] == "None"
    assert services["shop-1-master"]["spec"]["selector"] == {"perf.aiblog.dev/run": "shop-1",
                                                            "perf.aiblog.dev/role": "master"}
    # Three worker pods and one master pod, each labelled with its run and role.
    roles = sorted(p["metadata"]["labels"]["perf.aiblog.dev/role"] for p in objects(cluster, "pods").values())
    assert roles == ["master", "worker", "worker", "worker"]


def test_a_finished_run_becomes_a_result_with_its_figures_and_a_passed_verdict(cluster):
    document = summary_document(requests=1200, failures=6, rps=40.5, p95=120.0, p99=260.0)
    cluster.cluster.scripts["master"] = PodScript(log=runner_log(document, b"<html>the report</html>"))
    apply(cluster, load_test("blog", thresholds={"p95Ms": 200, "p99Ms": 500, "maxErrorRate": 0.01, "minRps": 10}))
    final = wait_status(cluster, "blog", "the run is collected", phase="Succeeded")
    assert final["verdict"] == "Passed" and final["lastResult"] == "blog-1" and "currentRun" not in final
    assert final["latest"] == {"requests": 1200, "failures": 6, "errorRate": 0.005, "rps": 40.5, "p95Ms": 120.0,
                               "p99Ms": 260.0}
    assert final["observedGeneration"] == 1 and final["startTime"] and final["finishTime"]
    assert any(c["type"] == "Complete" and c["status"] == "True" and c["reason"] == "Passed"
               for c in final["conditions"])
    result = objects(cluster, "loadtestresults")["blog-1"]
    assert _owned_by(result, objects(cluster, "loadtests")["blog"])
    spec = result["spec"]
    assert spec["testName"] == "blog" and spec["verdict"] == "Passed" and spec["reasons"] == []
    assert spec["totals"]["requests"] == 1200 and spec["totals"]["failures"] == 6
    assert spec["totals"]["latencyMs"] == {"p50": 30.0, "p90": 85.0, "p95": 120.0, "p99": 260.0}
    assert [e["name"] for e in spec["endpoints"]] == ["/", "/post/[id]"]
    assert spec["endpoints"][0]["latencyMs"]["p90"] == 90.0 and spec["errors"][0]["occurrences"] == 6
    assert [c["check"] for c in spec["checks"]] == ["locust non-AI p95 (ms)", "locust non-AI p99 (ms)",
                                                    "locust failure rate", "locust requests/s"]
    assert spec["parameters"]["users"] == 20 and spec["parameters"]["weights"]["home"] == 10
    # Everything the operator wrote is in the CRDs' schemas: the API server would prune nothing.
    assert_fits_crd(result, "loadtestresults.perf.aiblog.dev.yaml")
    assert_fits_crd(objects(cluster, "loadtests")["blog"], "loadtests.perf.aiblog.dev.yaml")
    # `kubectl get lt` / `kubectl get ltr` show these columns: each path finds what the operator wrote.
    assert printer_columns(objects(cluster, "loadtests")["blog"], "loadtests.perf.aiblog.dev.yaml") == {
        "Phase": "Succeeded", "Verdict": "Passed", "Users": 20, "P95 ms": 120.0, "RPS": 40.5,
        "Capacity": None}  # a stepped run's (spec.profile)
    assert printer_columns(result, "loadtestresults.perf.aiblog.dev.yaml") == {
        "Test": "blog", "Verdict": "Passed", "RPS": 40.5, "P95 ms": 120.0, "Errors": 6}
    # The report outlives the pods, in a ConfigMap owned by the result.
    report = objects(cluster, "configmaps")[spec["report"]["configMap"]]
    assert report["data"]["report.html"] == "<html>the report</html>" and _owned_by(report, result)


def test_breached_thresholds_give_a_failed_verdict_with_the_reasons(cluster):
    document = summary_document(requests=500, failures=50, rps=8.0, p95=900.0, p99=1500.0)
    cluster.cluster.scripts["master"] = PodScript(log=runner_log(document))
    apply(cluster, load_test("slow", thresholds={"p95Ms": 200, "p99Ms": 2000, "maxErrorRate": 0.01}))
    final = wait_status(cluster, "slow", "the run is collected", phase="Succeeded")
    assert final["verdict"] == "Failed"
    reasons = objects(cluster, "loadtestresults")["slow-1"]["spec"]["reasons"]
    assert reasons == ["locust non-AI p95 (ms): measured 900.0, limit 200.0 (max)",
                       "locust failure rate: measured 0.1, limit 0.01 (max)"]
    assert "p95" in final["message"] and any(c["reason"] == "Failed" for c in final["conditions"])


def test_a_target_that_never_answers_fails_the_run(cluster):
    document = summary_document(requests=300, failures=300, rps=10.0)
    cluster.cluster.scripts["master"] = PodScript(log=runner_log(document))
    apply(cluster, load_test("gone"))
    final = wait_status(cluster, "gone", "the run is collected", phase="Failed")
    assert final["verdict"] == "Failed" and "did not answer: 300 of 300 requests failed" in final["message"]
    assert any(c["reason"] == "TargetUnreachable" for c in final["conditions"])


def test_a_pod_stuck_in_image_pull_backoff_fails_the_run_after_the_grace_period(cluster):
    cluster.cluster.scripts["master"] = PodScript(waiting="ImagePullBackOff")
    apply(cluster, load_test("badimage", image="registry.invalid/aiblog:nope"))
    wait_status(cluster, "badimage", "the run waits for its pod", phase="Pending")
    final = wait_status(cluster, "badimage", "the run fails", phase="Failed")
    assert "ImagePullBackOff" in final["message"] and "more than 1 s" in final["message"]
    assert any(c["reason"] == "PodStuck" for c in final["conditions"])
    wait_until(lambda: not objects(cluster, "jobs") and not objects(cluster, "pods"),
               what="the stuck run's Jobs and their pods are deleted")


def test_a_worker_in_crash_loop_backoff_fails_the_run_after_the_grace_period(cluster):
    cluster.cluster.scripts["master"] = PodScript(forever=True)
    cluster.cluster.scripts["worker"] = PodScript(waiting="CrashLoopBackOff")
    apply(cluster, load_test("crashy", workers=2))
    final = wait_status(cluster, "crashy", "the run fails", phase="Failed")
    assert "container worker is in CrashLoopBackOff" in final["message"], final["message"]
    assert any(c["reason"] == "PodStuck" for c in final["conditions"])
    events = wait_until(lambda: [e for e in objects(cluster, "events").values() if e.get("reason") == "PodStuck"],
                        what="a PodStuck Event")
    assert events[0]["type"] == "Warning" and "CrashLoopBackOff" in events[0]["message"]


def test_an_unschedulable_pod_fails_the_run(cluster):
    cluster.cluster.scripts["worker"] = PodScript(unschedulable=True)
    cluster.cluster.scripts["master"] = PodScript(forever=True)
    apply(cluster, load_test("big", workers=2))
    final = wait_status(cluster, "big", "the run fails", phase="Failed")
    assert "unschedulable: 0/3 nodes are available" in final["message"]


def test_workers_that_never_connect_fail_the_run(cluster):
    document = summary_document(error="workers never connected: fewer than 4 within 5 s")
    cluster.cluster.scripts["master"] = PodScript(log=runner_log(document), exit_code=3)
    cluster.cluster.scripts["worker"] = PodScript(forever=True)
    apply(cluster, load_test("lonely", workers=4))
    final = wait_status(cluster, "lonely", "the run fails", phase="Failed")
    assert final["verdict"] == "Failed" and "workers never connected" in final["message"]
    assert any(c["reason"] == "WorkersNotConnected" for c in final["conditions"])
    assert not objects(cluster, "loadtestresults")


def test_a_master_that_dies_without_figures_fails_the_run_and_says_where_its_log_is(cluster):
    cluster.cluster.scripts["master"] = PodScript(log="Traceback (most recent call last):\nMemoryError\n",
                                                  exit_code=1)
    apply(cluster, load_test("crash"))
    final = wait_status(cluster, "crash", "the run fails", phase="Failed")
    assert "ended as Failed (BackoffLimitExceeded) without figures" in final["message"]
    assert "no BLOG_PERF_SUMMARY line" in final["message"] and "MemoryError" not in final["message"]
    assert final["message"].endswith("see kubectl logs -n perf job/crash-1-master -c master")


def test_runs_are_counted_in_the_operators_metrics_by_verdict(cluster):
    from prometheus_client import REGISTRY

    def sample(name, **labels):
        return REGISTRY.get_sample_value(name, labels) or 0.0

    started, passed = sample("loadtest_runs_started_total"), sample(
        "loadtest_runs_finished_total", verdict="Passed", phase="Succeeded")
    cluster.cluster.scripts["master"] = PodScript(log=runner_log(summary_document()))
    apply(cluster, load_test("counted"))
    wait_status(cluster, "counted", "the run is collected", phase="Succeeded")
    assert sample("loadtest_runs_started_total") == started + 1
    # The counter moves just after the status patch the test saw: wait for it, then check it moved once.
    finished = lambda: sample("loadtest_runs_finished_total", verdict="Passed", phase="Succeeded")  # noqa: E731
    wait_until(lambda: finished() > passed, timeout=10, what="the finished run to be counted")
    assert finished() == passed + 1


def test_the_entry_point_needs_namespaces_to_watch(capsys, monkeypatch):
    from operators.loadtest import main

    monkeypatch.delenv("WATCH_NAMESPACES", raising=False)
    assert main.main([]) == 2
    assert "give --namespace NAME (or WATCH_NAMESPACES) or --all-namespaces" in capsys.readouterr().err


def test_a_scenario_from_a_configmap_is_mounted_into_master_and_workers(cluster):
    cluster.cluster.scripts["master"] = PodScript(forever=True)
    cluster.cluster.scripts["worker"] = PodScript(forever=True)
    opted_in(cluster, "ConfigMap", "checkout-scenario", SCENARIO_LABEL, data={"checkout.py": "# a locustfile"})
    apply(cluster, load_test("custom", workers=2, scenario={"configMap": {"name": "checkout-scenario",
                                                                          "key": "checkout.py"}}))
    wait_status(cluster, "custom", "the run is Running", phase="Running")
    for job in objects(cluster, "jobs").values():
        pod = job["spec"]["template"]["spec"]
        container = pod["containers"][0]
        assert {"name": "scenario", "configMap": {"name": "checkout-scenario", "items": [
            {"key": "checkout.py", "path": "checkout.py"}]}} in pod["volumes"]
        assert {"name": "scenario", "mountPath": "/etc/blog-perf/scenario", "readOnly": True} in \
            container["volumeMounts"]
        args = container["args"]
        assert args[args.index("--locustfile") + 1] == "/etc/blog-perf/scenario/checkout.py"


def test_existing_accounts_from_a_secret_reach_the_master_only(cluster):
    cluster.cluster.scripts["master"] = PodScript(log=runner_log(summary_document()), run_seconds=0.5)
    opted_in(cluster, "Secret", "perf-accounts", ACCOUNTS_LABEL, stringData={"users.txt": "a:b\n"})
    apply(cluster, load_test("protected", workers=1, accountsSecret={"name": "perf-accounts", "key": "users.txt"}))
    wait_status(cluster, "protected", "the run is collected", phase="Succeeded")
    master = objects(cluster, "jobs")["protected-1-master"]["spec"]["template"]["spec"]
    assert {"name": "accounts", "secret": {"secretName": "perf-accounts", "defaultMode": 0o440,
                                           "items": [{"key": "users.txt", "path": "users.txt"}]}} in master["volumes"]
    container = master["containers"][0]
    assert {"name": "accounts", "mountPath": "/etc/blog-perf/accounts", "readOnly": True} in container["volumeMounts"]
    args = container["args"]
    assert args[args.index("--accounts") + 1] == "/etc/blog-perf/accounts/users.txt"
    worker = objects(cluster, "jobs")["protected-1-worker"]["spec"]["template"]["spec"]
    assert all("secret" not in volume for volume in worker["volumes"])  # the workers get them from the master
    assert "--accounts" not in worker["containers"][0]["args"]
    parameters = objects(cluster, "loadtestresults")["protected-1"]["spec"]["parameters"]
    assert parameters["accountsSecret"] == "perf-accounts" and parameters["accounts"] == 0


def test_a_report_volume_claim_keeps_every_report_on_the_masters_volume(cluster):
    cluster.cluster.scripts["master"] = PodScript(log=runner_log(summary_document()), run_seconds=0.5)
    opted_in(cluster, "PersistentVolumeClaim", "perf-reports", REPORTS_LABEL,
             spec={"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}})
    apply(cluster, load_test("kept", workers=1, reportVolumeClaim="perf-reports"))
    wait_status(cluster, "kept", "the run is collected", phase="Succeeded")
    master = objects(cluster, "jobs")["kept-1-master"]["spec"]["template"]["spec"]
    assert {"name": "reports", "persistentVolumeClaim": {"claimName": "perf-reports"}} in master["volumes"]
    args = master["containers"][0]["args"]
    assert args[args.index("--out") + 1] == "/reports/kept-1"
    assert {"name": "reports", "mountPath": "/reports"} in master["containers"][0]["volumeMounts"]
    worker = objects(cluster, "jobs")["kept-1-worker"]["spec"]["template"]["spec"]
    assert all("persistentVolumeClaim" not in volume for volume in worker["volumes"])
    report = objects(cluster, "loadtestresults")["kept-1"]["spec"]["report"]
    assert report == {"configMap": "kept-1-report", "key": "report.html", "bytes": len(b"<html>report</html>"),
                      "persistentVolumeClaim": "perf-reports", "path": "kept-1/report.html"}
