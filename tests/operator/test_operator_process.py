"""``blog-loadtest-operator``, the command the chart's Deployment runs, as a
process: it logs in from a kubeconfig, runs LoadTests, answers kopf's liveness
probe and serves its metrics, and stops cleanly on SIGTERM; and its image run
as the chart's pod, exactly as rendered."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import yaml

from devstack import free_port, wait_until
from tests.operator.cluster import NAMESPACE, OperatorThread, PodScript
from tests.operator.conftest import api_client
from tests.operator.support import apply, load_test, runner_log, summary_document, wait_status
from tests.support.charts import MONITORING_CHART, pod_spec, render
from tests.support.container import aiblog_operator_image  # noqa: F401 (a fixture)
from tests.support.podspec import Cluster, Pod
from tests.support.tls import TLSFront, make_certificates

OPERATOR = Path(sys.executable).parent / "blog-loadtest-operator"


@pytest.fixture
def emulator():
    running = OperatorThread(lambda url: None, run_operator=False).start()
    running.api = api_client(running.url)
    yield running
    running.stop()


def _kubeconfig(emulator, folder: Path) -> Path:
    kubeconfig = folder / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "emulator",
        "clusters": [{"name": "emulator", "cluster": {"server": emulator.url}}],
        "users": [{"name": "operator", "user": {"token": "unused"}}],
        "contexts": [{"name": "emulator", "context": {"cluster": "emulator", "user": "operator"}}]}))
    kubeconfig.chmod(0o644)
    return kubeconfig


def _operator_process(emulator, folder: Path) -> tuple[subprocess.Popen, int, int]:
    """``blog-loadtest-operator --all-namespaces`` logged in from a kubeconfig; its liveness and metrics ports."""
    kubeconfig = _kubeconfig(emulator, folder)
    liveness, metrics = free_port(), free_port()
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "LOADTEST_RUNNER_IMAGE": "localhost/aiblog:test",
           "LOADTEST_RECONCILE_SECONDS": "0.2", "LIVENESS_PORT": str(liveness), "METRICS_PORT": str(metrics)}
    process = subprocess.Popen([str(OPERATOR), "--all-namespaces"], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    wait_until(lambda: process.poll() is None and httpx.get(
        f"http://127.0.0.1:{liveness}/healthz", timeout=1).status_code == 200, timeout=30,
        what="kopf's liveness endpoint")
    return process, liveness, metrics


def _stop(process: subprocess.Popen) -> str:
    if process.poll() is None:
        process.kill()
    return process.communicate(timeout=10)[0]


def test_the_operator_command_runs_load_tests_and_answers_its_probes(emulator, tmp_path):
    emulator.cluster.scripts["master"] = PodScript(forever=True)
    process, liveness, metrics = _operator_process(emulator, tmp_path)
    try:
        apply(emulator, load_test("fromprocess"))
        wait_status(emulator, "fromprocess", "the operator process runs the test", phase="Running")
        scraped = httpx.get(f"http://127.0.0.1:{metrics}/metrics", timeout=2).text
        assert "loadtest_runs_started_total 1.0" in scraped
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
    finally:
        output = _stop(process)
    assert "Traceback" not in output, output[-3000:]


def _peak_memory_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))) / 1024


def test_a_gzip_bomb_in_a_runners_log_leaves_the_operator_small_and_running(emulator, tmp_path):
    """682 KiB of report lines that inflate to 512 MiB: the operator once tried to
    allocate all of it (past its 256 Mi limit), crashed, and collected the same
    run again after every restart. Its peak memory is read from /proc."""
    from tests.operator.test_operator_hostile_logs import a_good_record, gzip_bomb_lines, summary_line

    bomb = gzip_bomb_lines(512)
    assert 600_000 < sum(map(len, bomb)) < 800_000
    emulator.cluster.scripts["master"] = PodScript(log="\n".join(["starting", *bomb,
                                                                    summary_line(a_good_record())]) + "\n")
    process, _, _ = _operator_process(emulator, tmp_path)
    try:
        before = _peak_memory_mib(process.pid)
        apply(emulator, load_test("bomb"))
        final = wait_status(emulator, "bomb", "the bombed run is collected", timeout=60, phase="Succeeded")
        assert final["latest"]["requests"] == 500
        peak = _peak_memory_mib(process.pid)
        print(f"\noperator peak memory (VmHWM): {before:.0f} MiB at start, {peak:.0f} MiB after the bomb")
        assert peak < before + 64, (before, peak)
        emulator.cluster.scripts["master"] = PodScript(log=runner_log(summary_document(requests=300)))
        apply(emulator, load_test("next"))
        assert wait_status(emulator, "next", "the next LoadTest runs", phase="Succeeded")["latest"]["requests"] == 300
        assert process.poll() is None
    finally:
        output = _stop(process)
    assert "Traceback" not in output, output[-3000:]


@pytest.mark.container
@pytest.mark.timeout(600)
def test_the_operator_runs_as_its_chart_renders_its_pod(emulator, aiblog_operator_image, tmp_path):
    """The rendered Deployment's PodSpec, exactly: read-only root with only its
    /tmp emptyDir, UID 10001, no capabilities, in-cluster login from the
    projected token volume over TLS (the kubelet's KUBERNETES_SERVICE_* and
    kube-root-ca.crt), its probes. The image once crashed here at start
    (PROMETHEUS_MULTIPROC_DIR inherited from the blog image) while a test
    that gave it the blog's writable folders passed."""
    certificates = make_certificates(tmp_path / "tls")
    api_server = TLSFront(certificates, urlsplit(emulator.url).port)
    repository, tag = aiblog_operator_image.tag.rsplit(":", 1)
    rendered = render(MONITORING_CHART, {"operator": {
        "image": {"repository": repository, "tag": tag, "pullPolicy": "Never"},
        "ports": {"health": free_port(), "metrics": free_port()}, "watchNamespaces": [NAMESPACE],
        "reconcileSeconds": 0.5}}, name="monitoring", namespace="monitoring")
    root_ca = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kube-root-ca.crt"},
               "data": {"ca.crt": certificates.ca.read_text()}}
    cluster = Cluster(rendered.objects + [root_ca], api_server=("127.0.0.1", api_server.port))
    spec = pod_spec(rendered.named("Deployment", "monitoring-loadtest-operator"))
    operator = spec["containers"][0]
    metrics_port = next(p["containerPort"] for p in operator["ports"] if p["name"] == "metrics")
    emulator.cluster.scripts["master"] = PodScript(forever=True)
    pod = Pod("loadtest-operator-0", spec, cluster, namespace="monitoring")
    try:
        pod.start()
        probes = pod.wait_ready(timeout=90)
        assert probes and all(result.ok for results in probes.values() for result in results), probes
        apply(emulator, load_test("fromchartpod"))
        try:
            wait_status(emulator, "fromchartpod", "the operator's chart pod runs the test", timeout=60,
                        phase="Running")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\noperator log:\n{pod.logs(operator)[-4000:]}") from None
        scraped = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=2).text
        assert "loadtest_runs_started_total 1.0" in scraped, scraped[-2000:]
        logs = pod.logs(operator)
        assert "Read-only file system" not in logs and "Traceback" not in logs, logs[-3000:]
    finally:
        pod.stop()
        api_server.close()
