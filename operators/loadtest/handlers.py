"""The kopf handlers: short; the reconcile timer calls the pass in reconcile.py,
the others configure kopf and answer its liveness probe.

One timer per LoadTest drives everything (start, follow, collect, tidy): its
state lives in the LoadTest's status and its children's labels, never in this
process, so a restarted operator carries on where the last one stopped.
"""
from __future__ import annotations

import json
import logging

import kopf
from kubernetes import client, config as kube_config
from urllib3.exceptions import HTTPError

from . import metrics, run_history
from .config import OperatorConfig
from .kube import ApiException, Cluster
from .names import GROUP, VERSION
from .reconcile import Pass
from .status import api_answer

CONFIG = OperatorConfig()
API: dict = {}  # "client": the kubernetes ApiClient; tests put theirs here before the operator starts


USER_AGENT = "aiblog-loadtest-operator"  # names the operator's requests in the API server's audit log


def _api_client() -> client.ApiClient:
    if "client" not in API:
        try:
            kube_config.load_incluster_config()
        except kube_config.ConfigException:
            kube_config.load_kube_config()
        API["client"] = client.ApiClient()
    API["client"].user_agent = USER_AGENT
    return API["client"]


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_):
    # Progress and diff-base in annotations: the CRD's status schema keeps only our own fields.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=GROUP)
    settings.posting.level = logging.INFO
    # A LoadTest deleted during a reconcile pass keeps kopf's finalizer until the pass ends; kopf
    # looks again after this many seconds (60 by default: a minute's wait for a short pass).
    settings.background.cancellation_polling = max(1.0, CONFIG.interval_s)
    _api_client()


def _post_event(body, kind: str, reason: str, message: str) -> None:
    kopf.event(body, type=kind, reason=reason, message=message[:1000])


def _plain(body) -> dict:
    """kopf's body as plain nested dicts (the manifests and kopf.adopt take those)."""
    return json.loads(json.dumps(dict(body), default=dict))


@kopf.timer(GROUP, VERSION, "loadtests", interval=CONFIG.interval_s, id="reconcile")
def reconcile(body, **_):
    metrics.RECONCILE_PASSES.inc()
    try:
        Pass(_plain(body), Cluster(_api_client()), CONFIG, _post_event).run()
    except ApiException as exc:
        metrics.RECONCILE_ERRORS.inc()
        raise kopf.TemporaryError(f"{api_answer(exc)}; retrying", delay=CONFIG.interval_s)
    except (HTTPError, OSError) as exc:  # the API server restarting, a dropped connection: try again soon
        metrics.RECONCILE_ERRORS.inc()
        raise kopf.TemporaryError(f"cannot reach the API ({exc}); retrying", delay=CONFIG.interval_s)
    except Exception:
        metrics.RECONCILE_ERRORS.inc()
        raise


@kopf.on.event(GROUP, VERSION, "loadtestresults")
def result_seen(event, body, **_):
    """Mirror the LoadTestResults for the run-history metrics (rebuilt by kopf's listing at start)."""
    run_history.HISTORY.observe(event.get("type"), _plain(body))


@kopf.on.probe(id="loadtests")
def liveness(**_):
    """kopf's /healthz answers with this; a stuck event loop makes it time out."""
    return {"reconcile_errors": metrics.RECONCILE_ERRORS._value.get()}
