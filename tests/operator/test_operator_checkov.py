"""checkov, the chart tests' third-party scanner, over what the operator creates
for a run: the NetworkPolicy, the master's Service, both Jobs and the token
Secret of a distributed run, as manifests.run_children writes them (in the
LoadTest's namespace, where the API puts them). Any finding fails unless it
is one of the deliberate exceptions below."""
from __future__ import annotations

import pytest

from operators.loadtest import manifests
from operators.loadtest.spec import parse
from tests.support.checkov import scan

pytestmark = [pytest.mark.slow]

NAMESPACE = "blog"

# check id -> why a run's objects do not follow it
EXCEPTIONS = {
    # The runner image is the operator's runnerImage or one operator.policy.allowedImages
    # names; the admin pins it (a digest in the tag works), the operator copies it as given.
    "CKV_K8S_43": "no image digest",
    # As given, like the image; IfNotPresent is the default for a tagged image.
    "CKV_K8S_15": "pull policy not Always",
    # The run's token reaches the workers as a secretKeyRef variable (Locust's workers read
    # it from the environment); it lives as long as the run and is never logged.
    "CKV_K8S_35": "a Secret in an environment variable",
}


def _run_objects() -> list[dict]:
    spec = parse({"target": {"service": {"name": "aiblog", "port": 80}}, "users": 20, "duration": 60,
                  "workers": 2, "resources": {"limits": {"cpu": "1", "memory": "512Mi"}}}, NAMESPACE)
    target = {"pods": {"app.kubernetes.io/instance": "aiblog", "app.kubernetes.io/component": "web"}, "port": 8000}
    children = manifests.run_children("nightly", "nightly-1", spec, "registry.example/aiblog:1.0.0", 60.0, target,
                                      "token", {"namespaceSelector": {"matchLabels": {
                                          "kubernetes.io/metadata.name": "monitoring"}}})
    for child in children:
        child["metadata"]["namespace"] = NAMESPACE
    return children


def test_checkov_finds_nothing_in_a_runs_objects_but_the_deliberate_exceptions():
    objects = _run_objects()
    assert {o["kind"] for o in objects} == {"NetworkPolicy", "Service", "Job", "Secret"}
    result = scan(objects)
    unexpected = [f for f in result.failed if f.check_id not in EXCEPTIONS]
    print(f"checkov, a run's objects: {result.passed} passed, {len(result.failed)} failed "
          f"({len(result.failed) - len(unexpected)} deliberate: {sorted({f.check_id for f in result.failed})})")
    assert unexpected == [], unexpected
    assert {f.check_id for f in result.failed} == set(EXCEPTIONS), "an exception no longer needed: drop it"
    assert result.passed > 50, "checkov ran its Kubernetes checks"
