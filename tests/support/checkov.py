"""checkov (PyPI) over rendered manifests: the third-party scanner of the chart tests.

It lives in a venv of its own, .venv-checkov, installed by `make test` from
requirements/checkov.txt: it pins packaging<24, which the project's lock is past.
"""
from __future__ import annotations

import json
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from devstack import REPO

CHECKOV = REPO / ".venv-checkov" / "bin" / "checkov"


@dataclass(frozen=True)
class Finding:
    check_id: str
    kind: str
    name: str
    title: str


@dataclass
class Scan:
    passed: int
    failed: list[Finding]


def scan(objects: list[dict]) -> Scan:
    """Every Kubernetes check of checkov over ``objects`` (one manifest file)."""
    if not CHECKOV.exists():
        raise AssertionError(f"checkov is missing at {CHECKOV}: `make test` installs it (requirements/checkov.txt)")
    with tempfile.TemporaryDirectory(prefix="aiblog-checkov-") as folder:
        manifest = Path(folder) / "manifests.yaml"
        manifest.write_text(yaml.safe_dump_all(objects))
        done = subprocess.run([str(CHECKOV), "--file", str(manifest), "--framework", "kubernetes", "--output", "json",
                               "--compact", "--quiet", "--skip-download"], capture_output=True, text=True, timeout=300)
    if done.returncode not in (0, 1) or not done.stdout.strip():
        raise AssertionError(f"checkov failed (exit {done.returncode}): {done.stderr[-2000:]}")
    report = json.loads(done.stdout)
    failed = []
    for check in report["results"]["failed_checks"]:
        kind, _namespace, name = check["resource"].split(".")[:3]  # Kind.namespace.name[.labels of a graph check]
        failed.append(Finding(check["check_id"], kind, name, check["check_name"]))
    return Scan(report["summary"]["passed"], failed)
