"""``blog-loadtest-operator``, the command the chart's Deployment runs, as a
process: it logs in from a kubeconfig, runs LoadTests, answers kopf's liveness
probe and serves its metrics, and stops cleanly on SIGTERM."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from loadtests.stack import free_port, wait_until
from tests.operator.cluster import OperatorThread, PodScript
from tests.operator.conftest import api_client
from tests.operator.support import apply, load_test, wait_status

OPERATOR = Path(sys.executable).parent / "blog-loadtest-operator"


@pytest.fixture
def emulator():
    running = OperatorThread(lambda url: None, run_operator=False).start()
    running.api = api_client(running.url)
    yield running
    running.stop()


def test_the_operator_command_runs_load_tests_and_answers_its_probes(emulator, tmp_path):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "emulator",
        "clusters": [{"name": "emulator", "cluster": {"server": emulator.url}}],
        "users": [{"name": "operator", "user": {"token": "unused"}}],
        "contexts": [{"name": "emulator", "context": {"cluster": "emulator", "user": "operator"}}]}))
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
