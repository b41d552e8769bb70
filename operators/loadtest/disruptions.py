"""``spec.faults``: disruptions at given times in a run, and what users felt.

Each fault evicts ``count`` pods matching a label ``selector`` in the
LoadTest's namespace ``afterSeconds`` after the run's master started. It is
applied by the first reconcile pass after that moment, so its timing is as
precise as the operator's reconcile interval (``LOADTEST_RECONCILE_SECONDS``, 5 s by
default); the moment it was really applied is recorded and judged.

Through the Eviction API, never a plain DELETE: only eviction honours a
PodDisruptionBudget (a refusal is recorded, not retried). A fault is written
to the LoadTest's status before its pods are evicted, so a restarted
operator never applies it twice (at worst, a crash between the two leaves
it recorded and not applied, which its outcome then says).

The admin allows faults per selector (``operator.policy.faultSelectors``);
the runners' own pods are never targets. What users felt is judged from the
runner's timeline with perfcontract.faults.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from kubernetes.client.exceptions import ApiException

from .names import GROUP, is_label_value

MAX_FAULTS = 10
MAX_PODS = 10  # pods one fault may evict
# A label key: an optional DNS-subdomain prefix and a slash, then a name of at most 63 characters.
LABEL_KEY = re.compile(r"^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")


class FaultSpecError(ValueError):
    """spec.faults cannot be used; the message names the field."""


@dataclass(frozen=True)
class Fault:
    after_seconds: int
    selector: tuple  # ((key, value), ...): the pods' labels, all of them (matchLabels)
    count: int

    @property
    def labels(self) -> dict:
        return dict(self.selector)


def _selector(raw, where: str) -> tuple:
    if not isinstance(raw, dict) or not raw:
        raise FaultSpecError(f"{where}.selector needs at least one label (matchLabels: key: value)")
    for key, value in raw.items():
        if not isinstance(key, str) or not LABEL_KEY.match(key) or not isinstance(value, str) \
                or not is_label_value(value):
            raise FaultSpecError(f"{where}.selector: {key!r}: {value!r} is not a label")
    return tuple(sorted(raw.items()))


def parse_faults(raw, duration: int) -> tuple[Fault, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or len(raw) > MAX_FAULTS:
        raise FaultSpecError(f"spec.faults is a list of at most {MAX_FAULTS} faults")
    faults = []
    for index, item in enumerate(raw):
        where = f"spec.faults[{index}]"
        evict = (item or {}).get("evictPods") if isinstance(item, dict) else None
        after = item.get("afterSeconds") if isinstance(item, dict) else None
        if not isinstance(evict, dict):
            raise FaultSpecError(f"{where} needs evictPods: {{selector, count}}")
        if isinstance(after, bool) or not isinstance(after, int) or not 1 <= after < duration:
            raise FaultSpecError(f"{where}.afterSeconds must be a whole number of seconds within the run "
                                 f"(1 to {duration - 1})")
        count = evict.get("count", 1)
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_PODS:
            raise FaultSpecError(f"{where}.evictPods.count must be from 1 to {MAX_PODS}")
        faults.append(Fault(after, _selector(evict.get("selector"), f"{where}.evictPods"), count))
    return tuple(faults)


def allowed(fault: Fault, selectors: tuple) -> bool:
    """The fault's selector is one the admin named, or narrower (it has all of its labels)."""
    return any(isinstance(s, dict) and s and all(fault.labels.get(k) == v for k, v in s.items()) for s in selectors)


def _is_runner(pod: dict) -> bool:
    return any(key.startswith(f"{GROUP}/") for key in ((pod.get("metadata") or {}).get("labels") or {}))


def targets(pods: list[dict], count: int) -> list[str]:
    """The pods a fault evicts: running ones, not already going, never a runner, by name."""
    live = [p for p in pods if (p.get("status") or {}).get("phase") == "Running"
            and not (p.get("metadata") or {}).get("deletionTimestamp") and not _is_runner(p)]
    return sorted(p["metadata"]["name"] for p in live)[:count]


def due(faults: tuple[Fault, ...], applied: list[dict], started: datetime | None, now: datetime) -> list[int]:
    """The faults whose time has come and that were never applied (by index)."""
    if started is None:
        return []
    done = {entry.get("index") for entry in applied}
    return [i for i, fault in enumerate(faults)
            if i not in done and now >= started + timedelta(seconds=fault.after_seconds)]


def evict(cluster, namespace: str, names: list[str]) -> str:
    """Evict each pod; the outcome in words (what a PodDisruptionBudget refused included)."""
    evicted, refused, gone = [], [], []
    for name in names:
        try:
            cluster.evict(namespace, name)
            evicted.append(name)
        except ApiException as exc:
            if exc.status == 429:  # a PodDisruptionBudget forbids it now
                refused.append(name)
            elif exc.status == 404:
                gone.append(name)
            else:
                raise
    parts = [f"evicted {', '.join(evicted)}" if evicted else "",
             f"refused by a PodDisruptionBudget: {', '.join(refused)}" if refused else "",
             f"already gone: {', '.join(gone)}" if gone else ""]
    return "; ".join(p for p in parts if p) or "no pod matched the selector"
