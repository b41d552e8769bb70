"""End to end, for real: the operator (kopf, in the emulated API) creates a run's
Jobs; the test's kubelet runs each Job pod's container spec under podman with
the project's image (master and workers as separate containers) against the
containerised blog; the LoadTestResult must carry the figures that Locust run
reported."""
from __future__ import annotations

import json

import pytest

from perfcontract import run_summary
from loadtests.limits import LOAD_TEST_LIMITS
from tests.operator.podman_kubelet import PodmanKubelet
from tests.operator.support import apply, load_test, objects, wait_status
from tests.support.container import Blog, blog_env
from tests.support.container import aiblog_image, migrated, stack  # noqa: F401 (fixtures: the image, the blog's stack)

pytestmark = [pytest.mark.container, pytest.mark.slow, pytest.mark.timeout(600)]

WORKERS = 2


@pytest.fixture
def podman_kubelet(cluster, aiblog_image, operator_config):  # noqa: F811
    operator_config.workers_max_wait_s = 90  # containers start in seconds, not instantly
    operator_config.stuck_grace_s = 300
    kubelet = PodmanKubelet(image=aiblog_image.tag, hosts={"e2e-1-master": "127.0.0.1"},
                            objects=lambda: [*objects(cluster, "secrets").values(),
                                             *objects(cluster, "configmaps").values()])
    cluster.cluster.runner = kubelet
    yield kubelet
    kubelet.stop_all()


@pytest.fixture(scope="module")
def load_tested_blog(aiblog_image, stack, migrated):  # noqa: F811
    """The containerised blog with the limits of a stack that exists to be load-tested: the runners
    reach it from one address."""
    server = Blog(aiblog_image, blog_env(stack, **LOAD_TEST_LIMITS)).wait_healthy()
    yield server
    server.box.remove()


def _summary_line(log: str) -> dict:
    """The master's own summary line, read straight from its container's output."""
    line = next(line for line in reversed(log.splitlines()) if line.startswith(run_summary.SUMMARY_PREFIX))
    return json.loads(line[len(run_summary.SUMMARY_PREFIX):])


def test_a_distributed_run_in_containers_ends_as_a_result_with_the_figures_locust_reported(
        cluster, podman_kubelet, load_tested_blog):
    blog = load_tested_blog
    apply(cluster, load_test(
        "e2e", target={"url": blog.url}, users=6, spawnRate=6, duration=8, workers=WORKERS,
        scenario={"weights": {"home": 10, "post": 5, "login": 0, "write": 0, "ai": 0},
                  "thinkTime": {"min": 0.1, "max": 0.5}},
        thresholds={"p95Ms": 5000, "maxErrorRate": 0.05}, ttlSecondsAfterFinished=3600))
    final = wait_status(cluster, "e2e", "the containerised run is collected", timeout=400, lastResult="e2e-1")
    pods = {name: pod for name, pod in podman_kubelet.pods.items()}
    roles = sorted(pod.spec["containers"][0]["name"] for pod in pods.values())
    assert roles == ["master"] + ["worker"] * WORKERS  # separate containers, one per pod
    master_log = next(cluster.cluster.logs[name] for name, pod in pods.items()
                      if pod.spec["containers"][0]["name"] == "master")
    reported = _summary_line(master_log)["summary"]
    result = objects(cluster, "loadtestresults")["e2e-1"]["spec"]
    assert final["phase"] == "Succeeded" and final["verdict"] == result["verdict"] == "Passed", final
    totals = result["totals"]
    assert totals["requests"] == reported["requests"] > 0 and totals["failures"] == reported["failures"]
    assert totals["rps"] == reported["rps"]
    assert totals["latencyMs"] == {"p50": reported["p50_ms"], "p90": reported["p90_ms"],
                                   "p95": reported["p95_ms"], "p99": reported["p99_ms"]}
    assert {e["name"]: e["requests"] for e in result["endpoints"]} == {
        e["name"]: e["requests"] for e in reported["entries"]}
    assert final["latest"]["requests"] == reported["requests"]
    report = objects(cluster, "configmaps")[result["report"]["configMap"]]["data"]["report.html"]
    assert report.encode() == run_summary.parse_report(master_log)
    print(f"\nend to end: {totals['requests']} requests, {totals['failures']} failures, "
          f"{totals['rps']:.1f} req/s, p50 {totals['latencyMs']['p50']} ms, p95 {totals['latencyMs']['p95']} ms, "
          f"p99 {totals['latencyMs']['p99']} ms; endpoints {[(e['name'], e['requests']) for e in result['endpoints']]}; "
          f"report {result['report']['bytes']} bytes")


