"""A fault for real: the blog runs as a pod under the test's podman kubelet,
a LoadTest's runners (pods too) load it, and the operator evicts the blog's
pod mid-run. The kubelet stops its container; the test then plays the
ReplicaSet and creates a replacement pod, which the kubelet starts. The
result must count the requests that failed while the blog was away and the
time until latency and errors were back to normal.

What this cannot prove, for want of a ReplicaSet controller, Service load
balancing and ``preStop`` here: that the blog chart's PodDisruptionBudget,
its ``preStop`` pause and several replicas make an eviction cost no requests.
On a real cluster the same LoadTest (``operators/examples/loadtest-fault.yaml``)
is how a user proves that: with two replicas its errors should be 0.
"""
from __future__ import annotations

import uuid

import pytest

from devstack import wait_until
from loadtests.limits import LOAD_TEST_LIMITS
from operators.loadtest.policy import Policy
from tests.operator.cluster import NAMESPACE, now_iso
from tests.operator.podman_kubelet import PodmanKubelet
from tests.operator.support import apply, load_test, objects, status, wait_status
from tests.support.container import blog_env
from tests.support.container import aiblog_image, migrated, stack  # noqa: F401 (fixtures: the image, the blog's stack)

pytestmark = [pytest.mark.container, pytest.mark.slow, pytest.mark.timeout(600)]

BLOG = {"app.kubernetes.io/name": "blog"}


def _blog_pod(name: str, env: dict) -> dict:
    """The blog's pod: the image's own command, the stack's settings (a Deployment's template)."""
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": NAMESPACE, "labels": BLOG,
                                                            "uid": str(uuid.uuid4()), "creationTimestamp": now_iso()},
            "spec": {"containers": [{"name": "blog", "image": "localhost/aiblog:test",
                                     "env": [{"name": k, "value": v} for k, v in env.items()]}]},
            "status": {"phase": "Pending"}}


def _serving(url: str) -> bool:
    import httpx
    try:
        return httpx.get(url + "/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_evicting_the_blogs_pod_mid_run_is_measured_as_errors_and_a_recovery(
        cluster, operator_config, aiblog_image, stack, migrated):  # noqa: F811
    operator_config.workers_max_wait_s = 90
    operator_config.stuck_grace_s = 300
    operator_config.policy = Policy(target_hosts=("127.0.0.1",), fault_selectors=(BLOG,))
    kubelet = PodmanKubelet(image=aiblog_image.tag)
    cluster.cluster.runner = kubelet
    env = blog_env(stack, **LOAD_TEST_LIMITS)
    url = f"http://127.0.0.1:{env['PORT']}"
    replacements = iter(["blog-1", "blog-2"])

    def replace(evicted: str) -> None:  # the ReplicaSet's part: a new pod for the one evicted
        new = next(replacements)
        cluster.k.objects[_pods_key(cluster), NAMESPACE, new] = _blog_pod(new, env)

    cluster.cluster.on_eviction = replace
    try:
        cluster.k.objects[_pods_key(cluster), NAMESPACE, "blog-0"] = _blog_pod("blog-0", env)
        wait_until(lambda: _serving(url), timeout=120, what="the blog's pod serving")
        apply(cluster, load_test(
            "survive", target={"url": url}, users=5, spawnRate=5, duration=45,
            scenario={"weights": {"home": 10, "post": 5, "login": 0, "write": 0, "ai": 0},
                      "thinkTime": {"min": 0.1, "max": 0.3}},
            faults=[{"afterSeconds": 20, "evictPods": {"selector": BLOG, "count": 1}}],
            thresholds={"maxRecoverySeconds": 60}, ttlSecondsAfterFinished=3600))
        fault = wait_until(lambda: next((f for f in status(cluster, "survive").get("faults") or []
                                         if f["outcome"] != "being applied"), None), timeout=240,
                           what="the fault applied")
        assert fault["outcome"] == "evicted blog-0"
        wait_until(lambda: "blog-0" not in kubelet.pods and "blog-1" in kubelet.pods, timeout=60,
                   what="the evicted pod's container stopped and its replacement started")
        final = wait_status(cluster, "survive", "the run is collected", timeout=300, lastResult="survive-1")
        (felt,) = objects(cluster, "loadtestresults")["survive-1"]["spec"]["faults"]
        print(f"\nfault end to end: {felt}")
        assert felt["errors"] > 0, felt  # the blog was away: requests failed
        assert felt["recovered"] is True and 0 < felt["recoverySeconds"] < 60, felt
        assert felt["worstP95Ms"] >= felt["normalP95Ms"], felt
        assert final["verdict"] == "Passed", final["message"]
        assert _serving(url)  # the replacement serves
    finally:
        kubelet.stop_all()


def _pods_key(cluster):
    import kmock
    return kmock.resource("v1/pods")
