"""checkov, a third-party scanner, over every rendered value set of both charts.
Any finding fails unless it is one of the few checks the project deliberately does
not follow, listed below with the reason and narrowed to where it applies."""
from __future__ import annotations

import functools
from typing import Callable

import pytest

from tests.charts.conftest import RENDERS, rendered
from tests.support.charts import BLOG_VALUE_SETS, MONITORING_VALUE_SETS, PARTS
from tests.support.checkov import Finding, Scan, scan

pytestmark = [pytest.mark.charts, pytest.mark.slow]

BLOG_PROCESSES = {"aiblog", "aiblog-ai", "aiblog-worker"}  # the blog's own code (both serving pools); the helm test pod runs its image too
THIRD_PARTY = {"aiblog-postgresql", "aiblog-redis", "aiblog-ollama"}  # official images
OPERATOR = "monitoring-loadtest-operator"


def values(chart: str, value_set: str) -> dict:
    return (BLOG_VALUE_SETS if chart == "blog" else MONITORING_VALUE_SETS)[value_set]


def secret_env_from_the_user(chart: str, value_set: str, name: str) -> bool:
    parts = {f"aiblog-{p}": p for p in PARTS if p != "web"} | {"aiblog": "web"}
    part = values(chart, value_set).get(parts.get(name, ""), {})
    return any("secretRef" in source for source in part.get("extraEnvFrom", []))


# check id -> (why the project does not follow it, where that reason holds: chart, value set, finding)
EXCEPTIONS: dict[str, tuple[str, Callable[[str, str, Finding], bool]]] = {
    # Tags name one build (version + git sha) and never move, and image.digest pins the
    # chart's own image: Always would only make every pod start depend on the registry.
    "CKV_K8S_15": ("pull policy IfNotPresent", lambda chart, value_set, f: True),
    # Postgres, Redis and Ollama are pinned by tag: their digests cannot be looked up here
    # (no registry), and the schema accepts repo:tag@sha256:... for whoever can. The chart's
    # own image is pinned by image.digest; without one the user's build tag is all there is.
    "CKV_K8S_43": ("no digest", lambda chart, value_set, f: f.name in THIRD_PARTY or (
        not values(chart, value_set).get("image", {}).get("digest") and chart == "blog")
        or (chart == "monitoring" and f.name == OPERATOR)),
    # The blog reads every setting from its environment (one table, service/aiblog/config.py);
    # the official Postgres and Redis images take their password the same way. The values are
    # secretKeyRefs, never literals. A user's own extraEnvFrom Secret is theirs to choose.
    "CKV_K8S_35": ("secrets as environment variables", lambda chart, value_set, f: f.name in BLOG_PROCESSES
                   or f.name in ("aiblog-postgresql", "aiblog-redis")
                   or secret_env_from_the_user(chart, value_set, f.name)),
    # The official images' user (999). Postgres refuses a data directory it does not own, so a
    # new UID would lock an existing volume; a new install may set podSecurityContext.runAsUser.
    "CKV_K8S_40": ("UID below 10000", lambda chart, value_set, f: f.name in ("aiblog-postgresql", "aiblog-redis")),
    # The helm test pod runs once to completion: a probe has nothing to watch.
    "CKV_K8S_8": ("no liveness probe", lambda chart, value_set, f: f.kind == "Pod" and f.name.endswith("-test-readyz")),
    "CKV_K8S_9": ("no readiness probe", lambda chart, value_set, f: f.kind == "Pod" and f.name.endswith("-test-readyz")),
    # Pods without a NetworkPolicy: only where the values turn the policies off (the blog's
    # everything-optional-off set), and the operator's, whose policy needs the API server's
    # addresses, which differ per cluster (operator.networkPolicy.apiServer).
    "CKV2_K8S_6": ("no NetworkPolicy", lambda chart, value_set, f: (
        chart == "blog" and values(chart, value_set).get("networkPolicy", {}).get("enabled") is False)
        or (chart == "monitoring" and f.name == OPERATOR
            and not values(chart, value_set).get("operator", {}).get("networkPolicy", {}).get("enabled"))),
}


@functools.cache
def scanned(chart: str, value_set: str) -> Scan:
    return scan(rendered(chart, value_set).objects)


@pytest.mark.parametrize("chart, value_set", RENDERS, ids=[f"{c}:{v}" for c, v in RENDERS])
def test_checkov_finds_nothing_but_the_deliberate_exceptions(chart, value_set):
    result = scanned(chart, value_set)
    unexpected = [f for f in result.failed if f.check_id not in EXCEPTIONS
                  or not EXCEPTIONS[f.check_id][1](chart, value_set, f)]
    print(f"checkov {chart}:{value_set}: {result.passed} passed, {len(result.failed)} failed "
          f"({len(result.failed) - len(unexpected)} deliberate)")
    assert unexpected == []
    assert result.passed > 50, "checkov ran its Kubernetes checks"


def test_every_exception_is_still_needed():
    """An exception nothing hits any more comes off the list."""
    used = {f.check_id for chart, value_set in RENDERS for f in scanned(chart, value_set).failed}
    assert set(EXCEPTIONS) <= used, sorted(set(EXCEPTIONS) - used)


def test_checkov_flags_a_privileged_root_container():
    """The scan can fail: a Deployment as the chart would never render it."""
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "bad", "namespace": "blog"},
                  "spec": {"selector": {"matchLabels": {"app": "bad"}}, "template": {
                      "metadata": {"labels": {"app": "bad"}},
                      "spec": {"containers": [{"name": "bad", "image": "bad:1",
                                               "securityContext": {"privileged": True, "runAsUser": 0}}]}}}}
    found = {f.check_id for f in scan([deployment]).failed}
    assert {"CKV_K8S_16", "CKV_K8S_23"} <= found, found  # privileged; admission of root containers
