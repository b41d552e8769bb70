"""The names and labels of a run's objects: the API group, the labels the
operator finds its children by, and child names that are valid whatever the
LoadTest is called. Pure; ``manifests.py`` builds the objects around them.
"""
from __future__ import annotations

import hashlib
import re

GROUP, VERSION = "perf.aiblog.dev", "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
TEST_LABEL = f"{GROUP}/test"
RUN_LABEL = f"{GROUP}/run"
RUN_NUMBER_LABEL = f"{GROUP}/run-number"
ROLE_LABEL = f"{GROUP}/role"
FINISHED_ANNOTATION = f"{GROUP}/finished-at"
MANAGED_BY = "aiblog-loadtest-operator"

# A Service's name (DNS-1035 label) and a label's value: what a child's name and labels must be.
DNS_1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
# The name of a ConfigMap, Secret, PersistentVolumeClaim or PriorityClass (a DNS subdomain).
OBJECT_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
RUN_NAME_MAX = 45  # plus the longest child suffix ("-runner-token"): within 63


def _digest(text: str, length: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def run_name(test: str, number: int) -> str:
    """``<test>-<n>`` when that makes valid child names (a Service's name is a DNS-1035
    label: a letter first, no dots, 63 characters with its suffix). Any other valid
    LoadTest name (``web.v2``, ``2fast``, 200 characters) gets a cleaned, shortened
    name with a hash of the real one, so two tests never share a run's name."""
    suffix = f"-{number}"
    if DNS_1035_LABEL.match(test) and len(test) + len(suffix) <= RUN_NAME_MAX:
        return f"{test}{suffix}"
    cleaned = re.sub(r"[^a-z0-9-]+", "-", test.lower()).strip("-")
    if not cleaned[:1].isalpha():
        cleaned = f"lt-{cleaned}".rstrip("-")
    base = cleaned[:RUN_NAME_MAX - len(suffix) - 7].rstrip("-")
    return f"{base}-{_digest(test, 6)}{suffix}"


def is_label_value(text: str) -> bool:
    """At most 63 characters of [-A-Za-z0-9_.], alphanumeric at both ends (or empty)."""
    return len(text) <= 63 and LABEL_VALUE.match(text) is not None


def label_value(text: str) -> str:
    """``text`` as a label value (``is_label_value``), with a hash of the whole when it
    had to be cut or cleaned."""
    if is_label_value(text):
        return text
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "-", text)[:55].strip("-_.")
    return f"{cleaned}-{_digest(text, 7)}" if cleaned else _digest(text, 12)


def master_job_name(run: str) -> str:
    return f"{run}-master"


def worker_job_name(run: str) -> str:
    return f"{run}-worker"


def master_service_name(run: str) -> str:
    return f"{run}-master"


def report_configmap_name(run: str) -> str:
    return f"{run}-report"


def labels(test: str, run: str, role: str | None = None) -> dict:
    found = {"app.kubernetes.io/name": "loadtest-runner", "app.kubernetes.io/managed-by": MANAGED_BY,
             TEST_LABEL: label_value(test), RUN_LABEL: run}
    if role:
        found[ROLE_LABEL] = role
    return found


def run_token_secret_name(run: str) -> str:
    return f"{run}-runner-token"


def network_policy_name(run: str) -> str:
    return f"{run}-runners"
