"""``blog-loadtest-operator``, the command the chart's Deployment runs, as a
process: it logs in from a kubeconfig, runs LoadTests, answers kopf's liveness
probe and serves its metrics, and stops cleanly on SIGTERM."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
import pytest
import yaml

from loadtests.stack import free_port, wait_until
from tests.operator.cluster import OperatorThread, PodScript
from tests.operator.conftest import api_client
from tests.operator.support import apply, load_test, wait_status
from tests.support.container import aiblog_operator_image, run_container  # noqa: F401 (a fixture)

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


def test_the_operator_command_runs_load_tests_and_answers_its_probes(emulator, tmp_path):
    kubeconfig = _kubeconfig(emulator, tmp_path)
    liveness, metrics = free_port(), free_port()
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "LOADTEST_RUNNER_IMAGE": "localhost/aiblog:test",
           "LOADTEST_RECONCILE_SECONDS": "0.2", "LIVENESS_PORT": str(liveness), "METRICS_PORT": str(metrics)}
    emulator.cluster.scripts["master"] = PodScript(forever=True)
    process = subprocess.Popen([str(OPERATOR), "--all-namespaces"], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        wait_until(lambda: httpx.get(f"http://127.0.0.1:{liveness}/healthz", timeout=1).status_code == 200,
                   timeout=30, what="kopf's liveness endpoint")
        apply(emulator, load_test("fromprocess"))
        wait_status(emulator, "fromprocess", "the operator process runs the test", phase="Running")
        scraped = httpx.get(f"http://127.0.0.1:{metrics}/metrics", timeout=2).text
        assert "loadtest_runs_started_total 1.0" in scraped
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            process.kill()
        output = process.communicate(timeout=10)[0]
    assert "Traceback" not in output, output[-3000:]


@pytest.mark.container
@pytest.mark.timeout(600)
def test_the_operator_image_runs_locked_down_like_its_chart_pod(emulator, aiblog_operator_image):
    """The operator's own image (non-root, read-only root, no capabilities) runs a LoadTest."""
    folder = Path(tempfile.mkdtemp(prefix="operator-kubeconfig-"))
    folder.chmod(0o755)
    kubeconfig = _kubeconfig(emulator, folder)
    liveness, metrics = free_port(), free_port()
    emulator.cluster.scripts["master"] = PodScript(forever=True)
    box = run_container(aiblog_operator_image, ["blog-loadtest-operator", "--all-namespaces"],
                        env={"KUBECONFIG": "/etc/kube/kubeconfig", "LOADTEST_RUNNER_IMAGE": "localhost/aiblog:test",
                             "LIVENESS_PORT": str(liveness), "METRICS_PORT": str(metrics)},
                        volumes=[(str(folder), "/etc/kube", "ro")])
    try:
        wait_until(lambda: httpx.get(f"http://127.0.0.1:{liveness}/healthz", timeout=1).status_code == 200,
                   timeout=60, what="the operator container's liveness endpoint")
        apply(emulator, load_test("fromimage"))
        wait_status(emulator, "fromimage", "the containerised operator runs the test", phase="Running")
        assert "loadtest_runs_started_total 1.0" in httpx.get(f"http://127.0.0.1:{metrics}/metrics", timeout=2).text
        box.signal("TERM")
        assert box.wait(30) == 0, box.logs()[-3000:]
        assert "Read-only file system" not in box.logs()
    finally:
        box.remove()
        shutil.rmtree(folder, ignore_errors=True)
