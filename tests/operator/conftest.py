"""Fixtures of the operator tests: a fresh emulated cluster with the real kopf
operator running against it, and the kubernetes client a user would use."""
from __future__ import annotations

import os

import pytest

try:
    import kmock  # noqa: F401
    import kopf  # noqa: F401
    import kubernetes  # noqa: F401
except ImportError as exc:  # a clear line, not a skip: CI must have them
    raise pytest.UsageError(f"the operator tests need kopf, kmock and kubernetes: pip install -e '.[test]' ({exc})")

# Quick passes and short grace periods: the tests wait seconds, not minutes. Set before kopf reads them.
os.environ.setdefault("LOADTEST_RECONCILE_SECONDS", "0.2")
os.environ.setdefault("LOADTEST_RUNNER_IMAGE", "localhost/aiblog:test")

from kubernetes import client  # noqa: E402

from operators.loadtest import handlers  # noqa: E402  (registers the handlers with kopf)
from operators.loadtest.policy import Policy  # noqa: E402
from operators.loadtest.config import OperatorConfig  # noqa: E402
from tests.operator.cluster import OperatorThread  # noqa: E402


def api_client(url: str) -> client.ApiClient:
    configuration = client.Configuration()
    configuration.host = url
    return client.ApiClient(configuration)


# What the tests of other features need switched on; tests/operator/test_operator_policy.py
# runs the chart's default policy (Policy()).
TEST_POLICY = Policy(allowed_images=("registry.invalid/*",), target_hosts=("127.0.0.1",), custom_scenarios=True,
                     accounts_secrets=True, report_volume_claims=True)


@pytest.fixture
def operator_config():
    """The operator's settings for one test (tests change the clock, the grace period)."""
    config = OperatorConfig(stuck_grace_s=1.0, workers_max_wait_s=5.0, policy=TEST_POLICY)
    handlers.CONFIG = config
    yield config
    handlers.CONFIG = OperatorConfig()


@pytest.fixture
def cluster(operator_config):
    """The emulated cluster with the operator running; ``cluster.api`` is a user's kubernetes client."""
    def configure(url):
        handlers.API["client"] = api_client(url)

    running = OperatorThread(configure).start()
    running.api = api_client(running.url)
    yield running
    running.stop()
    handlers.API.clear()
    if running.error:
        raise running.error
