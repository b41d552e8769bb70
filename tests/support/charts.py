"""Rendering the Helm charts with Helm's own Go engine (helm-python-sdk) and
reading what comes out: objects, pod templates, containers, selectors.

No cluster is involved: ``lookup`` returns nothing, so generated secrets are
random on every render (what a first install gets). tests/support/lookup_cluster.py
renders against an emulated API server instead.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import yaml

from devstack import REPO

try:
    import helm_python
except ImportError as exc:  # one clear line, never a skip
    raise ImportError("helm-python-sdk is missing: pip install -e '.[test]' (it provides helm_python)") from exc

BLOG_CHART = REPO / "charts" / "blog"
MONITORING_CHART = REPO / "charts" / "monitoring"
RELEASE = "aiblog"
NAMESPACE = "blog"
# The Kubernetes version every object is validated against (kubernetes-validate's schemas).
KUBERNETES_VERSION = "1.35.0"

WORKLOAD_KINDS = {"Deployment", "StatefulSet", "Job", "DaemonSet"}

# The value sets every chart test renders (the issue's matrix).
BLOG_VALUE_SETS: dict[str, dict] = {
    "defaults": {},
    "everything-enabled": {
        "replicaCount": 3,
        "ingress": {"enabled": True, "className": "nginx",
                    "hosts": [{"host": "blog.example.com", "paths": [{"path": "/", "pathType": "Prefix"}]}],
                    "tls": [{"secretName": "blog-tls", "hosts": ["blog.example.com"]}]},
        "httpRoute": {"enabled": True, "parentRefs": [{"name": "eg", "namespace": "gateways", "sectionName": "http"}],
                      "hostnames": ["blog.example.org", "*.blog.example.org"]},
        "autoscaling": {"enabled": True, "requestsPerSecond": {"enabled": True}},
        "serviceMonitor": {"enabled": True, "labels": {"release": "monitoring"}},
        "podMonitor": {"enabled": True},
        "prometheusRule": {"enabled": True},
        "networkPolicy": {"ingressController": {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "envoy-gateway-system"}},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "envoy"}}}},
        "ollama": {"gpu": {"enabled": True}},
    },
    "everything-optional-off": {
        "postgresql": {"enabled": False},
        "externalDatabase": {"host": "postgres.db.svc", "existingSecret": "blog-database"},
        "redis": {"enabled": False},
        "worker": {"enabled": False},
        "aiPool": {"enabled": False},
        "ollama": {"enabled": False},
        "llm": {"mode": "sim"},
        "dashboards": {"enabled": False},
        "tests": {"enabled": False},
        "topologySpread": {"enabled": False},
        "serviceAccount": {"create": False},
        "networkPolicy": {"enabled": False},
    },
    "external-database-redis-llm": {
        "postgresql": {"enabled": False},
        "externalDatabase": {"host": "postgres.db.svc", "port": 6432, "existingSecret": "blog-database"},
        "redis": {"enabled": False},
        "externalRedis": {"host": "redis.cache.svc", "existingSecret": "blog-redis", "database": 2},
        "ollama": {"enabled": False},
        "llm": {"mode": "external", "external": {"api": "openai", "baseUrl": "http://llama-server.llm:8080"}},
        "networkPolicy": {"enabled": True},
        "secretKey": {"existingSecret": "blog-secret-key"},
    },
    "gpu-ollama": {
        "ollama": {"gpu": {"enabled": True, "count": 1, "nodeSelector": {"nvidia.com/gpu.present": "true"}}},
    },
    "hpa-custom-metric": {
        "autoscaling": {"enabled": True, "minReplicas": 2, "maxReplicas": 10,
                        "requestsPerSecond": {"enabled": True, "averageValue": "400"}},
        "serviceMonitor": {"enabled": True},
    },
    "two-replicas": {"replicaCount": 2, "networkPolicy": {"enabled": True}},
    "ten-replicas": {"replicaCount": 10, "web": {"resources": {"limits": {"cpu": "4", "memory": "1Gi"}}}},
}

PARTS = ("web", "worker", "postgresql", "redis", "ollama")  # the parts with their own extension points
DIGEST = "sha256:" + "ab" * 32


def part_extensions(part: str) -> dict:
    """Every extension point of one part, each value naming the part (tests find them by it)."""
    return {
        "podLabels": {"example.com/part": part}, "podAnnotations": {"example.com/note": part},
        "extraEnv": [{"name": "HTTPS_PROXY", "value": f"http://proxy-{part}:3128"}],
        "extraEnvFrom": [{"secretRef": {"name": f"{part}-env"}}],
        "extraVolumes": [{"name": "extra-ca", "configMap": {"name": "aiblog-extra-ca"}}],
        "extraVolumeMounts": [{"name": "extra-ca", "mountPath": "/etc/ssl/extra", "readOnly": True}],
        "nodeSelector": {"example.com/pool": part},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": part, "effect": "NoSchedule"}],
        "priorityClassName": f"{part}-priority",
        "podSecurityContext": {"fsGroupChangePolicy": "OnRootMismatch"},
        "containerSecurityContext": {"seLinuxOptions": {"level": "s0:c123,c456"}},
    }


# Every extension point set, release-wide and per part (tests/charts/test_chart_extensions.py).
EXTENSION_VALUES: dict = {
    "image": {"digest": DIGEST},
    "imagePullSecrets": [{"name": "regcred"}],
    "podLabels": {"example.com/team": "blog"}, "podAnnotations": {"example.com/owner": "blog-team"},
    "nodeSelector": {"kubernetes.io/os": "linux"},
    "tolerations": [{"key": "spot", "operator": "Exists", "effect": "NoSchedule"}],
    "affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 1, "preference": {"matchExpressions": [
            {"key": "example.com/ssd", "operator": "In", "values": ["true"]}]}}]}},
    "priorityClassName": "release-priority",
    "serviceAccount": {"annotations": {"iam.gke.io/gcp-service-account": "blog@project.iam.gserviceaccount.com"}},
    "extraObjects": [
        {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": {"name": "aiblog-extra-ca", "namespace": "{{ .Release.Namespace }}"},
         "data": {"ca.pem": "not a real certificate"}},
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: '{{ .Release.Name }}-templated'\n"
        "  namespace: '{{ .Release.Namespace }}'\ndata:\n  namespace: '{{ .Release.Namespace }}'\n",
    ],
    **{part: part_extensions(part) for part in PARTS},
}
EXTENSION_VALUES["worker"]["topologySpreadConstraints"] = [
    {"maxSkew": 2, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "DoNotSchedule",
     "labelSelector": {"matchLabels": {"app.kubernetes.io/component": "worker"}}}]
EXTENSION_VALUES["ollama"]["gpu"] = {"enabled": True, "nodeSelector": {"nvidia.com/gpu.present": "true"}}
BLOG_VALUE_SETS["extension-points"] = EXTENSION_VALUES

MONITORING_VALUE_SETS: dict[str, dict] = {
    "defaults": {},  # the stack on: with its chart not downloaded, only this chart's own objects render
    "stack-off": {"kube-prometheus-stack": {"enabled": False}},
    "operator-network-policy": {"operator": {"networkPolicy": {"enabled": True,
                                                               "apiServer": {"cidrs": ["172.18.0.2/32"]}}}},
}


@dataclass
class Render:
    """One render of a chart: its objects (NOTES.txt kept apart)."""
    objects: list[dict]
    notes: str

    def of_kind(self, kind: str) -> list[dict]:
        return [o for o in self.objects if o["kind"] == kind]

    def named(self, kind: str, name: str) -> dict:
        found = [o for o in self.of_kind(kind) if o["metadata"]["name"] == name]
        assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
        return found[0]

    def workloads(self) -> list[dict]:
        """Objects that run pods (the helm test Pod included)."""
        return [o for o in self.objects if o["kind"] in WORKLOAD_KINDS or o["kind"] == "Pod"]


def pod_spec(workload: dict) -> dict:
    return workload["spec"] if workload["kind"] == "Pod" else workload["spec"]["template"]["spec"]


def pod_labels(workload: dict) -> dict:
    meta = workload["metadata"] if workload["kind"] == "Pod" else workload["spec"]["template"]["metadata"]
    return meta.get("labels") or {}


def containers(workload: dict, init: bool = True) -> Iterator[dict]:
    spec = pod_spec(workload)
    yield from (spec.get("initContainers") or []) if init else ()
    yield from spec["containers"]


def matches(selector: dict, labels: dict) -> bool:
    """A label selector (matchLabels and/or matchExpressions, or a Service's plain map)."""
    match_labels = selector.get("matchLabels", selector if "matchExpressions" not in selector else {})
    if any(labels.get(k) != v for k, v in match_labels.items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        value, op = labels.get(expression["key"]), expression["operator"]
        if op == "In" and value not in expression["values"]:
            return False
        if op == "NotIn" and value in expression["values"]:
            return False
        if op == "Exists" and expression["key"] not in labels:
            return False
        if op == "DoesNotExist" and expression["key"] in labels:
            return False
    return True


def merged(base: dict, override: dict) -> dict:
    """Values as Helm coalesces them (maps merge, anything else is replaced)."""
    result = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merged(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def render_manifests(chart: Path = BLOG_CHART, values: dict | None = None, name: str = RELEASE,
                     namespace: str = NAMESPACE) -> dict[str, str]:
    """Helm's output of an offline ``helm install``: template path -> rendered text."""
    with helm_python.Chart.load(chart) as loaded:
        return loaded.render(values or {}, name=name, namespace=namespace, is_install=True)


def parse(manifests: dict[str, str]) -> Render:
    """Every document of a render (NOTES.txt kept apart)."""
    objects, notes = [], ""
    for template, text in sorted(manifests.items()):
        if template.endswith("NOTES.txt"):
            notes = text
            continue
        for document in yaml.safe_load_all(text):
            if document:
                document.setdefault("metadata", {}).setdefault("annotations", {})
                objects.append(document)
    return Render(objects, notes)


def render(chart: Path = BLOG_CHART, values: dict | None = None, name: str = RELEASE,
           namespace: str = NAMESPACE) -> Render:
    """Render ``chart`` as ``helm install`` would (offline) and parse every document."""
    return parse(render_manifests(chart, values, name, namespace))


def render_error(chart: Path, values: dict) -> str:
    """Helm's own message for values it refuses (fails if they render)."""
    with helm_python.Chart.load(chart) as loaded:
        try:
            loaded.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
        except helm_python.HelmError as exc:
            return str(exc)
    raise AssertionError(f"the chart rendered values it should refuse: {values}")


def chart_values(chart: Path = BLOG_CHART) -> dict:
    return yaml.safe_load((chart / "values.yaml").read_text())
