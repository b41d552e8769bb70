"""``spec.runner``: what a cluster needs on a LoadTest's runner pods.

Labels and annotations (a mesh's ``sidecar.istio.io/inject: "false"``),
placement (``nodeSelector``, ``affinity``, ``topologySpreadConstraints``,
``tolerations``), ``priorityClassName``, ``imagePullSecrets`` and ``env``.
Read and bounded here; ``policy.py`` says which of them this cluster allows;
``manifests.py`` puts them on both Jobs' pod templates. The operator's own
labels, annotations and variables always win: a LoadTest cannot rename its
pods out of the operator's sight or replace the run token.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from perfcontract.runner import RUN_TOKEN_ENV

from .names import GROUP, OBJECT_NAME, is_label_value

# Label and annotation keys: an optional DNS-subdomain prefix, then a name of 63 characters.
KEY = re.compile(r"^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]{0,127}$")
# Keys the operator owns on its pods, and variables it sets in its containers.
RESERVED_PREFIXES = (f"{GROUP}/", "app.kubernetes.io/managed-by", "app.kubernetes.io/name", "job-name",
                     "batch.kubernetes.io/", "controller-uid")
RESERVED_ENV = {"PYTHONUNBUFFERED", "HOME", "BLOG_PERF_RUN_ID", RUN_TOKEN_ENV}  # manifests._container
TOLERATION_KEYS = {"key", "operator", "value", "effect", "tolerationSeconds"}
MAX_ENTRIES = 64  # labels, annotations, env variables, tolerations, pull secrets: each
MAX_BYTES = 32 * 1024  # the whole of spec.runner as JSON: far below the API's object limit


class RunnerSpecError(ValueError):
    """``spec.runner`` cannot be used; the message names the field."""


@dataclass(frozen=True)
class RunnerPods:
    labels: dict = field(default_factory=dict)
    annotations: dict = field(default_factory=dict)
    node_selector: dict = field(default_factory=dict)
    affinity: dict | None = None
    topology_spread_constraints: list = field(default_factory=list)
    tolerations: list = field(default_factory=list)
    priority_class_name: str | None = None
    image_pull_secrets: list = field(default_factory=list)  # names
    env: list = field(default_factory=list)  # {"name", "value"} or {"name", "valueFrom"}

    @property
    def env_value_from(self) -> bool:
        return any("valueFrom" in variable for variable in self.env)

    @property
    def placement(self) -> bool:
        return bool(self.node_selector or self.affinity or self.topology_spread_constraints)


def _mapping(raw, where: str, valid_value=lambda value: True) -> dict:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or len(raw) > MAX_ENTRIES:
        raise RunnerSpecError(f"spec.runner.{where} must be a map of at most {MAX_ENTRIES} entries")
    for key, value in raw.items():
        if not isinstance(key, str) or not KEY.match(key):
            raise RunnerSpecError(f"spec.runner.{where}: {str(key)[:80]!r} is not a valid key")
        if key.startswith(RESERVED_PREFIXES):
            raise RunnerSpecError(f"spec.runner.{where}: {key!r} belongs to the operator")
        if not isinstance(value, str) or not valid_value(value):
            raise RunnerSpecError(f"spec.runner.{where}.{key}: {str(value)[:80]!r} is not a valid value")
    return dict(raw)


def _objects(raw, where: str) -> list:
    if raw is None:
        return []
    if not isinstance(raw, list) or len(raw) > MAX_ENTRIES or not all(isinstance(item, dict) for item in raw):
        raise RunnerSpecError(f"spec.runner.{where} must be a list of at most {MAX_ENTRIES} objects")
    return [dict(item) for item in raw]


def _tolerations(raw) -> list:
    tolerations = _objects(raw, "tolerations")
    for toleration in tolerations:
        unknown = set(toleration) - TOLERATION_KEYS
        if unknown:
            raise RunnerSpecError(f"spec.runner.tolerations: unknown field(s) {', '.join(sorted(unknown))}")
    return tolerations


def _env(raw) -> list:
    env = _objects(raw, "env")
    for variable in env:
        name = variable.get("name")
        if not isinstance(name, str) or not ENV_NAME.match(name):
            raise RunnerSpecError(f"spec.runner.env: {str(name)[:80]!r} is not a variable name")
        if name in RESERVED_ENV:
            raise RunnerSpecError(f"spec.runner.env: {name} is set by the operator")
        if set(variable) - {"name", "value", "valueFrom"} or ("value" in variable) == ("valueFrom" in variable):
            raise RunnerSpecError(f"spec.runner.env.{name}: give exactly one of value or valueFrom")
        if "value" in variable and not isinstance(variable["value"], str):
            raise RunnerSpecError(f"spec.runner.env.{name}.value must be a string")
    return env


def _pull_secrets(raw) -> list:
    secrets = _objects(raw, "imagePullSecrets")
    names = [secret.get("name") for secret in secrets]
    for name in names:
        if not isinstance(name, str) or not OBJECT_NAME.match(name):
            raise RunnerSpecError(f"spec.runner.imagePullSecrets: {str(name)[:80]!r} is not a Secret name")
    return names


def parse_runner(raw) -> RunnerPods:
    """``spec.runner`` checked and bounded; ``RunnerSpecError`` names the first problem."""
    if raw is None:
        return RunnerPods()
    if not isinstance(raw, dict):
        raise RunnerSpecError("spec.runner must be an object")
    if len(json.dumps(raw)) > MAX_BYTES:
        raise RunnerSpecError(f"spec.runner is over {MAX_BYTES} bytes")
    metadata = raw.get("metadata") or {}
    if not isinstance(metadata, dict) or set(metadata) - {"labels", "annotations"}:
        raise RunnerSpecError("spec.runner.metadata takes labels and annotations")
    affinity = raw.get("affinity")
    if affinity is not None and not isinstance(affinity, dict):
        raise RunnerSpecError("spec.runner.affinity must be an object")
    priority = raw.get("priorityClassName")
    if priority is not None and (not isinstance(priority, str) or not OBJECT_NAME.match(priority)):
        raise RunnerSpecError(f"spec.runner.priorityClassName: {str(priority)[:80]!r} is not a PriorityClass name")
    return RunnerPods(
        labels=_mapping(metadata.get("labels"), "metadata.labels", is_label_value),
        annotations=_mapping(metadata.get("annotations"), "metadata.annotations"),
        node_selector=_mapping(raw.get("nodeSelector"), "nodeSelector", is_label_value),
        affinity=affinity, topology_spread_constraints=_objects(raw.get("topologySpreadConstraints"),
                                                                "topologySpreadConstraints"),
        tolerations=_tolerations(raw.get("tolerations")), priority_class_name=priority,
        image_pull_secrets=_pull_secrets(raw.get("imagePullSecrets")), env=_env(raw.get("env")),
    )


def apply(runner: RunnerPods, template: dict, container: dict) -> None:
    """Put ``runner`` on a Job's pod ``template`` and its runner ``container``
    (the operator's labels, annotations and variables already there win)."""
    meta = template.setdefault("metadata", {})
    meta["labels"] = {**runner.labels, **(meta.get("labels") or {})}
    if runner.annotations:
        meta["annotations"] = {**runner.annotations, **(meta.get("annotations") or {})}
    pod = template["spec"]
    for key, value in (("nodeSelector", runner.node_selector), ("affinity", runner.affinity),
                       ("topologySpreadConstraints", runner.topology_spread_constraints),
                       ("tolerations", runner.tolerations), ("priorityClassName", runner.priority_class_name)):
        if value:
            pod[key] = value
    if runner.image_pull_secrets:
        pod["imagePullSecrets"] = [{"name": name} for name in runner.image_pull_secrets]
    container["env"] = [*container.get("env", []), *runner.env]
