"""What the operator is told by its Deployment (the environment the chart
sets, ``charts/monitoring/templates/operator-deployment.yaml``)."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from . import schedule
from .policy import Policy


@dataclass
class OperatorConfig:
    """What the operator is told by its Deployment (environment) and what tests replace."""
    default_image: str | None = field(default_factory=lambda: os.environ.get("LOADTEST_RUNNER_IMAGE") or None)
    interval_s: float = field(default_factory=lambda: float(os.environ.get("LOADTEST_RECONCILE_SECONDS", "5")))
    stuck_grace_s: float = field(default_factory=lambda: float(os.environ.get("LOADTEST_STUCK_GRACE_SECONDS", "180")))
    workers_max_wait_s: float = field(
        default_factory=lambda: float(os.environ.get("LOADTEST_WORKERS_MAX_WAIT_SECONDS", "180")))
    clock: schedule.SystemClock = field(default_factory=schedule.SystemClock)
    policy: Policy = field(default_factory=Policy.from_environment)
    # Who may scrape a run master's live metrics (a NetworkPolicyPeer; the chart names
    # Prometheus's namespace). Unset: pods of any namespace.
    scrapers: dict = field(default_factory=lambda: scrapers_from(os.environ.get(SCRAPERS_ENV)))


SCRAPERS_ENV = "LOADTEST_METRICS_SCRAPERS"


def scrapers_from(text: str | None) -> dict:
    """The peer in ``LOADTEST_METRICS_SCRAPERS`` (JSON); a bad one stops the operator at start."""
    if not text:
        return {"namespaceSelector": {}}
    try:
        peer = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{SCRAPERS_ENV} is not JSON: {exc}") from None
    if not isinstance(peer, dict) or not peer or set(peer) - {"namespaceSelector", "podSelector", "ipBlock"}:
        raise ValueError(f"{SCRAPERS_ENV} must be a NetworkPolicyPeer (namespaceSelector, podSelector, ipBlock)")
    return peer
