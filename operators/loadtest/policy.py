"""What a cluster admin lets LoadTest authors do: the operator creates Jobs
with its own rights, so the API server never checks the author's, and every
power a LoadTest could reach through the operator is named here and off
unless the admin turns it on.

The admin sets it in the monitoring chart (``operator.policy``), which hands
it to the operator as JSON in ``LOADTEST_POLICY``; the defaults below are the
chart's defaults and the same when the operator runs without the chart.

Objects a LoadTest names (a Secret of accounts, a ConfigMap holding a
locustfile, a PersistentVolumeClaim for reports) are usable only when their
owner has opted them in with a label, and the check is made again when each
run starts (a schedule runs long after the apply, and labels change).
A spec beyond the policy is Rejected with the setting named.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, fields
from urllib.parse import urlparse

from . import disruptions
from .names import GROUP
from .spec import LoadTestSpec, quantity

# The opt-in labels (value "true") a namespace's owner puts on what LoadTests may use.
ACCOUNTS_LABEL = f"{GROUP}/loadtest-accounts"
SCENARIO_LABEL = f"{GROUP}/loadtest-scenario"
REPORTS_LABEL = f"{GROUP}/loadtest-reports"
POLICY_ENV = "LOADTEST_POLICY"
class PolicyError(ValueError):
    """The operator's own policy setting is malformed (the operator refuses to start)."""