def test_a_run_against_a_blog_that_keeps_its_limits_uses_the_accounts_in_a_secret(
        cluster, podman_kubelet, aiblog_image, stack):  # noqa: F811
    """The blog keeps its production limits (5 sign-ups an hour per address): the runners
    sign nobody up, they log in and write with the accounts the Secret holds."""
    import asyncio

    from kubernetes import client

    from loadtests.blog_client import register
    from operators.loadtest.policy import ACCOUNTS_LABEL
    from tests.operator.support import NAMESPACE

    blog = Blog(aiblog_image, blog_env(stack)).wait_healthy()
    try:
        accounts = [(f"protected-{n}", f"protected-password-{n}") for n in range(3)]
        for username, password in accounts:
            asyncio.run(register(blog.url, username, password))
        client.CoreV1Api(cluster.api).create_namespaced_secret(NAMESPACE, {
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "perf-accounts", "labels": {ACCOUNTS_LABEL: "true"}},  # opted in to LoadTests
            "stringData": {"accounts": "".join(f"{u}:{p}\n" for u, p in accounts)}})
        apply(cluster, load_test(
            "e2e", target={"url": blog.url}, users=6, spawnRate=6, duration=8, workers=WORKERS,
            accountsSecret={"name": "perf-accounts"},
            scenario={"weights": {"home": 5, "post": 3, "login": 3, "write": 2, "ai": 0},
                      "thinkTime": {"min": 0.2, "max": 0.6}},
            thresholds={"maxErrorRate": 0}, ttlSecondsAfterFinished=3600))
        final = wait_status(cluster, "e2e", "the run with existing accounts is collected", timeout=400,
                            lastResult="e2e-1")
        result = objects(cluster, "loadtestresults")["e2e-1"]["spec"]
        assert final["phase"] == "Succeeded" and result["verdict"] == "Passed", (final, result.get("errors"))
        names = {e["name"]: e["requests"] for e in result["endpoints"]}
        assert result["totals"]["failures"] == 0 and result["totals"]["requests"] > 0
        assert not any("register" in name for name in names), names  # nobody signed up
        assert any("login" in name and count > 0 for name, count in names.items()), names
        assert result["parameters"]["accountsSecret"] == "perf-accounts"
        print(f"\nexisting accounts: {result['totals']['requests']} requests, 0 failures; endpoints {names}")
    finally:
        blog.box.remove()


# A locustfile of the author's own that writes a gzip bomb into the master pod's log
# (PID 1's stdout is the container's log; Locust's own output goes to a file).
BOMB_SCENARIO = """
import base64, zlib
from locust import HttpUser, constant, task

packer = zlib.compressobj(9, zlib.DEFLATED, 31)
packed = b"".join(packer.compress(bytes(1 << 20)) for _ in range(512)) + packer.flush()
encoded = base64.b64encode(packed).decode()
chunks = [encoded[i:i + 8000] for i in range(0, len(encoded), 8000)]
with open("/proc/1/fd/1", "w") as pod_log:
    for n, chunk in enumerate(chunks, 1):
        pod_log.write(f"BLOG_PERF_REPORT {n}/{len(chunks)} {chunk}\\n")


class Reader(HttpUser):
    wait_time = constant(0.2)

    @task
    def healthz(self):
        self.client.get("/healthz")
"""


def test_a_runner_pod_that_writes_a_gzip_bomb_into_its_log_keeps_its_figures_and_loses_its_report(
        cluster, podman_kubelet, load_tested_blog):
    from operators.loadtest.policy import SCENARIO_LABEL
    from tests.operator.support import opted_in
    opted_in(cluster, "ConfigMap", "bomb-scenario", SCENARIO_LABEL, data={"bomb.py": BOMB_SCENARIO})
    apply(cluster, load_test("e2e", target={"url": load_tested_blog.url}, users=2, spawnRate=2, duration=4,
                             scenario={"configMap": {"name": "bomb-scenario", "key": "bomb.py"}},
                             ttlSecondsAfterFinished=3600))
    final = wait_status(cluster, "e2e", "the bombed run is collected", timeout=300, lastResult="e2e-1")
    master_log = next(iter(cluster.cluster.logs.values()))
    bomb_lines = [line for line in master_log.splitlines() if line.startswith(run_summary.REPORT_PREFIX)]
    assert sum(map(len, bomb_lines)) > 600_000   # the bomb reached the pod's log
    result = objects(cluster, "loadtestresults")["e2e-1"]["spec"]
    assert final["phase"] == "Succeeded" and result["totals"]["requests"] == _summary_line(master_log)["summary"][
        "requests"] > 0
    assert [e["name"] for e in result["endpoints"]] == ["/healthz"]
    assert "configMap" not in result["report"] and not [n for n in objects(cluster, "configmaps") if "report" in n]


def test_a_runner_pod_with_a_sidecar_that_never_exits_is_judged_on_its_runner(cluster, podman_kubelet,
                                                                               load_tested_blog):
    """A mesh's classic sidecar, injected at admission and run by the kubelet beside the runner:
    the pod stays Running and its Job never completes, yet the run ends on the runner's exit,
    with the figures it reported, and its Job goes with the sidecar."""
    from tests.operator.cluster import SIDECAR, PodScript

    cluster.cluster.scripts["master"] = PodScript(sidecar_forever=True)   # what admission injects
    apply(cluster, load_test(
        "meshed", target={"url": load_tested_blog.url}, users=3, spawnRate=3, duration=5,
        scenario={"weights": {"home": 10, "post": 5, "login": 0, "write": 0, "ai": 0},
                  "thinkTime": {"min": 0.1, "max": 0.5}}, ttlSecondsAfterFinished=3600))
    from devstack import wait_until
    (pod,) = wait_until(lambda: list(podman_kubelet.pods.values()), 60, "the master pod to start")
    assert [c["name"] for c in pod.spec["containers"]] == ["master", SIDECAR]
    sidecar_container = f"{pod.name}-{SIDECAR}"
    final = wait_status(cluster, "meshed", "the meshed run is collected", timeout=300, lastResult="meshed-1")
    assert final["phase"] == "Succeeded" and final["latest"]["requests"] > 0, final
    wait_until(lambda: not objects(cluster, "jobs"), 30, "the Job a sidecar held open to be removed")
    wait_until(lambda: not podman_kubelet.pods, 30, "the pod's containers, sidecar too, to be removed")
    from tests.support.podspec import podman
    wait_until(lambda: podman("container", "exists", sidecar_container, check=False).returncode != 0, 30,
               "the sidecar's container to be removed")
