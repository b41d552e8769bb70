"""A LoadTest's spec, read and checked once, with its defaults.

The CRD's schema rejects most nonsense at ``kubectl apply``; this is the second
line for what a schema cannot say (a cron expression, think times in order,
accounts with workers) and for objects that got in some other way. A problem
becomes a clear status message, never an exception loop.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from urllib.parse import urlparse

from perfcontract.capacity import SLO, Profile, ProfileError
from perfcontract.task_mix import DEFAULT_TASK_WEIGHTS

from . import schedule
from .baselines import CompareSpec, CompareSpecError, parse_compare
from .disruptions import Fault, FaultSpecError, parse_faults
from .names import OBJECT_NAME
from .runner_pods import RunnerPods, RunnerSpecError, parse_runner

DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
LOCUSTFILE_KEY = re.compile(r"^[-._a-zA-Z0-9]+\.py$")
SECRET_KEY_NAME = re.compile(r"^[-._a-zA-Z0-9]{1,253}$")
QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|k|M|G)?$")
MAX_WORKERS = 500
MAX_DURATION_S = 86400
_QUANTITY_PARTS = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(m|k|M|G|T|Ki|Mi|Gi|Ti)?$")
_FACTORS = {None: 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
            "Ki": 2 ** 10, "Mi": 2 ** 20, "Gi": 2 ** 30, "Ti": 2 ** 40}


def quantity(text: str) -> float:
    """A Kubernetes quantity (``500m``, ``2``, ``512Mi``) as a number."""
    match = _QUANTITY_PARTS.match(str(text))
    if match is None:
        raise ValueError(f"{text!r} is not a quantity")
    return float(match.group(1)) * _FACTORS[match.group(2)]


class SpecError(ValueError):
    """The spec cannot be run; the message says what to change."""


@dataclass(frozen=True)
class Thresholds:
    p95_ms: float | None = None
    p99_ms: float | None = None
    max_error_rate: float | None = None
    min_rps: float | None = None
    min_capacity_users: int | None = None  # with spec.profile: the capacity (users within its SLO) at least
    max_recovery_seconds: float | None = None  # with spec.faults: each fault's recovery at most
    max_errors_during_fault: int | None = None  # and its failed requests at most


@dataclass(frozen=True)
class StepProfile:
    """spec.profile: users stepped from startUsers to endUsers, each step held stepSeconds, with an SLO."""
    steps: Profile
    slo: SLO


# A stepped run's master holds its last step a few seconds longer (loadtests/locust_steps.py:
# its workers' last figures arrive), so its duration has this added.
PROFILE_TAIL_S = 5


@dataclass(frozen=True)
class LoadTestSpec:
    target_url: str
    users: int
    duration: int
    spawn_rate: float = 10.0
    workers: int = 0
    accounts: int = 0
    image: str | None = None
    weights: dict = field(default_factory=lambda: dict(DEFAULT_TASK_WEIGHTS))
    wait_min: float = 1.0
    wait_max: float = 3.0
    resources: dict = field(default_factory=dict)
    thresholds: Thresholds = Thresholds()
    ttl_seconds_after_finished: int = 600
    schedule: str | None = None
    history_limit: int = 10
    suspend: bool = False
    # A locustfile of the user's own: (ConfigMap name, key), or None for the built-in scenario.
    scenario_configmap: tuple[str, str] | None = None
    report_claim: str | None = None  # a PersistentVolumeClaim that keeps every run's report too
    # Existing accounts for a blog whose limits refuse sign-ups: (Secret name, key), a
    # file of username:password lines that the master shares out (instead of ``accounts``).
    accounts_secret: tuple[str, str] | None = None
    target_service: str | None = None  # the Service in the LoadTest's namespace, when the target names one
    runner: RunnerPods = RunnerPods()  # spec.runner: labels, placement, pull secrets, env of the runner pods
    compare: CompareSpec | None = None  # spec.compare: judge against a baseline too (baselines.py)
    profile: StepProfile | None = None  # spec.profile: a stepped run (users and duration follow from it)
    faults: tuple[Fault, ...] = ()  # spec.faults: pods evicted during the run (disruptions.py)


def _number(spec: dict, key: str, default, kind, low, high):
    value = spec.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and value != int(value)):
        raise SpecError(f"spec.{key} must be a {'whole ' if kind is int else ''}number, not {value!r}")
    if not low <= value <= high:
        raise SpecError(f"spec.{key} must be between {low} and {high}, not {value}")
    return kind(value)


def _target_url(target, namespace: str) -> str:
    if not isinstance(target, dict) or ("url" in target) == ("service" in target):
        raise SpecError("spec.target needs exactly one of url (http://...) or service {name, port, path}")
    if "url" in target:
        url = target["url"]
        parsed = urlparse(url if isinstance(url, str) else "")
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise SpecError(f"spec.target.url must be an http(s) URL, not {url!r}")
        return url.rstrip("/")
    service = target["service"] if isinstance(target["service"], dict) else {}
    name, port, path = service.get("name"), service.get("port"), service.get("path", "/")
    if not isinstance(name, str) or not DNS_LABEL.match(name):
        raise SpecError(f"spec.target.service.name must be a Service name, not {name!r}")
    if not isinstance(port, int) or not 1 <= port <= 65535:
        raise SpecError(f"spec.target.service.port must be a port number, not {port!r}")
    if not isinstance(path, str) or not path.startswith("/"):
        raise SpecError(f"spec.target.service.path must start with '/', not {path!r}")
    return f"http://{name}.{namespace}.svc:{port}{path}".rstrip("/")


def _weights(scenario: dict) -> dict:
    given = scenario.get("weights") or {}
    unknown = sorted(set(given) - set(DEFAULT_TASK_WEIGHTS))
    if unknown:
        raise SpecError(f"spec.scenario.weights: unknown task(s) {', '.join(unknown)}; "
                        f"the tasks are {', '.join(DEFAULT_TASK_WEIGHTS)}")
    weights = {**DEFAULT_TASK_WEIGHTS, **given}
    if any(not isinstance(v, int) or isinstance(v, bool) or v < 0 for v in weights.values()):
        raise SpecError("spec.scenario.weights are whole numbers from 0")
    if not any(weights.values()):
        raise SpecError("spec.scenario.weights: at least one task needs a weight above 0")
    return weights


def _scenario_configmap(scenario: dict) -> tuple[str, str] | None:
    ref = scenario.get("configMap")
    if ref is None:
        return None
    name, key = (ref or {}).get("name"), (ref or {}).get("key", "locustfile.py")
    if not isinstance(name, str) or not OBJECT_NAME.match(name):
        raise SpecError(f"spec.scenario.configMap.name must be a ConfigMap name, not {name!r}")
    if not isinstance(key, str) or not LOCUSTFILE_KEY.match(key):
        raise SpecError(f"spec.scenario.configMap.key must name a .py file, not {key!r}")
    return name, key


def _accounts_secret(ref, accounts: int) -> tuple[str, str] | None:
    if ref is None:
        return None
    if accounts:
        raise SpecError("give spec.accounts (accounts to create) or spec.accountsSecret (existing ones), not both")
    name, key = (ref if isinstance(ref, dict) else {}).get("name"), (ref if isinstance(ref, dict) else {}).get("key", "accounts")
    if not isinstance(name, str) or not OBJECT_NAME.match(name):
        raise SpecError(f"spec.accountsSecret.name must be a Secret name, not {name!r}")
    if not isinstance(key, str) or not SECRET_KEY_NAME.match(key):
        raise SpecError(f"spec.accountsSecret.key must be a Secret key, not {key!r}")
    return name, key


def _report_claim(claim) -> str | None:
    if claim is not None and (not isinstance(claim, str) or not OBJECT_NAME.match(claim)):
        raise SpecError(f"spec.reportVolumeClaim must be a PersistentVolumeClaim name, not {claim!r}")
    return claim


def _thresholds(raw) -> Thresholds:
    raw = raw or {}
    if not isinstance(raw, dict):
        raise SpecError("spec.thresholds must be an object")
    values = {}
    for key, name, high in (("p95Ms", "p95_ms", 1e9), ("p99Ms", "p99_ms", 1e9), ("maxErrorRate", "max_error_rate", 1),
                            ("minRps", "min_rps", 1e9)):
        if key in raw:
            values[name] = _number(raw, key, None, float, 0, high)
    if "minCapacityUsers" in raw:
        values["min_capacity_users"] = _number(raw, "minCapacityUsers", None, int, 1, 100000)
    if "maxRecoverySeconds" in raw:
        values["max_recovery_seconds"] = _number(raw, "maxRecoverySeconds", None, float, 0, 86400)
    if "maxErrorsDuringFault" in raw:
        values["max_errors_during_fault"] = _number(raw, "maxErrorsDuringFault", None, int, 0, 10**9)
    return Thresholds(**values)


def _profile(raw) -> StepProfile | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise SpecError("spec.profile must be an object")
    start = _number(raw, "startUsers", None, int, 1, 100000)
    end = _number(raw, "endUsers", None, int, 1, 100000)
    step = _number(raw, "stepUsers", None, int, 1, 100000)
    seconds = _number(raw, "stepSeconds", None, int, 1, 3600)
    slo = raw.get("slo") or {}
    if not isinstance(slo, dict):
        raise SpecError("spec.profile.slo must be an object")
    p95 = _number(slo, "p95Ms", None, float, 0, 1e9) if "p95Ms" in slo else None
    error_rate = _number(slo, "maxErrorRate", 0.01, float, 0, 1)
    try:
        return StepProfile(Profile(start, end, step, seconds), SLO(p95, error_rate))
    except ProfileError as exc:
        raise SpecError(f"spec.profile: {exc}") from None


def _resources(raw) -> dict:
    raw = raw or {}
    for part in ("requests", "limits"):
        for key, value in (raw.get(part) or {}).items():
            if key not in ("cpu", "memory") or not QUANTITY.match(str(value)):
                raise SpecError(f"spec.resources.{part}.{key}: {value!r} is not a cpu or memory quantity")
    return {part: {k: str(v) for k, v in (raw.get(part) or {}).items()} for part in ("requests", "limits")
            if raw.get(part)}


def parse(spec: dict | None, namespace: str) -> LoadTestSpec:
    """The spec with its defaults; SpecError names the first problem."""
    if not isinstance(spec, dict):
        raise SpecError("the LoadTest has no spec")
    profile = _profile(spec.get("profile"))
    if profile is not None and ("users" in spec or "duration" in spec):
        raise SpecError("give spec.users and spec.duration, or spec.profile (which sets both), not both")
    if profile is None and ("users" not in spec or "duration" not in spec):
        raise SpecError("spec.users and spec.duration are required (or spec.profile)")
    if profile is not None:
        lasts = math.ceil(profile.steps.total_seconds) + PROFILE_TAIL_S
        if lasts > MAX_DURATION_S:
            raise SpecError(f"spec.profile's steps last {lasts} s, over a day ({MAX_DURATION_S} s)")
        spec = {**spec, "users": profile.steps.end, "duration": lasts}
    scenario = spec.get("scenario") or {}
    think = scenario.get("thinkTime") or {}
    wait_min = _number(think, "min", 1.0, float, 0, 3600)
    wait_max = _number(think, "max", 3.0, float, 0, 3600)
    if wait_max < wait_min:
        raise SpecError(f"spec.scenario.thinkTime: max ({wait_max:g}) is smaller than min ({wait_min:g})")
    workers = _number(spec, "workers", 0, int, 0, MAX_WORKERS)
    accounts = _number(spec, "accounts", 0, int, 0, 10000)
    cron = spec.get("schedule")
    if cron is not None:
        problem = schedule.problem(cron)
        if problem:
            raise SpecError(f"spec.schedule: {problem}")
    image = spec.get("image")
    if image is not None and (not isinstance(image, str) or not image.strip()):
        raise SpecError("spec.image must be an image reference")
    users = _number(spec, "users", None, int, 1, 100000)
    history_limit = _number(spec, "historyLimit", 10, int, 1, 1000)
    thresholds = _thresholds(spec.get("thresholds"))
    if thresholds.min_capacity_users is not None and profile is None:
        raise SpecError("spec.thresholds.minCapacityUsers needs spec.profile (a capacity comes from a stepped run)")
    if (thresholds.max_recovery_seconds is not None or thresholds.max_errors_during_fault is not None) \
            and not spec.get("faults"):
        raise SpecError("spec.thresholds.maxRecoverySeconds and maxErrorsDuringFault need spec.faults")
    try:
        runner = parse_runner(spec.get("runner"))
        compare = parse_compare(spec.get("compare"), history_limit)
        faults = parse_faults(spec.get("faults"), _number(spec, "duration", None, int, 1, MAX_DURATION_S))
    except (RunnerSpecError, CompareSpecError, FaultSpecError) as exc:
        raise SpecError(str(exc)) from None
    return LoadTestSpec(
        target_url=_target_url(spec.get("target"), namespace), users=users,
        duration=_number(spec, "duration", None, int, 1, MAX_DURATION_S),
        spawn_rate=_number(spec, "spawnRate", 10.0, float, 0.001, 10000),
        workers=workers, accounts=accounts, image=image, weights=_weights(scenario),
        wait_min=wait_min, wait_max=wait_max, resources=_resources(spec.get("resources")),
        thresholds=thresholds,
        ttl_seconds_after_finished=_number(spec, "ttlSecondsAfterFinished", 600, int, 0, 604800),
        schedule=cron, history_limit=history_limit,
        suspend=bool(spec.get("suspend", False)), scenario_configmap=_scenario_configmap(scenario),
        report_claim=_report_claim(spec.get("reportVolumeClaim")),
        accounts_secret=_accounts_secret(spec.get("accountsSecret"), accounts),
        target_service=((spec.get("target") or {}).get("service") or {}).get("name"), runner=runner,
        compare=compare, profile=profile, faults=faults,
    )