@dataclass(frozen=True)
class Policy:
    """The chart's ``operator.policy`` (camelCase there, snake_case here)."""
    # Runner images a LoadTest may name besides the operator's default; "*" ends a prefix.
    allowed_images: tuple[str, ...] = ()
    # Hosts a spec.target.url may name ("*" ends a prefix). Services in the LoadTest's own
    # namespace (spec.target.service) are always allowed.
    target_hosts: tuple[str, ...] = ()
    custom_scenarios: bool = False  # spec.scenario.configMap, a ConfigMap labelled SCENARIO_LABEL
    accounts_secrets: bool = False  # spec.accountsSecret, a Secret labelled ACCOUNTS_LABEL
    report_volume_claims: bool = False  # spec.reportVolumeClaim, a PVC labelled REPORTS_LABEL
    max_workers: int = 10
    max_users: int = 2000
    max_duration_seconds: int = 3600
    max_spawn_rate: float = 100.0
    max_cpu: str = "2"  # per runner pod, requests and limits
    max_memory: str = "2Gi"
    max_history: int = 20
    max_report_bytes: int = 10_000_000  # report ConfigMaps kept per LoadTest, in bytes
    # spec.runner (runner_pods.py): what a cluster needs on the runner pods.
    runner_pod_metadata: bool = True  # labels and annotations (a mesh's sidecar.istio.io/inject)
    runner_placement: bool = True  # nodeSelector, affinity, topologySpreadConstraints
    runner_tolerations: bool = False  # taints usually keep pods off dedicated nodes on purpose
    allowed_priority_classes: tuple[str, ...] = ()  # a high class preempts other pods
    allowed_image_pull_secrets: tuple[str, ...] = ()  # "*" ends a prefix
    runner_env_value_from: bool = False  # env valueFrom reads Secrets the author may not read
    # spec.faults: label selectors whose pods a LoadTest may evict (a fault's selector must have
    # all of one's labels). Empty: no faults, and the operator's Role has no pods/eviction.
    fault_selectors: tuple = ()

    @classmethod
    def from_json(cls, text: str | None) -> "Policy":
        if not text:
            return cls()
        try:
            raw = json.loads(text)
        except ValueError as exc:
            raise PolicyError(f"{POLICY_ENV} is not JSON: {exc}") from None
        names = {f.name: f for f in fields(cls)}
        values = {}
        for key, value in (raw or {}).items():
            name = re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower()
            if name not in names:
                raise PolicyError(f"{POLICY_ENV}: unknown setting {key!r}")
            values[name] = tuple(value) if isinstance(value, list) else value
        policy = cls(**values)
        for limit in (policy.max_cpu, policy.max_memory):
            quantity(limit)
        for selector in policy.fault_selectors:
            if not isinstance(selector, dict) or not selector or not all(
                    isinstance(k, str) and isinstance(v, str) for k, v in selector.items()):
                raise PolicyError(f"{POLICY_ENV}: faultSelectors holds label maps (key: value), not {selector!r}")
        return policy

    @classmethod
    def from_environment(cls) -> "Policy":
        return cls.from_json(os.environ.get(POLICY_ENV))

    # -- what the spec alone says ------------------------------------------------
    def problem(self, spec: LoadTestSpec, image: str, default_image: str | None) -> str | None:
        """The first way ``spec`` goes beyond the policy, naming the setting; None when it fits."""
        if image != default_image and not _matches(image, self.allowed_images):
            return (f"spec.image {image!r} is not an allowed runner image "
                    f"(operator.policy.allowedImages: {list(self.allowed_images) or 'only the default'})")
        if spec.target_service is None:
            host = urlparse(spec.target_url).hostname or ""
            if not _matches(host, self.target_hosts):
                return (f"spec.target.url names host {host!r}, which is not in operator.policy.targetHosts; "
                        "target a Service in this namespace (spec.target.service) or ask the cluster admin")
        for wanted, allowed, setting, what in (
                (spec.scenario_configmap, self.custom_scenarios, "customScenarios", "spec.scenario.configMap"),
                (spec.accounts_secret, self.accounts_secrets, "accountsSecrets", "spec.accountsSecret"),
                (spec.report_claim, self.report_volume_claims, "reportVolumeClaims", "spec.reportVolumeClaim")):
            if wanted and not allowed:
                return f"{what}: this cluster does not allow it (operator.policy.{setting} is false)"
        runner = self.runner_problem(spec)
        if runner:
            return runner
        for index, fault in enumerate(spec.faults):
            if not disruptions.allowed(fault, self.fault_selectors):
                return (f"spec.faults[{index}] evicts pods labelled {fault.labels}, which no selector in "
                        f"operator.policy.faultSelectors covers ({list(self.fault_selectors) or 'none: no faults'})")
        for value, ceiling, setting, what in (
                (spec.workers, self.max_workers, "maxWorkers", "spec.workers"),
                (spec.users, self.max_users, "maxUsers", "spec.profile.endUsers" if spec.profile else "spec.users"),
                (spec.duration, self.max_duration_seconds, "maxDurationSeconds",
                 "spec.profile (its steps' seconds)" if spec.profile else "spec.duration"),
                (spec.spawn_rate, self.max_spawn_rate, "maxSpawnRate", "spec.spawnRate"),
                (spec.history_limit, self.max_history, "maxHistory", "spec.historyLimit")):
            if value > ceiling:
                return f"{what} {value:g} is over operator.policy.{setting} ({ceiling:g})"
        for part in ("requests", "limits"):
            for resource, ceiling, setting in (("cpu", self.max_cpu, "maxCpu"), ("memory", self.max_memory, "maxMemory")):
                asked = (spec.resources.get(part) or {}).get(resource)
                if asked is not None and quantity(asked) > quantity(ceiling):
                    return f"spec.resources.{part}.{resource} {asked} is over operator.policy.{setting} ({ceiling})"
        return None

    def runner_problem(self, spec: LoadTestSpec) -> str | None:
        runner = spec.runner
        for wanted, allowed, setting, what in (
                (runner.labels or runner.annotations, self.runner_pod_metadata, "runnerPodMetadata",
                 "spec.runner.metadata"),
                (runner.placement, self.runner_placement, "runnerPlacement",
                 "spec.runner nodeSelector, affinity or topologySpreadConstraints"),
                (runner.tolerations, self.runner_tolerations, "runnerTolerations", "spec.runner.tolerations"),
                (runner.env_value_from, self.runner_env_value_from, "runnerEnvValueFrom",
                 "spec.runner.env valueFrom (only literal values otherwise)")):
            if wanted and not allowed:
                return f"{what}: this cluster does not allow it (operator.policy.{setting} is false)"
        if runner.priority_class_name and not _matches(runner.priority_class_name, self.allowed_priority_classes):
            return (f"spec.runner.priorityClassName {runner.priority_class_name!r} is not in "
                    f"operator.policy.allowedPriorityClasses ({list(self.allowed_priority_classes)})")
        for name in runner.image_pull_secrets:
            if not _matches(name, self.allowed_image_pull_secrets):
                return (f"spec.runner.imagePullSecrets {name!r} is not in operator.policy.allowedImagePullSecrets "
                        f"({list(self.allowed_image_pull_secrets)})")
        return None

    # -- what the objects it names say (read when each run starts) ----------------------
    def objects_problem(self, spec: LoadTestSpec, labels_of) -> str | None:
        """``labels_of(kind, name)`` gives an object's labels, or None when it does not exist."""
        for wanted, kind, label, field_name in ((spec.accounts_secret, "Secret", ACCOUNTS_LABEL, "accountsSecret"),
                                                (spec.scenario_configmap, "ConfigMap", SCENARIO_LABEL,
                                                 "scenario.configMap"),
                                                ((spec.report_claim, None) if spec.report_claim else None,
                                                 "PersistentVolumeClaim", REPORTS_LABEL, "reportVolumeClaim")):
            if not wanted:
                continue
            name = wanted[0]
            labels = labels_of(kind, name)
            if labels is None:
                return f"spec.{field_name}: {kind} {name!r} does not exist in this namespace"
            if labels.get(label) != "true":
                return (f"spec.{field_name}: {kind} {name!r} is not labelled {label}=true; "
                        "its owner must opt it in to LoadTests")
        return None


def _matches(value: str, patterns: tuple[str, ...]) -> bool:
    return any(value == p or (p.endswith("*") and value.startswith(p[:-1])) for p in patterns)
